package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestStale(t *testing.T) {
	const ns, id = "coligo-p1", "run-0-0"
	tests := []struct {
		name string
		err  error
		dir  string
	}{
		{"containerd's words", errors.New("create task run-0-0: failed to start shim: mkdir /run/containerd/io.containerd.runtime.v2.task/coligo-p1/run-0-0: file exists: unknown"),
			"/run/containerd/io.containerd.runtime.v2.task/coligo-p1/run-0-0"},
		{"another instance", errors.New("failed to start shim: mkdir /run/containerd/io.containerd.runtime.v2.task/coligo-p1/run-1-0: file exists"), ""},
		{"another namespace", errors.New("failed to start shim: mkdir /run/containerd/io.containerd.runtime.v2.task/coligo-p2/run-0-0: file exists"), ""},
		{"a path that climbs", errors.New("failed to start shim: mkdir /run/x/../io.containerd.runtime.v2.task/coligo-p1/run-0-0: file exists"), ""},
		{"a relative path", errors.New("failed to start shim: mkdir io.containerd.runtime.v2.task/coligo-p1/run-0-0: file exists"), ""},
		{"another error", errors.New("failed to start shim: permission denied"), ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		dir, ok := Stale(tt.err, ns, id)
		if dir != tt.dir || ok != (tt.dir != "") {
			t.Errorf("%s: %q %v, want %q", tt.name, dir, ok, tt.dir)
		}
	}
}

func TestRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run-0-0")
	os.MkdirAll(filepath.Join(dir, "rootfs"), 0o700)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o600)
	// A shim that runs (this process stands in for it) keeps its bundle.
	os.WriteFile(filepath.Join(dir, "shim.pid"), []byte("1"), 0o600)
	if err := Remove(dir); err == nil {
		t.Fatal("removed the bundle of a running shim")
	}
	os.Remove(filepath.Join(dir, "shim.pid"))
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the bundle is still there: %v", err)
	}
}

func FuzzStale(f *testing.F) {
	f.Add("failed to start shim: mkdir /s/io.containerd.runtime.v2.task/n/i: file exists")
	f.Fuzz(func(t *testing.T, msg string) {
		if dir, ok := Stale(errors.New(msg), "n", "i"); ok && (filepath.Base(dir) != "i" || filepath.Base(filepath.Dir(dir)) != "n" || !filepath.IsAbs(dir) || filepath.Clean(dir) != dir) {
			t.Fatalf("%q: %q is not a bundle of n/i", msg, dir)
		}
	})
}
