package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestJobRunSurvivesKill9 kills the server during a 20-index run that can
// hold only 4 instances at a time; after the restart the run completes with
// the right counts, and no index ran more than once.
func TestJobRunSurvivesKill9(t *testing.T) {
	s := startServer(t, "--max-instances", "4")
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "crashrun")
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "twenty", RunSpec: api.RunSpec{
		ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"sh", "-c", "sleep 0.5; testprog job"},
		ScaleArraySpec: "0-19", ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G"}}); err != nil {
		t.Fatal(err)
	}
	waitRun(t, c, p.ID, "twenty", 60*time.Second, func(r *api.JobRun) bool { return r.StatusDetails.Succeeded >= 4 })
	s.kill9()
	s.start()
	r := waitRun(t, c, p.ID, "twenty", 120*time.Second, finished)
	if r.Status != "completed" || r.StatusDetails.Succeeded != 20 || r.StatusDetails.Failed != 0 {
		t.Fatalf("after kill -9: %s %+v", r.Status, r.StatusDetails)
	}
	for i, d := range r.StatusDetails.IndicesDetails {
		if d.Retries != 0 {
			t.Errorf("index %s ran %d extra times", i, d.Retries)
		}
	}
	// Exactly one instance per index exists: none started twice.
	out, err := exec.Command("ctr", "--address", os.Getenv("COLIGO_TEST_CONTAINERD"), "-n", "coligo-"+p.ID, "containers", "ls", "-q").Output()
	if err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(string(out))
	if len(ids) != 20 {
		t.Errorf("%d instances for 20 indices: %v", len(ids), ids)
	}
	for _, id := range ids {
		if !strings.HasSuffix(id, "-0") {
			t.Errorf("instance %s is a second attempt", id)
		}
	}
}

// TestHardDeleteRemovesEngineObjects deletes a project with a finished and a
// running job run: nothing of it may remain in containerd, in the CNI
// address store or in the data dir.
func TestHardDeleteRemovesEngineObjects(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "shred")
	doneAndRunning(t, c, p.ID, image)
	addr := os.Getenv("COLIGO_TEST_CONTAINERD")
	ns := "coligo-" + p.ID
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, _ := exec.Command("ctr", "--address", addr, "-n", ns, "tasks", "ls").Output()
		if strings.Contains(string(out), "RUNNING") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running task before the delete:\n%s", out)
		}
	}
	if err := c.DeleteProject(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "")
	out, _ := exec.Command("ctr", "--address", addr, "namespaces", "ls", "-q").Output()
	if strings.Contains(string(out), ns) {
		t.Errorf("containerd namespace %s remains", ns)
	}
	for _, what := range [][]string{{"containers", "ls", "-q"}, {"images", "ls", "-q"}, {"snapshots", "ls"}, {"leases", "ls", "-q"}, {"content", "ls", "-q"}} {
		out, _ := exec.Command("ctr", append([]string{"--address", addr, "-n", ns}, what...)...).Output()
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 1 || (len(lines) == 1 && lines[0] != "" && !strings.HasPrefix(lines[0], "KEY") && !strings.HasPrefix(lines[0], "DIGEST")) {
			t.Errorf("ctr %s in %s: %s", what[0], ns, out)
		}
	}
	engineDir := filepath.Join(s.dataDir, "engine")
	if hits := scanDir(t, engineDir, []byte(p.ID)); len(hits) > 0 {
		t.Errorf("engine state still names the project: %v", hits)
	}
	if entries, _ := os.ReadDir(filepath.Join(engineDir, "ipam")); len(entries) > 0 {
		t.Errorf("IPAM allocations remain: %v", entries)
	}
	if entries, _ := os.ReadDir(filepath.Join(engineDir, "logs")); len(entries) > 0 {
		t.Errorf("logs remain: %v", entries)
	}
}

// doneAndRunning gives a project a finished job run "done" and a job run
// "running" that sleeps.
func doneAndRunning(t *testing.T, c *api.Client, project, image string) {
	t.Helper()
	ctx := context.Background()
	spec := api.RunSpec{ImageReference: image, ImageSecret: "regcred", ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G"}
	done, running := spec, spec
	done.RunCommands, running.RunCommands = []string{"testprog", "job"}, []string{"sleep", "1000"}
	for name, sp := range map[string]api.RunSpec{"done": done, "running": running} {
		if _, err := c.CreateJobRun(ctx, project, api.JobRunPrototype{Name: name, RunSpec: sp}); err != nil {
			t.Fatal(err)
		}
	}
	waitRun(t, c, project, "done", 60*time.Second, finished)
	waitRun(t, c, project, "running", 60*time.Second, func(r *api.JobRun) bool { return r.StatusDetails.Running == 1 })
}

// TestJobCLI drives jobs through the CLI, with submit --wait.
func TestJobCLI(t *testing.T) {
	s := startServer(t)
	p, _, image := jobProject(t, s, "jobcli")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	env := []string{"COLIGO_TOKEN=" + s.admin, "COLIGO_PROJECT=" + p.ID}
	run := func(args ...string) cliResult {
		t.Helper()
		r := s.cli(t, cfg, "", env, args...)
		if r.code != 0 {
			t.Fatalf("coligo %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	s.adminClient().CreateSecret(context.Background(), p.ID, api.SecretPrototype{Name: "apikey", Format: "generic", Data: map[string]string{"KEY": "k1"}})
	run("job", "create", "--name", "greet", "--image", image, "--registry-secret", "regcred", "--array-size", "3",
		"--command", "sh", "--argument", "-c", "--argument", `echo "hi $JOB_INDEX/$JOB_ARRAY_SIZE $GREETING $KEY $CE_JOB"`,
		"--env", "GREETING=hello", "--env-from-secret", "apikey", "--cpu", "0.25", "--memory", "0.5G")
	if out := run("job", "get", "--name", "greet").stdout; !strings.Contains(out, "0-2") {
		t.Errorf("job get:\n%s", out)
	}
	run("job", "update", "--name", "greet", "--retrylimit", "0")
	if out := run("job", "get", "--name", "greet", "-o", "json").stdout; !strings.Contains(out, `"scale_retry_limit": 0`) {
		t.Errorf("job after update:\n%s", out)
	}
	sub := run("jobrun", "submit", "--job", "greet", "--name", "greet-1", "--wait")
	if !strings.Contains(sub.stdout, "completed: 3 succeeded") {
		t.Errorf("submit --wait printed:\n%s", sub.stdout)
	}
	logs := run("jobrun", "logs", "--name", "greet-1").stdout
	for _, want := range []string{"hi 0/3 hello k1 greet", "hi 1/3", "hi 2/3"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if out := run("jobrun", "list").stdout; !strings.Contains(out, "greet-1") || !strings.Contains(out, "completed") {
		t.Errorf("jobrun list:\n%s", out)
	}
	if out := run("jobrun", "get", "--name", "greet-1").stdout; !strings.Contains(out, "succeeded") {
		t.Errorf("jobrun get:\n%s", out)
	}
	bad := s.cli(t, cfg, "", env, "jobrun", "submit", "--name", "x", "--image", image, "--array-indices", "5-1")
	if bad.code == 0 || !strings.Contains(bad.stderr, "scale_array_spec") {
		t.Errorf("bad array spec: %d %s", bad.code, bad.stderr)
	}
	if out := run("jobrun", "events", "--name", "greet-1").stdout; !strings.Contains(out, "index 2 succeeded") || !strings.Contains(out, "run completed") {
		t.Errorf("jobrun events:\n%s", out)
	}
	run("jobrun", "resubmit", "--jobrun", "greet-1", "--name", "greet-2", "--array-indices", "1")
	r2 := waitRun(t, s.adminClient(), p.ID, "greet-2", 60*time.Second, finished)
	if r2.Status != "completed" || r2.StatusDetails.Requested != 1 || r2.JobName != "greet" {
		t.Errorf("resubmitted run: %s %+v", r2.Status, r2.StatusDetails)
	}
	run("jobrun", "delete", "--name", "greet-1", "-f")
	run("job", "delete", "--name", "greet", "-f")
}

// TestSoftDeleteStopsInstances checks that a soft delete stops the project's
// running instances, and that a restore lets its runs go on.
func TestSoftDeleteStopsInstances(t *testing.T) { forEngines(t, testSoftDeleteStopsInstances) }

func testSoftDeleteStopsInstances(t *testing.T, eng string) {
	s := startServerOn(t, eng)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "softstop")
	spec := api.RunSpec{ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"sleep", "1000"},
		RunMode: "daemon", ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G"}
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "forever", RunSpec: spec}); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, cond func(n int) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(len(running(t, s, p.ID))); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s; running: %v", what, running(t, s, p.ID))
			}
		}
	}
	waitFor("the daemon never ran", func(n int) bool { return n == 1 })
	if err := c.DeleteProject(ctx, p.ID, false); err != nil {
		t.Fatal(err)
	}
	waitFor("the soft delete left the instance running", func(n int) bool { return n == 0 })
	if _, err := c.RestoreProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	waitFor("the restored daemon run did not start again", func(n int) bool { return n == 1 })
}
