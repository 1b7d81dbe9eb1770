package quota

import (
	"maps"
	"sync"
	"testing"
	"time"
)

func TestFit(t *testing.T) {
	small := Amount{Instances: 1, MilliCPU: 1000, Memory: 4e9, Ephemeral: 400e6}
	tests := []struct {
		name             string
		limit, used, per Amount
		want             int
	}{
		{"empty project, instance quota", Amount{Instances: 3, MilliCPU: 1e6, Memory: 1e15, Ephemeral: 1e15}, Amount{}, small, 3},
		{"cpu is the short one", Default(), Amount{Instances: 10, MilliCPU: 126_000}, small, 2},
		{"memory is the short one", Default(), Amount{Memory: 500e9}, small, 3},
		{"ephemeral storage is the short one", Default(), Amount{Ephemeral: 511e9}, small, 2},
		{"full", Default(), Default(), small, 0},
		{"over (quota lowered): none, not negative", Default(), Default().Plus(small), small, 0},
		{"a size with no resources counts instances only", Amount{Instances: 2}, Amount{}, Amount{}, 2},
		{"the defaults: 128 instances of 1 vCPU", Default(), Amount{}, small, 128},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fit(tt.limit, tt.used, tt.per); got != tt.want {
				t.Errorf("Fit = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestShort(t *testing.T) {
	per := Amount{Instances: 1, MilliCPU: 500, Memory: 1e9, Ephemeral: 1e9}
	tests := []struct {
		used Amount
		want string
	}{
		{Amount{}, ""},
		{Amount{Instances: 250}, "the project's quota of 250 active instances is reached"},
		{Amount{MilliCPU: 127_600}, "the project's quota of 128 vCPU is reached"},
		{Amount{Memory: 511.5e9}, "the project's quota of 512000000000 bytes of memory is reached"},
		{Amount{Ephemeral: 512e9}, "the project's quota of 512000000000 bytes of ephemeral storage is reached"},
	}
	for _, tt := range tests {
		if got := Short(Default(), tt.used, per); got != tt.want {
			t.Errorf("Short(%+v) = %q, want %q", tt.used, got, tt.want)
		}
	}
}

func TestInstance(t *testing.T) {
	got := Instance("0.5", "1G", "400M")
	if want := (Amount{Instances: 1, MilliCPU: 500, Memory: 1e9, Ephemeral: 400e6}); got != want {
		t.Errorf("Instance = %+v, want %+v", got, want)
	}
}

func TestLedgerClaim(t *testing.T) {
	per := Amount{Instances: 1, MilliCPU: 1000, Memory: 1e9, Ephemeral: 1e9}
	l := NewLedger(Amount{Instances: 5, MilliCPU: 100_000, Memory: 1e12, Ephemeral: 1e12})
	steps := []struct {
		project, holder string
		have, want      int
		granted         int
		used            int // instances the project holds after the claim
	}{
		{"a", "app/x", 0, 3, 3, 3},
		{"a", "run/r", 0, 4, 2, 5},  // only 2 left beside app/x's 3
		{"b", "run/r", 0, 5, 5, 5},  // another project has its own quota
		{"a", "run/r", 2, 10, 2, 5}, // still full
		{"a", "app/x", 3, 1, 3, 5},  // what runs is not taken away by a claim...
		{"a", "app/x", 1, 1, 1, 3},  // ...it is released when it stops
		{"a", "run/r", 2, 10, 4, 5}, // and the room goes to who claims it
		{"a", "run/r", 0, 0, 0, 1},  // a holder with nothing is forgotten
	}
	for i, s := range steps {
		if got := l.Claim(s.project, s.holder, per, s.have, s.want); got != s.granted {
			t.Fatalf("step %d: Claim(%s %s have %d want %d) = %d, want %d", i, s.project, s.holder, s.have, s.want, got, s.granted)
		}
		if got := l.Used(s.project).Instances; got != s.used {
			t.Fatalf("step %d: project %s uses %d instances, want %d", i, s.project, got, s.used)
		}
	}
	if why := l.Why("b", per); why != "the project's quota of 5 active instances is reached" {
		t.Errorf("Why = %q", why)
	}
	if why := l.Why("a", per); why != "" {
		t.Errorf("Why with room = %q", why)
	}
}

// Claims from two controllers at once never take more than the quota.
func TestLedgerClaimRace(t *testing.T) {
	per := Amount{Instances: 1}
	l := NewLedger(Amount{Instances: 50})
	var wg sync.WaitGroup
	for h := range 10 {
		wg.Go(func() {
			have := 0
			for range 100 {
				have = l.Claim("p", string(rune('a'+h)), per, have, have+1)
			}
		})
	}
	wg.Wait()
	if got := l.Used("p").Instances; got != 50 {
		t.Errorf("used %d instances, want exactly the quota of 50", got)
	}
}

func TestShare(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		free   int
		claims []Claimant
		want   map[string]int
	}{
		{"nobody waits", 3, nil, map[string]int{}},
		{"one waits: it gets what it wants", 3, []Claimant{{Project: "a", Want: 2}}, map[string]int{"a": 2}},
		{"round robin between equals", 4, []Claimant{{Project: "a", Want: 9}, {Project: "b", Want: 9}}, map[string]int{"a": 2, "b": 2}},
		{"an odd slot goes to the one served longest ago", 3,
			[]Claimant{{Project: "a", Want: 9, Served: t0.Add(time.Second)}, {Project: "b", Want: 9, Served: t0}}, map[string]int{"a": 1, "b": 2}},
		{"the one holding fewest first", 2,
			[]Claimant{{Project: "big", Held: 6, Want: 9}, {Project: "small", Held: 2, Want: 9}}, map[string]int{"small": 2}},
		{"then fair again", 6,
			[]Claimant{{Project: "big", Held: 6, Want: 9}, {Project: "small", Held: 2, Want: 9}}, map[string]int{"small": 5, "big": 1}},
		{"no slot stays free while someone wants one", 5,
			[]Claimant{{Project: "a", Want: 1}, {Project: "b", Want: 9}}, map[string]int{"a": 1, "b": 4}},
		{"no slots", 0, []Claimant{{Project: "a", Want: 1}}, map[string]int{}},
		{"three projects", 7,
			[]Claimant{{Project: "a", Want: 9}, {Project: "b", Want: 9}, {Project: "c", Want: 9}}, map[string]int{"a": 3, "b": 2, "c": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Share(tt.free, tt.claims); !maps.Equal(got, tt.want) {
				t.Errorf("Share = %v, want %v", got, tt.want)
			}
		})
	}
}
