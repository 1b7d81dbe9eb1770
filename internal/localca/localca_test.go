package localca

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCA: a CA is made once and loaded as it was after; its certificates
// verify for their name (only) against it, are held, and are issued again
// once a third of their life is left.
func TestCA(t *testing.T) {
	dir := t.TempDir()
	ca, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the CA key's file: %v %v", st, err)
	}
	again, err := Open(dir)
	if err != nil || string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Fatalf("the CA loaded again differs: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(again.CertPEM())
	c, err := ca.Leaf("hello.sub.example.test")
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: pool, DNSName: "hello.sub.example.test"}
	if _, err := c.Leaf.Verify(opts); err != nil {
		t.Errorf("a certificate does not verify for its name: %v", err)
	}
	opts.DNSName = "other.sub.example.test"
	if _, err := c.Leaf.Verify(opts); err == nil {
		t.Error("a certificate verifies for another name")
	}
	if same, _ := ca.Leaf("hello.sub.example.test"); same != c {
		t.Error("a certificate held was issued again")
	}
	ca.now = func() time.Time { return time.Now().Add(leafLife * 2 / 3) }
	if renewed, _ := ca.Leaf("hello.sub.example.test"); renewed == c || !renewed.Leaf.NotAfter.After(c.Leaf.NotAfter) {
		t.Error("a certificate near its end was not issued again")
	}
	os.WriteFile(filepath.Join(dir, keyFile), []byte("not a key"), 0o600)
	if _, err := Open(dir); err == nil {
		t.Error("a CA with a broken key opened")
	}
}
