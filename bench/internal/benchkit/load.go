package benchkit

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Result is the outcome of Measure.
type Result struct {
	Name     string
	PerSec   float64
	P50, P99 time.Duration
}

// Measure runs op n times from conc clients and returns the throughput and
// latency percentiles, and the first error.
func Measure(name string, n, conc int, op func(i int) error) (Result, error) {
	lat := make([]time.Duration, n)
	var next int
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				t := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s #%d: %w", name, i, err)
					}
					mu.Unlock()
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	total := time.Since(start)
	slices.Sort(lat)
	return Result{Name: name, PerSec: float64(n) / total.Seconds(), P50: lat[n/2], P99: lat[n*99/100]}, firstErr
}

// Percentile is the p-th percentile (0-100) of sorted durations.
func Percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}
