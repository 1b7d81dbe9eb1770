package function

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/autoscaler"
	"github.com/coligo/coligo/internal/controller/runenv"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/function/bundle"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store"
)

// ReasonCodeInvalid is a function's failed reason when its code does not
// load or lacks its entry (coligo's; Code Engine names none).
const ReasonCodeInvalid = "code_invalid"

// owner is the function controller's name in the router.
const owner = "function"

// revisionMark sets a function's revision keys apart from apps' in the
// router: <project>/function:<name>:<generation>.
const revisionMark = "/function:"

// IsRevision reports whether a router revision key is a function's.
func IsRevision(key string) bool { return strings.Contains(key, revisionMark) }

// Store is what the controller needs of the store.
type Store interface {
	ListProjects(ctx context.Context) ([]core.Project, error)
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
	Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error)
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
	Watch() (<-chan store.Event, func())
}

// Router is what the controller needs of the router.
type Router interface {
	SetRoutesOf(owner string, routes map[string]router.Route)
	SetRevision(key string, c router.RevisionConfig, ready []router.Endpoint)
	RemoveRevision(key string)
	InFlight(key, id string) int
	Stats(owner string) map[string]router.Stat
}

// Config configures a Controller.
type Config struct {
	Store    Store
	Engine   engine.Engine
	Router   Router
	Pool     *Pool
	Logger   *slog.Logger
	Platform core.Platform
	// Family returns a runtime id's family (nodejs, python), and false
	// for a runtime this server does not run.
	Family func(runtime string) (string, bool)
	// Inject gives an instance its code; default Inject over HTTP.
	Inject func(ctx context.Context, w Warm, c Code) error
	// Fetch pulls a code bundle with the project's credentials (nil:
	// none); a registry's refusal is an *engine.PullError. Nil: code
	// bundles fail with no_code_bundle.
	Fetch        func(ctx context.Context, ref string, auth *engine.RegistryAuth) (bundle.Fetched, error)
	Retry        time.Duration // the first wait before a bundle is fetched again after a failure that may pass; default 1s
	Tick         time.Duration // how often functions scale; default 500ms
	Resync       time.Duration // how often every function is read again under the store's events; default 30s
	StableWindow time.Duration // default 60s
	PanicWindow  time.Duration // default 6s
}

// Controller serves the functions of active projects: it publishes their
// hosts to the router, keeps pools warm for the runtimes and sizes they
// use, gives claimed instances a function's code when requests come, and
// scales each function between zero and what its requests need.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	woken chan string

	mu    sync.Mutex
	fns   map[string]*served // by revision key
	ended map[string][]byte  // the last lines of ended instances, by <project>/<function>
}

// served is the serving state of one function generation.
type served struct {
	project core.Project
	fn      core.Function
	code    Code
	key     string
	ready   []Warm
	start   int // instances being started
	since   time.Time
	samples []autoscaler.Sample
	scaler  autoscaler.State
	failed  string // why its instances cannot start
	loading bool   // its code bundle is being fetched
}

// New returns a controller.
func New(cfg Config) *Controller {
	if cfg.Tick <= 0 {
		cfg.Tick = 500 * time.Millisecond
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.Inject == nil {
		client := &http.Client{Timeout: 30 * time.Second}
		cfg.Inject = func(ctx context.Context, w Warm, c Code) error { return Inject(ctx, client, w, c) }
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "function-controller"), woken: make(chan string, 64), fns: map[string]*served{}, ended: map[string][]byte{}}
}

// Wake is told of a request that waits for a function with no instance
// ready (the router's activator).
func (c *Controller) Wake(key string) {
	select {
	case c.woken <- key:
	default:
	}
}

// Run serves functions until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	events, stop := c.cfg.Store.Watch()
	defer stop()
	tick := time.NewTicker(c.cfg.Tick)
	defer tick.Stop()
	resync := time.NewTicker(c.cfg.Resync)
	defer resync.Stop()
	c.sync(ctx)
	for {
		select {
		case <-ctx.Done():
			c.shutdown()
			return
		case ev := <-events:
			if ev.Kind == core.KindFunction || ev.Kind == core.KindProject || ev.Op == store.OpResync {
				c.sync(ctx)
			}
		case key := <-c.woken:
			c.mu.Lock()
			s := c.fns[key]
			c.mu.Unlock()
			if s != nil {
				c.scale(ctx, s, time.Now(), router.Stat{Waiting: true}, false)
			}
		case <-tick.C:
			c.scaleAll(ctx)
		case <-resync.C:
			c.sync(ctx)
		}
	}
}

// revisionKey is a function generation's key in the router.
func revisionKey(project, name string, gen int) string {
	return project + revisionMark + name + ":" + strconv.Itoa(gen)
}

// sync reads the functions of active projects and serves them.
func (c *Controller) sync(ctx context.Context) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Warn("list projects", "err", err)
		return
	}
	want := map[string]*served{}
	routes := map[string]router.Route{}
	keys := map[Key]bool{}
	for _, p := range projects {
		if p.Status != core.ProjectActive {
			continue
		}
		recs, _, err := c.cfg.Store.List(ctx, p.ID, core.KindFunction, "", core.MaxFunctionsPerProject+1)
		if err != nil {
			c.log.Warn("list functions", "project", p.ID, "err", err)
			return
		}
		for _, rec := range recs {
			var f core.Function
			if err := json.Unmarshal(rec.Value, &f); err != nil {
				c.log.Warn("read function", "project", p.ID, "function", rec.Name, "err", err)
				continue
			}
			key := revisionKey(p.ID, f.Name, f.Generation)
			want[key] = &served{project: p, fn: f, key: key}
			routes[core.AppHost(f.Name, p, c.cfg.Platform.Domain)] = router.Route{Revision: key,
				Public: f.Spec.ManagedDomainMappings == core.VisibilityPublic, Project: p.ID}
			keys[c.poolKey(p.ID, f.Spec)] = true
		}
	}
	c.mu.Lock()
	var gone []*served
	for key, s := range c.fns {
		if w := want[key]; w == nil {
			gone = append(gone, s)
			delete(c.fns, key)
		} else {
			// A generation's spec does not change; its status may.
			s.fn.Status, s.fn.Reason = w.fn.Status, w.fn.Reason
		}
	}
	var fresh []*served
	for key, w := range want {
		if c.fns[key] == nil {
			w.since = time.Now()
			c.fns[key] = w
			fresh = append(fresh, w)
		}
	}
	c.forgetLogs()
	c.mu.Unlock()
	list := make([]Key, 0, len(keys))
	for k := range keys {
		list = append(list, k)
	}
	c.cfg.Pool.Want(list)
	for _, s := range fresh {
		c.prepare(ctx, s)
	}
	c.cfg.Router.SetRoutesOf(owner, routes)
	for _, s := range gone {
		go c.retire(s)
	}
	c.scaleAll(ctx)
}

// scaleAll scales every function served on the router's statistics.
func (c *Controller) scaleAll(ctx context.Context) {
	c.mu.Lock()
	all := slices.Collect(maps.Values(c.fns))
	c.mu.Unlock()
	now := time.Now()
	stats := c.cfg.Router.Stats(owner)
	for _, s := range all {
		c.scale(ctx, s, now, stats[s.key], true)
	}
}

// poolKey is the pool a function's instances come from.
func (c *Controller) poolKey(project string, spec core.FunctionSpec) Key {
	cpu, _ := core.ParseCPU(spec.ScaleCPULimit)
	mem, _ := core.ParseBytes("scale_memory_limit", spec.ScaleMemoryLimit)
	return Key{Project: project, Runtime: spec.Runtime, MilliCPU: cpu, MemoryBytes: mem}
}

// concurrency is how many requests one instance of a function takes at
// once: scale_concurrency on Node.js, one elsewhere (§10).
func (c *Controller) concurrency(spec core.FunctionSpec) int {
	if family, _ := c.cfg.Family(spec.Runtime); family == "nodejs" {
		return spec.ScaleConcurrency
	}
	return 1
}

// prepare readies a new generation for serving: its code and environment,
// read once; and tells the router how it is served (with no instance yet).
func (c *Controller) prepare(ctx context.Context, s *served) {
	s.failed = ""
	if _, ok := c.cfg.Family(s.fn.Spec.Runtime); !ok {
		s.failed = core.ReasonFunctionUnknown
	}
	code, err := core.ParseCodeReference(s.fn.Spec.CodeReference)
	if err != nil {
		s.failed = ReasonCodeInvalid
	}
	if _, failure := c.env(ctx, s); failure != nil && !failure.Wait && s.failed == "" {
		s.failed = failure.Reason
	}
	s.code = Code{Source: code.Inline, Main: s.fn.Spec.CodeMain}
	s.loading = code.Bundle != "" && s.failed == ""
	c.cfg.Router.SetRevision(s.key, c.revisionConfig(s), nil)
	if s.failed != "" {
		c.setStatus(ctx, s, core.FunctionFailed, s.failed)
	}
	if s.loading {
		go c.fetch(ctx, s, code.Bundle)
	}
}

// fetch pulls a generation's code bundle (pinned once fetched), trying
// again while the registry cannot be reached; it then wakes the
// generation, or fails it with the reason.
func (c *Controller) fetch(ctx context.Context, s *served, ref string) {
	if s.fn.CodePinned != "" {
		ref = s.fn.CodePinned
	}
	wait := c.cfg.Retry
	if wait <= 0 {
		wait = time.Second
	}
	for {
		b, reason, err := c.fetchOnce(ctx, s, ref)
		c.mu.Lock()
		live := c.fns[s.key] == s
		if err == nil {
			s.code.Files, s.loading = b.Files, false
		}
		failedBefore := s.fn.Status == core.FunctionFailed
		c.mu.Unlock()
		switch {
		case !live || ctx.Err() != nil:
			return
		case err == nil:
			if ref != b.Pinned {
				c.update(ctx, s, func(f *core.Function) bool { f.CodePinned = b.Pinned; return true })
			}
			if failedBefore {
				c.setStatus(ctx, s, core.FunctionDeploying, core.FunctionDeploying)
			}
			c.Wake(s.key)
			return
		}
		c.log.Warn("fetch a function's code bundle", "function", s.fn.Name, "project", s.project.ID, "reason", reason, "err", err)
		c.setStatus(ctx, s, core.FunctionFailed, reason)
		if reason != engine.PullUnreachable && reason != engine.PullFailed {
			c.mu.Lock()
			s.failed, s.loading = reason, false
			c.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// fetchOnce pulls a code bundle with the function's code_secret; a
// failure comes with its reason: no_code_bundle for one the registry does
// not have, code_invalid for one past the limits, else the reason of an
// image pull.
func (c *Controller) fetchOnce(ctx context.Context, s *served, ref string) (bundle.Fetched, string, error) {
	if c.cfg.Fetch == nil {
		return bundle.Fetched{}, core.ReasonNoCodeBundle, errors.New("this server fetches no code bundles")
	}
	auth, failure := runenv.PullAuth(ctx, c.cfg.Store, s.project.ID, s.fn.Spec.CodeSecret)
	if failure != nil {
		return bundle.Fetched{}, failure.Reason, fmt.Errorf("code_secret %s: %s", s.fn.Spec.CodeSecret, failure.Reason)
	}
	b, err := c.cfg.Fetch(ctx, ref, auth)
	var pe *engine.PullError
	switch {
	case err == nil:
		return b, "", nil
	case errors.Is(err, bundle.ErrInvalid):
		return b, ReasonCodeInvalid, err
	case errors.As(err, &pe) && pe.Reason == engine.PullNotFound:
		return b, core.ReasonNoCodeBundle, err
	case errors.As(err, &pe):
		return b, pe.Reason, err
	}
	return b, engine.PullFailed, err
}

// env is the environment a function's code sees: Code Engine's computed
// variables, then the function's own (secrets and config maps resolved).
func (c *Controller) env(ctx context.Context, s *served) (map[string]string, *runenv.Failure) {
	out := map[string]string{}
	for _, v := range core.PlatformEnv(c.cfg.Platform, s.project) {
		out[v.Name] = v.Value
	}
	family, _ := c.cfg.Family(s.fn.Spec.Runtime)
	out["CE_FUNCTION"] = s.fn.Name
	out["CE_ALLOW_CONCURRENT"] = strconv.FormatBool(c.concurrency(s.fn.Spec) > 1)
	out["CE_EXECUTION_ENV"] = "coligo/" + family + "-" + strings.TrimPrefix(s.fn.Spec.Runtime, family+"-")
	user, failure := runenv.UserEnv(ctx, c.cfg.Store, s.project.ID, s.fn.Spec.RunEnvVariables)
	for _, kv := range user {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out, failure
}

// scale decides how many instances a function generation should have and
// starts or removes the difference: stat is its load since the last
// sample (sample: record it; a wake's is not a sample).
func (c *Controller) scale(ctx context.Context, s *served, now time.Time, stat router.Stat, sample bool) {
	c.mu.Lock()
	if sample {
		s.samples = append(s.samples, autoscaler.Sample{At: now, Concurrency: stat.Concurrency})
	}
	window := c.cfg.StableWindow
	if window <= 0 {
		window = 60 * time.Second
	}
	for len(s.samples) > 0 && now.Sub(s.samples[0].At) > window {
		s.samples = s.samples[1:]
	}
	spec := autoscaler.Spec{Target: float64(c.concurrency(s.fn.Spec)), ScaleDownDelay: time.Duration(s.fn.Spec.ScaleDownDelay) * time.Second,
		StableWindow: window, PanicWindow: c.cfg.PanicWindow}
	d, next := autoscaler.Decide(spec, autoscaler.Stats{Samples: s.samples, Since: s.since, Ready: len(s.ready), Waiting: stat.Waiting}, s.scaler, now)
	s.scaler = next
	want := d.Want
	switch {
	case s.failed != "" || s.loading:
		want = 0
	case s.fn.Status == core.FunctionDeploying:
		want = max(want, 1) // a new generation is tried once, so that its status tells
	}
	have := len(s.ready) + s.start
	n := want - have
	if n > 0 {
		s.start += n
	}
	var drop []Warm
	if n < 0 && len(s.ready) > 0 {
		for i := len(s.ready) - 1; i >= 0 && len(drop) < -n; i-- {
			if c.cfg.Router.InFlight(s.key, s.ready[i].ID) == 0 {
				drop = append(drop, s.ready[i])
				s.ready = append(s.ready[:i], s.ready[i+1:]...)
			}
		}
		c.publish(s)
	}
	c.mu.Unlock()
	for _, w := range drop {
		go c.drain(s, w)
	}
	for range max(n, 0) {
		go c.startOne(ctx, s)
	}
}

// startOne claims an instance, gives it the function's code and adds it to
// those the router sends requests to.
func (c *Controller) startOne(ctx context.Context, s *served) {
	// The environment is read for each instance: a changed secret is
	// seen by the instances started after the change.
	c.mu.Lock()
	code := s.code
	c.mu.Unlock()
	env, failure := c.env(ctx, s)
	var err error
	if failure != nil {
		err = fmt.Errorf("the environment of function %s: %s", s.fn.Name, failure.Reason)
	}
	var w Warm
	if err == nil {
		w, err = c.cfg.Pool.Claim(ctx, c.poolKey(s.project.ID, s.fn.Spec))
	}
	if err == nil {
		code.Env = env
		if err = c.cfg.Inject(ctx, w, code); err != nil {
			go func() { c.keepLogs(s, w); c.remove(w) }() // why its code did not load
		}
	}
	c.mu.Lock()
	s.start--
	live := c.fns[s.key] == s
	if err == nil && live {
		s.ready = append(s.ready, w)
		c.publish(s)
	}
	c.mu.Unlock()
	switch {
	case err == nil && !live:
		c.remove(w) // the generation went meanwhile
	case errors.Is(err, ErrCodeInvalid):
		c.mu.Lock()
		s.failed = ReasonCodeInvalid
		c.mu.Unlock()
		c.setStatus(ctx, s, core.FunctionFailed, ReasonCodeInvalid)
	case errors.Is(err, ErrNoImage):
		c.log.Debug("start a function instance", "function", s.fn.Name, "project", s.project.ID, "err", err)
	case err != nil:
		c.log.Warn("start a function instance", "function", s.fn.Name, "project", s.project.ID, "err", err)
	default:
		c.setStatus(ctx, s, core.FunctionReady, core.FunctionReady)
	}
}

// publish tells the router a generation's ready instances (c.mu held).
func (c *Controller) publish(s *served) {
	eps := make([]router.Endpoint, 0, len(s.ready))
	for _, w := range s.ready {
		eps = append(eps, router.Endpoint{ID: w.ID, Addr: w.Addr()})
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].ID < eps[j].ID })
	c.cfg.Router.SetRevision(s.key, c.revisionConfig(s), eps)
}

// revisionConfig is how the router serves a function: its concurrency per
// instance and its max execution time (504 past it).
func (c *Controller) revisionConfig(s *served) router.RevisionConfig {
	return router.RevisionConfig{Owner: owner, Concurrency: c.concurrency(s.fn.Spec),
		Timeout: time.Duration(s.fn.Spec.ScaleMaxExecutionTime) * time.Second}
}

// setStatus records a generation's status, unless a newer generation
// replaced the record.
func (c *Controller) setStatus(ctx context.Context, s *served, status, reason string) {
	if c.update(ctx, s, func(f *core.Function) bool {
		changed := f.Status != status || f.Reason != reason
		f.Status, f.Reason = status, reason
		return changed
	}) {
		c.mu.Lock()
		s.fn.Status, s.fn.Reason = status, reason
		c.mu.Unlock()
	}
}

// update changes a generation's record with change (false: nothing to
// write), unless a newer generation replaced it; it reports whether the
// record is as change made it. A write that meets another of the
// controller's (a status, the pinned bundle) reads the record again.
func (c *Controller) update(ctx context.Context, s *served, change func(*core.Function) bool) bool {
	ref := core.Ref{Project: s.project.ID, Kind: core.KindFunction, Name: s.fn.Name}
	for range 10 {
		rec, err := c.cfg.Store.Get(ctx, ref)
		if err != nil {
			return false
		}
		var f core.Function
		if err := json.Unmarshal(rec.Value, &f); err != nil || f.Generation != s.fn.Generation {
			return false
		}
		if !change(&f) {
			return true
		}
		b, _ := json.Marshal(f)
		_, err = c.cfg.Store.Replace(ctx, ref, b, rec.Version)
		if err == nil {
			return true
		}
		if !errors.Is(err, core.ErrConflict) {
			c.log.Warn("record a function's status", "function", s.fn.Name, "err", err)
			return false
		}
	}
	return false
}

// drain removes an instance the router no longer sends new requests to
// once those it had are over (the router may have handed it one between
// the choice and the publish), or their time is up; its last lines are
// kept.
func (c *Controller) drain(s *served, w Warm) {
	limit := time.Duration(s.fn.Spec.ScaleMaxExecutionTime) * time.Second
	for deadline := time.Now().Add(limit + 5*time.Second); c.cfg.Router.InFlight(s.key, w.ID) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	c.keepLogs(s, w)
	c.remove(w)
}

// retire ends a generation no longer served (updated, deleted, its
// project gone): its host routes elsewhere already; the invocations in
// flight on its instances finish, then the instances go.
func (c *Controller) retire(s *served) {
	c.mu.Lock()
	ready := s.ready
	s.ready = nil
	c.mu.Unlock()
	c.cfg.Router.SetRevision(s.key, c.revisionConfig(s), nil)
	var wg sync.WaitGroup
	for _, w := range ready {
		wg.Go(func() { c.drain(s, w) })
	}
	wg.Wait()
	c.cfg.Router.RemoveRevision(s.key)
}

func (c *Controller) removeAll(s *served) {
	c.mu.Lock()
	ready := s.ready
	s.ready = nil
	c.mu.Unlock()
	for _, w := range ready {
		c.remove(w)
	}
}

// remove stops and removes an instance: one that ran a function's code is
// never used again.
func (c *Controller) remove(w Warm) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.cfg.Engine.Stop(ctx, w.Project, w.ID, time.Second); err != nil && !errors.Is(err, core.ErrNotFound) {
		c.log.Warn("stop a function instance", "instance", w.ID, "err", err)
	}
	if err := c.cfg.Engine.Remove(ctx, w.Project, w.ID); err != nil && !errors.Is(err, core.ErrNotFound) {
		c.log.Warn("remove a function instance", "instance", w.ID, "err", err)
	}
}

// shutdown removes every function instance; the pool is the caller's.
func (c *Controller) shutdown() {
	c.mu.Lock()
	all := c.fns
	c.fns = map[string]*served{}
	c.mu.Unlock()
	for _, s := range all {
		c.removeAll(s)
	}
}
