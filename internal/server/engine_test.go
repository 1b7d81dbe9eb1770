package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/config"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/fake"
)

type closingFake struct{ *fake.Engine }

func (closingFake) Close() error { return nil }

func TestEngineLinkConnectsInTheBackground(t *testing.T) {
	l := newEngineLink(config.Default(), slog.New(slog.DiscardHandler))
	var tries atomic.Int32
	eng := closingFake{fake.New()}
	l.open = func() (serverEngine, error) {
		if tries.Add(1) < 3 {
			return nil, errors.New("containerd is not at /nowhere")
		}
		return eng, nil
	}
	// Before it connects, what needs the engine says it is not there.
	if err := l.Purge(context.Background(), "p"); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Purge before connecting: %v, want unavailable", err)
	}
	if err := l.Logs(context.Background(), "p", "i", io.Discard, engine.LogOptions{}); !errors.Is(err, core.ErrUnavailable) {
		t.Fatalf("Logs before connecting: %v, want unavailable", err)
	}
	if l.status() == nil || l.Instances("p", "a") != nil {
		t.Fatal("not connected, but the link says it is")
	}
	if got := l.connect(context.Background()); got != eng || tries.Load() != 3 {
		t.Fatalf("connect = %v after %d tries, want the engine after 3", got, tries.Load())
	}
	if err := l.status(); err != nil {
		t.Fatalf("status after connecting: %v", err)
	}
	if err := l.Purge(context.Background(), "p"); err != nil {
		t.Fatalf("Purge after connecting: %v", err)
	}
	if l.waitSynced(10 * time.Millisecond) {
		t.Fatal("synced before any app controller was set")
	}
}

func TestEngineLinkGivesUpWithItsContext(t *testing.T) {
	l := newEngineLink(config.Default(), slog.New(slog.DiscardHandler))
	l.open = func() (serverEngine, error) { return nil, errors.New("down") }
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if eng := l.connect(ctx); eng != nil {
		t.Fatalf("connect = %v, want nil when its context ends", eng)
	}
	if err := l.status(); err == nil || err.Error() != "down" {
		t.Fatalf("status = %v, want the last error", err)
	}
}
