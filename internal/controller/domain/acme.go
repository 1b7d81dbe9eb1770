package domain

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/store"
)

// errObtaining is a mapping whose first certificate is on order: it is
// deploying, not failed.
var errObtaining = errors.New("obtaining a certificate by ACME")

// ACME orders are tried again after a failure, waiting twice as long each
// time, from a minute to an hour.
const (
	retryFirst = time.Minute
	retryMax   = time.Hour
	orderLimit = 3 * time.Minute
)

// acmeState is the ACME orders under way or waiting to be tried again.
type acmeState struct {
	mu     sync.Mutex
	orders map[string]*order // by project/name
	done   chan struct{}     // an order ended
}

type order struct {
	running  bool
	err      error // of the last attempt
	failures int
	retryAt  time.Time
}

// renewAt is when a certificate is renewed: with a third of its life left,
// as Let's Encrypt advises.
func renewAt(c *tls.Certificate) time.Time {
	life := c.Leaf.NotAfter.Sub(c.Leaf.NotBefore)
	return c.Leaf.NotBefore.Add(life * 2 / 3)
}

// acmeCertificate is the certificate ACME gave a mapping's name, ordered
// when there is none that fits or it is due for renewal (the old one is
// served meanwhile). due is when to look again.
func (c *Controller) acmeCertificate(ctx context.Context, project, name string) (cert *tls.Certificate, due time.Time, err error) {
	if c.cfg.ACME == nil {
		return nil, due, fmt.Errorf("the mapping has no tls_secret, and this server gets no certificates by ACME (--acme-directory)")
	}
	now := c.cfg.Now()
	rec, err := c.cfg.Store.Get(ctx, core.Ref{Project: project, Kind: core.KindACMECertificate, Name: name})
	switch {
	case err == nil:
		var ac core.ACMECertificate
		if json.Unmarshal(rec.Value, &ac) == nil {
			if cert, err = core.DomainCertificate([]byte(ac.CertPEM), []byte(ac.KeyPEM["pem"]), name, now); err != nil {
				cert = nil // expired, or not for this name: order another
			} else if at := renewAt(cert); now.Before(at) {
				return cert, at, nil
			}
		}
	case !errors.Is(err, core.ErrNotFound):
		return nil, due, fmt.Errorf("read the certificate of %s: %w", name, err)
	}
	o := c.order(ctx, project, name, now)
	if cert != nil {
		return cert, o.retryAt, nil // renewing
	}
	if o.err != nil {
		return nil, o.retryAt, fmt.Errorf("ACME: %v (tried %d times; again from %s)", o.err, o.failures, o.retryAt.UTC().Format(time.RFC3339))
	}
	return nil, o.retryAt, errObtaining
}

// order starts an order for a name unless one is under way or waits out
// its backoff, and returns (a copy of) its state.
func (c *Controller) order(ctx context.Context, project, name string, now time.Time) order {
	c.acme.mu.Lock()
	defer c.acme.mu.Unlock()
	key := project + "/" + name
	o := c.acme.orders[key]
	if o == nil {
		o = &order{}
		c.acme.orders[key] = o
	}
	if !o.running && !now.Before(o.retryAt) {
		o.running = true
		go c.obtain(ctx, project, name, o)
	}
	return *o
}

// obtain runs an order and keeps its certificate, sealed in the project.
func (c *Controller) obtain(ctx context.Context, project, name string, o *order) {
	octx, cancel := context.WithTimeout(ctx, orderLimit)
	defer cancel()
	certPEM, keyPEM, err := c.cfg.ACME.Obtain(octx, name)
	if err == nil {
		err = c.keep(ctx, project, name, certPEM, keyPEM)
	}
	c.acme.mu.Lock()
	o.running = false
	if err != nil {
		o.err, o.failures = err, o.failures+1
		o.retryAt = c.cfg.Now().Add(min(retryFirst<<min(o.failures-1, 10), retryMax))
		c.log.Warn("ACME order failed", "project", project, "name", name, "failures", o.failures, "retry_at", o.retryAt, "err", err)
	} else {
		delete(c.acme.orders, project+"/"+name)
		c.log.Info("obtained a certificate by ACME", "project", project, "name", name)
	}
	c.acme.mu.Unlock()
	select {
	case c.acme.done <- struct{}{}:
	default:
	}
}

// keep stores a certificate obtained for a name.
func (c *Controller) keep(ctx context.Context, project, name string, certPEM, keyPEM []byte) error {
	b, err := json.Marshal(core.ACMECertificate{CertPEM: string(certPEM), KeyPEM: core.SecretData{"pem": string(keyPEM)}})
	if err != nil {
		return err
	}
	ref := core.Ref{Project: project, Kind: core.KindACMECertificate, Name: name}
	_, err = c.cfg.Store.Create(ctx, ref, b, 0)
	if errors.Is(err, core.ErrExists) {
		_, err = c.cfg.Store.Replace(ctx, ref, b, 0)
	}
	if err != nil {
		return fmt.Errorf("keep the certificate of %s: %w", name, err)
	}
	return nil
}

// dropOrphans deletes the ACME certificates of a project's names that no
// mapping without a TLS secret has any more, and forgets their orders.
func (c *Controller) dropOrphans(ctx context.Context, project string, acmeNames map[string]bool) {
	for rec, err := range store.Records(ctx, c.cfg.Store, project, core.KindACMECertificate) {
		if err != nil {
			c.log.Warn("list ACME certificates", "project", project, "err", err)
			return
		}
		if acmeNames[rec.Name] {
			continue
		}
		if err := c.cfg.Store.Delete(ctx, rec.Ref); err != nil && !errors.Is(err, core.ErrNotFound) {
			c.log.Warn("delete an ACME certificate", "project", project, "name", rec.Name, "err", err)
		}
	}
	c.acme.mu.Lock()
	defer c.acme.mu.Unlock()
	for key, o := range c.acme.orders {
		if p, name, _ := strings.Cut(key, "/"); p == project && !acmeNames[name] && !o.running {
			delete(c.acme.orders, key)
		}
	}
}
