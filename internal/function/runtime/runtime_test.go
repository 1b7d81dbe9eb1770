package runtime

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCatalogue(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	node20 := Found{Family: NodeJS, Version: "20.20.2", Interpreter: "/usr/bin/node"}
	node22 := Found{Family: NodeJS, Version: "v22.1.0", Interpreter: "/opt/node22"}
	py311 := Found{Family: Python, Version: "3.11.2", Interpreter: "/usr/bin/python3.11"}
	py313 := Found{Family: Python, Version: "3.13.0", Interpreter: "/usr/bin/python3.13"}
	tests := []struct {
		name  string
		found []Found
		now   time.Time
		want  []Runtime // ID, Default, Deprecated only
	}{
		{"before deprecation", []Found{node20, py311}, day("2025-01-01"),
			[]Runtime{{ID: "nodejs-20", Default: true}, {ID: "python-3.11", Default: true}}},
		{"all deprecated: the newest is the default", []Found{node20, py311}, day("2026-11-28"),
			[]Runtime{{ID: "nodejs-20", Default: true, Deprecated: true}, {ID: "python-3.11", Default: true, Deprecated: true}}},
		{"the newest not deprecated is the default", []Found{py311, node20, py313, node22}, day("2026-06-01"),
			[]Runtime{{ID: "nodejs-22", Default: true}, {ID: "nodejs-20", Deprecated: true}, {ID: "python-3.13", Default: true}, {ID: "python-3.11", Deprecated: true}}},
		{"one id once", []Found{node20, {Family: NodeJS, Version: "20.1.0", Interpreter: "/usr/bin/nodejs"}}, day("2025-01-01"),
			[]Runtime{{ID: "nodejs-20", Default: true}}},
		{"nothing found", nil, day("2025-01-01"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Catalogue(tt.found, tt.now)
			if len(got) != len(tt.want) {
				t.Fatalf("%+v, want %+v", got, tt.want)
			}
			for i, w := range tt.want {
				if g := got[i]; g.ID != w.ID || g.Default != w.Default || g.Deprecated != w.Deprecated || !g.Optimized {
					t.Errorf("runtime %d: %+v, want %+v", i, g, w)
				}
			}
		})
	}
	if got := Catalogue([]Found{node20}, day("2025-01-01"))[0]; got.Name != "Node.js 20" || got.Interpreter != "/usr/bin/node" {
		t.Errorf("%+v", got)
	}
}

func TestParseCandidate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Found
		bad  bool
	}{
		{in: "nodejs=/opt/node22/bin/node", want: Found{Family: NodeJS, Interpreter: "/opt/node22/bin/node"}},
		{in: "python=/opt/py/bin/python3.13", want: Found{Family: Python, Interpreter: "/opt/py/bin/python3.13"}},
		{in: "ruby=/usr/bin/ruby", bad: true},
		{in: "nodejs", bad: true},
		{in: "nodejs=node", bad: true},
		{in: "nodejs=/opt/../usr/bin/node", bad: true},
		{in: "=/usr/bin/node", bad: true},
	} {
		got, err := ParseCandidate(tt.in)
		if tt.bad != (err != nil) || !tt.bad && got != tt.want {
			t.Errorf("ParseCandidate(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

// TestDiscoverOperatorInterpreters: interpreters an operator names at
// other paths are found with their versions, Python's with the standard
// library it reports, and come before the host's usual ones.
func TestDiscoverOperatorInterpreters(t *testing.T) {
	dir := t.TempDir()
	var own []Found
	for _, family := range []string{NodeJS, Python} {
		host := interpreter(t, family)
		link := filepath.Join(dir, family, "bin", filepath.Base(host.Interpreter))
		os.MkdirAll(filepath.Dir(link), 0o755)
		if err := os.Symlink(host.Interpreter, link); err != nil {
			t.Fatal(err)
		}
		c, err := ParseCandidate(family + "=" + link)
		if err != nil {
			t.Fatal(err)
		}
		own = append(own, c)
	}
	own = append(own, Found{Family: NodeJS, Interpreter: filepath.Join(dir, "absent")})
	found := Discover(context.Background(), append(own, Candidates...))
	rts := Catalogue(found, time.Now())
	for _, c := range own[:2] {
		i := slices.IndexFunc(rts, func(r Runtime) bool { return r.Interpreter == c.Interpreter })
		if i < 0 {
			t.Fatalf("%s is not a runtime: %+v", c.Interpreter, rts)
		}
		if r := rts[i]; r.Family == Python && (!filepath.IsAbs(r.Stdlib) || !strings.Contains(r.Stdlib, "python3")) {
			t.Errorf("Python's standard library: %q", r.Stdlib)
		}
	}
	if slices.ContainsFunc(found, func(f Found) bool { return f.Interpreter == own[2].Interpreter }) {
		t.Error("an interpreter that does not exist was found")
	}
}
