package itest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Containerd is a containerd of a test's own, which it can stop and start
// under a running server (the suite's shared one it must not).
type Containerd struct {
	Socket string
	dir    string
	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
}

// NewContainerd prepares a containerd with its own root, state and socket
// beside the suite's (under make test's parts directory, whose cleanup
// covers what a killed test leaves), not started. When the test ends it is
// stopped and what it started (shims, mounts) is removed.
func NewContainerd(t testing.TB, parts Parts) *Containerd {
	t.Helper()
	dir, err := os.MkdirTemp(filepath.Dir(filepath.Dir(parts.Containerd)), "containerd-test-")
	if err != nil {
		t.Fatal(err)
	}
	// Searchable by others, as the suite's is (user-namespaced instances
	// reach their bundles through it).
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Socket: filepath.Join(dir, "containerd.sock"), dir: dir, t: t}
	cfg := fmt.Sprintf("version = 2\nroot = %q\nstate = %q\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = %q\n[ttrpc]\n  address = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Socket, c.Socket+".ttrpc")
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.remove)
	return c
}

// Start starts containerd and waits for its socket.
func (c *Containerd) Start() {
	c.t.Helper()
	log, err := os.OpenFile(filepath.Join(c.dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command("containerd", "--config", filepath.Join(c.dir, "config.toml"))
	c.cmd.Stdout, c.cmd.Stderr = log, log
	if err := c.cmd.Start(); err != nil {
		log.Close()
		c.t.Fatalf("start containerd: %v", err)
	}
	c.exited = make(chan struct{})
	go func() { c.cmd.Wait(); log.Close(); close(c.exited) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(c.Socket); err == nil {
			return
		}
		select {
		case <-c.exited:
			c.t.Fatalf("containerd exited during start: %s", c.Log())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("containerd did not start: %s", c.Log())
		}
	}
}

// Stop stops containerd with SIGTERM, as a service manager does; its shims
// and their containers live on.
func (c *Containerd) Stop() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
	c.cmd = nil
	os.Remove(c.Socket) // containerd leaves it behind on a stop
}

// Log returns what containerd logged.
func (c *Containerd) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "log"))
	return string(b)
}

// remove stops containerd and ends the shims it started (found by the
// socket address on their command line), then unmounts and deletes its
// directory.
func (c *Containerd) remove() {
	c.Stop()
	if c.t.Failed() {
		c.t.Logf("containerd's log:\n%s", c.Log())
	}
	for _, pid := range shimsOf(c.dir) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts, _ := os.ReadFile("/proc/mounts")
	var under []string
	for line := range strings.SplitSeq(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], c.dir+"/") {
			under = append(under, f[1])
		}
	}
	slices.Sort(under)
	for _, m := range slices.Backward(under) {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	os.RemoveAll(c.dir)
}

// shimsOf lists the containerd shims whose command line contains s.
func shimsOf(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cmdline, []byte("containerd-shim")) && bytes.Contains(cmdline, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}
