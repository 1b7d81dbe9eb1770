package project

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store"
)

// Store is what the controller needs of the store.
type Store interface {
	GetProject(ctx context.Context, id string) (core.Project, error)
	ListProjects(ctx context.Context) ([]core.Project, error)
	UpdateProject(ctx context.Context, id string, ifVersion uint64, fn func(*core.Project) error) (core.Project, error)
	DestroyDEK(ctx context.Context, projectID string) error
	PurgeProject(ctx context.Context, projectID string) error
	CompactPending(ctx context.Context) (bool, error)
	AppendAudit(ctx context.Context, ev core.AuditEvent, name string) error
	Compact(ctx context.Context) error
	Create(ctx context.Context, ref core.Ref, value []byte, limit int) (core.Record, error)
	Watch() (<-chan store.Event, func())
}

// Purger removes everything an engine holds of a project.
type Purger interface {
	Purge(ctx context.Context, project string) error
}

// Config configures a Controller.
type Config struct {
	Store  Store
	Engine Purger // nil when no engine is configured
	Logger *slog.Logger
	// Resync is how often every project is looked at, which is also how
	// late a reaper may be; default one minute.
	Resync time.Duration
	Now    func() time.Time
	// Failpoint, when set to a step name, kills the process with SIGKILL
	// right after that step, to prove that the step resumes after a crash.
	// Only tests set it (COLIGO_FAILPOINT).
	Failpoint string
}

// Controller converges projects to their desired state.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	retry chan struct{}
}

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "project-controller"), retry: make(chan struct{}, 1)}
}

// Run reconciles until ctx ends: every project at start and on each resync,
// and a project whenever the store reports a change to it.
func (c *Controller) Run(ctx context.Context) {
	events, stop := c.cfg.Store.Watch()
	defer stop()
	c.resync(ctx)
	tick := time.NewTicker(c.cfg.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.resync(ctx)
		case <-c.retry:
			c.resync(ctx)
		case e, ok := <-events:
			if !ok {
				return
			}
			switch {
			case e.Op == store.OpResync:
				c.resync(ctx)
			case e.Kind == core.KindProject && e.Op == store.OpPut:
				p, err := c.cfg.Store.GetProject(ctx, e.Project)
				if err != nil {
					continue // deleted since
				}
				c.reconcile(ctx, p)
			}
		}
	}
}

func (c *Controller) resync(ctx context.Context) {
	if pending, err := c.cfg.Store.CompactPending(ctx); err == nil && pending {
		c.compact(ctx)
	}
	all, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Error("list projects", "err", err)
		return
	}
	for _, p := range all {
		c.reconcile(ctx, p)
	}
}

// allowAll gives a new project the allowed outbound destination every Code
// Engine project starts with: allow-all, 0.0.0.0/0.
func (c *Controller) allowAll(ctx context.Context, project string) error {
	b, err := json.Marshal(core.Egress{Name: core.AllowAll, Type: core.EgressCIDR, CIDRBlock: "0.0.0.0/0", Status: core.EgressDeploying, CreatedAt: c.cfg.Now().UTC()})
	if err != nil {
		return err
	}
	if _, err := c.cfg.Store.Create(ctx, core.Ref{Project: project, Kind: core.KindEgress, Name: core.AllowAll}, b, 0); err != nil && !errors.Is(err, core.ErrExists) {
		return fmt.Errorf("default egress of project %s: %w", project, err)
	}
	return nil
}

// reconcile takes one step of the project state machine; each step is
// idempotent, so it is safe to repeat after a crash.
func (c *Controller) reconcile(ctx context.Context, p core.Project) {
	var err error
	switch p.Status {
	case core.ProjectCreating:
		// Code Engine's default egress, before the project is active: a
		// crash in between makes it again (it exists: fine).
		err = c.allowAll(ctx, p.ID)
		if err != nil {
			break
		}
		_, err = c.cfg.Store.UpdateProject(ctx, p.ID, p.Version, func(p *core.Project) error {
			p.Status = core.ProjectActive
			return nil
		})
		if err == nil {
			c.log.Info("project active", "project", p.ID)
		}
	case core.ProjectSoftDeleted:
		if !c.cfg.Now().Before(p.HardDeleteAt) {
			c.log.Info("retention ended; hard-deleting project", "project", p.ID)
			_, err = c.cfg.Store.UpdateProject(ctx, p.ID, p.Version, func(p *core.Project) error {
				p.Status = core.ProjectHardDeleting
				return nil
			})
		}
	case core.ProjectHardDeleting:
		err = c.hardDelete(ctx, p)
	}
	if err != nil && ctx.Err() == nil {
		c.log.Error("reconcile project; retrying", "project", p.ID, "status", p.Status, "err", err)
		// Retry a failed step soon rather than at the next resync.
		time.AfterFunc(time.Second, func() {
			select {
			case c.retry <- struct{}{}:
			default:
			}
		})
	}
}

// hardDelete crypto-shreds a project: the DEK first, so that nothing of the
// project can be read even if a later step never runs, then what the engine
// holds (instances, images, network, logs), then every record, then
// compaction so that no freed page keeps old bytes.
func (c *Controller) hardDelete(ctx context.Context, p core.Project) error {
	if err := c.cfg.Store.DestroyDEK(ctx, p.ID); err != nil {
		return err
	}
	c.log.Info("project data key destroyed", "project", p.ID)
	// Recorded after the shred, so a crash before it repeats it rather than
	// leaves it out.
	if err := c.cfg.Store.AppendAudit(ctx, core.AuditEvent{Time: c.cfg.Now(), Actor: "system", Action: core.AuditProjectShred, ProjectID: p.ID}, ""); err != nil {
		return err
	}
	c.failpoint("hard-delete-after-dek")
	if c.cfg.Engine != nil {
		if err := c.cfg.Engine.Purge(ctx, p.ID); err != nil {
			return fmt.Errorf("purge engine objects: %w", err)
		}
		c.log.Info("project instances, images, network and logs removed", "project", p.ID)
	}
	if err := c.cfg.Store.PurgeProject(ctx, p.ID); err != nil {
		return err
	}
	c.failpoint("hard-delete-after-purge")
	c.compact(ctx)
	c.log.Info("project hard-deleted", "project", p.ID)
	return nil
}

func (c *Controller) compact(ctx context.Context) {
	if err := c.cfg.Store.Compact(ctx); err != nil {
		c.log.Error("compact store", "err", err)
	}
}

func (c *Controller) failpoint(step string) {
	if c.cfg.Failpoint != step {
		return
	}
	c.log.Warn("failpoint reached; killing the process", "step", step)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
