package router

import (
	"context"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"net/url"
	"slices"
	"sync"
	"time"
)

var (
	errQueueFull = errors.New("queue full")
	errGone      = errors.New("revision removed")
	errReroute   = errors.New("the revision no longer serves the host")
)

type backend struct {
	id, addr string
	url      *url.URL  // for the ReverseProxy (upgrades, h2c)
	up       *upstream // kept-alive connections of the fast path
	inflight int
}

type waiter struct {
	ch chan *backend // receives the backend it may use; closed when the revision goes
}

// revision is the serving state of one revision. Its fields are guarded by mu.
type revision struct {
	mu      sync.Mutex
	key     string
	cfg     RevisionConfig
	ready   []*backend          // instances that get new requests
	all     map[string]*backend // ready ones and draining ones with requests in flight
	waiters []*waiter
	depth   int // waiters at most

	// Load accounting: area is the integral of requests (in flight or
	// waiting) over time since `since`; `last` is when it was last updated.
	inRouter int
	area     float64
	last     time.Time
	since    time.Time

	// Its metric series, looked up once.
	requests prometheus.Counter
	latency  prometheus.Observer
	cold     prometheus.Counter
}

func (rev *revision) account(now time.Time) {
	rev.area += float64(rev.inRouter) * now.Sub(rev.last).Seconds()
	rev.last = now
}

// tryAcquire returns a backend with room for one more request when one
// has room and no request waits, else nil; and how the revision is served.
// An h2c revision's requests are not the core's: it acquires nothing then.
func (rev *revision) tryAcquire() (*backend, RevisionConfig) {
	rev.mu.Lock()
	defer rev.mu.Unlock()
	if rev.cfg.H2C || len(rev.waiters) > 0 {
		return nil, rev.cfg
	}
	b := rev.pick()
	if b == nil {
		return nil, rev.cfg
	}
	rev.account(time.Now())
	rev.inRouter++
	b.inflight++
	return b, rev.cfg
}

// acquire returns a backend with room for one more request, waiting for one
// (in a bounded queue) while there is none.
func (rev *revision) acquire(ctx context.Context, wake func()) (*backend, error) {
	rev.mu.Lock()
	rev.account(time.Now())
	rev.inRouter++
	if b := rev.pick(); b != nil && len(rev.waiters) == 0 {
		b.inflight++
		rev.mu.Unlock()
		return b, nil
	}
	if len(rev.waiters) >= rev.depth {
		rev.leave()
		rev.mu.Unlock()
		return nil, errQueueFull
	}
	w := &waiter{ch: make(chan *backend, 1)}
	rev.waiters = append(rev.waiters, w)
	noneReady := len(rev.ready) == 0
	rev.mu.Unlock()
	if noneReady {
		wake()
	}
	select {
	case b, ok := <-w.ch:
		if !ok || b == nil {
			rev.mu.Lock()
			rev.leave()
			rev.mu.Unlock()
			if ok {
				return nil, errReroute
			}
			return nil, errGone
		}
		return b, nil
	case <-ctx.Done():
		rev.mu.Lock()
		defer rev.mu.Unlock()
		if i := slices.Index(rev.waiters, w); i >= 0 {
			rev.waiters = slices.Delete(rev.waiters, i, i+1)
			rev.leave()
			return nil, ctx.Err()
		}
		// Handed a backend as the time ran out: give it back.
		if b, ok := <-w.ch; ok && b != nil {
			rev.drop(b)
		}
		rev.leave()
		return nil, ctx.Err()
	}
}

func (rev *revision) leave() {
	rev.account(time.Now())
	rev.inRouter--
}

// reroute sends the requests that wait for this revision back to look up
// their host again: it no longer serves one.
func (rev *revision) reroute() {
	rev.mu.Lock()
	defer rev.mu.Unlock()
	for _, w := range rev.waiters {
		w.ch <- nil
	}
	rev.waiters = nil
}

// release ends a request on b.
func (rev *revision) release(b *backend) {
	rev.mu.Lock()
	defer rev.mu.Unlock()
	rev.leave()
	rev.drop(b)
}

// drop gives back b's room for one request (rev.mu held): a backend no
// longer ready goes with its last request, and waiting requests get the
// room.
func (rev *revision) drop(b *backend) {
	b.inflight--
	if b.inflight == 0 && !slices.Contains(rev.ready, b) {
		if rev.all[b.id] == b { // not replaced by a backend of a new address
			delete(rev.all, b.id)
		}
		b.up.close()
	}
	rev.dispatch()
}

// pick returns the ready backend with the fewest requests in flight that
// has room for one more, or nil.
func (rev *revision) pick() *backend {
	var best *backend
	for _, b := range rev.ready {
		if b.inflight < rev.cfg.Concurrency && (best == nil || b.inflight < best.inflight) {
			best = b
		}
	}
	return best
}

// dispatch hands free capacity to waiting requests, first come first served.
func (rev *revision) dispatch() {
	for len(rev.waiters) > 0 {
		b := rev.pick()
		if b == nil {
			return
		}
		w := rev.waiters[0]
		rev.waiters = rev.waiters[1:]
		b.inflight++
		w.ch <- b
	}
}

func contains(bs []*backend, b *backend) bool { return slices.Contains(bs, b) }
