package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/enginetest"
	"github.com/coligo/coligo/internal/itest"
)

// TestBuckets mounts buckets of a real S3-compatible store (versitygw)
// with s3fs: an instance in a user namespace writes an object into one
// read-write, another reads it through a read-only one under a sub path
// and cannot write there; wrong credentials and a missing bucket fail the
// start with a MountError that says so and leave nothing mounted; removing
// the instance unmounts its bucket.
func TestBuckets(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	s3 := itest.StartS3(t)
	dir := s3.Bucket(t, "results")
	e := newEngineWith(t, parts, func(c *Config) { c.UserNS = true })
	ctx := context.Background()
	p := enginetest.Project(t, e)
	bucket := func(ro bool, sub string) engine.Bucket {
		return engine.Bucket{Dir: "/mnt/data", Endpoint: s3.Endpoint, Name: "results", SubPath: sub, ReadOnly: ro,
			AccessKeyID: s3.AccessKeyID, SecretAccessKey: s3.SecretAccessKey}
	}
	code, out := runSpecToExit(t, e, engine.Spec{ID: "writer", Project: p, Image: image, Auth: parts.Auth(), Buckets: []engine.Bucket{bucket(false, "")},
		Command: []string{"sh", "-c", "mkdir -p /mnt/data/run1 && echo from-the-job > /mnt/data/run1/out.txt && echo written"}})
	if code != 0 || !strings.Contains(out, "written") {
		t.Fatalf("writer: exit %d: %s", code, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "run1", "out.txt")); err != nil || string(b) != "from-the-job\n" {
		t.Fatalf("the object in the store: %q %v", b, err)
	}
	code, out = runSpecToExit(t, e, engine.Spec{ID: "reader", Project: p, Image: image, Auth: parts.Auth(), Buckets: []engine.Bucket{bucket(true, "run1")},
		Command: []string{"sh", "-c", "cat /mnt/data/out.txt; echo x > /mnt/data/new.txt && echo WROTE"}})
	if code == 0 || !strings.Contains(out, "from-the-job") || strings.Contains(out, "WROTE") {
		t.Errorf("reader (read-only, sub path): exit %d: %s", code, out)
	}
	for _, tc := range []struct {
		name string
		b    engine.Bucket
		want string
	}{
		{"wrong key", func() engine.Bucket { b := bucket(false, ""); b.SecretAccessKey = "wrong"; return b }(), "invalid credentials"},
		{"no such bucket", func() engine.Bucket { b := bucket(false, ""); b.Name = "nope"; return b }(), "bucket or key not found"},
	} {
		_, err := e.Run(ctx, engine.Spec{ID: "bad", Project: p, Image: image, Auth: parts.Auth(), Buckets: []engine.Bucket{tc.b}, Command: []string{"true"}})
		var me *engine.MountError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), s3.SecretAccessKey) {
			t.Errorf("%s: %v, want a MountError with %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(e.bucketDir(p, "bad")); !os.IsNotExist(err) {
			t.Errorf("%s: the failed mount left %s", tc.name, e.bucketDir(p, "bad"))
		}
	}
	if err := e.Remove(ctx, p, "writer"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.bucketDir(p, "writer")); !os.IsNotExist(err) {
		t.Errorf("a removed instance's bucket is still mounted")
	}
}

// TestUpdateFile: a file of a running instance's mount is replaced in
// place (in a user namespace too): the instance reads the new content
// without a restart, and still cannot write the file; a file that is not
// there is refused.
func TestUpdateFile(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	e := newEngineWith(t, parts, func(c *Config) { c.UserNS = true })
	ctx := context.Background()
	p := enginetest.Project(t, e)
	const dir = "/var/run/secrets/token"
	if _, err := e.Run(ctx, engine.Spec{ID: "reader", Project: p, Image: image, Auth: parts.Auth(),
		Mounts:  []engine.Mount{{Dir: dir, Files: map[string][]byte{"token": []byte("first")}}},
		Command: []string{"sh", "-c", `while true; do cat /var/run/secrets/token/token; echo; (echo x > /var/run/secrets/token/token) 2>/dev/null && echo WROTE; sleep 0.2; done`}}); err != nil {
		t.Fatal(err)
	}
	logsShow := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var out strings.Builder
			e.Logs(ctx, p, "reader", &out, engine.LogOptions{})
			if strings.Contains(out.String(), "WROTE") {
				t.Fatalf("the instance wrote its token file:\n%s", out.String())
			}
			if strings.Contains(out.String(), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the instance did not read %q:\n%s", want, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	logsShow("first")
	if err := e.UpdateFile(ctx, p, "reader", dir, "token", []byte("second")); err != nil {
		t.Fatal(err)
	}
	logsShow("second")
	if err := e.UpdateFile(ctx, p, "reader", dir, "other", []byte("x")); err == nil {
		t.Error("a file that is not there was written")
	}
	if err := e.UpdateFile(ctx, p, "reader", "/elsewhere", "token", []byte("x")); err == nil {
		t.Error("a mount that is not there was written")
	}
}
