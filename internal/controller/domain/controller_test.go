package domain

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/router"
	"github.com/coligo/coligo/internal/store"
	"github.com/coligo/coligo/internal/store/storetest"
	"github.com/coligo/coligo/internal/testcert"
)

const platform = "apps.test"

type fixture struct {
	t   *testing.T
	db  *store.DB
	rt  *router.Router
	c   *Controller
	ctx context.Context
	p   core.Project
}

func newFixture(t *testing.T) *fixture {
	db := storetest.Open(t)
	ctx := context.Background()
	p, err := db.CreateProject(ctx, core.Project{ID: "p1", Name: "p1", Status: core.ProjectActive}, func() string { return "s1" })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt := router.New(router.Config{Logger: log})
	rt.SetRoutes(map[string]router.Route{core.AppHost("web", p, platform): {Revision: "p1/web-00001", Public: true}})
	f := &fixture{t: t, db: db, rt: rt, ctx: ctx, p: p, c: New(Config{Store: db, Router: rt, Domain: platform, Logger: log, Resync: time.Hour})}
	f.put(core.KindApp, "web", core.App{Name: "web"})
	return f
}

func (f *fixture) put(kind, name string, v any) {
	f.t.Helper()
	b, _ := json.Marshal(v)
	ref := core.Ref{Project: f.p.ID, Kind: kind, Name: name}
	if rec, err := f.db.Get(f.ctx, ref); err == nil {
		_, err = f.db.Replace(f.ctx, ref, b, rec.Version)
		if err != nil {
			f.t.Fatal(err)
		}
		return
	}
	if _, err := f.db.Create(f.ctx, ref, b, 0); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) tlsSecret(name string, cert, key []byte) {
	f.put(core.KindSecret, name, core.Secret{Name: name, Format: core.FormatTLS, Data: core.SecretData{"tls_cert": string(cert), "tls_key": string(key)}})
}

func (f *fixture) mapping(name string) core.DomainMapping {
	f.t.Helper()
	rec, err := f.db.Get(f.ctx, core.Ref{Project: f.p.ID, Kind: core.KindDomainMapping, Name: name})
	if err != nil {
		f.t.Fatal(err)
	}
	var m core.DomainMapping
	json.Unmarshal(rec.Value, &m)
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestSync: each mapping's status says whether it is served and, when
// not, why; a served one's certificate is the router's for its name.
func TestSync(t *testing.T) {
	f := newFixture(t)
	good := testcert.Valid("www.example.com", "shop.example.com")
	f.tlsSecret("good", good.CertPEM, good.KeyPEM)
	f.tlsSecret("wrong-key", good.CertPEM, testcert.OtherKey())
	expired := testcert.Issue([]string{"old.example.com"}, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	f.tlsSecret("expired", expired.CertPEM, expired.KeyPEM)
	f.put(core.KindSecret, "generic", core.Secret{Name: "generic", Format: core.FormatGeneric, Data: core.SecretData{"a": "b"}})
	web := core.DomainComponent{Name: "web", ResourceType: "app_v2"}
	for _, m := range []core.DomainMapping{
		{Name: "www.example.com", Component: web, TLSSecret: "good"},
		{Name: "www.example.org", Component: web, TLSSecret: "good"},
		{Name: "shop.example.com", Component: web, TLSSecret: "wrong-key"},
		{Name: "old.example.com", Component: web, TLSSecret: "expired"},
		{Name: "gen.example.com", Component: web, TLSSecret: "generic"},
		{Name: "none.example.com", Component: web, TLSSecret: "missing"},
		{Name: "app.example.com", Component: core.DomainComponent{Name: "gone", ResourceType: "app_v2"}, TLSSecret: "good"},
	} {
		m.Status = core.DomainDeploying
		f.put(core.KindDomainMapping, m.Name, m)
	}
	f.c.Sync(f.ctx)
	for name, want := range map[string]struct{ status, reason, msg string }{
		"www.example.com":  {core.DomainReady, core.DomainReady, ""},
		"www.example.org":  {core.DomainFailed, core.DomainFailed, "secret good: the certificate is for www.example.com, shop.example.com, not www.example.org"},
		"shop.example.com": {core.DomainFailed, core.DomainFailed, "tls_key is not the key of the certificate"},
		"old.example.com":  {core.DomainFailed, core.DomainFailed, "the certificate expired at"},
		"gen.example.com":  {core.DomainFailed, core.DomainFailed, "secret generic is a generic secret, not a tls one"},
		"none.example.com": {core.DomainFailed, core.DomainFailed, "the project has no secret missing"},
		"app.example.com":  {core.DomainFailed, core.DomainReasonTargetMissing, "the project has no app gone"},
	} {
		m := f.mapping(name)
		if m.Status != want.status || m.Reason != want.reason || !strings.Contains(m.Message, want.msg) {
			t.Errorf("%s: %s/%s %q, want %s/%s %q", name, m.Status, m.Reason, m.Message, want.status, want.reason, want.msg)
		}
		if served := f.rt.Certificate(name) != nil; served != (want.status == core.DomainReady) {
			t.Errorf("%s: served %v", name, served)
		}
	}
	if c := f.rt.Certificate("www.example.com"); c.Leaf.SerialNumber.Cmp(good.Serial) != 0 {
		t.Error("www.example.com is served with another certificate")
	}
	if strings.Contains(f.mapping("shop.example.com").Message, "PRIVATE KEY") {
		t.Error("a status quotes the key")
	}
}

// TestRun: the controller follows a renewal of the secret in place, stops
// serving a certificate as it expires, and serves nothing of a
// soft-deleted project.
func TestRun(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	short := testcert.Issue([]string{"www.example.com"}, time.Now().Add(-time.Hour), time.Now().Add(1500*time.Millisecond))
	f.tlsSecret("tls", short.CertPEM, short.KeyPEM)
	f.put(core.KindDomainMapping, "www.example.com", core.DomainMapping{Name: "www.example.com", Component: core.DomainComponent{Name: "web", ResourceType: "app_v2"}, TLSSecret: "tls"})
	go f.c.Run(ctx)
	waitFor(t, "the mapping to be served", func() bool { return f.rt.Certificate("www.example.com") != nil })
	waitFor(t, "the certificate to expire", func() bool { return f.mapping("www.example.com").Status == core.DomainFailed })
	if f.rt.Certificate("www.example.com") != nil {
		t.Fatal("an expired certificate is still served")
	}
	renewed := testcert.Valid("www.example.com")
	f.tlsSecret("tls", renewed.CertPEM, renewed.KeyPEM)
	waitFor(t, "the renewal to be served", func() bool {
		c := f.rt.Certificate("www.example.com")
		return c != nil && c.Leaf.SerialNumber.Cmp(renewed.Serial) == 0
	})
	// The status follows what the router serves.
	waitFor(t, "the mapping ready again", func() bool {
		m := f.mapping("www.example.com")
		return m.Status == core.DomainReady && m.Message == ""
	})
	if _, err := f.db.UpdateProject(f.ctx, f.p.ID, 0, func(p *core.Project) error { p.Status = core.ProjectSoftDeleted; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a soft-deleted project's name to go", func() bool { return f.rt.Certificate("www.example.com") == nil })
}

// issuer issues test certificates valid for three hours from its clock's
// now less an hour, failing while fail is set.
type issuer struct {
	mu     sync.Mutex
	now    func() time.Time
	fail   error
	orders int
	last   testcert.Pair
}

func (i *issuer) Obtain(_ context.Context, name string) ([]byte, []byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.orders++
	if i.fail != nil {
		return nil, nil, i.fail
	}
	now := i.now()
	i.last = testcert.Issue([]string{name}, now.Add(-time.Hour), now.Add(2*time.Hour))
	return i.last.CertPEM, i.last.KeyPEM, nil
}

func (i *issuer) serial() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.last.Serial == nil {
		return ""
	}
	return i.last.Serial.String()
}

// clock is a test's time, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestACME: a mapping without a TLS secret is deploying while its
// certificate is on order, failed with the reason while the order fails
// (tried again after a backoff, not at once), ready once obtained (kept
// sealed in the project), renewed with a third of its life left while the
// old one is served, and its certificate goes with the mapping.
func TestACME(t *testing.T) {
	f := newFixture(t)
	clk := &clock{t: time.Now()}
	iss := &issuer{now: clk.Now, fail: errors.New("urn:ietf:params:acme:error:connection: no answer")}
	f.c = New(Config{Store: f.db, Router: f.rt, Domain: platform, Logger: slog.New(slog.DiscardHandler), Resync: time.Hour, Now: clk.Now, ACME: iss})
	noACME := New(Config{Store: f.db, Router: f.rt, Domain: platform, Logger: slog.New(slog.DiscardHandler), Resync: time.Hour})
	const name = "www.example.com"
	f.put(core.KindDomainMapping, name, core.DomainMapping{Name: name, Component: core.DomainComponent{Name: "web", ResourceType: "app_v2"}})
	noACME.Sync(f.ctx)
	if m := f.mapping(name); m.Status != core.DomainFailed || !strings.Contains(m.Message, "--acme-directory") {
		t.Fatalf("without ACME: %+v", m)
	}
	status := func() core.DomainMapping { f.c.Sync(f.ctx); return f.mapping(name) }
	waitFor(t, "the failed order", func() bool { return strings.Contains(status().Message, "no answer (tried 1 times") })
	if m := f.mapping(name); m.Status != core.DomainFailed || f.rt.Certificate(name) != nil {
		t.Fatalf("while the order fails: %+v", m)
	}
	for range 5 {
		f.c.Sync(f.ctx)
	}
	time.Sleep(50 * time.Millisecond)
	iss.mu.Lock()
	iss.fail = nil
	orders := iss.orders
	iss.mu.Unlock()
	if orders != 1 {
		t.Fatalf("%d orders before the backoff passed, want 1", orders)
	}
	clk.add(retryFirst)
	waitFor(t, "the certificate", func() bool { return status().Status == core.DomainReady })
	first := iss.serial()
	if c := f.rt.Certificate(name); c == nil || c.Leaf.SerialNumber.String() != first {
		t.Fatal("the obtained certificate is not served")
	}
	rec, err := f.db.Get(f.ctx, core.Ref{Project: f.p.ID, Kind: core.KindACMECertificate, Name: name})
	if err != nil || !strings.Contains(string(rec.Value), "PRIVATE KEY") {
		t.Fatalf("the certificate is not kept: %v", err)
	}

	clk.add(time.Hour + time.Minute) // a third of its life left
	waitFor(t, "the renewal", func() bool {
		f.c.Sync(f.ctx)
		return iss.serial() != first && f.rt.Certificate(name).Leaf.SerialNumber.String() == iss.serial()
	})
	if m := f.mapping(name); m.Status != core.DomainReady {
		t.Fatalf("after the renewal: %+v", m)
	}
	if err := f.db.Delete(f.ctx, core.Ref{Project: f.p.ID, Kind: core.KindDomainMapping, Name: name}); err != nil {
		t.Fatal(err)
	}
	f.c.Sync(f.ctx)
	if _, err := f.db.Get(f.ctx, core.Ref{Project: f.p.ID, Kind: core.KindACMECertificate, Name: name}); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("the certificate of a deleted mapping: %v", err)
	}
}
