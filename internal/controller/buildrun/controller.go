package buildrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/builder"
	"github.com/coligo/coligo/internal/controller/runenv"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/store"
)

// Store is what the controller needs of the store.
type Store interface {
	ListProjects(ctx context.Context) ([]core.Project, error)
	GetProject(ctx context.Context, id string) (core.Project, error)
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
	Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error)
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
	Delete(ctx context.Context, ref core.Ref) error
	Watch() (<-chan store.Event, func())
}

// Builder builds one request.
type Builder interface {
	Build(ctx context.Context, req builder.Request) (builder.Result, error)
}

// Config configures a Controller.
type Config struct {
	Store   Store
	Builder Builder
	Logger  *slog.Logger
	// FetchSource reads a local source's image with the run's output
	// credentials: its files, in memory.
	FetchSource func(ctx context.Context, ref string, auth *engine.RegistryAuth) (map[string][]byte, error)
	// CheckSource checks a Git source's URL as the build starts, by what
	// its host resolves to then (nil: not checked).
	CheckSource func(ctx context.Context, url string) error
	// DeleteSource deletes a local source's image once its run has ended
	// or is gone: the source lives as long as its run (nil: it stays).
	DeleteSource func(ctx context.Context, ref string, auth *engine.RegistryAuth) error
	// Quota is each project's, shared with the other workloads' controllers:
	// a run builds when its strategy_size fits; default quota.Default().
	Quota    *quota.Ledger
	Parallel int // runs built at once; default 2
	// Tick is how often a run waiting for its quota looks again (default
	// 1s); Resync how often every run is read again, for retention and
	// as a safety net under the store's events (default 30s).
	Tick, Resync time.Duration
}

// Controller runs build runs.
type Controller struct {
	cfg Config
	log *slog.Logger
	sem chan struct{}

	mu   sync.Mutex
	runs map[string]*progress // by <project>/<run>
}

// progress is a run being built, or built, by this controller.
type progress struct {
	mu     sync.Mutex
	log    []byte
	ended  bool
	cancel context.CancelFunc // ends the build (the run was deleted)
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, b...)
	if over := len(p.log) - maxLog; over > 0 {
		p.log = append([]byte("[earlier lines dropped]\n"), p.log[over+len("[earlier lines dropped]\n"):]...)
	}
	return len(b), nil
}

// maxLog bounds what is kept of one run's progress.
const maxLog = 256 << 10

// New returns a controller.
func New(cfg Config) *Controller {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.Quota == nil {
		cfg.Quota = quota.NewLedger(quota.Default())
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "buildrun-controller"), sem: make(chan struct{}, cfg.Parallel), runs: map[string]*progress{}}
}

// BuildLogs implements apiserver.BuildRunObserver: a run's progress, and
// whether it ended (true too for a run this controller does not hold).
func (c *Controller) BuildLogs(project, run string) ([]byte, bool) {
	c.mu.Lock()
	p := c.runs[project+"/"+run]
	c.mu.Unlock()
	if p == nil {
		return nil, true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.log...), p.ended
}

// Run runs build runs until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	events, stop := c.cfg.Store.Watch()
	defer stop()
	tick := time.NewTicker(c.cfg.Resync)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	c.sync(ctx, &wg)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-events:
			switch {
			case ev.Kind == core.KindBuildRun && ev.Op == store.OpPut:
				c.consider(ctx, &wg, ev.Project, ev.Name)
			case ev.Kind == core.KindBuildRun && ev.Op == store.OpDelete:
				c.forget(ev.Project + "/" + ev.Name)
			case ev.Kind == core.KindProject || ev.Op == store.OpResync:
				c.sync(ctx, &wg)
			}
		case <-tick.C:
			c.sync(ctx, &wg)
		}
	}
}

// consider starts a run that was written, if it waits to be built and its
// project is active.
func (c *Controller) consider(ctx context.Context, wg *sync.WaitGroup, project, name string) {
	c.mu.Lock()
	held := c.runs[project+"/"+name]
	c.mu.Unlock()
	if held != nil {
		// The controller's own writes, mostly; or a cancel, which stops
		// the build (its progress stays).
		rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: project, Kind: core.KindBuildRun, Name: name})
		var run core.BuildRun
		if err == nil && json.Unmarshal(rec.Value, &run) == nil && run.Reason == core.ReasonBuildCanceled {
			held.cancel()
		}
		return
	}
	p, err := c.cfg.Store.GetProject(ctx, project)
	if err != nil || p.Status != core.ProjectActive {
		return
	}
	rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: project, Kind: core.KindBuildRun, Name: name})
	var run core.BuildRun
	if err != nil || json.Unmarshal(rec.Value, &run) != nil {
		return
	}
	c.start(ctx, wg, project, run)
}

// start builds run unless this controller holds it already or it is not
// waiting to be built (pending, or running when a server stopped).
func (c *Controller) start(ctx context.Context, wg *sync.WaitGroup, project string, run core.BuildRun) {
	if run.Status != core.BuildRunPending && run.Status != core.BuildRunRunning {
		return
	}
	key := project + "/" + run.Name
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.runs[key] != nil {
		return
	}
	rctx, cancel := context.WithCancel(ctx)
	pr := &progress{cancel: cancel}
	c.runs[key] = pr
	wg.Go(func() { c.build(rctx, project, run.Name, pr) })
}

// forget stops the build of a run that is gone and drops its progress.
func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.runs[key]; p != nil {
		p.cancel() // deleted while it builds: the build stops
		delete(c.runs, key)
	}
}

// sync starts the runs of active projects that are pending, or running
// but not here (the server stopped while they ran), and forgets the
// progress of runs that are gone.
func (c *Controller) sync(ctx context.Context, wg *sync.WaitGroup) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Warn("list projects", "err", err)
		return
	}
	exist := map[string]bool{}
	for _, p := range projects {
		if p.Status != core.ProjectActive {
			continue
		}
		recs, _, err := c.cfg.Store.List(ctx, p.ID, core.KindBuildRun, "", core.MaxBuildRunsPerProject+1)
		if err != nil {
			c.log.Warn("list build runs", "project", p.ID, "err", err)
			return
		}
		for _, rec := range recs {
			var run core.BuildRun
			if json.Unmarshal(rec.Value, &run) != nil {
				continue
			}
			key := p.ID + "/" + run.Name
			exist[key] = true
			if Expired(run, time.Now()) {
				if err := c.cfg.Store.Delete(ctx, core.Ref{Project: p.ID, Kind: core.KindBuildRun, Name: run.Name}); err != nil && !errors.Is(err, core.ErrNotFound) {
					c.log.Warn("delete an expired build run", "project", p.ID, "run", run.Name, "err", err)
				}
				continue
			}
			c.start(ctx, wg, p.ID, run)
		}
	}
	c.mu.Lock()
	var gone []string
	for key := range c.runs {
		if !exist[key] {
			gone = append(gone, key)
		}
	}
	c.mu.Unlock()
	for _, key := range gone {
		c.forget(key)
	}
}

// Code Engine deletes the runs of a build 3 hours after they succeed and
// a week after they fail (CE-BUILDS.md §3); stand-alone runs stay.
const (
	keepSucceeded = 3 * time.Hour
	keepFailed    = 7 * 24 * time.Hour
)

// Expired reports whether a run is past its retention at now.
func Expired(run core.BuildRun, now time.Time) bool {
	if run.BuildName == "" || run.CompletionTime == nil {
		return false
	}
	switch run.Status {
	case core.BuildRunSucceeded:
		return now.Sub(*run.CompletionTime) > keepSucceeded
	case core.BuildRunFailed:
		return now.Sub(*run.CompletionTime) > keepFailed
	}
	return false
}

// build runs one build run: it waits for a slot, marks the run running,
// builds, and records how it ended.
func (c *Controller) build(ctx context.Context, project, name string, p *progress) {
	ref := core.Ref{Project: project, Kind: core.KindBuildRun, Name: name}
	defer func() {
		p.mu.Lock()
		p.ended = true
		p.mu.Unlock()
	}()
	rec, err := c.cfg.Store.Get(ctx, ref)
	if err != nil {
		return
	}
	var queued core.BuildRun
	if json.Unmarshal(rec.Value, &queued) != nil {
		return
	}
	size := core.BuildSizes[queued.Spec.StrategySize]
	per := quota.Amount{Instances: 1, MilliCPU: size.MilliCPU, Memory: size.MemoryBytes, Ephemeral: size.DiskBytes}
	holder := "build-run/" + name
	if !c.acquire(ctx, ref, holder, per) {
		return
	}
	defer func() {
		c.cfg.Quota.Set(project, holder, quota.Amount{})
		<-c.sem
	}()
	if queued.SourceImage != "" {
		defer c.dropSource(ref, queued)
	}
	started := time.Now().UTC()
	run, ok := c.update(ctx, ref, func(r *core.BuildRun) bool {
		if r.Status != core.BuildRunPending && r.Status != core.BuildRunRunning {
			return false // canceled meanwhile
		}
		r.Status, r.Reason, r.StartTime, r.Message = core.BuildRunRunning, core.BuildRunRunning, &started, ""
		return true
	})
	if !ok {
		return // deleted or canceled meanwhile
	}
	req, reason, err := c.request(ctx, project, run)
	var res builder.Result
	if err == nil {
		req.Progress = p
		bctx, cancel := context.WithTimeout(ctx, time.Duration(run.Spec.Timeout)*time.Second)
		res, err = c.cfg.Builder.Build(bctx, req)
		timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case ctx.Err() != nil:
			return // the server stops (the run runs again at its start), or the run was canceled or deleted
		case err != nil && timedOut:
			reason = core.ReasonBuildTimeout
		case err != nil:
			reason = classify(err)
		}
	}
	ended := time.Now().UTC()
	c.update(ctx, ref, func(r *core.BuildRun) bool {
		if r.Status != core.BuildRunRunning {
			return false // canceled as it ended
		}
		r.CompletionTime = &ended
		if err != nil {
			r.Status, r.Reason, r.Message = core.BuildRunFailed, reason, message(err)
			fmt.Fprintf(p, "ERROR %s\n", r.Message)
			return true
		}
		r.Status, r.Reason, r.OutputDigest = core.BuildRunSucceeded, core.BuildRunSucceeded, res.Digest
		if g := res.Git; g != nil {
			r.GitCommitSHA, r.GitCommitAuthor, r.GitBranchName = g.SHA, g.Author, g.Branch
			if !g.Time.IsZero() {
				r.SourceTimestamp = &g.Time
			}
		}
		return true
	})
	c.log.Info("build run ended", "project", project, "run", name, "reason", reason, "took", ended.Sub(started).Round(time.Millisecond))
}

// dropSource deletes run's local source image unless the run is still to
// be built (the server stops while it runs: the next builds it), with the
// run's output credentials.
func (c *Controller) dropSource(ref core.Ref, run core.BuildRun) {
	if c.cfg.DeleteSource == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := c.cfg.Store.Get(ctx, ref)
	if err == nil {
		var now core.BuildRun
		if json.Unmarshal(rec.Value, &now) != nil || now.Status == core.BuildRunPending || now.Status == core.BuildRunRunning {
			return
		}
	} else if !errors.Is(err, core.ErrNotFound) {
		return
	}
	auth, failure := runenv.PullAuth(ctx, c.cfg.Store, ref.Project, run.Spec.OutputSecret)
	if failure != nil {
		auth = nil
	}
	if err := c.cfg.DeleteSource(ctx, run.SourceImage, auth); err != nil {
		c.log.Warn("delete a build run's source image", "project", ref.Project, "run", ref.Name, "err", err)
	}
}

// acquire waits for a build slot and for room in the project's quota for
// one build of size per, which it then holds as holder; a run that waits
// for its quota holds no slot meanwhile, and says what it waits for.
func (c *Controller) acquire(ctx context.Context, ref core.Ref, holder string, per quota.Amount) bool {
	said := ""
	for {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return false
		}
		if c.cfg.Quota.Claim(ref.Project, holder, per, 0, 1) == 1 {
			return true
		}
		<-c.sem
		if why := c.cfg.Quota.Why(ref.Project, per); why != said && why != "" {
			said = why
			if _, ok := c.update(ctx, ref, func(r *core.BuildRun) bool {
				r.Message = "waiting: " + why
				return r.Status == core.BuildRunPending || r.Status == core.BuildRunRunning
			}); !ok {
				return false
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(c.cfg.Tick):
		}
	}
}

// request is a run's spec as the builder takes it: the output secret's
// credentials, literal and config map arguments, and secret ones as build
// secrets; a reference that cannot be read fails the run with
// missing_secrets.
func (c *Controller) request(ctx context.Context, project string, run core.BuildRun) (builder.Request, string, error) {
	s := run.Spec
	auth, failure := runenv.PullAuth(ctx, c.cfg.Store, project, s.OutputSecret)
	if failure != nil {
		return builder.Request{}, core.ReasonMissingSecrets, fmt.Errorf("output_secret %s is not a registry secret of the project", s.OutputSecret)
	}
	size := core.BuildSizes[s.StrategySize]
	req := builder.Request{GitURL: s.SourceURL, GitRevision: s.SourceRevision, ContextDir: s.SourceContextDir, Dockerfile: s.StrategySpecFile,
		Output: s.OutputImage, Auth: auth, BuildArgs: map[string]string{}, Secrets: map[string][]byte{}, MilliCPU: size.MilliCPU, MemoryBytes: size.MemoryBytes}
	if s.SourceURL != "" && c.cfg.CheckSource != nil {
		if err := c.cfg.CheckSource(ctx, s.SourceURL); err != nil {
			return req, core.ReasonMissingCodeRepoAccess, fmt.Errorf("source_url: %w", err)
		}
	}
	if s.SourceSecret != "" {
		a, err := gitAuth(ctx, c.cfg.Store, project, s)
		if err != nil {
			return req, core.ReasonMissingSecrets, err
		}
		req.GitAuth = a
	}
	if run.SourceImage != "" {
		if c.cfg.FetchSource == nil {
			return req, core.ReasonBuildRunFailed, errors.New("this server reads no local sources")
		}
		files, err := c.cfg.FetchSource(ctx, run.SourceImage, auth)
		if err != nil {
			return req, classify(err), fmt.Errorf("read the local source %s: %w", run.SourceImage, err)
		}
		req.Files = files
	}
	for _, prm := range s.RunBuildParams {
		switch prm.Type {
		case core.EnvLiteral:
			req.BuildArgs[prm.Name] = prm.Value
		case core.EnvSecretKey:
			sec, err := runenv.Secret(ctx, c.cfg.Store, project, prm.Reference)
			v, ok := sec.Data[prm.Key]
			if err != nil || !ok {
				return req, core.ReasonMissingSecrets, fmt.Errorf("run_build_params %s: the project has no secret %s with key %s", prm.Name, prm.Reference, prm.Key)
			}
			req.Secrets[prm.Name] = []byte(v)
		case core.EnvConfigMapKey:
			cm, err := runenv.ConfigMap(ctx, c.cfg.Store, project, prm.Reference)
			v, ok := cm[prm.Key]
			if err != nil || !ok {
				return req, core.ReasonMissingSecrets, fmt.Errorf("run_build_params %s: the project has no config map %s with key %s", prm.Name, prm.Reference, prm.Key)
			}
			req.BuildArgs[prm.Name] = v
		}
	}
	return req, "", nil
}

// gitAuth is what the source secret of s gives its Git source: an SSH
// key for an ssh:// or git@ URL (an ssh_auth secret), basic auth for an
// http(s):// one (a basic_auth secret).
func gitAuth(ctx context.Context, st runenv.Store, project string, s core.BuildSpec) (*builder.GitAuth, error) {
	sec, err := runenv.Secret(ctx, st, project, s.SourceSecret)
	if err != nil {
		return nil, fmt.Errorf("source_secret %s: the project has no such secret", s.SourceSecret)
	}
	overSSH := strings.HasPrefix(s.SourceURL, "ssh://") || strings.HasPrefix(s.SourceURL, "git@")
	switch {
	case overSSH && sec.Format == core.FormatSSHAuth:
		return &builder.GitAuth{SSHKey: []byte(sec.Data["ssh_key"]), KnownHosts: sec.Data["known_hosts"]}, nil
	case !overSSH && sec.Format == core.FormatBasicAuth:
		return &builder.GitAuth{Username: sec.Data["username"], Password: sec.Data["password"]}, nil
	case overSSH:
		return nil, fmt.Errorf("source_secret %s is a %s secret; an SSH source URL takes an ssh_auth one", s.SourceSecret, sec.Format)
	}
	return nil, fmt.Errorf("source_secret %s is a %s secret; an HTTPS source URL takes a basic_auth one", s.SourceSecret, sec.Format)
}

// classify maps a build's failure to Code Engine's reason.
func classify(err error) string {
	msg := strings.ToLower(err.Error())
	switch {
	case errors.Is(err, builder.ErrSSHKey):
		return core.ReasonMissingSecrets
	case strings.Contains(msg, "failed to fetch remote") || strings.Contains(msg, "git stderr") || strings.Contains(msg, "no ssh key"):
		return core.ReasonMissingCodeRepoAccess
	case strings.Contains(msg, "401") || strings.Contains(msg, "403") || strings.Contains(msg, "unauthorized") ||
		strings.Contains(msg, "denied") || strings.Contains(msg, "authorization"):
		return core.ReasonMissingRegistryAccess
	case strings.Contains(msg, "git") && (strings.Contains(msg, "fetch") || strings.Contains(msg, "clone") || strings.Contains(msg, "repository") || strings.Contains(msg, "remote")):
		return core.ReasonMissingCodeRepoAccess
	}
	return core.ReasonBuildRunFailed
}

// message is a failure in one line, at most 500 characters.
func message(err error) string {
	m := strings.Join(strings.Fields(err.Error()), " ")
	if len(m) > 500 {
		m = m[:500] + "…"
	}
	return m
}

// update changes a run's record, reading it again when another write
// came between; false when the run is gone or change declines (false).
func (c *Controller) update(ctx context.Context, ref core.Ref, change func(*core.BuildRun) bool) (core.BuildRun, bool) {
	for range 10 {
		rec, err := c.cfg.Store.Get(ctx, ref)
		if err != nil {
			return core.BuildRun{}, false
		}
		var run core.BuildRun
		if err := json.Unmarshal(rec.Value, &run); err != nil {
			return run, false
		}
		if !change(&run) {
			return run, false
		}
		b, _ := json.Marshal(run)
		if _, err := c.cfg.Store.Replace(ctx, ref, b, rec.Version); err == nil {
			return run, true
		} else if !errors.Is(err, core.ErrConflict) {
			c.log.Warn("record a build run", "run", ref.Name, "err", err)
			return run, false
		}
	}
	return core.BuildRun{}, false
}
