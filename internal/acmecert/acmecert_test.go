package acmecert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/itest"
	"github.com/coligo/coligo/internal/router"
)

// serveRouter serves a router on a loopback port of its own.
func serveRouter(t *testing.T) (*router.Router, int) {
	t.Helper()
	rt := router.New(router.Config{Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := router.NewServer(rt, &http.Server{Handler: rt})
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return rt, ln.Addr().(*net.TCPAddr).Port
}

// ignore answers no challenge.
type ignore struct{}

func (ignore) SetChallenge(string, string) {}
func (ignore) RemoveChallenge(string)      {}

// TestObtain runs against a real ACME server (Pebble): a certificate for
// a name whose challenge the router answers, valid for it under Pebble's
// root; none where nothing answers; the account key is made once, 0600,
// and kept.
func TestObtain(t *testing.T) {
	rt, port := serveRouter(t)
	a := itest.StartACME(t, port, time.Hour)
	keyFile := filepath.Join(t.TempDir(), "acme-account.key")
	iss, err := New(Config{Directory: a.Directory, CAFile: a.CAFile, AccountKeyFile: keyFile, Email: "ops@example.com", Challenges: rt, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	certPEM, keyPEM, err := iss.Obtain(ctx, "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "www.example.com", Roots: a.Roots(t), Intermediates: inter}); err != nil {
		t.Errorf("the certificate does not verify: %v", err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("account key file: %v %v", st, err)
	}
	before, _ := os.ReadFile(keyFile)
	again, err := New(Config{Directory: a.Directory, CAFile: a.CAFile, AccountKeyFile: keyFile, Challenges: ignore{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(keyFile)
	if string(before) != string(after) {
		t.Error("the account key was made again")
	}
	if _, _, err := again.Obtain(ctx, "nobody-answers.example.com"); err == nil || !strings.Contains(err.Error(), "prove control of nobody-answers.example.com") {
		t.Errorf("a name whose challenge nobody answers: %v", err)
	}
}
