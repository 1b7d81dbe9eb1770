package e2e

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
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
		if err != nil || !d.Type().IsRegular() {
			return err // sockets and FIFOs (containerd's state dir) are not read
		}
		b, err := os.ReadFile(path)
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
