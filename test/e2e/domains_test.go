package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
	"github.com/coligo/coligo/internal/testcert"
)

// TestDomainMapping: a name of the user's is served as an app over HTTPS,
// by SNI with its TLS secret's certificate, and over HTTP; a renewal of the
// secret in place and a new target take effect without a restart; a
// certificate that does not fit is refused as the mapping is written, and
// fails a served mapping with its reason once it stops fitting; a name is
// one project's only; deleting the app deletes its mappings.
func TestDomainMapping(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "domains")
	deployApp(t, c, p.ID, testApp("web", image))
	v2 := testApp("web2", image)
	v2.RunEnvVariables[0].Value = "v2"
	deployApp(t, c, p.ID, v2)
	const name = "www.example.com"
	putTLS := func(secret string, pair testcert.Pair) {
		t.Helper()
		data := map[string]string{"tls_cert": string(pair.CertPEM), "tls_key": string(pair.KeyPEM)}
		if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: secret, Format: "tls", Data: data}); err == nil {
			return
		} else if !isStatus(err, 409) {
			t.Fatal(err)
		}
		if _, err := c.ReplaceSecret(ctx, p.ID, secret, "*", api.SecretReplace{Format: "tls", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	first := testcert.Valid(name)
	putTLS("www-tls", first)
	putTLS("other-tls", testcert.Valid("www.example.org"))
	web := api.DomainMappingComponent{Name: "web", ResourceType: "app_v2"}

	// Refused as written, naming the field, and nothing created.
	for _, tc := range []struct {
		what  string
		in    api.DomainMappingPrototype
		field string
	}{
		{"a certificate for another name", api.DomainMappingPrototype{Name: name, Component: web, TLSSecret: "other-tls"}, "is for www.example.org, not www.example.com"},
		{"a secret that is not there", api.DomainMappingPrototype{Name: name, Component: web, TLSSecret: "nope"}, "no secret nope"},
		{"the registry secret", api.DomainMappingPrototype{Name: name, Component: web, TLSSecret: "regcred"}, "not a tls one"},
		{"an app that is not there", api.DomainMappingPrototype{Name: name, Component: api.DomainMappingComponent{Name: "nope", ResourceType: "app_v2"}, TLSSecret: "www-tls"}, "no app nope"},
		{"a job", api.DomainMappingPrototype{Name: name, Component: api.DomainMappingComponent{Name: "web", ResourceType: "job_v2"}, TLSSecret: "www-tls"}, "app_v2 or function_v2"},
		{"another tenant's system name", api.DomainMappingPrototype{Name: "web.other.localhost", Component: web, TLSSecret: "www-tls"}, "platform's own domain"},
		{"not a domain name", api.DomainMappingPrototype{Name: "Bad_Name", Component: web, TLSSecret: "www-tls"}, "not a fully qualified domain name"},
	} {
		_, err := c.CreateDomainMapping(ctx, p.ID, tc.in)
		if !isStatus(err, 400) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want 400 with %q", tc.what, err, tc.field)
		}
	}
	if l, err := c.ListDomainMappings(ctx, p.ID, api.ListOptions{}); err != nil || len(l.DomainMappings) != 0 {
		t.Fatalf("refused mappings left something: %+v %v", l, err)
	}

	dm, err := c.CreateDomainMapping(ctx, p.ID, api.DomainMappingPrototype{Name: name, Component: web, TLSSecret: "www-tls"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dm.CnameTarget, "custom.") || dm.ResourceType != "domain_mapping_v2" || !dm.UserManaged || dm.Visibility != "custom" {
		t.Errorf("created: %+v", dm)
	}
	waitMapping(t, c, p.ID, name, "ready")

	pool := x509.NewCertPool()
	pool.AddCert(first.CA)
	fetch := func(roots *x509.CertPool) (serial string, body string, err error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}, ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, s.https)
			}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + name + "/env")
		if err != nil {
			return "", "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), string(b), nil
	}
	serial, body, err := fetch(pool)
	if err != nil || serial != first.Serial.String() || !strings.Contains(body, "VERSION=v1") {
		t.Fatalf("HTTPS by SNI: serial %s (want %s) %q %v", serial, first.Serial, body, err)
	}
	if code, body, err := routerGet(s, &api.App{Endpoint: "http://" + name}, "/env"); err != nil || code != 200 || !strings.Contains(body, "VERSION=v1") {
		t.Errorf("plain HTTP: %d %q %v", code, body, err)
	}

	// http_option redirected: plain HTTP to the app and its domains is sent
	// to HTTPS.
	if _, err := c.UpdateApp(ctx, p.ID, "web", "*", map[string]any{"http_option": "redirected"}); err != nil {
		t.Fatal(err)
	}
	_, httpsPort, _ := net.SplitHostPort(s.https)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 30 * time.Second}
	waitServed(t, func() bool {
		req, _ := http.NewRequest("GET", "http://"+s.router+"/env?x=1", nil)
		req.Host = name
		resp, err := noFollow.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 308 && resp.Header.Get("Location") == "https://"+name+":"+httpsPort+"/env?x=1"
	}, "the redirect to HTTPS")
	if _, body, err := fetch(pool); err != nil || !strings.Contains(body, "VERSION=v1") {
		t.Errorf("HTTPS of a redirecting app: %q %v", body, err)
	}
	if _, err := c.UpdateApp(ctx, p.ID, "web", "*", map[string]any{"http_option": "sometimes"}); !isStatus(err, 400) || !strings.Contains(err.Error(), "http_option") {
		t.Errorf("a bad http_option: %v", err)
	}

	// The name is this project's: another's claim is refused.
	other := activeProject(t, c, "domains-other")
	t.Cleanup(func() { c.DeleteProject(context.Background(), other.ID, true) })
	if _, err := c.CreateDomainMapping(ctx, other.ID, api.DomainMappingPrototype{Name: name, Component: web, TLSSecret: "www-tls"}); !isStatus(err, 409) {
		t.Errorf("another project's claim of the name: %v", err)
	}

	// Another project's writer and this project's reader change nothing.
	tok, err := c.CreateToken(ctx, api.TokenPrototype{Name: "intruder", ProjectID: other.ID, Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := c.CreateToken(ctx, api.TokenPrototype{Name: "reader", ProjectID: p.ID, Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	for who, tc := range map[string]*api.Client{"another project's writer": s.client(tok.Token), "a reader": s.client(reader.Token)} {
		_, err := tc.UpdateDomainMapping(ctx, p.ID, name, "*", api.DomainMappingPatch{TLSSecret: "other-tls"})
		wantForbidden(t, err, who+" patches")
		wantForbidden(t, tc.DeleteDomainMapping(ctx, p.ID, name), who+" deletes")
		_, err = tc.CreateDomainMapping(ctx, p.ID, api.DomainMappingPrototype{Name: "evil.example.com", Component: web, TLSSecret: "www-tls"})
		wantForbidden(t, err, who+" creates")
	}
	if _, err := s.client(tok.Token).GetDomainMapping(ctx, p.ID, name); err == nil {
		t.Error("another project's token reads the mapping")
	}
	if _, err := c.CreateDomainMapping(ctx, p.ID, api.DomainMappingPrototype{Name: strings.Repeat("a.", 100_000) + "com", Component: web, TLSSecret: "www-tls"}); !isStatus(err, 400) {
		t.Errorf("a 200 kB name: %v", err)
	}
	_, cli := s.adminCLI(t, p.Name)
	if out := cli("dm", "get", "--dn", name); !strings.Contains(out, "Target Name:   web") || !strings.Contains(out, "CNAME:") {
		t.Errorf("dm get:\n%s", out)
	}
	if out := cli("domainmapping", "list"); !strings.Contains(out, name) || !strings.Contains(out, "ready") {
		t.Errorf("dm list:\n%s", out)
	}

	// A renewal in place, and a new target, without a restart.
	renewed := testcert.Valid(name)
	putTLS("www-tls", renewed)
	pool.AddCert(renewed.CA)
	waitServed(t, func() bool { serial, _, err := fetch(pool); return err == nil && serial == renewed.Serial.String() }, "the renewed certificate")
	if _, err := c.UpdateDomainMapping(ctx, p.ID, name, "*", api.DomainMappingPatch{Component: &api.DomainMappingComponent{Name: "web2", ResourceType: "app_v2"}}); err != nil {
		t.Fatal(err)
	}
	waitServed(t, func() bool { _, body, err := fetch(pool); return err == nil && strings.Contains(body, "VERSION=v2") }, "the new target")
	if _, err := c.UpdateDomainMapping(ctx, p.ID, name, "*", api.DomainMappingPatch{TLSSecret: "other-tls"}); !isStatus(err, 400) {
		t.Errorf("a patch to a certificate for another name: %v", err)
	}

	// A secret changed under a served mapping to a certificate that does not
	// fit: the mapping fails with the reason, and the name has no
	// certificate any more.
	putTLS("www-tls", testcert.Valid("elsewhere.example.com"))
	m := waitMapping(t, c, p.ID, name, "failed")
	if !strings.Contains(m.StatusDetails.Message, "not www.example.com") {
		t.Errorf("failed mapping's reason: %+v", m.StatusDetails)
	}
	if _, _, err := fetch(nil); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("a failed mapping still gets a TLS handshake: %v", err)
	}
	putTLS("www-tls", renewed)
	waitMapping(t, c, p.ID, name, "ready")

	// Deleting the app deletes its mappings; the secret stays.
	if err := c.DeleteApp(ctx, p.ID, "web2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetDomainMapping(ctx, p.ID, name); !isStatus(err, 404) {
		t.Errorf("the mapping of a deleted app: %v", err)
	}
	if _, err := c.GetSecret(ctx, p.ID, "www-tls"); err != nil {
		t.Errorf("the secret of a deleted app's mapping: %v", err)
	}
	if _, err := c.CreateDomainMapping(ctx, other.ID, api.DomainMappingPrototype{Name: name, Component: web, TLSSecret: "www-tls"}); !isStatus(err, 400) {
		t.Errorf("once free, the name is the other project's to claim (which has no app web): %v", err)
	}
}

func waitMapping(t *testing.T, c *api.Client, project, name, status string) *api.DomainMapping {
	t.Helper()
	var m *api.DomainMapping
	var err error
	waitServed(t, func() bool {
		m, err = c.GetDomainMapping(context.Background(), project, name)
		return err == nil && m.Status == status
	}, "domain mapping "+name+" "+status)
	return m
}

func waitServed(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
	}
}

// wantForbidden fails unless err is a 403 or a 404: the caller may not
// see or change it.
func wantForbidden(t *testing.T, err error, what string) {
	t.Helper()
	if !isStatus(err, 403) && !isStatus(err, 404) {
		t.Errorf("%s: %v, want 403 or 404", what, err)
	}
}

// TestDomainMappingACME: with --acme-directory (a real ACME server,
// Pebble, which validates HTTP-01 on the router's plain listener), a
// mapping without a TLS secret gets its certificate by ACME and is served
// with it by SNI; the certificate is kept (sealed) across a restart, not
// ordered again.
func TestDomainMappingACME(t *testing.T) {
	s := newServer(t, "local")
	_, port, _ := net.SplitHostPort(s.router)
	n, _ := strconv.Atoi(port)
	acme := itest.StartACME(t, n, time.Hour)
	s.args = append(s.args, "--acme-directory", acme.Directory, "--acme-ca-file", acme.CAFile, "--acme-email", "ops@example.com")
	s.start()
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "acme")
	deployApp(t, c, p.ID, testApp("web", image))
	const name = "shop.example.com"
	if _, err := c.CreateDomainMapping(ctx, p.ID, api.DomainMappingPrototype{Name: name, Component: api.DomainMappingComponent{Name: "web", ResourceType: "app_v2"}}); err != nil {
		t.Fatal(err)
	}
	waitMapping(t, c, p.ID, name, "ready")
	roots := acme.Roots(t)
	fetch := func() (string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, s.https)
			}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + name + "/env")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), "VERSION=v1") {
			return "", fmt.Errorf("%s: %s", resp.Status, b)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.String(), nil
	}
	serial, err := fetch()
	if err != nil {
		t.Fatalf("HTTPS with the ACME certificate: %v", err)
	}
	s.stop()
	s.start()
	waitMapping(t, c, p.ID, name, "ready")
	again, err := fetch()
	if err != nil || again != serial {
		t.Errorf("after a restart: serial %s (want %s, the one kept) %v", again, serial, err)
	}
}
