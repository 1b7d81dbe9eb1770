package jobrun

import (
	"slices"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// runOf is a run of a task (or daemon) with the indices' states.
func runOf(mode string, retryLimit int, states ...core.IndexState) *core.JobRun {
	r := &core.JobRun{Name: "r", RunSpec: core.RunSpec{RunMode: mode, ScaleRetryLimit: retryLimit, ScaleMaxExecutionTime: 60},
		Status: core.RunRunning, StartTime: t0, Indices: map[int]*core.IndexState{}}
	r.ScaleArraySpec = "0"
	if len(states) > 1 {
		r.ScaleArraySpec = "0-" + string(rune('0'+len(states)-1))
	}
	for i, s := range states {
		r.Indices[i] = &s
	}
	return r
}

func exited(id string, code int) engine.Instance {
	return engine.Instance{ID: id, State: engine.StateExited, ExitCode: code, FinishedAt: t0.Add(time.Second)}
}

func TestPlan(t *testing.T) {
	running := core.IndexState{Status: core.IndexRunning, StartedAt: t0}
	pending := core.IndexState{Status: core.IndexPending}
	tests := []struct {
		name      string
		run       *core.JobRun
		view      View
		now       time.Duration // after t0
		want      Plan
		indices   []core.IndexStatus // each index's status after
		retries   int                // of index 0 after
		reason    string             // last failure reason of index 0 after
		runStatus core.RunStatus
	}{
		{name: "a running instance: nothing to do", run: runOf(core.ModeTask, 0, running),
			view: View{Instances: map[string]engine.Instance{"r-0-0": {ID: "r-0-0", State: engine.StateRunning}}},
			want: Plan{Running: 1}, indices: []core.IndexStatus{core.IndexRunning}},
		{name: "decided before a crash: started now", run: runOf(core.ModeTask, 0, running),
			want: Plan{Running: 1, Restart: []int{0}}, indices: []core.IndexStatus{core.IndexRunning}},
		{name: "a create backing off is not tried yet", run: runOf(core.ModeTask, 0, running), view: View{BackingOff: map[string]bool{"r-0-0": true}},
			want: Plan{Running: 1}, indices: []core.IndexStatus{core.IndexRunning}},
		{name: "exit 0 succeeds", run: runOf(core.ModeTask, 0, running, pending),
			view: View{Instances: map[string]engine.Instance{"r-0-0": exited("r-0-0", 0)}},
			want: Plan{Pending: []int{1}}, indices: []core.IndexStatus{core.IndexSucceeded, core.IndexPending}},
		{name: "a failure with retries left is retried", run: runOf(core.ModeTask, 1, running),
			view: View{Instances: map[string]engine.Instance{"r-0-0": exited("r-0-0", 2)}},
			want: Plan{Running: 1, Restart: []int{0}}, indices: []core.IndexStatus{core.IndexRunning}, retries: 1, reason: "ContainerExitedCode2"},
		{name: "without retries left it fails", run: runOf(core.ModeTask, 0, running),
			view:    View{Instances: map[string]engine.Instance{"r-0-0": exited("r-0-0", 2)}},
			indices: []core.IndexStatus{core.IndexFailed}, reason: "ContainerExitedCode2", runStatus: core.RunFailed},
		{name: "OOM", run: runOf(core.ModeTask, 0, running),
			view:    View{Instances: map[string]engine.Instance{"r-0-0": {State: engine.StateExited, ExitCode: 137, OOMKilled: true}}},
			indices: []core.IndexStatus{core.IndexFailed}, reason: core.ReasonOOMKilled, runStatus: core.RunFailed},
		{name: "evicted for its ephemeral storage", run: runOf(core.ModeTask, 0, running),
			view:    View{Instances: map[string]engine.Instance{"r-0-0": {State: engine.StateExited, ExitCode: 137, Evicted: engine.EvictedEphemeralStorage}}},
			indices: []core.IndexStatus{core.IndexFailed}, reason: core.ReasonEphemeralStorage, runStatus: core.RunFailed},
		{name: "a daemon restarts without limit", run: runOf(core.ModeDaemon, 0, core.IndexState{Status: core.IndexRunning, Retries: 40}),
			view: View{Instances: map[string]engine.Instance{"r-0-40": exited("r-0-40", 1)}},
			want: Plan{Running: 1, Restart: []int{0}}, indices: []core.IndexStatus{core.IndexRunning}, retries: 41, reason: "ContainerExitedCode1"},
		{name: "past its max execution time", run: runOf(core.ModeTask, 0, running, pending), now: 61 * time.Second,
			view: View{Instances: map[string]engine.Instance{"r-0-0": {ID: "r-0-0", State: engine.StateRunning}}},
			want: Plan{Stop: true}, indices: []core.IndexStatus{core.IndexFailed, core.IndexFailed}, reason: core.ReasonMaxExecutionTime, runStatus: core.RunFailed},
		{name: "a daemon has no max execution time", run: runOf(core.ModeDaemon, 0, running), now: time.Hour,
			view: View{Instances: map[string]engine.Instance{"r-0-0": {ID: "r-0-0", State: engine.StateRunning}}},
			want: Plan{Running: 1}, indices: []core.IndexStatus{core.IndexRunning}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := plan(tt.run, tt.view, t0.Add(tt.now))
			if got.Stop != tt.want.Stop || got.Running != tt.want.Running || !slices.Equal(got.Restart, tt.want.Restart) || !slices.Equal(got.Pending, tt.want.Pending) {
				t.Errorf("plan = %+v, want %+v", got, tt.want)
			}
			for i, want := range tt.indices {
				if s := tt.run.Indices[i]; s.Status != want {
					t.Errorf("index %d: %s, want %s", i, s.Status, want)
				}
			}
			if s := tt.run.Indices[0]; s.Retries != tt.retries || s.LastFailureReason != tt.reason {
				t.Errorf("index 0: retries %d reason %q, want %d %q", s.Retries, s.LastFailureReason, tt.retries, tt.reason)
			}
			tt.run.Summarize(t0.Add(tt.now))
			if tt.runStatus != "" && tt.run.Status != tt.runStatus {
				t.Errorf("run %s, want %s", tt.run.Status, tt.runStatus)
			}
		})
	}
}

func TestAdmitAndSettle(t *testing.T) {
	pending := core.IndexState{Status: core.IndexPending}
	run := runOf(core.ModeTask, 0, pending, pending, pending, pending)
	run.StartTime, run.Status = time.Time{}, core.RunPending
	now := t0.Add(time.Minute)
	if got := admit(run, []int{0, 1, 2, 3}, now); len(got) != 4 || run.StartTime != now || run.Indices[3].StartedAt != now {
		t.Fatalf("admit: %v, start %v", got, run.StartTime)
	}
	settle(run, map[int]failure{
		0: {reason: "ContainerCreateFailed", later: true},
		1: {reason: "fetch_image_failed_missing_pull_secret", wait: true},
		2: {reason: "CommandNotFound"},
	}, now)
	want := []core.IndexStatus{core.IndexRunning, core.IndexPending, core.IndexFailed, core.IndexRunning}
	for i, w := range want {
		if s := run.Indices[i]; s.Status != w {
			t.Errorf("index %d: %s, want %s", i, s.Status, w)
		}
	}
	if run.Reason != "fetch_image_failed_missing_pull_secret" || run.Indices[2].LastFailureReason != "CommandNotFound" || !run.Indices[1].StartedAt.IsZero() {
		t.Errorf("after settle: reason %q, index 2 %+v, index 1 %+v", run.Reason, run.Indices[2], run.Indices[1])
	}
}
