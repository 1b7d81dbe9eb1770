package function

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/fake"
	"github.com/coligo/coligo/internal/function/bundle"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store"
	"github.com/coligo/coligo/internal/store/storetest"
)

// fakeRouter records what the controller tells the router, and gives it
// the load a test sets.
type fakeRouter struct {
	mu       sync.Mutex
	routes   map[string]router.Route
	revs     map[string]router.RevisionConfig
	ready    map[string][]router.Endpoint
	load     map[string]float64
	waiting  map[string]bool // a request waits for the revision
	inFlight map[string]int
}

func (r *fakeRouter) SetRoutesOf(owner string, routes map[string]router.Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routes = maps.Clone(routes)
}

func (r *fakeRouter) SetRevision(key string, c router.RevisionConfig, ready []router.Endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revs[key], r.ready[key] = c, ready
}

func (r *fakeRouter) RemoveRevision(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.revs, key)
	delete(r.ready, key)
}

func (r *fakeRouter) InFlight(key, id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.inFlight[id]
}

func (r *fakeRouter) Stats(owner string) map[string]router.Stat {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]router.Stat{}
	for k := range r.revs {
		out[k] = router.Stat{Concurrency: r.load[k], Waiting: r.waiting[k]}
	}
	return out
}

func (r *fakeRouter) readyOf(key string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ready[key])
}

// harness is a function controller on a real store, the fake engine, a
// pool of depth 1 and a router that records; instances take code as
// inject says (by default, any code).
type harness struct {
	t      *testing.T
	db     *store.DB
	eng    *fake.Engine
	router *fakeRouter
	ctrl   *Controller
	p      core.Project

	mu       sync.Mutex
	given    map[string]Code // by instance
	badCode  bool
	injected int

	fetch func(ctx context.Context, ref string, auth *engine.RegistryAuth) (bundle.Fetched, error) // set before the controller runs
}

func newHarness(t *testing.T, opts ...func(*harness)) *harness {
	t.Helper()
	h := &harness{t: t, db: storetest.Open(t), eng: fake.New(), given: map[string]Code{},
		router: &fakeRouter{revs: map[string]router.RevisionConfig{}, ready: map[string][]router.Endpoint{}, load: map[string]float64{}, waiting: map[string]bool{}, inFlight: map[string]int{}}}
	for _, o := range opts {
		o(h)
	}
	log := slog.New(slog.DiscardHandler)
	images := map[string]string{
		"nodejs-20":   h.eng.AddImage("registry.local/coligo/runtime-nodejs-20:latest", nil),
		"python-3.11": h.eng.AddImage("registry.local/coligo/runtime-python-3.11:latest", nil),
	}
	pool := NewPool(PoolConfig{Engine: h.eng, Depth: 1, Logger: log,
		Image:     func(rt string) (string, bool) { ref, ok := images[rt]; return ref, ok },
		Listening: func(context.Context, Warm) error { return nil }})
	t.Cleanup(pool.Close)
	h.ctrl = New(Config{Store: h.db, Engine: h.eng, Router: h.router, Pool: pool, Logger: log,
		Platform: core.Platform{Region: "local", Domain: "test"},
		Family: func(rt string) (string, bool) {
			f, ok := map[string]string{"nodejs-20": "nodejs", "python-3.11": "python"}[rt]
			return f, ok
		},
		Tick:         20 * time.Millisecond,
		StableWindow: 300 * time.Millisecond, PanicWindow: 100 * time.Millisecond,
		Fetch: h.fetch, Retry: 20 * time.Millisecond,
		Inject: func(_ context.Context, w Warm, c Code) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if _, ok := h.given[w.ID]; ok {
				t.Errorf("instance %s given code twice", w.ID)
			}
			if h.badCode {
				return ErrCodeInvalid
			}
			h.given[w.ID] = c
			h.injected++
			return nil
		}})
	p, err := h.db.CreateProject(context.Background(), core.Project{ID: "p", Name: "p", Subdomain: "sub", Status: core.ProjectActive}, func() string { return "sub" })
	if err != nil {
		t.Fatal(err)
	}
	h.p = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.ctrl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return h
}

// put creates or replaces function name at generation gen, deploying.
func (h *harness) put(name string, gen int, change func(*core.FunctionSpec)) {
	h.t.Helper()
	spec := core.NewFunctionSpec()
	spec.Runtime = "nodejs-20"
	spec.CodeReference = "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("function main() { return {body: 'v"+string(rune('0'+gen))+"'} }"))
	spec.ScaleDownDelay = 0
	if change != nil {
		change(&spec)
	}
	b, _ := json.Marshal(core.Function{Name: name, Spec: spec, Generation: gen, Status: core.FunctionDeploying, Reason: core.FunctionDeploying})
	ref := core.Ref{Project: h.p.ID, Kind: core.KindFunction, Name: name}
	// The controller writes the record's status meanwhile: a replace that
	// meets a newer version reads again, as a client with If-Match does.
	for rec, err := h.db.Get(context.Background(), ref); err == nil; rec, err = h.db.Get(context.Background(), ref) {
		_, err := h.db.Replace(context.Background(), ref, b, rec.Version)
		if err == nil {
			return
		}
		if !errors.Is(err, core.ErrConflict) {
			h.t.Fatal(err)
		}
	}
	if _, err := h.db.Create(context.Background(), ref, b, 0); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) function(name string) core.Function {
	h.t.Helper()
	rec, err := h.db.Get(context.Background(), core.Ref{Project: h.p.ID, Kind: core.KindFunction, Name: name})
	if err != nil {
		h.t.Fatal(err)
	}
	var f core.Function
	json.Unmarshal(rec.Value, &f)
	return f
}

// instances are the running instances of the project that ran a
// function's code (warm ones of the pool left out).
func (h *harness) instances() []engine.Instance {
	h.t.Helper()
	ins, err := h.eng.List(context.Background(), h.p.ID, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []engine.Instance
	for _, in := range ins {
		if _, ok := h.given[in.ID]; ok {
			out = append(out, in)
		}
	}
	return out
}

// TestNewFunctionIsTriedThenScalesToZero: a new function gets its host,
// one instance that takes its code and environment, status ready; with no
// request it goes back to zero, and its instance is removed, not pooled.
func TestNewFunctionIsTriedThenScalesToZero(t *testing.T) {
	h := newHarness(t)
	if _, err := h.db.Create(context.Background(), core.Ref{Project: "p", Kind: core.KindSecret, Name: "creds"},
		mustJSON(core.Secret{Name: "creds", Format: core.FormatGeneric, Data: map[string]string{"TOKEN": "s3cret"}}), 0); err != nil {
		t.Fatal(err)
	}
	h.put("hello", 1, func(s *core.FunctionSpec) {
		s.RunEnvVariables = []core.EnvVar{{Type: core.EnvLiteral, Name: "GREETING", Value: "hi"}, {Type: core.EnvSecretKey, Name: "TOKEN", Reference: "creds", Key: "TOKEN"}}
		s.ScaleConcurrency = 7
	})
	key := revisionKey("p", "hello", 1)
	waitFor(t, "the function ready", func() bool { return h.function("hello").Status == core.FunctionReady })
	waitFor(t, "its instance published", func() bool { return h.router.readyOf(key) == 1 })
	h.router.mu.Lock()
	rt, cfg := h.router.routes["hello.sub.test"], h.router.revs[key]
	h.router.mu.Unlock()
	if rt.Revision != key || !rt.Public || rt.Project != "p" || cfg.Owner != owner || cfg.Concurrency != 7 || cfg.Timeout != 60*time.Second {
		t.Errorf("route %+v, revision %+v", rt, cfg)
	}
	h.mu.Lock()
	var code Code
	for _, c := range h.given {
		code = c
	}
	h.mu.Unlock()
	if string(code.Source) != "function main() { return {body: 'v1'} }" || code.Main != "main" || code.Env["GREETING"] != "hi" || code.Env["TOKEN"] != "s3cret" ||
		code.Env["CE_FUNCTION"] != "hello" || code.Env["CE_PROJECT_ID"] != "p" || code.Env["CE_SUBDOMAIN"] != "sub" || code.Env["CE_ALLOW_CONCURRENT"] != "true" {
		t.Errorf("code given: %+v", code)
	}
	waitFor(t, "scaled to zero", func() bool { return len(h.instances()) == 0 && h.router.readyOf(key) == 0 })
}

// TestWakeLoadAndUpdate: a request waiting wakes the function; load
// scales it out (one request per Python instance whatever
// scale_concurrency says); a new generation replaces every instance of
// the old one, which is never reused.
func TestWakeLoadAndUpdate(t *testing.T) {
	h := newHarness(t)
	h.put("py", 1, func(s *core.FunctionSpec) { s.Runtime, s.ScaleConcurrency, s.ScaleDownDelay = "python-3.11", 10, 600 })
	key := revisionKey("p", "py", 1)
	waitFor(t, "ready", func() bool { return h.function("py").Status == core.FunctionReady && h.router.readyOf(key) == 1 })
	h.router.mu.Lock()
	h.router.load[key] = 3
	concurrency := h.router.revs[key].Concurrency
	h.router.mu.Unlock()
	if concurrency != 1 {
		t.Errorf("a Python function's instance takes %d requests at once, want 1", concurrency)
	}
	waitFor(t, "three instances for three requests", func() bool { return h.router.readyOf(key) == 3 })
	old := h.instances()
	h.put("py", 2, func(s *core.FunctionSpec) { s.Runtime, s.ScaleDownDelay = "python-3.11", 0 })
	key2 := revisionKey("p", "py", 2)
	waitFor(t, "generation 2 ready", func() bool { return h.function("py").Status == core.FunctionReady && h.router.readyOf(key2) >= 1 })
	waitFor(t, "generation 1's instances removed", func() bool {
		live := map[string]bool{}
		for _, in := range h.instances() {
			live[in.ID] = true
		}
		for _, in := range old {
			if live[in.ID] {
				return false
			}
		}
		return true
	})
	h.router.mu.Lock()
	_, stale := h.router.revs[key]
	route := h.router.routes["py.sub.test"]
	h.router.mu.Unlock()
	if stale || route.Revision != key2 {
		t.Errorf("after the update: generation 1 still served %v, route %+v", stale, route)
	}
	waitFor(t, "generation 2 at zero without load", func() bool { return h.router.readyOf(key2) == 0 })
	before := h.injectedCount()
	h.router.mu.Lock()
	h.router.waiting[key2] = true // as the router says while the request waits
	h.router.mu.Unlock()
	h.ctrl.Wake(key2)
	waitFor(t, "woken by a waiting request", func() bool { return h.router.readyOf(key2) >= 1 && h.injectedCount() > before })
}

// TestCodeThatDoesNotLoadFails: a function whose code its runtime refuses
// fails with reason code_invalid and is not tried again.
func TestCodeThatDoesNotLoadFails(t *testing.T) {
	h := newHarness(t)
	h.mu.Lock()
	h.badCode = true
	h.mu.Unlock()
	h.put("broken", 1, nil)
	waitFor(t, "failed", func() bool {
		f := h.function("broken")
		return f.Status == core.FunctionFailed && f.Reason == ReasonCodeInvalid
	})
	time.Sleep(200 * time.Millisecond)
	h.ctrl.Wake(revisionKey("p", "broken", 1))
	time.Sleep(200 * time.Millisecond)
	if h.router.readyOf(revisionKey("p", "broken", 1)) != 0 {
		t.Error("a failed function has instances")
	}
}

// TestDeletedFunctionAndProject: a deleted function loses its host and its
// instances; so do the functions of a project no longer active.
func TestDeletedFunctionAndProject(t *testing.T) {
	h := newHarness(t)
	h.put("a", 1, func(s *core.FunctionSpec) { s.ScaleDownDelay = 600 })
	h.put("b", 1, func(s *core.FunctionSpec) { s.ScaleDownDelay = 600 })
	waitFor(t, "both ready", func() bool {
		return h.router.readyOf(revisionKey("p", "a", 1)) == 1 && h.router.readyOf(revisionKey("p", "b", 1)) == 1
	})
	if err := h.db.Delete(context.Background(), core.Ref{Project: "p", Kind: core.KindFunction, Name: "a"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a gone", func() bool {
		h.router.mu.Lock()
		defer h.router.mu.Unlock()
		_, routed := h.router.routes["a.sub.test"]
		return !routed && h.router.revs[revisionKey("p", "a", 1)].Owner == ""
	})
	if _, err := h.db.UpdateProject(context.Background(), "p", 0, func(p *core.Project) error { p.Status = core.ProjectSoftDeleted; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b gone with its project", func() bool { return len(h.instances()) == 0 })
}

func (h *harness) injectedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.injected
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// TestUpdateLetsInFlightInvocationsFinish: an update moves the host to the
// new generation at once, but an instance of the old one that is still
// serving an invocation stays until it is done.
func TestUpdateLetsInFlightInvocationsFinish(t *testing.T) {
	h := newHarness(t)
	h.put("f", 1, func(s *core.FunctionSpec) { s.ScaleDownDelay = 600 })
	key1 := revisionKey("p", "f", 1)
	waitFor(t, "ready", func() bool { return h.router.readyOf(key1) == 1 })
	old := h.instances()[0]
	h.router.mu.Lock()
	h.router.inFlight[old.ID] = 1
	h.router.mu.Unlock()
	h.put("f", 2, func(s *core.FunctionSpec) { s.ScaleDownDelay = 600 })
	key2 := revisionKey("p", "f", 2)
	waitFor(t, "generation 2 ready", func() bool { return h.router.readyOf(key2) == 1 })
	h.router.mu.Lock()
	route := h.router.routes["f.sub.test"].Revision
	h.router.mu.Unlock()
	if route != key2 {
		t.Errorf("after the update the host routes to %s", route)
	}
	waitFor(t, "generation 1 gets no new invocations", func() bool { return h.router.readyOf(key1) == 0 })
	time.Sleep(300 * time.Millisecond)
	alive := func() bool {
		for _, in := range h.instances() {
			if in.ID == old.ID {
				return true
			}
		}
		return false
	}
	if !alive() {
		t.Fatal("the old instance went while an invocation was in flight on it")
	}
	h.router.mu.Lock()
	h.router.inFlight[old.ID] = 0
	h.router.mu.Unlock()
	waitFor(t, "the old instance gone once idle", func() bool { return !alive() })
}

// TestEndedInstanceLogsAreKept: an instance's last lines outlive it (in
// memory) while its function is served, and go with the function.
func TestEndedInstanceLogsAreKept(t *testing.T) {
	h := newHarness(t)
	h.put("logged", 1, nil)
	waitFor(t, "ready", func() bool { return h.function("logged").Status == core.FunctionReady })
	ids := h.ctrl.Instances("p", "logged")
	if len(ids) != 1 || len(h.ctrl.Instances("p", "other")) != 0 {
		t.Fatalf("instances %v", ids)
	}
	waitFor(t, "scaled to zero", func() bool { return len(h.ctrl.Instances("p", "logged")) == 0 })
	waitFor(t, "its logs kept", func() bool { return bytes.Contains(h.ctrl.EndedLogs("p", "logged"), []byte("==> "+ids[0]+" (ended ")) })
	if len(h.ctrl.EndedLogs("q", "logged")) != 0 {
		t.Error("another project sees the logs")
	}
	if err := h.db.Delete(context.Background(), core.Ref{Project: "p", Kind: core.KindFunction, Name: "logged"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "its logs gone with it", func() bool { return len(h.ctrl.EndedLogs("p", "logged")) == 0 })
}
