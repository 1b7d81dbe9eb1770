package jobrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/fake"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/store"
	"github.com/coligo/coligo/internal/store/storetest"
)

// clock is a time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is a controller on a real store and the fake engine.
type harness struct {
	t     *testing.T
	db    *store.DB
	eng   *fake.Engine
	clock *clock
	cfg   Config
	image string
	stop  func()
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	db := storetest.Open(t)
	h := &harness{t: t, db: db, eng: fake.New(), clock: &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	h.image = h.eng.AddImage("registry.test/job:1", nil)
	cfg.Store, cfg.Engine, cfg.Now = db, h.eng, h.clock.Now
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if cfg.Resync == 0 {
		cfg.Resync = 20 * time.Millisecond
	}
	h.cfg = cfg
	h.start()
	t.Cleanup(func() { h.stop() })
	return h
}

// start runs a new controller; stop ends it and waits for it.
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		New(h.cfg).Run(ctx)
		close(done)
	}()
	h.stop = func() { cancel(); <-done }
}

func (h *harness) project(id string) {
	h.t.Helper()
	if _, err := h.db.CreateProject(context.Background(), core.Project{ID: id, Name: id, Status: core.ProjectActive}, func() string { return id + "s" }); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) submit(project, name string, spec core.RunSpec) {
	h.t.Helper()
	spec.ImageReference = "registry.test/job:1"
	spec.Defaults()
	if spec.RunMode == core.ModeTask && spec.ScaleMaxExecutionTime == 0 {
		spec.ScaleMaxExecutionTime = 7200 // the API's default
	}
	run := core.JobRun{ID: name, Name: name, CreatedAt: h.clock.Now(), RunSpec: spec, Status: core.RunPending, Indices: map[int]*core.IndexState{}}
	indices, err := core.ParseArraySpec(spec.ScaleArraySpec)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, i := range indices {
		run.Indices[i] = &core.IndexState{Status: core.IndexPending}
	}
	b, _ := json.Marshal(run)
	if _, err := h.db.Create(context.Background(), core.Ref{Project: project, Kind: core.KindJobRun, Name: name}, b, 0); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) run(project, name string) core.JobRun {
	h.t.Helper()
	rec, err := h.db.Get(context.Background(), core.Ref{Project: project, Kind: core.KindJobRun, Name: name})
	if err != nil {
		h.t.Fatal(err)
	}
	var run core.JobRun
	if err := json.Unmarshal(rec.Value, &run); err != nil {
		h.t.Fatal(err)
	}
	return run
}

// wait polls the run until ok holds.
func (h *harness) wait(project, name, what string, ok func(core.JobRun) bool) core.JobRun {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		run := h.run(project, name)
		if ok(run) {
			return run
		}
		if time.Now().After(deadline) {
			b, _ := json.Marshal(run)
			h.t.Fatalf("run %s: %s not reached within 10 s: %s", name, what, b)
		}
	}
}

// exit ends an instance with code once it runs: a run records an attempt
// before it starts its instance.
func (h *harness) exit(project, id string, code int) {
	h.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		ins, _ := h.eng.List(context.Background(), project, nil)
		if slices.ContainsFunc(ins, func(in engine.Instance) bool { return in.ID == id && in.State == engine.StateRunning }) {
			break
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("instance %s does not run within 10 s", id)
		}
	}
	if err := h.eng.Exit(project, id, code, false); err != nil {
		h.t.Fatal(err)
	}
}

func counts(run core.JobRun) map[core.IndexStatus]int {
	out := map[core.IndexStatus]int{}
	for _, s := range run.Indices {
		out[s.Status]++
	}
	return out
}

func running(n int) func(core.JobRun) bool {
	return func(r core.JobRun) bool { return counts(r)[core.IndexRunning] == n }
}

func TestTaskRuns(t *testing.T) {
	tests := []struct {
		name    string
		spec    core.RunSpec
		status  core.RunStatus
		starts  int
		retries int
		reason  string
	}{
		{"every index succeeds", core.RunSpec{RunCommands: []string{"true"}, ScaleArraySpec: "0-2"}, core.RunCompleted, 3, 0, ""},
		{"retried, then failed", core.RunSpec{RunCommands: []string{"false"}, ScaleRetryLimit: 2}, core.RunFailed, 3, 2, "ContainerExitedCode1"},
		{"no retries", core.RunSpec{RunCommands: []string{"sh", "-c", "exit 7"}}, core.RunFailed, 1, 0, "ContainerExitedCode7"},
		{"a command that is not in the image", core.RunSpec{RunCommands: []string{"no-such-command"}}, core.RunFailed, 0, 0, "CommandNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h := newHarness(t, Config{Registry: reg})
			h.project("p")
			h.submit("p", "r", tt.spec)
			run := h.wait("p", "r", "finished", func(r core.JobRun) bool { return r.Finished() })
			time.Sleep(50 * time.Millisecond) // more passes over the finished run count nothing more
			want := fmt.Sprintf("# HELP coligo_job_runs_finished_total Job runs that finished, by status (completed or failed).\n"+
				"# TYPE coligo_job_runs_finished_total counter\ncoligo_job_runs_finished_total{status=%q} 1\n", tt.status)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "coligo_job_runs_finished_total"); err != nil {
				t.Error(err)
			}
			if run.Status != tt.status || h.eng.Starts() != tt.starts {
				t.Errorf("status %s after %d starts, want %s after %d", run.Status, h.eng.Starts(), tt.status, tt.starts)
			}
			if s := run.Indices[0]; s.Retries != tt.retries || s.LastFailureReason != tt.reason {
				t.Errorf("index 0: %+v, want %d retries and reason %q", s, tt.retries, tt.reason)
			}
		})
	}
}

// TestMaxExecutionTime: past scale_max_execution_time every unfinished
// index fails and its instance is stopped.
func TestMaxExecutionTime(t *testing.T) {
	h := newHarness(t, Config{})
	h.project("p")
	h.submit("p", "r", core.RunSpec{RunCommands: []string{"sleep", "1000"}, ScaleArraySpec: "0-1", ScaleMaxExecutionTime: 60})
	h.wait("p", "r", "two running", running(2))
	h.clock.Add(61 * time.Second)
	run := h.wait("p", "r", "failed", func(r core.JobRun) bool { return r.Finished() })
	if run.Status != core.RunFailed || run.Indices[1].LastFailureReason != core.ReasonMaxExecutionTime {
		t.Errorf("run past its time: %s, index 1 %+v", run.Status, run.Indices[1])
	}
	ins, _ := h.eng.List(context.Background(), "p", nil)
	for _, in := range ins {
		if in.State == "running" {
			t.Errorf("instance %s still runs", in.ID)
		}
	}
}

// TestDaemon: a daemon's index restarts after a failure without limit; an
// exit 0 is an intended stop.
func TestDaemon(t *testing.T) {
	h := newHarness(t, Config{})
	h.project("p")
	h.submit("p", "d", core.RunSpec{RunCommands: []string{"sleep", "1000"}, RunMode: core.ModeDaemon})
	h.wait("p", "d", "running", running(1))
	for retry := range 3 {
		h.exit("p", core.InstanceName("d", 0, retry), 1)
		h.wait("p", "d", "restarted", func(r core.JobRun) bool {
			s := r.Indices[0]
			return s.Status == core.IndexRunning && s.Retries == retry+1 && s.LastFailureReason == "ContainerExitedCode1"
		})
	}
	h.exit("p", core.InstanceName("d", 0, 3), 0)
	run := h.wait("p", "d", "completed", func(r core.JobRun) bool { return r.Finished() })
	if run.Status != core.RunCompleted || h.eng.Starts() != 4 {
		t.Errorf("daemon after exit 0: %s after %d starts", run.Status, h.eng.Starts())
	}
}

// TestFairShare: with 4 slots a project holds at most 3; a project that
// comes later gets the free slot, and the next freed one too, since it
// holds fewer.
func TestFairShare(t *testing.T) {
	h := newHarness(t, Config{MaxInstances: 4})
	h.project("a")
	h.project("b")
	h.submit("a", "big", core.RunSpec{RunCommands: []string{"sleep", "1000"}, RunMode: core.ModeDaemon, ScaleArraySpec: "0-9"})
	h.wait("a", "big", "its share of 3", running(3))
	h.submit("b", "small", core.RunSpec{RunCommands: []string{"sleep", "1000"}, RunMode: core.ModeDaemon, ScaleArraySpec: "0-2"})
	h.wait("b", "small", "the free slot", running(1))
	if r := h.run("b", "small"); r.Reason != core.ReasonWaitingForResources {
		t.Errorf("b waits for slots with reason %q", r.Reason)
	}
	// A slot frees in a: b holds fewer (1 against 2), so b gets it.
	h.exit("a", core.InstanceName("big", 0, 0), 0)
	h.wait("b", "small", "the freed slot", running(2))
	if n := counts(h.run("a", "big"))[core.IndexRunning]; n != 2 {
		t.Errorf("a holds %d, want 2 after b took the freed slot", n)
	}
}

// TestQuota: apps and runs of a project share its quota; indices beyond
// it wait with reason waiting_for_resources and start when room frees.
func TestQuota(t *testing.T) {
	ledger := quota.NewLedger(quota.Amount{Instances: 3, MilliCPU: 100_000, Memory: 1e12, Ephemeral: 1e12})
	ledger.Set("p", "an-app-revision", quota.Amount{Instances: 1, MilliCPU: 1000})
	h := newHarness(t, Config{Quota: ledger})
	h.project("p")
	h.submit("p", "r", core.RunSpec{RunCommands: []string{"sleep", "1000"}, ScaleArraySpec: "0-3"})
	run := h.wait("p", "r", "two running beside the app", running(2))
	time.Sleep(100 * time.Millisecond) // a few resyncs: nothing more starts
	if run = h.run("p", "r"); counts(run)[core.IndexRunning] != 2 || run.Reason != core.ReasonWaitingForResources {
		t.Fatalf("within the quota: %v, reason %q", counts(run), run.Reason)
	}
	ledger.Set("p", "an-app-revision", quota.Amount{})
	h.wait("p", "r", "the app's room taken", running(3))
	h.exit("p", core.InstanceName("r", 0, 0), 0)
	run = h.wait("p", "r", "the last index running", func(r core.JobRun) bool { return r.Indices[3].Status == core.IndexRunning })
	if run.Reason != "" {
		t.Errorf("reason with nothing waiting: %q", run.Reason)
	}
}

// TestCrashReplay: a controller that stops (a crash) and starts again on
// the same store and engine resumes its runs: exits that happened while it
// was away are seen, and no instance starts twice.
func TestCrashReplay(t *testing.T) {
	h := newHarness(t, Config{})
	h.project("p")
	h.submit("p", "r", core.RunSpec{RunCommands: []string{"sleep", "1000"}, ScaleArraySpec: "0-2"})
	h.wait("p", "r", "running", running(3))
	h.stop()
	h.exit("p", core.InstanceName("r", 1, 0), 0)
	h.start()
	run := h.wait("p", "r", "the exit seen", func(r core.JobRun) bool { return r.Indices[1].Status == core.IndexSucceeded })
	if counts(run)[core.IndexRunning] != 2 || h.eng.Starts() != 3 {
		t.Errorf("after the restart: %v, %d starts, want the two others still running and no start again", counts(run), h.eng.Starts())
	}
	// The engine's event stream ends (its runtime restarted): exits are
	// still seen.
	h.eng.Restart()
	for _, i := range []int{0, 2} {
		h.exit("p", core.InstanceName("r", i, 0), 0)
	}
	if run := h.wait("p", "r", "completed", func(r core.JobRun) bool { return r.Finished() }); run.Status != core.RunCompleted {
		t.Errorf("run after the engine's restart: %s", run.Status)
	}
}

// TestEngineDown: a run whose image is resolved while the engine does not
// answer waits, and runs once it answers again; nothing fails.
func TestEngineDown(t *testing.T) {
	h := newHarness(t, Config{})
	h.project("p")
	h.eng.SetDown(true)
	h.submit("p", "r", core.RunSpec{RunCommands: []string{"true"}, ScaleArraySpec: "0-1"})
	time.Sleep(200 * time.Millisecond)
	if run := h.run("p", "r"); run.Finished() || counts(run)[core.IndexFailed] > 0 {
		t.Fatalf("a run while the engine is down: %+v", run)
	}
	h.eng.SetDown(false)
	if run := h.wait("p", "r", "finished", func(r core.JobRun) bool { return r.Finished() }); run.Status != core.RunCompleted {
		t.Errorf("the run once the engine is back: %s %+v", run.Status, run.Indices)
	}
}
