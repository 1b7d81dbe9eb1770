package keys

import (
	"context"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/coligo/coligo/internal/core"
)

// Store is what the controller needs of the store.
type Store interface {
	ListProjects(ctx context.Context) ([]core.Project, error)
	RewrapDEK(ctx context.Context, projectID string) (bool, error)
	Rotating(ctx context.Context) ([]string, error)
	ResealProject(ctx context.Context, projectID string, batch int, progress func(done int)) (int, error)
	KeysInUse(ctx context.Context) (map[string]map[string]bool, error)
	AppendAudit(ctx context.Context, ev core.AuditEvent, name string) error
}

// Config configures a Controller.
type Config struct {
	Store     Store
	Logger    *slog.Logger
	Every     time.Duration // how often projects are checked; default 10s
	Failpoint string        // "rewrap-after-one", "reseal-after-batch": SIGKILL midway (tests)
	Batch     int           // records sealed again per transaction; default 100
	// Retire deletes a provider's old root key versions that no DEK uses
	// (the local root key's archive); nil when nothing is to retire.
	Retire func(provider string, inUse map[string]bool) ([]string, error)
}

// Controller re-wraps data keys after root key rotations.
type Controller struct {
	cfg       Config
	log       *slog.Logger
	kick      chan struct{}
	lastInUse map[string]bool // local root key versions in use at the last pass
}

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.Every <= 0 {
		cfg.Every = 10 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "key-controller"), kick: make(chan struct{}, 1)}
}

// Kick asks for a pass now (after a rotation).
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run re-wraps until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	for {
		c.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-time.After(c.cfg.Every):
		}
	}
}

// pass finishes the data key rotations in progress, then re-wraps the data
// key of every project whose provider has moved to a new key version.
func (c *Controller) pass(ctx context.Context) {
	c.reseal(ctx)
	c.rewrap(ctx)
	c.retire(ctx)
}

// retire removes the root key versions that no stored DEK needs any more.
func (c *Controller) retire(ctx context.Context) {
	if c.cfg.Retire == nil {
		return
	}
	inUse, err := c.cfg.Store.KeysInUse(ctx)
	if err != nil {
		c.log.Warn("list root keys in use", "err", err)
		return
	}
	// A version must be unused in two passes in a row: a DEK wrapped by it
	// just before a rotation may not have been stored at the first.
	keep := map[string]bool{}
	for id := range inUse["local"] {
		keep[id] = true
	}
	for id := range c.lastInUse {
		keep[id] = true
	}
	c.lastInUse = inUse["local"]
	retired, err := c.cfg.Retire("local", keep)
	if err != nil {
		c.log.Warn("retire old root keys", "err", err)
	}
	for _, id := range retired {
		c.log.Info("old root key version deleted: no data key needs it", "key_id", id)
		ev := core.AuditEvent{Time: time.Now(), Actor: "coligo", Action: core.AuditKeyRetire, Target: "local/" + id}
		if err := c.cfg.Store.AppendAudit(ctx, ev, ""); err != nil {
			c.log.Warn("record audit event", "err", err)
		}
	}
}

// reseal seals again the records of every project whose data key rotation
// is in progress, begun by the API or interrupted by a crash.
func (c *Controller) reseal(ctx context.Context) {
	projects, err := c.cfg.Store.Rotating(ctx)
	if err != nil {
		c.log.Warn("list data key rotations", "err", err)
		return
	}
	for _, p := range projects {
		start := time.Now()
		n, err := c.cfg.Store.ResealProject(ctx, p, c.cfg.Batch, func(int) {
			if c.cfg.Failpoint == "reseal-after-batch" {
				c.log.Warn("failpoint: killing the server after one batch")
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		})
		if err != nil {
			c.log.Warn("seal records under the new data key", "project", p, "done", n, "err", err)
			continue
		}
		c.log.Info("data key rotation done", "project", p, "records", n, "took", time.Since(start))
	}
}

// rewrap re-wraps the data key of every project whose provider has moved to
// a new key version. A provider that cannot answer now is tried again on
// the next pass.
func (c *Controller) rewrap(ctx context.Context) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Warn("list projects", "err", err)
		return
	}
	for _, p := range projects {
		if p.Status == core.ProjectHardDeleting {
			continue
		}
		changed, err := c.cfg.Store.RewrapDEK(ctx, p.ID)
		if err != nil {
			c.log.Debug("rewrap data key", "project", p.ID, "err", err)
			continue
		}
		if !changed {
			continue
		}
		c.log.Info("data key wrapped by the new root key version", "project", p.ID, "provider", p.Encryption.Provider)
		ev := core.AuditEvent{Time: time.Now(), Actor: "coligo", Action: core.AuditKeyRewrap, ProjectID: p.ID, Target: p.Encryption.Provider}
		if err := c.cfg.Store.AppendAudit(ctx, ev, ""); err != nil {
			c.log.Warn("record audit event", "err", err)
		}
		if c.cfg.Failpoint == "rewrap-after-one" {
			c.log.Warn("failpoint: killing the server after one re-wrap")
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
