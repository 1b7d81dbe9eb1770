package project

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store/storetest"
)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestController(t *testing.T) {
	db := storetest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	done := make(chan struct{})
	go func() {
		New(Config{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Resync: 10 * time.Millisecond, Now: clk.Now}).Run(ctx)
		close(done)
	}()

	p, err := db.CreateProject(ctx, core.Project{ID: "p1", Name: "p1", Status: core.ProjectCreating}, func() string { return "s1" })
	if err != nil {
		t.Fatal(err)
	}
	status := func(id string) core.ProjectStatus {
		p, err := db.GetProject(ctx, id)
		if errors.Is(err, core.ErrNotFound) {
			return "gone"
		}
		return p.Status
	}
	waitFor(t, "active", func() bool { return status(p.ID) == core.ProjectActive })

	// Soft-deleted: kept until the retention ends, then shredded.
	db.Create(ctx, core.Ref{Project: p.ID, Kind: core.KindSecret, Name: "s"}, []byte("v"), 0)
	db.UpdateProject(ctx, p.ID, 0, func(p *core.Project) error {
		p.Status, p.HardDeleteAt = core.ProjectSoftDeleted, clk.Now().Add(time.Hour)
		return nil
	})
	time.Sleep(50 * time.Millisecond) // several resyncs
	if s := status(p.ID); s != core.ProjectSoftDeleted {
		t.Fatalf("before the retention ends: %s", s)
	}
	clk.Add(time.Hour)
	waitFor(t, "reaped", func() bool { return status(p.ID) == "gone" })
	// The project record goes before the compaction that ends a hard delete:
	// wait for that too rather than race it (a flake seen in CI).
	waitFor(t, "compacted", func() bool { pending, err := db.CompactPending(ctx); return err == nil && !pending })
	cancel()
	<-done
}
