package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func assertMode(t *testing.T, path, want string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().String(); got != want {
		t.Errorf("%s: mode %s, want %s", path, got, want)
	}
}

// scanDir returns the files under dir that contain any of needles.
func scanDir(t *testing.T, dir string, needles ...[]byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		// What goes while the scan walks (a snapshot of an instance being
		// removed) held nothing the scan could miss later.
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err // sockets and FIFOs (containerd's state dir) are not read
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EINVAL) {
			return nil // gone, or a network namespace bound to a file (buildkitd's), which holds no bytes
		}
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, n) {
				hits = append(hits, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
