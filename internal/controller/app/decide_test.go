package app

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
)

func TestPick(t *testing.T) {
	rev := func(name string, status core.RevisionStatus) core.Revision {
		return core.Revision{Name: name, Status: status}
	}
	tests := []struct {
		name            string
		revs            []core.Revision
		latest, serving string
		keep            []string
	}{
		{"none", nil, "", "", nil},
		{"the first, loading", []core.Revision{rev("a-1", core.RevisionLoading)}, "a-1", "a-1", []string{"a-1"}},
		{"a new one loading: the ready one serves", []core.Revision{rev("a-1", core.RevisionReady), rev("a-2", core.RevisionLoading)}, "a-2", "a-1", []string{"a-1", "a-2"}},
		{"the new one ready: it serves, the old is kept", []core.Revision{rev("a-1", core.RevisionReady), rev("a-2", core.RevisionReady)}, "a-2", "a-2", []string{"a-1", "a-2"}},
		{"the newest failed: the last ready serves, one more kept",
			[]core.Revision{rev("a-1", core.RevisionReady), rev("a-2", core.RevisionReady), rev("a-3", core.RevisionReady), rev("a-4", core.RevisionFailed)},
			"a-4", "a-3", []string{"a-2", "a-3", "a-4"}},
		{"none ready: the latest serves", []core.Revision{rev("a-1", core.RevisionFailed), rev("a-2", core.RevisionFailed)}, "a-2", "a-2", []string{"a-1", "a-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			latest, serving, keep := pick(tt.revs)
			if got := slices.Sorted(maps.Keys(keep)); latest != tt.latest || serving != tt.serving || !slices.Equal(got, tt.keep) {
				t.Errorf("pick = %s, %s, %v; want %s, %s, %v", latest, serving, got, tt.latest, tt.serving, tt.keep)
			}
		})
	}
}

func TestDesire(t *testing.T) {
	window := time.Minute
	tests := []struct {
		name string
		in   wantInput
		want int
	}{
		{"failed: none", wantInput{Status: core.RevisionFailed, Latest: true, Initial: 3, Woken: true}, 0},
		{"latest on its way: its initial scale", wantInput{Status: core.RevisionLoading, Latest: true, Initial: 2}, 2},
		{"latest on its way, the autoscaler asks more", wantInput{Status: core.RevisionLoading, Latest: true, Initial: 1, Auto: 4}, 4},
		{"serving: what the autoscaler wants", wantInput{Status: core.RevisionReady, Latest: true, Serving: true, Auto: 3, Active: 5, ServingFor: 2 * window}, 3},
		{"serving for less than a window: keeps what it has", wantInput{Status: core.RevisionReady, Serving: true, Auto: 1, Active: 4, ServingFor: time.Second}, 4},
		{"serving at zero, a request waits", wantInput{Status: core.RevisionReady, Serving: true, Woken: true, ServingFor: 2 * window}, 1},
		{"an old revision that no longer serves: none", wantInput{Status: core.RevisionReady, Auto: 3, Active: 3, Woken: true}, 0},
		{"initial scale 0 loading: none until asked", wantInput{Status: core.RevisionLoading, Latest: true}, 0},
	}
	for _, tt := range tests {
		tt.in.StableWindow = window
		if got := desire(tt.in); got != tt.want {
			t.Errorf("%s: desire = %d, want %d", tt.name, got, tt.want)
		}
	}
}
