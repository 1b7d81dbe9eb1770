package router

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// FuzzInFlight drives a revision with requests that take room at once (as
// the core does) or wait, time out, are canceled and are rerouted while
// its instances come and go, as data says:
// no instance ever holds more requests than scale_concurrency, and when
// every request has ended, nothing is counted in flight or waiting.
func FuzzInFlight(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 2, 0, 3, 0, 0, 4, 1})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 3, 3, 1, 7})
	const concurrency = 2
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64 {
			data = data[:64]
		}
		r := New(Config{QueueDepth: 3, Logger: slog.New(slog.DiscardHandler)})
		eps := []Endpoint{{ID: "a", Addr: "127.0.0.1:1"}, {ID: "b", Addr: "127.0.0.1:2"}, {ID: "c", Addr: "127.0.0.1:3"}}
		r.SetRevision("rev", RevisionConfig{Concurrency: concurrency, Timeout: time.Second}, eps[:1])
		rev := r.revision("rev")
		var wg sync.WaitGroup
		var mu sync.Mutex
		var overs []string
		for i, op := range data {
			switch op % 5 {
			case 0, 1: // a request: it may time out waiting, or be canceled, or finish
				hold := time.Duration(op%3) * time.Millisecond
				wait := time.Duration(i%4) * time.Millisecond
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), wait+time.Millisecond)
					defer cancel()
					if op%2 == 1 {
						go cancel()
					}
					// The core tries for room without waiting first (case 0);
					// net/http's path waits at once (case 1).
					var b *backend
					if op%5 == 0 {
						b, _ = rev.tryAcquire()
					}
					var err error
					if b == nil {
						b, err = rev.acquire(ctx, func() {})
					}
					if err != nil {
						if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) &&
							!errors.Is(err, errQueueFull) && !errors.Is(err, errReroute) && !errors.Is(err, errGone) {
							t.Errorf("acquire: %v", err)
						}
						return
					}
					rev.mu.Lock()
					if b.inflight > concurrency {
						mu.Lock()
						overs = append(overs, b.id)
						mu.Unlock()
					}
					rev.mu.Unlock()
					time.Sleep(hold)
					rev.release(b)
				})
			case 2: // instances come and go
				from := int(op/5) % 3
				r.SetRevision("rev", RevisionConfig{Concurrency: concurrency, Timeout: time.Second}, eps[from:min(len(eps), from+1+int(op/15)%2)])
			case 3: // the revision stops serving its host
				rev.reroute()
			case 4:
				time.Sleep(time.Duration(op%7) * 100 * time.Microsecond)
			}
		}
		wg.Wait()
		if len(overs) > 0 {
			t.Errorf("instances held more than %d requests: %v", concurrency, overs)
		}
		rev.mu.Lock()
		defer rev.mu.Unlock()
		if rev.inRouter != 0 || len(rev.waiters) != 0 {
			t.Errorf("with every request ended: %d in the router, %d waiting", rev.inRouter, len(rev.waiters))
		}
		for id, b := range rev.all {
			if b.inflight != 0 {
				t.Errorf("instance %s: %d in flight with every request ended", id, b.inflight)
			}
		}
	})
}
