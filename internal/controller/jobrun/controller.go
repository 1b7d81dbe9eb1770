package jobrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/coligo/coligo/internal/controller/runenv"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/store"
)

// Labels on the instances of job runs.
const (
	LabelKind   = "coligo.kind"
	LabelRun    = "coligo.jobrun"
	LabelJob    = "coligo.job"
	LabelIndex  = "coligo.index"
	LabelRetry  = "coligo.retry"
	kindJobRunV = "jobrun"
)

// Store is what the controller needs of the store.
type Store interface {
	GetProject(ctx context.Context, id string) (core.Project, error)
	ListProjects(ctx context.Context) ([]core.Project, error)
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
	Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error)
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
	Watch() (<-chan store.Event, func())
}

// Engine is what the controller needs of an engine.
type Engine interface {
	Pull(ctx context.Context, project, image string, auth *engine.RegistryAuth) (string, error)
	Run(ctx context.Context, spec engine.Spec) (engine.Instance, error)
	Stop(ctx context.Context, project, id string, grace time.Duration) error
	Remove(ctx context.Context, project, id string) error
	List(ctx context.Context, project string, match map[string]string) ([]engine.Instance, error)
	Events(ctx context.Context) (<-chan engine.Event, error)
	PruneImages(ctx context.Context, project string, keep []string) ([]string, error)
}

// Config configures a Controller.
type Config struct {
	Store        Store
	Engine       Engine
	Logger       *slog.Logger
	MaxInstances int // running at once, server-wide; default 64
	// ProjectMaxInstances caps one project's share of MaxInstances, so that
	// another project always has room; default 3/4 of MaxInstances.
	ProjectMaxInstances int
	// Quota holds the project quotas, shared with the app controller;
	// default a ledger of Code Engine's quotas for this controller alone.
	Quota      *quota.Ledger
	Parallel   int           // instance starts at once; default 8
	Resync     time.Duration // default 2s: how late a time-out may be seen
	PruneEvery time.Duration // how often unused images are removed; default 30s
	Now        func() time.Time
	Platform   core.Platform // what the injected CE_* variables say
	// ObjectStorage is the object store of each bucket location, where
	// persistent data stores are.
	ObjectStorage map[string]string
	// ComputeTokens issues the compute resource tokens of instances that
	// ask for one, valid for ComputeTokenLife; nil: none are issued.
	ComputeTokens    runenv.TokenIssuer
	ComputeTokenLife time.Duration
	Registry         prometheus.Registerer // where the controller's metrics go; may be nil
}

// Controller converges job runs.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu             sync.Mutex
	running        map[key]int              // instances running per run, for the server-wide cap
	demand         map[key]int              // indices per run waiting for a slot of the server-wide cap
	served         map[string]time.Time     // when each project last got a slot
	createFailures map[string]createFailure // instances whose create failed
	pruned         map[string]time.Time     // last image prune per project
	pinned         map[key]string           // each run's image, resolved with its own credentials
	queue          chan key
	queued         map[key]bool
	finished       *prometheus.CounterVec // runs finished, by status
}

type key struct{ project, run string }

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.MaxInstances <= 0 {
		cfg.MaxInstances = 64
	}
	if cfg.ProjectMaxInstances <= 0 || cfg.ProjectMaxInstances > cfg.MaxInstances {
		cfg.ProjectMaxInstances = max(1, cfg.MaxInstances*3/4)
	}
	if cfg.Quota == nil {
		cfg.Quota = quota.NewLedger(quota.Default())
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 2 * time.Second
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	finished := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "coligo_job_runs_finished_total", Help: "Job runs that finished, by status (completed or failed).",
	}, []string{"status"})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(finished)
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "jobrun-controller"), finished: finished,
		running: map[key]int{}, demand: map[key]int{}, served: map[string]time.Time{}, createFailures: map[string]createFailure{}, pruned: map[string]time.Time{}, pinned: map[key]string{}, queue: make(chan key, 4096), queued: map[key]bool{}}
}

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	events, stop := c.cfg.Store.Watch()
	defer stop()
	exits := engine.Watch(ctx, c.cfg.Engine, c.log)
	defer func() {
		for range exits { // the watch ends with ctx
		}
	}()
	c.resync(ctx)
	tick := time.NewTicker(c.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.resync(ctx)
		case e, ok := <-events:
			if !ok {
				return
			}
			switch {
			case e.Op == store.OpResync:
				c.resync(ctx)
			case e.Kind == core.KindJobRun:
				c.enqueue(key{e.Project, e.Name})
			case e.Kind == core.KindProject:
				c.resync(ctx)
			}
		case ev, ok := <-exits:
			if !ok {
				return
			}
			if ev.ID == "" { // exits may have been missed
				c.resync(ctx)
				continue
			}
			if run, _, _, ok := ParseInstanceName(ev.ID); ok {
				c.enqueue(key{ev.Project, run})
			}
		case k := <-c.queue:
			c.mu.Lock()
			delete(c.queued, k)
			c.mu.Unlock()
			c.reconcile(ctx, k)
		}
	}
}

func (c *Controller) enqueue(k key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.queued[k] {
		return
	}
	select {
	case c.queue <- k:
		c.queued[k] = true
	default: // the next resync picks it up
	}
}

// ParseInstanceName splits "<run>-<index>-<retry>".
func ParseInstanceName(id string) (run string, index, retry int, ok bool) {
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return "", 0, 0, false
	}
	j := strings.LastIndexByte(id[:i], '-')
	if j < 0 {
		return "", 0, 0, false
	}
	index, err1 := strconv.Atoi(id[j+1 : i])
	retry, err2 := strconv.Atoi(id[i+1:])
	if err1 != nil || err2 != nil {
		return "", 0, 0, false
	}
	return id[:j], index, retry, true
}

// resync reconciles every run of every project and removes instances whose
// run is gone.
func (c *Controller) resync(ctx context.Context) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Error("list projects", "err", err)
		return
	}
	for _, p := range projects {
		if p.Status == core.ProjectHardDeleting {
			continue // the project controller purges it
		}
		runs := map[string]bool{}
		for r, err := range store.Records(ctx, c.cfg.Store, p.ID, core.KindJobRun) {
			if err != nil {
				c.log.Error("list job runs", "project", p.ID, "err", err)
				break
			}
			runs[r.Name] = true
			c.reconcile(ctx, key{p.ID, r.Name})
		}
		instances, err := c.cfg.Engine.List(ctx, p.ID, map[string]string{LabelKind: kindJobRunV})
		if err != nil {
			c.log.Error("list instances", "project", p.ID, "err", err)
			continue
		}
		for _, in := range instances {
			if !runs[in.Labels[LabelRun]] {
				c.removeInstance(ctx, p.ID, in)
			}
		}
		if p.Usable() && c.pruneDue(p.ID) {
			c.pruneImages(ctx, p.ID)
		}
	}
}

func (c *Controller) pruneDue(project string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if now.Sub(c.pruned[project]) < c.cfg.PruneEvery {
		return false
	}
	c.pruned[project] = now
	return true
}

// pruneImages removes the project's cached images that no job, unfinished
// run or live app revision refers to: coligo keeps pointers to images, and
// images only while a workload needs them.
func (c *Controller) pruneImages(ctx context.Context, project string) {
	type workload struct {
		ImageReference string         `json:"image_reference"`
		ImageDigest    string         `json:"image_digest"`
		Status         core.RunStatus `json:"status"`
	}
	var keep []string
	for _, kind := range []string{core.KindJob, core.KindJobRun, core.KindRevision} {
		for d, err := range store.All[workload](ctx, c.cfg.Store, project, kind) {
			if err != nil {
				return // a transient error: the next prune tries again
			}
			if w := d.Value; w.Status != core.RunCompleted && w.Status != core.RunFailed {
				keep = append(keep, w.ImageReference)
				if w.ImageDigest != "" {
					keep = append(keep, w.ImageDigest)
				}
			}
		}
	}
	removed, err := c.cfg.Engine.PruneImages(ctx, project, keep)
	if err != nil {
		c.log.Warn("prune images", "project", project, "err", err)
	}
	for _, img := range removed {
		c.log.Info("unused image removed", "project", project, "image", img)
	}
}

func (c *Controller) removeInstance(ctx context.Context, project string, in engine.Instance) {
	if in.State == engine.StateRunning {
		ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
		defer cancel()
		if err := c.cfg.Engine.Stop(ctx, project, in.ID, 10*time.Second); err != nil {
			c.log.Warn("stop instance of a deleted run", "instance", in.ID, "err", err)
		}
	}
	if err := c.cfg.Engine.Remove(ctx, project, in.ID); err != nil {
		c.log.Warn("remove instance of a deleted run", "instance", in.ID, "err", err)
		return
	}
	c.log.Info("instance of a deleted run removed", "project", project, "instance", in.ID)
}

// reconcile takes a run one step towards done.
func (c *Controller) reconcile(ctx context.Context, k key) {
	if err := c.step(ctx, k); err != nil && ctx.Err() == nil {
		if errors.Is(err, core.ErrConflict) {
			c.enqueue(k)
			return
		}
		c.log.Error("reconcile job run", "project", k.project, "jobrun", k.run, "err", err)
	}
}

func (c *Controller) step(ctx context.Context, k key) error {
	p, err := c.cfg.Store.GetProject(ctx, k.project)
	if errors.Is(err, core.ErrNotFound) || p.Status == core.ProjectHardDeleting {
		c.forget(k)
		return nil // the project controller purges what is left
	}
	if err != nil {
		return err
	}
	ref := core.Ref{Project: k.project, Kind: core.KindJobRun, Name: k.run}
	rec, err := c.cfg.Store.Get(ctx, ref)
	arrays, isArrays := c.cfg.Engine.(engine.Arrays)
	if errors.Is(err, core.ErrNotFound) {
		c.forget(k)
		if isArrays {
			if err := arrays.RemoveArray(ctx, k.project, k.run); err != nil {
				return err
			}
		}
		instances, err := c.cfg.Engine.List(ctx, k.project, map[string]string{LabelRun: k.run})
		if err != nil {
			return err
		}
		for _, in := range instances {
			c.removeInstance(ctx, k.project, in)
		}
		return nil
	}
	if err != nil {
		return err
	}
	var run core.JobRun
	if err := json.Unmarshal(rec.Value, &run); err != nil {
		return fmt.Errorf("decode job run: %w", err)
	}
	if run.Finished() {
		// Every instance was stopped before the run was marked finished, so
		// a finished run costs the engine nothing on each resync.
		c.forget(k)
		return nil
	}
	observed, err := c.cfg.Engine.List(ctx, k.project, map[string]string{LabelRun: k.run})
	if err != nil {
		return err
	}
	byID := map[string]engine.Instance{}
	for _, in := range observed {
		byID[in.ID] = in
	}
	now := c.cfg.Now().UTC()
	before := string(rec.Value)

	if !p.Usable() {
		// A soft-deleted project keeps its runs as they are (it refuses
		// writes) with nothing running; a restore resumes them.
		if err := c.stopAll(ctx, k, observed); err != nil {
			return err
		}
		c.setRunning(k, 0)
		return nil
	}
	view := View{Instances: byID, BackingOff: c.backingOff(k.run, now)}
	pl := plan(&run, view, now)
	if pl.Stop {
		if err := c.stopAll(ctx, k, observed); err != nil {
			return err
		}
	}
	if isArrays {
		return c.stepArray(ctx, arrays, p, ref, rec, &run, byID, before, now)
	}
	// Start what should run, within the server-wide cap, the project's
	// share of it and its quota.
	toStart := pl.Restart
	if !run.Finished() {
		n := c.budget(k, &run, pl.Running, len(pl.Pending), now)
		toStart = append(toStart, admit(&run, pl.Pending[:n], now)...)
	}
	run.Summarize(now)
	c.countRunning(k, &run)
	// Persist the decision before acting on it: after a crash the stored run
	// names exactly the instances that may exist, and Run is idempotent.
	if b, _ := json.Marshal(run); string(b) != before {
		r2, err := c.save(ctx, ref, &run, rec.Version)
		if err != nil {
			return err
		}
		rec = r2
	}
	if len(toStart) == 0 {
		return nil
	}
	failures := c.start(ctx, p, &run, toStart)
	if len(failures) == 0 {
		return nil
	}
	settle(&run, failures, now)
	run.Summarize(now)
	c.countRunning(k, &run)
	_, err = c.save(ctx, ref, &run, rec.Version)
	return err
}

// save writes a run, and counts it when this write is the one that
// finishes it (a finished run is never written again).
func (c *Controller) save(ctx context.Context, ref core.Ref, run *core.JobRun, version uint64) (core.Record, error) {
	b, _ := json.Marshal(run)
	rec, err := c.cfg.Store.Replace(ctx, ref, b, version)
	if err == nil && run.Finished() {
		c.finished.WithLabelValues(string(run.Status)).Inc()
	}
	return rec, err
}

// stepArray is the rest of a step for an engine that runs the array
// itself: an index runs once its instance exists, and the engine is asked
// (idempotently) to run the array until the run is finished.
func (c *Controller) stepArray(ctx context.Context, arrays engine.Arrays, p core.Project, ref core.Ref, rec core.Record, run *core.JobRun, byID map[string]engine.Instance, before string, now time.Time) error {
	k := key{p.ID, run.Name}
	var fail *failure
	if !run.Finished() && !c.createWaiting(run.Name, now) {
		fail = c.startArray(ctx, arrays, p, run)
	}
	for i, s := range run.Indices {
		in, ok := byID[core.InstanceName(run.Name, i, s.Retries)]
		switch {
		case s.Status == core.IndexPending && ok:
			s.Status, s.StartedAt = core.IndexRunning, nonZero(in.CreatedAt, now)
			if run.StartTime.IsZero() {
				run.StartTime = s.StartedAt
			}
		case s.Status == core.IndexPending && fail != nil && !fail.later:
			if fail.wait {
				run.Reason = fail.reason
			} else {
				s.Status, s.FinishedAt, s.LastFailureReason = core.IndexFailed, now, fail.reason
			}
		}
	}
	run.Summarize(now)
	c.countRunning(k, run)
	if b, _ := json.Marshal(run); string(b) == before {
		return nil
	}
	_, err := c.save(ctx, ref, run, rec.Version)
	return err
}

// stopAll stops what runs of a run: the array, on an engine that runs
// arrays, else each running instance.
func (c *Controller) stopAll(ctx context.Context, k key, instances []engine.Instance) error {
	if arrays, ok := c.cfg.Engine.(engine.Arrays); ok {
		return arrays.StopArray(ctx, k.project, k.run)
	}
	var wg sync.WaitGroup
	for _, in := range instances {
		if in.State == engine.StateRunning {
			wg.Go(func() {
				if err := c.cfg.Engine.Stop(ctx, k.project, in.ID, 0); err != nil {
					c.log.Warn("stop instance", "instance", in.ID, "err", err)
				}
			})
		}
	}
	wg.Wait()
	return nil
}

// budget is how many of a run's pending indices may start now: what the
// server-wide cap leaves, within the project's share of it, and while other
// projects wait too, the project's turn of the free slots (quota.Share);
// then what the project's quota leaves. An index that waits gives the run
// reason waiting_for_resources.
func (c *Controller) budget(k key, run *core.JobRun, running, pending int, now time.Time) int {
	per := quota.Instance(run.ScaleCPULimit, run.ScaleMemoryLimit, run.ScaleEphemeralStorageLimit)
	c.mu.Lock()
	held := map[string]int{}
	total := 0
	for rk, n := range c.running {
		if rk != k {
			held[rk.project] += n
			total += n
		}
	}
	held[k.project] += running
	total += running
	share := c.cfg.ProjectMaxInstances - held[k.project]
	wants := map[string]int{k.project: min(pending, share)}
	for rk, n := range c.demand {
		if rk.project != k.project {
			wants[rk.project] += n
		}
	}
	var claims []quota.Claimant
	for p, w := range wants {
		claims = append(claims, quota.Claimant{Project: p, Held: held[p], Want: min(w, c.cfg.ProjectMaxInstances-held[p]), Served: c.served[p]})
	}
	n := quota.Share(c.cfg.MaxInstances-total, claims)[k.project]
	c.mu.Unlock()

	n = c.cfg.Quota.Claim(k.project, holder(k), per, running, running+n) - running
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 {
		c.served[k.project] = now
	}
	delete(c.demand, k)
	if n < pending {
		run.Reason = core.ReasonWaitingForResources
		if c.cfg.Quota.Why(k.project, per) == "" {
			c.demand[k] = pending - n // waits for a slot, not for its quota
		}
	}
	return n
}

// holder is a run's name in the quota ledger.
func holder(k key) string { return "jobrun/" + k.run }

// forget drops what the controller holds of a run that is over or gone.
func (c *Controller) forget(k key) {
	c.setRunning(k, 0)
	c.cfg.Quota.Set(k.project, holder(k), quota.Amount{})
	c.mu.Lock()
	delete(c.pinned, k)
	delete(c.demand, k)
	c.mu.Unlock()
}

func (c *Controller) setRunning(k key, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == 0 {
		delete(c.running, k)
	} else {
		c.running[k] = n
	}
}

// countRunning records the run's running instances for the server-wide cap
// and its quota; when a run stops holding slots, the runs waiting for one
// are looked at again.
func (c *Controller) countRunning(k key, run *core.JobRun) {
	n := 0
	for _, s := range run.Indices {
		if s.Status == core.IndexRunning {
			n++
		}
	}
	c.mu.Lock()
	freed := n < c.running[k]
	var waiting []key
	if freed {
		for wk := range c.demand {
			if wk != k {
				waiting = append(waiting, wk)
			}
		}
	}
	c.mu.Unlock()
	c.setRunning(k, n)
	c.cfg.Quota.Set(k.project, holder(k), quota.Instance(run.ScaleCPULimit, run.ScaleMemoryLimit, run.ScaleEphemeralStorageLimit).Times(n))
	for _, wk := range waiting {
		c.enqueue(wk)
	}
}
