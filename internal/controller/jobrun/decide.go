package jobrun

import (
	"strings"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
)

// The decisions of a step are pure functions of the stored run, the
// engine's view of its instances and the time: the controller reads, calls
// them, persists the run, then acts (starts and stops instances).

// View is what the engine shows of a run's instances.
type View struct {
	Instances  map[string]engine.Instance // by instance name
	BackingOff map[string]bool            // instances whose failed create is not to be tried again yet
}

// Plan is what a step found: whether to stop the run's instances, which
// running indices need their instance (re)started, and the indices that
// wait for a slot.
type Plan struct {
	Stop    bool
	Restart []int
	Pending []int
	Running int
}

// plan folds the view into the run (exits become successes, retries or
// failures; a task run past its max execution time fails) and says what
// the step must do.
func plan(run *core.JobRun, v View, now time.Time) Plan {
	var p Plan
	if run.RunMode == core.ModeTask && !run.StartTime.IsZero() && now.Sub(run.StartTime) >= time.Duration(run.ScaleMaxExecutionTime)*time.Second {
		endRun(run, now, core.ReasonMaxExecutionTime)
		p.Stop = true
		return p
	}
	observe(run, v.Instances, now)
	if run.Finished() {
		return p
	}
	indices, _ := core.ParseArraySpec(run.ScaleArraySpec)
	for _, i := range indices {
		s := run.Indices[i]
		switch s.Status {
		case core.IndexRunning:
			p.Running++
			id := core.InstanceName(run.Name, i, s.Retries)
			if in, ok := v.Instances[id]; (!ok || in.State == engine.StateCreated) && !v.BackingOff[id] {
				p.Restart = append(p.Restart, i) // decided before a crash, or retried
			}
		case core.IndexPending:
			p.Pending = append(p.Pending, i)
		}
	}
	return p
}

// admit marks pending indices as running from now on, and returns them.
func admit(run *core.JobRun, indices []int, now time.Time) []int {
	for _, i := range indices {
		s := run.Indices[i]
		s.Status, s.StartedAt = core.IndexRunning, now
	}
	if len(indices) > 0 && run.StartTime.IsZero() {
		run.StartTime = now
	}
	return indices
}

// settle folds failed starts into the run: an index that waits for
// something it needs goes back to pending with the run's reason; one that
// cannot start fails; a create that is still under way is left as it is.
func settle(run *core.JobRun, failures map[int]failure, now time.Time) {
	for i, f := range failures {
		s := run.Indices[i]
		switch {
		case f.later:
		case f.wait:
			s.Status, s.StartedAt = core.IndexPending, time.Time{}
			run.Reason = f.reason
		default:
			s.Status, s.FinishedAt, s.LastFailureReason = core.IndexFailed, now, f.reason
		}
	}
}

// observe folds the engine's view into the run: exits become successes,
// retries or failures.
func observe(run *core.JobRun, byID map[string]engine.Instance, now time.Time) {
	for i, s := range run.Indices {
		if s.Status != core.IndexRunning {
			continue
		}
		in, ok := byID[core.InstanceName(run.Name, i, s.Retries)]
		if !ok || in.State != engine.StateExited {
			continue
		}
		if in.ExitCode == 0 {
			s.Status, s.FinishedAt = core.IndexSucceeded, nonZero(in.FinishedAt, now)
			continue
		}
		reason := core.ReasonExitCode(in.ExitCode)
		switch {
		case in.OOMKilled:
			reason = core.ReasonOOMKilled
		case in.Evicted == engine.EvictedEphemeralStorage:
			reason = core.ReasonEphemeralStorage
		}
		s.LastFailureReason = reason
		if run.RunMode == core.ModeDaemon || s.Retries < run.ScaleRetryLimit {
			s.Retries++ // the next attempt starts in this step
			s.StartedAt = now
			continue
		}
		s.Status, s.FinishedAt = core.IndexFailed, nonZero(in.FinishedAt, now)
	}
	run.Reason = ""
}

func nonZero(t, def time.Time) time.Time {
	if t.IsZero() || t.Year() < 2000 {
		return def
	}
	return t.UTC()
}

// endRun finishes a run early: unfinished indices fail with reason.
func endRun(run *core.JobRun, now time.Time, reason string) {
	for _, s := range run.Indices {
		if s.Status == core.IndexPending || s.Status == core.IndexRunning {
			s.Status, s.FinishedAt, s.LastFailureReason = core.IndexFailed, now, reason
		}
	}
	run.Status, run.CompletionTime, run.Reason = core.RunFailed, now, reason
}

// backingOff is the set of the run's instances whose failed create waits
// before it is tried again.
func (c *Controller) backingOff(run string, now time.Time) map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]bool{}
	for id, f := range c.createFailures {
		if strings.HasPrefix(id, run+"-") && now.Before(f.next) {
			out[id] = true
		}
	}
	return out
}
