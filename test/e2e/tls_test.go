package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// insecureTLS accepts the test server's self-signed certificate.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

// TestCLITrustsTheServer: against a server with a self-signed certificate
// (covering a --tls-san name), 'coligo login' fails without trust, works
// with --ca-file (saved, so later commands trust it too), and with
// --insecure-skip-tls-verify only with a warning on every command. A
// renewed certificate is served without a restart.
func TestCLITrustsTheServer(t *testing.T) {
	s := startServer(t, "--tls-self-signed", "--tls-san", "coligo-api.coligo.svc")
	ca := filepath.Join(s.dataDir, "tls.crt")
	tokenFile := filepath.Join(s.dataDir, "admin.token")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	login := func(extra ...string) cliResult {
		return s.cli(t, cfg, "", nil, append([]string{"login", "--endpoint", s.url(), "--token-file", tokenFile}, extra...)...)
	}
	if r := login(); r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("login without trusting the certificate: exit %d: %s", r.code, r.stderr)
	}
	if r := login("--ca-file", ca); r.code != 0 {
		t.Fatalf("login with --ca-file: exit %d: %s", r.code, r.stderr)
	}
	if r := s.cli(t, cfg, "", nil, "project", "list"); r.code != 0 || r.stderr != "" {
		t.Errorf("a command after login --ca-file: exit %d: %s", r.code, r.stderr)
	}
	insecure := filepath.Join(t.TempDir(), "config.yaml")
	if r := s.cli(t, insecure, "", nil, "login", "--endpoint", s.url(), "--token-file", tokenFile, "--insecure-skip-tls-verify"); r.code != 0 || !strings.Contains(r.stderr, "not checked") {
		t.Errorf("login --insecure-skip-tls-verify: exit %d: %s", r.code, r.stderr)
	}
	if r := s.cli(t, insecure, "", nil, "project", "list"); r.code != 0 || !strings.Contains(r.stderr, "not checked") {
		t.Errorf("a command after an insecure login warns: exit %d: %q", r.code, r.stderr)
	}
	// The certificate names what --tls-san gave.
	b, _ := os.ReadFile(ca)
	block, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.VerifyHostname("coligo-api.coligo.svc") != nil {
		t.Errorf("the self-signed certificate does not cover the --tls-san name: %v %v", cert.DNSNames, err)
	}
	// A renewal (new files) is served without a restart.
	serial := cert.SerialNumber
	newCert := selfSignedPair(t, s.dataDir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := tls.Dial("tcp", s.addr, insecureTLS())
		if err == nil {
			got := conn.ConnectionState().PeerCertificates[0].SerialNumber
			conn.Close()
			if got.Cmp(newCert) == 0 {
				break
			}
			if got.Cmp(serial) != 0 {
				t.Fatalf("served serial %v, neither the old nor the new", got)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the renewed certificate is not served within 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// selfSignedPair writes a new self-signed certificate and key over
// dir/tls.crt and dir/tls.key and returns its serial.
func selfSignedPair(t *testing.T, dir string) *big.Int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial := big.NewInt(time.Now().UnixNano())
	tmpl := &x509.Certificate{SerialNumber: serial, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	// The key first: the reloader waits for the later of the two files.
	os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return serial
}

// TestRouterHTTPS: an app is served over TLS on the router's HTTPS
// listener with a certificate its CA signs for the app's name, which the
// client checks: HTTP/2 and HTTP/1.1, X-Forwarded-Proto https reaching the
// app; a name no app is served at gets no certificate; after a restart
// the same CA signs.
func TestRouterHTTPS(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "https")
	a := deployApp(t, c, p.ID, testApp("secure", image))
	host, _, _ := strings.Cut(strings.TrimPrefix(a.Endpoint, "http://"), ":")
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(filepath.Join(s.dataDir, "router-ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("the router's CA: %v", err)
	}
	get := func(name string, protos []string) (*http.Response, string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: name, NextProtos: protos}, ForceAttemptHTTP2: slices.Contains(protos, "h2"),
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, s.https)
			}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("https://" + name + "/headers")
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, string(b), err
	}
	for _, protos := range [][]string{{"h2", "http/1.1"}, {"http/1.1"}} {
		resp, body, err := get(host, protos)
		if err != nil {
			t.Fatalf("%v: %v", protos, err)
		}
		if resp.StatusCode != 200 || resp.ProtoMajor != map[bool]int{true: 2, false: 1}[protos[0] == "h2"] || !strings.Contains(body, "X-Forwarded-Proto: https") {
			t.Errorf("%v: %s %s\n%s", protos, resp.Proto, resp.Status, body)
		}
	}
	if _, _, err := get("nothing."+strings.SplitN(host, ".", 2)[1], []string{"h2"}); err == nil {
		t.Error("a name no app is served at got a certificate")
	}
	s.stop()
	s.start()
	if resp, _, err := get(host, []string{"h2"}); err != nil || resp.StatusCode != 200 {
		t.Errorf("after a restart, with the same CA: %v %v", resp, err)
	}
}
