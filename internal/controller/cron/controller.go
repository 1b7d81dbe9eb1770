package cron

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store"
)

// Store is what the controller needs of the store.
type Store interface {
	ListProjects(ctx context.Context) ([]core.Project, error)
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
	Create(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error)
	Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error)
	Delete(ctx context.Context, ref core.Ref) error
	Watch() (<-chan store.Event, func())
}

// Router serves the platform's own requests to a project's apps and
// functions.
type Router interface {
	Dispatch(w http.ResponseWriter, req *http.Request, project string)
	Routes(host, project string) bool
}

// Config configures a Controller.
type Config struct {
	Store  Store
	Router Router
	Domain string // the platform's domain, of functions' hosts
	Logger *slog.Logger
	Now    func() time.Time
	// Seconds takes schedules with a leading seconds field (a test aid:
	// --cron-seconds).
	Seconds bool
	// MaxJobRuns is the project quota of job runs: an event that finds it
	// full is lost, as in Code Engine.
	MaxJobRuns int
	// Budget bounds the retries of one tick's delivery (default a minute,
	// and never past the next tick).
	Budget time.Duration
	Resync time.Duration // default 30 s
	// Failpoint "cron-after-decide" kills the process with SIGKILL once a
	// tick is decided, before it is delivered (tests).
	Failpoint string
}

// Controller schedules and delivers.
type Controller struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex
	subs map[key]*sub
	wake chan struct{}
	wg   sync.WaitGroup
}

type key struct{ project, name string }

// sub is a subscription as scheduled.
type sub struct {
	project core.Project
	s       core.CronSubscription
	sched   core.Schedule
	next    time.Time // the next tick; zero: none
	busy    bool      // a delivery is under way
}

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Budget <= 0 {
		cfg.Budget = time.Minute
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "cron"), subs: map[key]*sub{}, wake: make(chan struct{}, 1)}
}

// Run schedules until ctx ends, then waits for the deliveries under way.
func (c *Controller) Run(ctx context.Context) {
	events, stop := c.cfg.Store.Watch()
	defer stop()
	defer c.wg.Wait()
	c.load(ctx)
	resync := time.NewTicker(c.cfg.Resync)
	defer resync.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var soon <-chan time.Time // a burst of changes is read once
	for {
		timer.Reset(c.fireDue(ctx))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.wake:
		case <-resync.C:
			c.load(ctx)
		case <-soon:
			soon = nil
			c.load(ctx)
		case e, ok := <-events:
			if !ok {
				return
			}
			switch e.Kind {
			case core.KindCronSubscription, core.KindProject, "":
				if soon == nil {
					soon = time.After(50 * time.Millisecond)
				}
			}
		}
	}
}

// fireDue starts the deliveries of the ticks that are due and returns the
// time to the next one.
func (c *Controller) fireDue(ctx context.Context) time.Duration {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	wait := time.Hour
	for _, s := range c.subs {
		if s.next.IsZero() || s.busy {
			continue
		}
		if !s.next.After(now) {
			tick := s.next
			s.next = s.sched.Next(tick)
			s.busy = true
			c.start(ctx, s, tick, 0)
		}
		if !s.next.IsZero() {
			wait = min(wait, s.next.Sub(now))
		}
	}
	return max(wait, time.Millisecond)
}

// start delivers a tick in the background (missed: how many earlier ticks
// it stands for). Called with c.mu held.
func (c *Controller) start(ctx context.Context, s *sub, tick time.Time, missed int) {
	p, cs, next := s.project, s.s, s.next
	c.wg.Go(func() {
		defer c.done(p.ID, cs.Name)
		st, version, err := c.state(ctx, p.ID, cs.Name)
		if err != nil {
			c.log.Warn("read a subscription's state", "project", p.ID, "subscription", cs.Name, "err", err)
			return
		}
		if missed > 0 {
			st.Record(core.CronDelivery{Tick: tick, Outcome: core.CronSkipped, Missed: missed, At: c.cfg.Now().UTC(),
				Message: fmt.Sprintf("%d earlier ticks were missed while the server was down; only this last one is delivered", missed)})
		}
		st.LastTick = tick
		st.Pending = &core.CronDelivery{Tick: tick, ID: newID(), Outcome: core.CronPending}
		if version, err = c.putState(ctx, p.ID, cs.Name, st, version); err != nil {
			c.log.Warn("decide a tick", "project", p.ID, "subscription", cs.Name, "tick", tick, "err", err)
			return
		}
		if c.cfg.Failpoint == "cron-after-decide" {
			c.log.Warn("failpoint: killed after deciding a tick", "subscription", cs.Name, "id", st.Pending.ID)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		c.deliver(ctx, p, cs, st, version, next)
	})
}

// done marks a subscription's delivery ended and wakes the loop.
func (c *Controller) done(project, name string) {
	c.mu.Lock()
	if s := c.subs[key{project, name}]; s != nil {
		s.busy = false
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// deliver makes a decided delivery and records its outcome. It retries
// within the budget, and not past next unless next is zero.
func (c *Controller) deliver(ctx context.Context, p core.Project, cs core.CronSubscription, st core.CronState, version uint64, next time.Time) {
	d := *st.Pending
	budget := c.cfg.Budget
	if !next.IsZero() {
		budget = min(budget, max(next.Sub(c.cfg.Now()), time.Second))
	}
	dctx, cancel := context.WithTimeout(ctx, budget)
	out := c.send(dctx, p, cs, d)
	cancel()
	if ctx.Err() != nil {
		return // stopping: the decided delivery is made again on start
	}
	out.At = c.cfg.Now().UTC()
	st.Pending = nil
	st.Record(out)
	if out.Outcome == core.CronFailed {
		c.log.Warn("cron delivery failed", "project", p.ID, "subscription", cs.Name, "tick", d.Tick, "attempts", out.Attempts, "message", out.Message)
	}
	if _, err := c.putState(ctx, p.ID, cs.Name, st, version); err != nil {
		c.log.Warn("record a delivery", "project", p.ID, "subscription", cs.Name, "tick", d.Tick, "err", err)
	}
}

// state reads a subscription's state and its version (0: none yet).
func (c *Controller) state(ctx context.Context, project, name string) (core.CronState, uint64, error) {
	var st core.CronState
	rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: project, Kind: core.KindCronState, Name: name})
	if errors.Is(err, core.ErrNotFound) {
		return st, 0, nil
	}
	if err != nil {
		return st, 0, err
	}
	return st, rec.Version, json.Unmarshal(rec.Value, &st)
}

// putState writes a subscription's state over the version read.
func (c *Controller) putState(ctx context.Context, project, name string, st core.CronState, version uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, err
	}
	ref := core.Ref{Project: project, Kind: core.KindCronState, Name: name}
	var rec core.Record
	if version == 0 {
		rec, err = c.cfg.Store.Create(ctx, ref, b, 0)
	} else {
		rec, err = c.cfg.Store.Replace(ctx, ref, b, version)
	}
	return rec.Version, err
}

// load reads every active project's subscriptions: new ones are scheduled,
// changed ones rescheduled, gone ones dropped; a decided delivery a stop
// left is made, and ticks missed meanwhile are caught up (the last one).
func (c *Controller) load(ctx context.Context) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Warn("list projects", "err", err)
		return
	}
	seen := map[key]bool{}
	for _, p := range projects {
		if p.Status != core.ProjectActive {
			continue // paused: nothing of a soft-deleted project is delivered
		}
		jobs := false
		for d, err := range store.All[core.CronSubscription](ctx, c.cfg.Store, p.ID, core.KindCronSubscription) {
			if err != nil {
				c.log.Warn("list cron subscriptions", "project", p.ID, "err", err)
				c.keep(p.ID, seen)
				break
			}
			k := key{p.ID, d.Value.Name}
			seen[k] = true
			jobs = jobs || d.Value.DestinationType == core.DestinationJob
			c.schedule(ctx, p, d.Value)
		}
		if jobs {
			c.pruneRuns(ctx, p.ID)
		}
	}
	c.mu.Lock()
	for k, s := range c.subs {
		if !seen[k] && !s.busy {
			delete(c.subs, k)
		}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// keep marks a project's subscriptions seen when they could not be read.
func (c *Controller) keep(project string, seen map[key]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.subs {
		if k.project == project {
			seen[k] = true
		}
	}
}

// schedule (re)schedules one subscription.
func (c *Controller) schedule(ctx context.Context, p core.Project, cs core.CronSubscription) {
	sched, err := core.ParseSchedule(cs.Schedule, cs.TimeZone, c.cfg.Seconds)
	if err != nil {
		c.log.Warn("a cron subscription's schedule does not parse", "project", p.ID, "subscription", cs.Name, "err", err)
		return
	}
	k := key{p.ID, cs.Name}
	c.mu.Lock()
	s := c.subs[k]
	if s != nil && (s.busy || s.s.ID == cs.ID && s.s.Schedule == cs.Schedule && s.s.TimeZone == cs.TimeZone) {
		s.project, s.s = p, cs // the same schedule: keep its place
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	st, _, err := c.state(ctx, p.ID, cs.Name)
	if err != nil {
		c.log.Warn("read a subscription's state", "project", p.ID, "subscription", cs.Name, "err", err)
		return
	}
	now := c.cfg.Now()
	s = &sub{project: p, s: cs, sched: sched}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.subs[k]; old != nil && old.busy {
		return
	}
	c.subs[k] = s
	if st.Pending != nil {
		// Decided before a stop, not delivered: deliver it now, once, with
		// the whole budget: the server is starting, and its router may not
		// serve the destination before the next tick is due (that tick
		// waits for this one).
		s.busy = true
		s.next = sched.Next(now)
		p, cs := p, cs
		c.wg.Go(func() {
			defer c.done(p.ID, cs.Name)
			st, version, err := c.state(ctx, p.ID, cs.Name)
			if err == nil && st.Pending != nil {
				c.deliver(ctx, p, cs, st, version, time.Time{})
			}
		})
		return
	}
	from := st.LastTick
	if from.IsZero() || cs.CreatedAt.After(from) {
		from = cs.CreatedAt // a new (or recreated) subscription starts at its creation
	}
	if p.RestoredAt.After(from) {
		from = p.RestoredAt // what was due while the project was soft-deleted is not delivered
	}
	s.next = sched.Next(from)
	missed, last := 0, time.Time{}
	for t := s.next; !t.IsZero() && !t.After(now) && missed < 100_000; t = sched.Next(t) {
		missed, last = missed+1, t
	}
	if missed > 0 {
		s.next = sched.Next(last)
		s.busy = true
		c.start(ctx, s, last, missed-1)
	}
}
