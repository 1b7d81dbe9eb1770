package function

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/fake"
)

func newPool(t *testing.T, depth int) (*Pool, *fake.Engine) {
	t.Helper()
	eng := fake.New()
	image := eng.AddImage("registry.local/coligo/runtime-nodejs-20:latest", nil)
	p := NewPool(PoolConfig{Engine: eng, Depth: depth, Logger: slog.New(slog.DiscardHandler),
		Image:     func(rt string) (string, bool) { return image, rt == "nodejs-20" },
		Listening: func(context.Context, Warm) error { return nil }})
	t.Cleanup(p.Close)
	return p, eng
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 5*time.Second, what, cond)
}

func running(t *testing.T, eng *fake.Engine, project string) []engine.Instance {
	t.Helper()
	ins, err := eng.List(context.Background(), project, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

// TestPoolKeepsItsDepthAndHandsEachInstanceOnce: a wanted key's pool is
// filled to its depth and refilled behind each claim; no instance is
// handed out twice, and each holds its own init token.
func TestPoolKeepsItsDepthAndHandsEachInstanceOnce(t *testing.T) {
	p, eng := newPool(t, 2)
	k := Key{Project: "a", Runtime: "nodejs-20", MilliCPU: 1000, MemoryBytes: 4e9}
	p.Want([]Key{k})
	waitFor(t, "the pool filled", func() bool { return p.Warm(k) == 2 })
	seen, tokens := map[string]bool{}, map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			w, err := p.Claim(context.Background(), k)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[w.ID] || tokens[w.Token] || len(w.Token) < 32 {
				t.Errorf("instance %s (token %q) handed out twice, or a short token", w.ID, w.Token)
			}
			seen[w.ID], tokens[w.Token] = true, true
		})
	}
	wg.Wait()
	waitFor(t, "the pool refilled", func() bool { return p.Warm(k) == 2 })
	if n := len(running(t, eng, "a")); n != 12 {
		t.Errorf("%d instances of project a, want the 10 claimed and 2 warm", n)
	}
	for _, in := range running(t, eng, "a") {
		if in.Labels[LabelRuntime] != "nodejs-20" {
			t.Errorf("instance %s labels %v", in.ID, in.Labels)
		}
	}
}

// TestPoolPerProject: a project's warm instances live in its own network
// and are never another project's; keys no longer wanted are emptied.
func TestPoolPerProject(t *testing.T) {
	p, eng := newPool(t, 1)
	a := Key{Project: "a", Runtime: "nodejs-20", MilliCPU: 250, MemoryBytes: 1e9}
	b := Key{Project: "b", Runtime: "nodejs-20", MilliCPU: 250, MemoryBytes: 1e9}
	p.Want([]Key{a, b})
	waitFor(t, "both pools filled", func() bool { return p.Warm(a) == 1 && p.Warm(b) == 1 })
	w, err := p.Claim(context.Background(), b)
	if err != nil || w.Project != "b" {
		t.Fatalf("claim for b: %+v %v", w, err)
	}
	p.Want([]Key{b})
	waitFor(t, "a's pool emptied", func() bool { return len(running(t, eng, "a")) == 0 })
	if p.Warm(a) != 0 {
		t.Errorf("a keeps %d warm instances", p.Warm(a))
	}
}

// TestPoolColdWhenEmpty: with depth 0, or an empty pool, a claim starts an
// instance itself; a runtime the server does not run is an error, and a
// failure to start is the claim's.
func TestPoolColdWhenEmpty(t *testing.T) {
	p, eng := newPool(t, 0)
	k := Key{Project: "a", Runtime: "nodejs-20"}
	p.Want([]Key{k})
	if w, err := p.Claim(context.Background(), k); err != nil || w.State != engine.StateRunning {
		t.Fatalf("%+v %v", w, err)
	}
	if p.Warm(k) != 0 {
		t.Error("a pool of depth 0 keeps instances")
	}
	if _, err := p.Claim(context.Background(), Key{Project: "a", Runtime: "python-3.11"}); err == nil {
		t.Error("a claim of a runtime the server does not run succeeded")
	}
	eng.FailRun(func(engine.Spec) error { return errors.New("no room") })
	if _, err := p.Claim(context.Background(), k); err == nil {
		t.Error("a claim whose start failed succeeded")
	}
}

// TestPoolRemovesWhatDoesNotListen: an instance whose proxy never listens
// is removed, not handed out.
func TestPoolRemovesWhatDoesNotListen(t *testing.T) {
	eng := fake.New()
	image := eng.AddImage("registry.local/coligo/runtime-nodejs-20:latest", nil)
	p := NewPool(PoolConfig{Engine: eng, Depth: 1, Logger: slog.New(slog.DiscardHandler),
		Image:     func(string) (string, bool) { return image, true },
		Listening: func(context.Context, Warm) error { return errors.New("connection refused") }})
	defer p.Close()
	k := Key{Project: "a", Runtime: "nodejs-20"}
	if _, err := p.Claim(context.Background(), k); err == nil {
		t.Fatal("a claim of an instance that does not listen succeeded")
	}
	waitFor(t, "the instance removed", func() bool { return len(running(t, eng, "a")) == 0 })
}
