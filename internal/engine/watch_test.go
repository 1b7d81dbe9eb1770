package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// flaky hands out subscriptions that a test ends, and fails to open some.
type flaky struct {
	mu    sync.Mutex
	fails int // opens that fail before one succeeds
	subs  []chan Event
}

func (f *flaky) Events(ctx context.Context) (<-chan Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return nil, errors.New("connection refused")
	}
	ch := make(chan Event, 1)
	f.subs = append(f.subs, ch)
	return ch, nil
}

func (f *flaky) last() chan Event {
	for {
		f.mu.Lock()
		n := len(f.subs)
		var ch chan Event
		if n > 0 {
			ch = f.subs[n-1]
		}
		f.mu.Unlock()
		if ch != nil {
			return ch
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	f := &flaky{fails: 2}
	ctx, cancel := context.WithCancel(context.Background())
	out := Watch(ctx, f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	next := func() Event {
		t.Helper()
		select {
		case ev := <-out:
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return Event{}
	}
	// Two failed opens, then a stream; exits may have been missed meanwhile.
	if ev := next(); ev != (Event{}) {
		t.Fatalf("got %+v after failed opens, want the zero event", ev)
	}
	first := f.last()
	first <- Event{ID: "a"}
	if ev := next(); ev.ID != "a" {
		t.Fatalf("got %+v, want a's exit", ev)
	}
	// The stream ends: a new one is opened, and a zero event says exits may
	// have been missed.
	close(first)
	if ev := next(); ev != (Event{}) {
		t.Fatalf("got %+v after the stream ended, want the zero event", ev)
	}
	second := f.last()
	if second == first {
		t.Fatal("no new subscription")
	}
	second <- Event{ID: "b"}
	if ev := next(); ev.ID != "b" {
		t.Fatalf("got %+v, want b's exit", ev)
	}
	cancel()
	for range out { // closed once the watch is over
	}
}
