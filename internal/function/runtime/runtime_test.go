package runtime

import (
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
