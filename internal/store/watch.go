package store

import "sync"

// Op is what happened to a watched record.
type Op string

const (
	OpPut    Op = "put"
	OpDelete Op = "delete"
	// OpResync tells a watcher that events were dropped because it fell
	// behind; it should re-read what it cares about.
	OpResync Op = "resync"
)

// Event reports a committed change.
type Event struct {
	Kind    string
	Project string
	Name    string
	Op      Op
}

// hub fans events out to watchers without ever blocking a writer: a watcher
// that falls behind loses events and receives OpResync instead.
type hub struct {
	mu     sync.Mutex
	subs   map[*watcher]struct{}
	closed bool
}

type watcher struct {
	ch     chan Event
	behind bool
}

func newHub() *hub { return &hub{subs: map[*watcher]struct{}{}} }

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.subs {
		if w.behind {
			select {
			case w.ch <- Event{Op: OpResync}:
				w.behind = false
			default:
				continue
			}
		}
		select {
		case w.ch <- e:
		default:
			w.behind = true
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for w := range h.subs {
		close(w.ch)
		delete(h.subs, w)
	}
}

// Watch returns a channel of committed changes and a function that stops the
// watch. The channel is closed when the watch stops or the store closes.
func (db *DB) Watch() (<-chan Event, func()) {
	h := db.watch
	w := &watcher{ch: make(chan Event, 256)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(w.ch)
		return w.ch, func() {}
	}
	h.subs[w] = struct{}{}
	return w.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[w]; ok {
			delete(h.subs, w)
			close(w.ch)
		}
	}
}
