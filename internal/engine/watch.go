package engine

import (
	"context"
	"log/slog"
	"time"
)

// EventSource is what Watch needs of an engine.
type EventSource interface {
	Events(ctx context.Context) (<-chan Event, error)
}

// Watch follows src's exit events across the ends of its stream (a
// restarted containerd, a lost API server): when a subscription cannot be
// opened or ends, it opens a new one after a backoff (from 100 ms, doubling
// to 10 s). Every subscription but one opened at the first try starts with
// a zero Event, which tells the reader that exits may have been missed and
// it should look at what runs (List). The channel
// is closed once ctx ends; a reader that drains it knows the watch is over.
func Watch(ctx context.Context, src EventSource, log *slog.Logger) <-chan Event {
	out := make(chan Event, 256)
	go func() {
		defer close(out)
		backoff := 100 * time.Millisecond
		wait := time.NewTimer(0)
		defer wait.Stop()
		for first := true; ; first = false {
			select {
			case <-ctx.Done():
				return
			case <-wait.C:
			}
			events, err := src.Events(ctx)
			if err != nil {
				log.Warn("engine events unavailable; trying again", "in", backoff, "err", err)
				wait.Reset(backoff)
				backoff = min(2*backoff, 10*time.Second)
				continue
			}
			if !first {
				log.Info("engine events followed again")
				select {
				case out <- Event{}:
				case <-ctx.Done():
					return
				}
			}
			// A stream that ends at once (the engine is going away) keeps
			// the backoff growing; one that delivered or lasted resets it.
			since := time.Now()
		follow:
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-events:
					if !ok {
						break follow
					}
					backoff = 100 * time.Millisecond
					select {
					case out <- ev:
					case <-ctx.Done():
						return
					}
				}
			}
			if time.Since(since) > 10*time.Second {
				backoff = 100 * time.Millisecond
			}
			log.Warn("engine event stream ended; following it again", "in", backoff)
			wait.Reset(backoff)
			backoff = min(2*backoff, 10*time.Second)
		}
	}()
	return out
}
