package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/coligo/coligo/internal/engine"
)

// Persistent data stores are buckets of an S3-compatible store that s3fs
// (Debian's, a FUSE client) mounts on the host, one process per bucket and
// instance, under the run dir; the mount is bound into the instance. The
// credentials reach s3fs in its environment, never a file. s3fs runs in
// the foreground of a session of its own, so it outlives a restart of the
// server as the instance does, and ends when its mount is unmounted (with
// the instance).

// bucketMountTimeout bounds the wait for a bucket's mount: s3fs checks the
// bucket and the credentials with the store before it serves the mount.
const bucketMountTimeout = 30 * time.Second

const fuseSuperMagic = 0x65735546

// bucketDir is where an instance's buckets are mounted on the host.
func (e *Engine) bucketDir(project, id string) string {
	return filepath.Join(e.cfg.RunDir, project, "buckets", id)
}

// mountBuckets mounts an instance's buckets and returns their binds into
// it. A bucket that does not mount is a *engine.MountError, and leaves
// none mounted.
func (e *Engine) mountBuckets(ctx context.Context, project, id string, bs []engine.Bucket) (_ []specs.Mount, err error) {
	e.unmountBuckets(project, id) // a crash may have left some
	if len(bs) == 0 {
		return nil, nil
	}
	defer func() {
		if err != nil {
			e.unmountBuckets(project, id)
		}
	}()
	var out []specs.Mount
	for i, b := range bs {
		dir := filepath.Join(e.bucketDir(project, id), strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("buckets of %s: %w", id, err)
		}
		if err := e.mountBucket(ctx, dir, b); err != nil {
			return nil, &engine.MountError{Bucket: b.Name, Err: err}
		}
		opts := []string{"rbind", "nosuid", "nodev"}
		if b.ReadOnly {
			opts = append(opts, "ro")
		}
		out = append(out, specs.Mount{Destination: b.Dir, Type: "bind", Source: dir, Options: opts})
	}
	return out, nil
}

// mountBucket runs s3fs for one bucket at dir and waits until the mount
// answers, or s3fs gives up.
func (e *Engine) mountBucket(ctx context.Context, dir string, b engine.Bucket) error {
	src := b.Name
	if sub := strings.Trim(b.SubPath, "/"); sub != "" {
		src += ":/" + sub
	}
	opts := []string{"url=" + b.Endpoint, "use_path_request_style", "allow_other", "umask=0000", "mp_umask=0000",
		"nosuid", "nodev", "retries=2", "connect_timeout=5", "readwrite_timeout=30"}
	if b.ReadOnly {
		opts = append(opts, "ro")
	}
	bin := e.cfg.S3FS
	if bin == "" {
		bin = "s3fs"
	}
	var log bytes.Buffer
	cmd := exec.Command(bin, src, dir, "-f", "-o", strings.Join(opts, ","))
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "AWSACCESSKEYID=" + b.AccessKeyID, "AWSSECRETACCESSKEY=" + b.SecretAccessKey}
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start s3fs: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.NewTimer(bucketMountTimeout)
	defer deadline.Stop()
	for {
		if mounted(dir) {
			// The first request waits for s3fs's check of the store; it
			// fails once s3fs has given up.
			if _, err := os.ReadDir(dir); err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s", s3fsReason(log.String()))
		case <-deadline.C:
			cmd.Process.Kill()
			unix.Unmount(dir, unix.MNT_DETACH)
			return errors.New("the object store did not answer in time")
		case <-ctx.Done():
			cmd.Process.Kill()
			unix.Unmount(dir, unix.MNT_DETACH)
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// mounted reports whether dir is a FUSE mount.
func mounted(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == fuseSuperMagic
}

// s3fsReason is what s3fs said went wrong: its critical lines, without
// their source positions (it never prints the credentials).
func s3fsReason(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if _, msg, ok := strings.Cut(l, "[CRT] "); ok {
			if _, m, ok := strings.Cut(msg, "): "); ok {
				msg = m
			}
			out = append(out, strings.TrimSpace(msg))
		}
	}
	if len(out) == 0 {
		return "s3fs ended without mounting the bucket"
	}
	return strings.Join(out, "; ")
}

// unmountBuckets unmounts an instance's buckets (their s3fs processes end
// with them) and removes their directories.
func (e *Engine) unmountBuckets(project, id string) {
	base := e.bucketDir(project, id)
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, en := range entries {
		unix.Unmount(filepath.Join(base, en.Name()), unix.MNT_DETACH)
	}
	os.RemoveAll(base)
}
