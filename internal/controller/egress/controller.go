package egress

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store"
)

// Store is what the controller needs of the store.
type Store interface {
	ListProjects(ctx context.Context) ([]core.Project, error)
	List(ctx context.Context, project, kind, after string, limit int) ([]core.Record, bool, error)
	Replace(ctx context.Context, ref core.Ref, value []byte, ifVersion uint64) (core.Record, error)
	Watch() (<-chan store.Event, func())
}

// Fence is what the controller needs of an engine: to set the CIDRs a
// project's instances may reach (0.0.0.0/0 is allow-all; none, no egress).
// It must be idempotent.
type Fence interface {
	SetEgress(ctx context.Context, project string, allowed []netip.Prefix) error
}

// Config configures a Controller.
type Config struct {
	Store  Store
	Fence  Fence // nil: nothing applies destinations (no engine, or one without a fence); they stay deploying
	Logger *slog.Logger
	Resync time.Duration // default one minute
}

// Controller applies allowed outbound destinations.
type Controller struct {
	cfg Config
	log *slog.Logger
}

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.Resync <= 0 {
		cfg.Resync = time.Minute
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "egress-controller")}
}

// Run applies every project's destinations at start, on each resync and
// whenever one of them changes, until ctx ends.
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
		case e, ok := <-events:
			if !ok {
				return
			}
			switch {
			case e.Op == store.OpResync:
				c.resync(ctx)
			case e.Kind == core.KindEgress:
				c.reconcile(ctx, e.Project)
			}
		}
	}
}

func (c *Controller) resync(ctx context.Context) {
	all, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Error("list projects", "err", err)
		return
	}
	for _, p := range all {
		if p.Usable() {
			c.reconcile(ctx, p.ID)
		}
	}
}

// Allowed is the fence a project's destinations ask for: their CIDR
// blocks (records that do not parse are skipped, and logged by the caller).
func Allowed(dests []core.Egress) []netip.Prefix {
	out := []netip.Prefix{}
	for _, d := range dests {
		if p, err := netip.ParsePrefix(d.CIDRBlock); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// reconcile applies one project's destinations, then marks those still
// deploying ready. A record written meanwhile keeps its status (the
// version check fails) and is applied on its own event.
func (c *Controller) reconcile(ctx context.Context, project string) {
	recs, _, err := c.cfg.Store.List(ctx, project, core.KindEgress, "", core.MaxEgressRules+1)
	if err != nil {
		if !errors.Is(err, core.ErrNotFound) && !errors.Is(err, core.ErrNotActive) {
			c.log.Error("list allowed outbound destinations", "project", project, "err", err)
		}
		return
	}
	dests := make([]core.Egress, len(recs))
	for i, rec := range recs {
		if err := json.Unmarshal(rec.Value, &dests[i]); err != nil {
			c.log.Error("decode an allowed outbound destination", "project", project, "err", err)
			return
		}
	}
	if c.cfg.Fence == nil {
		return // nothing applies them: they stay deploying, as they are
	}
	if err := c.cfg.Fence.SetEgress(ctx, project, Allowed(dests)); err != nil {
		c.log.Error("apply allowed outbound destinations", "project", project, "err", err)
		return
	}
	for i, rec := range recs {
		if dests[i].Status == core.EgressReady {
			continue
		}
		dests[i].Status = core.EgressReady
		b, _ := json.Marshal(dests[i])
		if _, err := c.cfg.Store.Replace(ctx, rec.Ref, b, rec.Version); err != nil && !errors.Is(err, core.ErrConflict) && !errors.Is(err, core.ErrNotFound) {
			c.log.Warn("mark an allowed outbound destination ready", "project", project, "name", rec.Name, "err", err)
		}
	}
}
