package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coligo/coligo/internal/autoscaler"
	"github.com/coligo/coligo/internal/controller/runenv"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store"
)

// Labels on the instances of apps.
const (
	LabelKind     = "coligo.kind"
	LabelApp      = "coligo.app"
	LabelRevision = "coligo.revision"
	kindApp       = "app"
)

// Store is what the controller needs of the store.
type Store interface {
	ListProjects(ctx context.Context) ([]core.Project, error)
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
	Create(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error)
	Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error)
	Delete(ctx context.Context, ref core.Ref) error
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
	Watch() (<-chan store.Event, func())
}

// Engine is what the controller needs of an engine.
type Engine interface {
	Pull(ctx context.Context, project, image string, auth *engine.RegistryAuth) (string, error)
	Run(ctx context.Context, spec engine.Spec) (engine.Instance, error)
	Prepare(ctx context.Context, spec engine.Spec) (engine.Instance, error)
	Stop(ctx context.Context, project, id string, grace time.Duration) error
	Remove(ctx context.Context, project, id string) error
	List(ctx context.Context, project string, match map[string]string) ([]engine.Instance, error)
	Events(ctx context.Context) (<-chan engine.Event, error)
	ProjectNetwork(ctx context.Context, project string, names []string) (netip.Addr, netip.Prefix, error)
}

// Router is what the controller needs of the router.
type Router interface {
	SetRoutes(routes map[string]router.Route)
	SetRevision(key string, c router.RevisionConfig, ready []router.Endpoint)
	RemoveRevision(key string)
	InFlight(key, id string) int
	Stats(owner string) map[string]router.Stat
	ServeProject(project string, addr netip.AddrPort, subnet netip.Prefix) error
	StopProject(project string)
}

// Config configures a Controller.
type Config struct {
	Store    Store
	Engine   Engine
	Router   Router
	Logger   *slog.Logger
	Platform core.Platform
	// ObjectStorage is the object store of each bucket location, where
	// persistent data stores are.
	ObjectStorage map[string]string
	// ComputeTokens issues the compute resource tokens of instances that
	// ask for one, valid for ComputeTokenLife; nil: none are issued.
	ComputeTokens    runenv.TokenIssuer
	ComputeTokenLife time.Duration
	StableWindow     time.Duration // default 60s
	PanicWindow      time.Duration // default 6s
	MaxInstances     int           // per revision when scale_max_instances is 0; default 250
	// Quota holds the project quotas, shared with the job run controller;
	// default a ledger of Code Engine's quotas for this controller alone.
	Quota        *quota.Ledger
	StartTimeout time.Duration // a revision that has no ready instance by then fails; default 10m
	// Registry is where the controller's metrics go; may be nil.
	Registry prometheus.Registerer
	// Probe runs a readiness or liveness probe once; default Check.
	Probe func(ctx context.Context, p core.Probe, ip string, timeout time.Duration) error
	Now   func() time.Time
}

// Controller converges apps. Create it with New and call Wake from the
// router.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	tick time.Duration

	mu       sync.Mutex
	revs     map[string]*revState // by revision key
	internal map[string]string    // project → the names its internal endpoint serves; only sync touches it
	wake     chan string
	kick     chan struct{}
	wg       sync.WaitGroup // every goroutine the controller starts; Run waits for them
	// instances is, per revision, how many instances it should have
	// (desired: the autoscaler's want within the quota) and has ready.
	instances *prometheus.GaugeVec
	synced    chan struct{} // closed after the first sync
	// noPrepare is set when the engine cannot prepare instances (Kubernetes):
	// a cold start then runs the instance whole.
	noPrepare bool
}

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.StableWindow <= 0 {
		cfg.StableWindow = 60 * time.Second
	}
	if cfg.PanicWindow <= 0 {
		cfg.PanicWindow = 6 * time.Second
	}
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = core.MaxScaleInstances
	}
	if cfg.Quota == nil {
		cfg.Quota = quota.NewLedger(quota.Default())
	}
	if cfg.Probe == nil {
		cfg.Probe = Check
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tick := min(max(cfg.PanicWindow/6, 100*time.Millisecond), time.Second)
	instances := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "coligo_revision_instances", Help: "Instances of a revision: desired (the autoscaler's want, within the project's quota) and ready.",
	}, []string{"project", "revision", "state"})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(instances)
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "app-controller"), tick: tick, instances: instances,
		revs: map[string]*revState{}, internal: map[string]string{}, wake: make(chan string, 256), kick: make(chan struct{}, 1), synced: make(chan struct{})}
}

// Wake tells the controller that a request waits for a revision with no
// ready instance. It does not block.
func (c *Controller) Wake(key string) {
	select {
	case c.wake <- key:
	default:
	}
}

func (c *Controller) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Synced is closed once the controller has adopted the instances that run
// from before a restart and published the routes.
func (c *Controller) Synced() <-chan struct{} { return c.synced }

// RevisionKey names a revision to the router.
func RevisionKey(project, revision string) string { return project + "/" + revision }

// Run converges until ctx ends. Instances keep running after it returns.
func (c *Controller) Run(ctx context.Context) {
	defer c.wg.Wait()
	events, stop := c.cfg.Store.Watch()
	defer stop()
	exits := engine.Watch(ctx, c.cfg.Engine, c.log)
	defer func() {
		for range exits { // the watch ends with ctx
		}
	}()
	c.adopt(ctx)
	c.sync(ctx)
	close(c.synced)
	tick := time.NewTicker(c.tick)
	defer tick.Stop()
	recheck := time.NewTicker(recheckEvery)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.autoscale()
			c.probe(ctx)
			c.sync(ctx)
		case <-recheck.C:
			c.recheck(ctx)
		case e, ok := <-events:
			if !ok {
				return
			}
			if e.Kind == core.KindSecret || e.Kind == core.KindConfigMap {
				c.discardPrepared(ctx, e.Project)
			}
			if e.Op == store.OpResync || e.Kind == core.KindApp || e.Kind == core.KindRevision || e.Kind == core.KindProject ||
				e.Kind == core.KindSecret || e.Kind == core.KindConfigMap {
				c.sync(ctx)
			}
		case key := <-c.wake:
			c.mu.Lock()
			if rs := c.revs[key]; rs != nil {
				rs.woken = true
			}
			c.mu.Unlock()
			c.sync(ctx)
		case <-c.kick:
			c.sync(ctx)
		case ev, ok := <-exits:
			if !ok {
				return
			}
			if ev.ID == "" { // exits may have been missed
				c.recheck(ctx)
				continue
			}
			c.exited(ctx, ev)
		}
	}
}

// autoscale feeds the router's load into the autoscaler for every revision.
func (c *Controller) autoscale() {
	stats := c.cfg.Router.Stats("")
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, rs := range c.revs {
		st := stats[key]
		rs.samples = append(rs.samples, autoscaler.Sample{At: now, Concurrency: st.Concurrency})
		cut := 0
		for cut < len(rs.samples) && now.Sub(rs.samples[cut].At) > c.cfg.StableWindow {
			cut++
		}
		rs.samples = rs.samples[cut:]
		spec := rs.rec.AppSpec
		maxN := spec.ScaleMaxInstances
		if maxN == 0 {
			maxN = c.cfg.MaxInstances
		}
		d, next := autoscaler.Decide(autoscaler.Spec{
			Target: float64(spec.Target()), Min: spec.ScaleMinInstances, Max: maxN,
			ScaleDownDelay: time.Duration(spec.ScaleDownDelay) * time.Second,
			StableWindow:   c.cfg.StableWindow, PanicWindow: c.cfg.PanicWindow,
		}, autoscaler.Stats{Samples: rs.samples, Since: rs.since, Ready: rs.count(phaseReady), Waiting: rs.woken || st.Waiting}, rs.scale, now)
		rs.scale = next
		rs.woken = false // a wake-up counts once, here, after it started an instance
		if d.Want != rs.autoWant {
			c.log.Debug("autoscale", "revision", key, "want", d.Want, "stable", d.StableAvg, "panic", d.Panic)
		}
		rs.autoWant = d.Want
	}
}

// sync reads the desired state from the store and converges every app.
func (c *Controller) sync(ctx context.Context) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Error("list projects", "err", err)
		return
	}
	routes := map[string]router.Route{}
	seen := map[string]bool{}
	served := map[string]bool{}
	var steps []step
	for _, p := range projects {
		if p.Status != core.ProjectActive {
			continue // soft-deleted projects serve nothing; hard deletes purge the engine
		}
		apps, err := listAll[core.App](ctx, c.cfg.Store, p.ID, core.KindApp)
		if err != nil {
			c.log.Warn("list apps", "project", p.ID, "err", err)
			c.keepProject(p.ID, seen)
			continue
		}
		revs, err := listAll[core.Revision](ctx, c.cfg.Store, p.ID, core.KindRevision)
		if err != nil {
			c.log.Warn("list revisions", "project", p.ID, "err", err)
			c.keepProject(p.ID, seen)
			continue
		}
		byApp := map[string][]versioned[core.Revision]{}
		for _, r := range revs {
			byApp[r.v.AppName] = append(byApp[r.v.AppName], r)
		}
		var names []string
		for _, a := range apps {
			c.syncApp(ctx, p, a.v, byApp[a.v.Name], routes, seen, &steps)
			for _, h := range internalHosts(a.v.Name, p) {
				routes[h] = router.Route{Revision: routes[core.AppHost(a.v.Name, p, c.cfg.Platform.Domain)].Revision, Project: p.ID}
				names = append(names, h)
			}
		}
		if len(names) > 0 {
			c.serveProject(ctx, p.ID, names)
			served[p.ID] = true
		}
	}
	for project := range c.internal {
		if !served[project] {
			c.cfg.Router.StopProject(project)
			delete(c.internal, project)
		}
	}
	// Routes first: no request goes to a revision after it starts to drain.
	c.cfg.Router.SetRoutes(routes)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range steps {
		c.converge(ctx, st.rs, st.want)
	}
	for key, rs := range c.revs {
		if !seen[key] {
			rs.gone = true
			c.converge(ctx, rs, 0)
			if len(rs.insts) == 0 {
				c.instances.DeletePartialMatch(prometheus.Labels{"project": rs.project.ID, "revision": rs.rec.Name})
				c.cfg.Quota.Set(rs.project.ID, key, quota.Amount{})
				c.cfg.Router.RemoveRevision(key)
				delete(c.revs, key)
			}
		}
	}
}

// internalHosts are the names of an app's project-internal endpoint.
func internalHosts(app string, p core.Project) []string {
	h := app + "." + p.Subdomain + ".svc"
	return []string{h, h + ".cluster.local"}
}

// serveProject makes the project's internal endpoint names resolve in its
// instances and serves them on its gateway, when they changed.
func (c *Controller) serveProject(ctx context.Context, project string, names []string) {
	slices.Sort(names)
	key := strings.Join(names, " ")
	if cur, ok := c.internal[project]; ok && cur == key {
		return
	}
	gw, subnet, err := c.cfg.Engine.ProjectNetwork(ctx, project, names)
	if err != nil {
		c.log.Warn("project network", "project", project, "err", err)
		return
	}
	if err := c.cfg.Router.ServeProject(project, netip.AddrPortFrom(gw, 80), subnet); err != nil {
		c.log.Warn("serve project endpoints", "project", project, "err", err)
		return
	}
	c.internal[project] = key
}

// step is the number of instances a revision should have, applied once the
// routes are published.
type step struct {
	rs   *revState
	want int
}

// keepProject marks a project's known revisions as seen when its records
// cannot be read now (a key that is unavailable): nothing is stopped.
func (c *Controller) keepProject(project string, seen map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, rs := range c.revs {
		if rs.project.ID == project {
			seen[key] = true
		}
	}
}

type versioned[T any] struct {
	v       T
	version uint64
}

func listAll[T any](ctx context.Context, st Store, project, kind string) ([]versioned[T], error) {
	var out []versioned[T]
	for d, err := range store.All[T](ctx, st, project, kind) {
		if err != nil {
			return nil, err
		}
		out = append(out, versioned[T]{d.Value, d.Record.Version})
	}
	return out, nil
}

// syncApp converges one app: its latest revision exists, traffic goes to
// the newest ready one, others drain, at most one inactive one is kept.
// The store is written without c.mu held.
func (c *Controller) syncApp(ctx context.Context, p core.Project, a core.App, revs []versioned[core.Revision], routes map[string]router.Route, seen map[string]bool, steps *[]step) {
	latestName := core.RevisionName(a.Name, a.Generation)
	if !slices.ContainsFunc(revs, func(r versioned[core.Revision]) bool { return r.v.Name == latestName }) {
		r := core.Revision{ID: uuid.NewString(), Name: latestName, AppName: a.Name, Generation: a.Generation,
			CreatedAt: c.cfg.Now().UTC(), AppSpec: a.AppSpec, Status: core.RevisionLoading, Reason: core.ReasonDeploying}
		b, _ := json.Marshal(r)
		rec, err := c.cfg.Store.Create(ctx, core.Ref{Project: p.ID, Kind: core.KindRevision, Name: r.Name}, b, 0)
		if err != nil && !errors.Is(err, core.ErrExists) {
			c.log.Warn("create revision", "project", p.ID, "revision", r.Name, "err", err)
			return
		}
		if err == nil {
			c.log.Info("revision created", "project", p.ID, "revision", r.Name)
			revs = append(revs, versioned[core.Revision]{r, rec.Version})
		}
	}
	slices.SortFunc(revs, func(x, y versioned[core.Revision]) int { return x.v.Generation - y.v.Generation })
	plain := make([]core.Revision, len(revs))
	for i, r := range revs {
		plain[i] = r.v
	}
	latest, serving, keep := pick(plain)
	kept := revs[:0:0]
	for _, r := range revs {
		if keep[r.v.Name] {
			kept = append(kept, r)
		} else if err := c.cfg.Store.Delete(ctx, core.Ref{Project: p.ID, Kind: core.KindRevision, Name: r.v.Name}); err != nil && !errors.Is(err, core.ErrNotFound) {
			c.log.Warn("remove old revision", "revision", r.v.Name, "err", err)
		}
	}
	now := c.cfg.Now()
	var writes []statusWrite
	c.mu.Lock()
	for _, r := range kept {
		key := RevisionKey(p.ID, r.v.Name)
		seen[key] = true
		rs := c.revs[key]
		if rs == nil {
			rs = &revState{key: key, insts: map[string]*inst{}, since: now}
			c.revs[key] = rs
		}
		rs.project, rs.rec, rs.version, rs.gone = p, r.v, r.version, false
		isServing, isLatest := r.v.Name == serving, r.v.Name == latest
		if isServing && !rs.serving {
			rs.since = now // a full window of its own traffic before it scales down
		}
		rs.serving = isServing
		if isLatest && rs.rec.Status == core.RevisionLoading && rs.rec.ScaleInitialInstances == 0 && rs.rec.ImageDigest != "" && !rs.waiting {
			rs.setStatus(core.RevisionReady, core.ReasonReady, "")
		}
		if w, ok := statusUpdate(rs); ok {
			writes = append(writes, w)
		}
		status := rs.rec.Status // as it is about to be written
		if rs.status != "" {
			status = rs.status
		}
		want := desire(wantInput{Status: status, Latest: isLatest, Serving: isServing, Woken: rs.woken,
			Initial: rs.rec.ScaleInitialInstances, Auto: rs.autoWant, Active: rs.active(), ServingFor: now.Sub(rs.since), StableWindow: c.cfg.StableWindow})
		if isLatest || status != core.RevisionFailed {
			c.ensurePulled(ctx, rs)
		}
		c.publish(rs)
		*steps = append(*steps, step{rs, want})
	}
	c.mu.Unlock()
	for _, w := range writes {
		c.writeStatus(ctx, w)
	}
	routes[core.AppHost(a.Name, p, c.cfg.Platform.Domain)] = router.Route{
		Revision: RevisionKey(p.ID, serving), Public: a.ManagedDomainMappings != core.VisibilityProject, Redirect: a.HTTPOption == core.HTTPRedirected,
	}
}

// statusWrite is a revision record to write with the status the controller
// has reached.
type statusWrite struct {
	rs      *revState
	want    core.Revision
	version uint64
}

// statusUpdate is the write that brings a revision's record to the status
// the controller has reached, if it differs. Called with c.mu held.
func statusUpdate(rs *revState) (statusWrite, bool) {
	want := rs.rec
	if rs.status != "" {
		want.Status, want.Reason, want.Message = rs.status, rs.reason, rs.message
	}
	if rs.digest != "" {
		want.ImageDigest = rs.digest
	}
	if want.Status == rs.rec.Status && want.Reason == rs.rec.Reason && want.Message == rs.rec.Message && want.ImageDigest == rs.rec.ImageDigest {
		return statusWrite{}, false
	}
	return statusWrite{rs, want, rs.version}, true
}

// writeStatus writes a revision's status; the record becomes the
// controller's unless it changed meanwhile.
func (c *Controller) writeStatus(ctx context.Context, w statusWrite) {
	b, _ := json.Marshal(w.want)
	rec, err := c.cfg.Store.Replace(ctx, core.Ref{Project: w.rs.project.ID, Kind: core.KindRevision, Name: w.want.Name}, b, w.version)
	if err != nil {
		if !errors.Is(err, core.ErrNotFound) && !errors.Is(err, core.ErrConflict) {
			c.log.Warn("record revision status", "revision", w.rs.key, "err", err)
		}
		return
	}
	if w.want.Status != w.rs.rec.Status {
		c.log.Info("revision status", "project", w.rs.project.ID, "revision", w.want.Name, "status", w.want.Status, "reason", w.want.Reason)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.rs.version == w.version {
		w.rs.rec, w.rs.version = w.want, rec.Version
	}
}

// Instances returns the instances of an app as observed now.
func (c *Controller) Instances(project, app string) []core.AppInstance {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []core.AppInstance
	for _, rs := range c.revs {
		if rs.project.ID != project || rs.rec.AppName != app {
			continue
		}
		for _, in := range rs.insts {
			if in.phase == phasePrepared {
				continue // not started: not an instance users see
			}
			status := core.InstancePending
			if in.phase == phaseReady || in.phase == phaseDraining {
				status = core.InstanceRunning
			}
			out = append(out, core.AppInstance{Name: in.id, App: app, Revision: rs.rec.Name, Status: status,
				Ready: in.phase == phaseReady, Draining: in.phase == phaseDraining, StartedAt: in.created, IP: in.ip})
		}
	}
	slices.SortFunc(out, func(a, b core.AppInstance) int {
		if a.Revision != b.Revision {
			return cmpStr(a.Revision, b.Revision)
		}
		return cmpStr(a.Name, b.Name)
	})
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
