package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		err  string
	}{
		{"A=1\nB=two words\n", map[string]string{"A": "1", "B": "two words"}, ""},
		{"# comment\n\n  \nexport C=\"quoted\"\nD='single'\nE=a=b\n", map[string]string{"C": "quoted", "D": "single", "E": "a=b"}, ""},
		{"F=\n", map[string]string{"F": ""}, ""},
		{"A=1\nnot a pair\n", nil, "line 2"},
		{"=value\n", nil, "line 1"},
	}
	for _, tt := range tests {
		got, err := ParseEnvFile([]byte(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: got %v, want error with %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.in, diff)
		}
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("A=1\n# c\nexport B=\"x\"\n"))
	f.Add([]byte("=\n"))
	f.Add([]byte("SECRET=hunter2 bad line\nno equals sign hunter2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kv, err := ParseEnvFile(b)
		if err != nil {
			// Errors name the line, never its content.
			if strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error quotes the file: %v", err)
			}
			return
		}
		for k := range kv {
			if k == "" || strings.ContainsAny(k, "\n") {
				t.Fatalf("bad key %q", k)
			}
		}
	})
}
