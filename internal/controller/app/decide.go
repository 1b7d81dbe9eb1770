package app

import (
	"time"

	"github.com/coligo/coligo/internal/core"
)

// The decisions of a sync are pure functions of an app's stored revisions
// and what the controller observed; syncApp reads, calls them, and acts.

// pick is which of an app's revisions (sorted by generation) matter: the
// latest created, the one that serves (the newest ready one, else the
// latest), and the ones kept — those two and the newest other one, so that
// a rollback finds it; the rest are removed.
func pick(revs []core.Revision) (latest, serving string, keep map[string]bool) {
	if len(revs) == 0 {
		return "", "", map[string]bool{}
	}
	latest, serving = revs[len(revs)-1].Name, revs[len(revs)-1].Name
	for i := len(revs) - 1; i >= 0; i-- {
		if revs[i].Status == core.RevisionReady {
			serving = revs[i].Name
			break
		}
	}
	keep = map[string]bool{latest: true, serving: true}
	for i := len(revs) - 1; i >= 0; i-- {
		if !keep[revs[i].Name] {
			keep[revs[i].Name] = true
			break
		}
	}
	return latest, serving, keep
}

// wantInput is what decides the instances a revision should have.
type wantInput struct {
	Status          core.RevisionStatus
	Latest, Serving bool
	Woken           bool // a request waits for it
	Initial         int  // scale_initial_instances
	Auto            int  // what the autoscaler wants
	Active          int  // instances starting or ready
	ServingFor      time.Duration
	StableWindow    time.Duration
}

// desire is how many instances a revision should have: none when it
// failed; for the latest revision on its way to ready, its initial scale
// (or more, if the autoscaler asks); for the serving one, what the
// autoscaler wants — but not fewer than it has during its first stable
// window, whose ticks may predate its instances; and one at least while a
// request waits for it.
func desire(in wantInput) int {
	want := 0
	switch {
	case in.Status == core.RevisionFailed:
		return 0
	case in.Latest && in.Status != core.RevisionReady:
		want = max(in.Initial, in.Auto)
	case in.Serving:
		want = in.Auto
		if in.ServingFor < in.StableWindow {
			want = max(want, in.Active)
		}
	}
	if in.Woken && (in.Serving || in.Latest) {
		want = max(want, 1)
	}
	return want
}
