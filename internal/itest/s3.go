package itest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// S3 is an S3-compatible object store of one test's: the Versity S3
// Gateway over a directory, on loopback.
type S3 struct {
	Endpoint                     string // http://127.0.0.1:PORT
	AccessKeyID, SecretAccessKey string
	root                         string
}

// StartS3 starts versitygw (scripts/versitygw-build.sh,
// COLIGO_TEST_VERSITYGW) over a directory of the test's, with one account;
// it stops with the test.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := os.Getenv("COLIGO_TEST_VERSITYGW")
	if bin == "" {
		Missing(t, "versitygw missing: run through 'make test' (COLIGO_TEST_VERSITYGW)")
	}
	work := t.TempDir()
	s := &S3{AccessKeyID: "COLIGOTESTKEY", SecretAccessKey: "coligo-test-secret-" + filepath.Base(work), root: filepath.Join(work, "root")}
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		t.Fatal(err)
	}
	addr := freeLoopback(t)
	s.Endpoint = "http://" + addr
	start(t, filepath.Join(work, "versitygw.log"), bin, nil, "--port", addr, "--access", s.AccessKeyID, "--secret", s.SecretAccessKey, "posix", s.root)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw does not listen on %s", addr)
		}
	}
}

// Bucket makes a bucket and returns its directory, where its objects are
// files.
func (s *S3) Bucket(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(s.root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
