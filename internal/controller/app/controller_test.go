package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/fake"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store"
	"github.com/coligo/coligo/internal/store/storetest"
)

// harness is an app controller on a real store, the fake engine and a
// real router. Instances pass their probes unless the test made their
// address fail (unready).
type harness struct {
	t      *testing.T
	db     *store.DB
	eng    *fake.Engine
	router *router.Router
	ctrl   *Controller

	mu      sync.Mutex
	unready map[string]bool // by instance address
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	db := storetest.Open(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &harness{t: t, db: db, eng: fake.New(), unready: map[string]bool{}}
	h.eng.AddImage("registry.test/app:1", nil)
	h.router = router.New(router.Config{Logger: log})
	cfg.Store, cfg.Engine, cfg.Router, cfg.Logger = db, h.eng, h.router, log
	cfg.Platform = core.Platform{Region: "local", Domain: "test"}
	if cfg.StableWindow == 0 {
		cfg.StableWindow, cfg.PanicWindow = 300*time.Millisecond, 100*time.Millisecond
	}
	cfg.Probe = func(_ context.Context, _ core.Probe, ip string, _ time.Duration) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.unready[ip] {
			return errors.New("refused")
		}
		return nil
	}
	h.ctrl = New(cfg)
	h.router.SetWake(h.ctrl.Wake)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		h.ctrl.Run(ctx)
		close(done)
	}()
	t.Cleanup(func() { cancel(); <-done })
	if _, err := db.CreateProject(context.Background(), core.Project{ID: "p", Name: "p", Subdomain: "sub", Status: core.ProjectActive}, func() string { return "sub" }); err != nil {
		t.Fatal(err)
	}
	return h
}

// put creates or replaces app name at generation gen.
func (h *harness) put(name string, gen int, change func(*core.AppSpec)) {
	h.t.Helper()
	spec := core.NewAppSpec()
	spec.ImageReference = "registry.test/app:1"
	spec.RunCommands = []string{"serve"} // runs until stopped
	spec.ScaleCPULimit, spec.ScaleMemoryLimit = "0.125", "0.25G"
	if change != nil {
		change(&spec)
	}
	b, _ := json.Marshal(core.App{ID: name, Name: name, Generation: gen, AppSpec: spec})
	ref := core.Ref{Project: "p", Kind: core.KindApp, Name: name}
	if gen == 1 {
		if _, err := h.db.Create(context.Background(), ref, b, 0); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	rec, err := h.db.Get(context.Background(), ref)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.db.Replace(context.Background(), ref, b, rec.Version); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) revision(name string) core.Revision {
	h.t.Helper()
	rec, err := h.db.Get(context.Background(), core.Ref{Project: "p", Kind: core.KindRevision, Name: name})
	if err != nil {
		return core.Revision{}
	}
	var r core.Revision
	json.Unmarshal(rec.Value, &r)
	return r
}

// running counts the revision's instances that run in the engine.
func (h *harness) running(rev string) int {
	ins, _ := h.eng.List(context.Background(), "p", map[string]string{LabelRevision: rev})
	n := 0
	for _, in := range ins {
		if in.State == engine.StateRunning {
			n++
		}
	}
	return n
}

func (h *harness) waitFor(what string, ok func() bool) {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within 10 s", what)
		}
	}
}

// TestScaleFromZeroAndBack: a new revision starts its initial instance and
// turns ready, scales to zero without requests after the stable window,
// and a request's wake-up starts an instance again.
func TestScaleFromZeroAndBack(t *testing.T) {
	h := newHarness(t, Config{})
	h.put("web", 1, nil)
	rev := core.RevisionName("web", 1)
	h.waitFor("the revision ready", func() bool { return h.revision(rev).Status == core.RevisionReady })
	h.waitFor("scaled to zero", func() bool { return h.running(rev) == 0 })
	starts := h.eng.Starts()
	h.ctrl.Wake(RevisionKey("p", rev))
	h.waitFor("woken", func() bool { return h.running(rev) == 1 })
	if h.eng.Starts() != starts+1 {
		t.Errorf("a wake-up started %d instances", h.eng.Starts()-starts)
	}
}

// TestMinScaleAndRevisionSwitch: min instances are kept; an update makes a
// new revision that takes the traffic once ready, and the old one drains
// to nothing.
func TestMinScaleAndRevisionSwitch(t *testing.T) {
	h := newHarness(t, Config{})
	h.put("web", 1, func(s *core.AppSpec) { s.ScaleMinInstances = 2 })
	one, two := core.RevisionName("web", 1), core.RevisionName("web", 2)
	h.waitFor("two instances of the first revision", func() bool { return h.running(one) == 2 })
	h.put("web", 2, func(s *core.AppSpec) { s.ScaleMinInstances = 2 })
	h.waitFor("the second revision ready with two", func() bool {
		return h.revision(two).Status == core.RevisionReady && h.running(two) == 2
	})
	h.waitFor("the first revision drained", func() bool { return h.running(one) == 0 })
	// Desired and ready instances per revision are in the metrics.
	gauge := func(rev, state string) float64 {
		return testutil.ToFloat64(h.ctrl.instances.WithLabelValues("p", rev, state))
	}
	h.waitFor("the metrics of both revisions", func() bool {
		return gauge(two, "desired") == 2 && gauge(two, "ready") == 2 && gauge(one, "desired") == 0
	})
}

// TestExitBeforeReady: a revision whose instances exit before they are
// ready fails with the exit code in its reason.
func TestExitBeforeReady(t *testing.T) {
	h := newHarness(t, Config{})
	h.mu.Lock()
	h.unready["10.64.0.2"] = true
	h.unready["10.64.0.3"] = true
	h.mu.Unlock()
	h.put("web", 1, func(s *core.AppSpec) { s.RunCommands = []string{"sh", "-c", "exit 1"} })
	rev := core.RevisionName("web", 1)
	h.waitFor("the revision failed", func() bool { return h.revision(rev).Status == core.RevisionFailed })
	if r := h.revision(rev); r.Reason != core.ReasonContainerExit(1) {
		t.Errorf("reason %q, want %q", r.Reason, core.ReasonContainerExit(1))
	}
}

// TestQuotaWait: a revision that finds its project's quota taken waits
// with reason deploying_waiting_for_resources and starts when room frees.
func TestQuotaWait(t *testing.T) {
	ledger := quota.NewLedger(quota.Amount{Instances: 2, MilliCPU: 1000, Memory: 1e12, Ephemeral: 1e12})
	ledger.Set("p", "jobrun/big", quota.Amount{Instances: 2, MilliCPU: 250})
	h := newHarness(t, Config{Quota: ledger})
	h.put("web", 1, nil)
	rev := core.RevisionName("web", 1)
	h.waitFor("waiting for resources", func() bool { return h.revision(rev).Reason == core.ReasonDeployingWaitingForResources })
	if h.running(rev) != 0 {
		t.Error("an instance started beyond the quota")
	}
	if msg := h.revision(rev).Message; msg != "the project's quota of 2 active instances is reached" {
		t.Errorf("message %q", msg)
	}
	ledger.Set("p", "jobrun/big", quota.Amount{Instances: 1, MilliCPU: 125})
	h.waitFor("ready once room frees", func() bool { return h.revision(rev).Status == core.RevisionReady })
	if used := ledger.Used("p"); used.Instances > 2 {
		t.Errorf("the project holds %+v", used)
	}
}

// TestMissedExit: an exit whose event is lost (the engine's event stream
// ended meanwhile) is still seen, and the instance replaced.
func TestMissedExit(t *testing.T) {
	h := newHarness(t, Config{})
	h.put("web", 1, func(s *core.AppSpec) { s.ScaleMinInstances = 1 })
	rev := core.RevisionName("web", 1)
	h.waitFor("one instance", func() bool { return h.revision(rev).Status == core.RevisionReady && h.running(rev) == 1 })
	ins, _ := h.eng.List(context.Background(), "p", map[string]string{LabelRevision: rev})
	starts := h.eng.Starts()
	h.eng.Restart() // the stream ends; the exit below happens before a new one opens
	for _, in := range ins {
		if in.State == engine.StateRunning {
			h.eng.Exit("p", in.ID, 1, false)
		}
	}
	h.waitFor("a replacement", func() bool { return h.eng.Starts() > starts && h.running(rev) == 1 })
}
