package tokenrefresh

import (
	"context"
	"log/slog"
	"time"

	"github.com/coligo/coligo/internal/computetoken"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
)

// Store is what the refresher needs of the store.
type Store interface {
	ListProjects(ctx context.Context) ([]core.Project, error)
}

// Engine is what the refresher needs of the engine.
type Engine interface {
	List(ctx context.Context, project string, match map[string]string) ([]engine.Instance, error)
	engine.FileUpdater
}

// Issuer issues tokens.
type Issuer interface {
	Issue(ctx context.Context, project, subject string, now time.Time, life time.Duration) (string, error)
}

// Config configures a Controller.
type Config struct {
	Store  Store
	Engine Engine
	Tokens Issuer
	Life   time.Duration // of a token; default computetoken.DefaultLife
	Logger *slog.Logger
	Now    func() time.Time
}

// Controller renews tokens.
type Controller struct {
	cfg Config
	log *slog.Logger
}

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.Life <= 0 {
		cfg.Life = computetoken.DefaultLife
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "token-refresh")}
}

// Run renews every sixth of a token's life until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	tick := time.NewTicker(c.cfg.Life / 6)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			c.Refresh(ctx)
		}
	}
}

// Refresh gives each labelled instance of the active projects a fresh
// token and returns how many it renewed. An instance that goes meanwhile
// is skipped; its project's next round tries the others again.
func (c *Controller) Refresh(ctx context.Context) int {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Warn("list projects", "err", err)
		return 0
	}
	n := 0
	for _, p := range projects {
		if p.Status != core.ProjectActive {
			continue // a soft-deleted project's instances are stopped
		}
		ins, err := c.cfg.Engine.List(ctx, p.ID, nil)
		if err != nil {
			c.log.Warn("list instances", "project", p.ID, "err", err)
			continue
		}
		for _, in := range ins {
			subject := in.Labels[computetoken.Label]
			if subject == "" || in.State == engine.StateExited {
				continue
			}
			tok, err := c.cfg.Tokens.Issue(ctx, p.ID, subject, c.cfg.Now(), c.cfg.Life)
			if err == nil {
				err = c.cfg.Engine.UpdateFile(ctx, p.ID, in.ID, computetoken.Dir, computetoken.File, []byte(tok))
			}
			if err != nil {
				c.log.Warn("renew a compute resource token", "project", p.ID, "instance", in.ID, "err", err)
				continue
			}
			n++
		}
	}
	return n
}
