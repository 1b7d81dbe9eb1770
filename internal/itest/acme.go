package itest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ACME is a Pebble ACME server of one test's.
type ACME struct {
	Directory string // the directory URL
	CAFile    string // the CA of the directory's own HTTPS certificate
	mgmt      string
	ca        *x509.CertPool
}

// StartACME starts Pebble (scripts/pebble-build.sh, COLIGO_TEST_PEBBLE)
// with pebble-challtestsrv as its DNS, which answers 127.0.0.1 for every
// name: Pebble validates an HTTP-01 challenge for any name at
// 127.0.0.1:httpPort, and reaches nothing else. Its certificates are valid
// for validity. Both stop with the test.
func StartACME(t testing.TB, httpPort int, validity time.Duration) *ACME {
	t.Helper()
	dir := os.Getenv("COLIGO_TEST_PEBBLE")
	if dir == "" {
		Missing(t, "Pebble missing: run through 'make test' (COLIGO_TEST_PEBBLE)")
	}
	work := t.TempDir()
	dns, listen, mgmt := freeLoopback(t), freeLoopback(t), freeLoopback(t)
	start(t, filepath.Join(work, "challtestsrv.log"), filepath.Join(dir, "pebble-challtestsrv"), nil,
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dnsserver", dns, "-management", freeLoopback(t),
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "")
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": listen, "managementListenAddress": mgmt,
		"certificate": filepath.Join(dir, "cert.pem"), "privateKey": filepath.Join(dir, "key.pem"),
		"httpPort": httpPort, "tlsPort": 1, "ocspResponderURL": "", "externalAccountBindingRequired": false,
		"retryAfter": map[string]int{"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa",
		"profiles": map[string]any{"default": map[string]any{"description": "test", "validityPeriod": int(validity.Seconds())}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(work, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// No random nonce rejections or validation sleeps: the test is about
	// coligo, not about its patience.
	start(t, filepath.Join(work, "pebble.log"), filepath.Join(dir, "pebble"), []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", cfgFile, "-dnsserver", dns)
	a := &ACME{Directory: "https://" + listen + "/dir", CAFile: filepath.Join(dir, "ca.pem"), mgmt: mgmt, ca: x509.NewCertPool()}
	caPEM, err := os.ReadFile(a.CAFile)
	if err != nil || !a.ca.AppendCertsFromPEM(caPEM) {
		t.Fatalf("Pebble's CA %s: %v", a.CAFile, err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := a.client().Get(a.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return a
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pebble does not answer at %s: %v", a.Directory, err)
		}
	}
}

func (a *ACME) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: a.ca}}}
}

// Roots is the root that signs the certificates Pebble issues: a fresh one
// each time Pebble starts.
func (a *ACME) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	resp, err := a.client().Get("https://" + a.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("Pebble's root: %s", b)
	}
	return pool
}
