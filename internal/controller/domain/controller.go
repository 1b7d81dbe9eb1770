package domain

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// Issuer obtains a certificate for a name by ACME.
type Issuer interface {
	Obtain(ctx context.Context, name string) (certPEM, keyPEM []byte, err error)
}

// Router is what the controller needs of the router.
type Router interface {
	SetDomains(aliases map[string]string, certs map[string]*tls.Certificate)
}

// Config configures a Controller.
type Config struct {
	Store  Store
	Router Router
	Domain string // the platform's domain, of the apps' and functions' hosts
	Logger *slog.Logger
	Resync time.Duration    // default 30 s; a certificate's expiry wakes it too
	Now    func() time.Time // default time.Now
	// ACME obtains the certificates of mappings without a TLS secret; nil
	// when the server has no ACME server.
	ACME Issuer
}

// Controller serves custom domain mappings.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	acme acmeState
}

// New returns a Controller.
func New(cfg Config) *Controller {
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Controller{cfg: cfg, log: cfg.Logger.With("component", "domain-controller"), acme: acmeState{orders: map[string]*order{}, done: make(chan struct{}, 1)}}
}

// settle is how long a burst of changes is gathered into one sync.
const settle = 50 * time.Millisecond

// Run serves the mappings at start, on each resync, at the next expiry of
// a certificate served or renewal or retry of an ACME order, and shortly
// after a mapping, a secret, an app, a
// function or a project changes, until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	events, stop := c.cfg.Store.Watch()
	defer stop()
	next := c.Sync(ctx)
	timer := time.NewTimer(c.wait(next))
	defer timer.Stop()
	var soon <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			soon = time.After(0)
		case e, ok := <-events:
			if !ok {
				return
			}
			switch e.Kind {
			case core.KindDomainMapping, core.KindSecret, core.KindApp, core.KindFunction, core.KindProject, core.KindACMECertificate, "":
				if soon == nil {
					soon = time.After(settle)
				}
			}
		case <-soon:
			soon = nil
			next = c.Sync(ctx)
			timer.Reset(c.wait(next))
		case <-c.acme.done:
			if soon == nil {
				soon = time.After(0)
			}
		}
	}
}

// wait is the time to the next sync: the resync, or the next expiry.
func (c *Controller) wait(expiry time.Time) time.Duration {
	d := c.cfg.Resync
	if !expiry.IsZero() {
		d = min(d, expiry.Sub(c.cfg.Now())+time.Second)
	}
	return max(d, settle)
}

// Sync serves every active project's mappings and writes the statuses
// that changed. It returns when it is next due: the earliest expiry of a
// certificate served, or renewal or retry of an ACME order.
func (c *Controller) Sync(ctx context.Context) (next time.Time) {
	projects, err := c.cfg.Store.ListProjects(ctx)
	if err != nil {
		c.log.Error("list projects", "err", err)
		return time.Time{}
	}
	aliases := map[string]string{}
	var writes []func() // the statuses, written once the router serves what they say
	certs := map[string]*tls.Certificate{}
	for _, p := range projects {
		if p.Status != core.ProjectActive {
			continue // a soft-deleted project's names are kept for it, not served
		}
		mapped := map[string]bool{}
		for d, err := range store.All[core.DomainMapping](ctx, c.cfg.Store, p.ID, core.KindDomainMapping) {
			if err != nil {
				c.log.Error("list domain mappings", "project", p.ID, "err", err)
				mapped = nil // do not take a certificate from a mapping unread
				break
			}
			m := d.Value
			mapped[m.Name] = m.TLSSecret == ""
			cert, due, reason, err := c.check(ctx, p, m)
			next = earliest(next, due)
			status, msg := core.DomainReady, ""
			switch {
			case errors.Is(err, errObtaining):
				status, reason, msg = core.DomainDeploying, core.DomainDeploying, err.Error()
			case err != nil:
				status, msg = core.DomainFailed, err.Error()
			default:
				aliases[m.Name] = core.AppHost(m.Component.Name, p, c.cfg.Domain)
				certs[m.Name] = cert
				next = earliest(next, cert.Leaf.NotAfter)
			}
			rec := d.Record
			writes = append(writes, func() { c.setStatus(ctx, rec, m, status, reason, msg) })
		}
		if mapped != nil {
			c.dropOrphans(ctx, p.ID, mapped)
		}
	}
	c.cfg.Router.SetDomains(aliases, certs)
	for _, w := range writes {
		w()
	}
	return next
}

// earliest is the earlier of two times, the zero time being none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// check finds a mapping's target and its certificate; an error says why
// the mapping fails, with its reason (errObtaining: not yet). due is when
// an ACME certificate is next to be renewed or ordered again.
func (c *Controller) check(ctx context.Context, p core.Project, m core.DomainMapping) (cert *tls.Certificate, due time.Time, reason string, err error) {
	kind := core.DomainTargetKinds[m.Component.ResourceType]
	if _, err := c.cfg.Store.Get(ctx, core.Ref{Project: p.ID, Kind: kind, Name: m.Component.Name}); err != nil {
		if errors.Is(err, core.ErrNotFound) {
			return nil, due, core.DomainReasonTargetMissing, fmt.Errorf("the project has no %s %s", kind, m.Component.Name)
		}
		return nil, due, core.DomainFailed, fmt.Errorf("read the %s: %w", kind, err)
	}
	if m.TLSSecret == "" {
		cert, due, err = c.acmeCertificate(ctx, p.ID, m.Name)
	} else {
		cert, err = Certificate(ctx, c.cfg.Store, p.ID, m, c.cfg.Now())
	}
	if err != nil {
		return nil, due, core.DomainFailed, err
	}
	return cert, due, core.DomainReady, nil
}

// Getter reads a record.
type Getter interface {
	Get(ctx context.Context, ref core.Ref) (core.Record, error)
}

// Certificate reads a mapping's TLS secret and checks its certificate for
// the mapping's name at now. The API checks a mapping with it as it is
// written, the controller as it serves it.
func Certificate(ctx context.Context, st Getter, project string, m core.DomainMapping, now time.Time) (*tls.Certificate, error) {
	rec, err := st.Get(ctx, core.Ref{Project: project, Kind: core.KindSecret, Name: m.TLSSecret})
	if errors.Is(err, core.ErrNotFound) {
		return nil, fmt.Errorf("the project has no secret %s", m.TLSSecret)
	}
	if err != nil {
		return nil, fmt.Errorf("read secret %s: %w", m.TLSSecret, err)
	}
	var sec core.Secret
	if err := json.Unmarshal(rec.Value, &sec); err != nil {
		return nil, fmt.Errorf("decode secret %s: %w", m.TLSSecret, err)
	}
	if sec.Format != core.FormatTLS {
		return nil, fmt.Errorf("secret %s is a %s secret, not a tls one", m.TLSSecret, sec.Format)
	}
	cert, err := core.DomainCertificate([]byte(sec.Data["tls_cert"]), []byte(sec.Data["tls_key"]), m.Name, now)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", m.TLSSecret, err)
	}
	return cert, nil
}

// setStatus writes a mapping's status when it changed. A mapping written
// meanwhile keeps its own (the version check fails) and is checked again
// on its event.
func (c *Controller) setStatus(ctx context.Context, rec core.Record, m core.DomainMapping, status, reason, msg string) {
	if m.Status == status && m.Reason == reason && m.Message == msg {
		return
	}
	if status == core.DomainFailed {
		c.log.Warn("a domain mapping fails", "project", rec.Project, "name", m.Name, "reason", reason, "message", msg)
	}
	m.Status, m.Reason, m.Message = status, reason, msg
	b, _ := json.Marshal(m)
	if _, err := c.cfg.Store.Replace(ctx, rec.Ref, b, rec.Version); err != nil && !errors.Is(err, core.ErrConflict) && !errors.Is(err, core.ErrNotFound) {
		c.log.Warn("write a domain mapping's status", "project", rec.Project, "name", m.Name, "err", err)
	}
}
