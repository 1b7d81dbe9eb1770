package initproc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestEnvRoundTrip(t *testing.T) {
	tests := [][]string{
		nil,
		{"A=1"},
		{"A=", "B=x=y", "MULTI=line1\nline2", "UNI=日本", "SPACE= a b "},
	}
	for _, env := range tests {
		got, err := ParseEnv(EncodeEnv(env))
		if err != nil || !slices.Equal(got, env) {
			t.Errorf("%q: got %q %v", env, got, err)
		}
	}
}

func TestParseEnvRefuses(t *testing.T) {
	for _, b := range []string{"A=1", "=1\x00", "novalue\x00", "A=1\x00\x00"} {
		if _, err := ParseEnv([]byte(b)); err == nil {
			t.Errorf("%q was accepted", b)
		}
	}
}

func TestMerge(t *testing.T) {
	tests := []struct{ base, env, want []string }{
		{[]string{"PATH=/bin", "HOME=/"}, nil, []string{"PATH=/bin", "HOME=/"}},
		{[]string{"PATH=/bin", "HOME=/"}, []string{"HOME=/root", "X=1"}, []string{"PATH=/bin", "HOME=/root", "X=1"}},
		{nil, []string{"X=1", "X=2"}, []string{"X=2"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, Merge(tt.base, tt.env)); diff != "" {
			t.Errorf("Merge(%q, %q) (-want +got):\n%s", tt.base, tt.env, diff)
		}
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "prog"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	env := []string{"PATH=/nonexistent:" + dir}
	tests := []struct {
		file, want string
		ok         bool
	}{
		{"prog", filepath.Join(dir, "prog"), true},
		{filepath.Join(dir, "prog"), filepath.Join(dir, "prog"), true},
		{"data", "", false}, // not executable
		{"sub", "", false},  // a directory
		{"missing", "", false},
		{filepath.Join(dir, "missing"), "", false},
	}
	for _, tt := range tests {
		got, err := LookPath(tt.file, env)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("LookPath(%q) = %q %v, want %q ok=%v", tt.file, got, err, tt.want, tt.ok)
		}
	}
}

// FuzzParseEnv: no input panics, and what is accepted encodes back the same.
func FuzzParseEnv(f *testing.F) {
	f.Add([]byte("A=1\x00B=2\x00"))
	f.Add([]byte("=\x00"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnv(b)
		if err != nil {
			return
		}
		if got := EncodeEnv(env); string(got) != string(b) {
			t.Fatalf("%q parses to %q, which encodes to %q", b, env, got)
		}
	})
}
