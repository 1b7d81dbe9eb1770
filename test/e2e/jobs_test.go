package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
)

func intp(i int) *int { return &i }

// jobProject makes a project with the registry secret for the test image and
// hard-deletes it at the end, so that its bridge and addresses go too.
func jobProject(t *testing.T, s *server, name string) (*api.Project, itest.Parts, string) {
	t.Helper()
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	c := s.adminClient()
	p := activeProject(t, c, name)
	t.Cleanup(func() {
		if err := c.DeleteProject(context.Background(), p.ID, true); err == nil {
			waitStatus(t, c, p.ID, "")
		}
	})
	if _, err := c.CreateSecret(context.Background(), p.ID, api.SecretPrototype{Name: "regcred", Format: "registry",
		Data: map[string]string{"server": parts.Registry, "username": parts.User, "password": parts.Password}}); err != nil {
		t.Fatal(err)
	}
	return p, parts, image
}

// waitRun polls a run until done reports true.
func waitRun(t *testing.T, c *api.Client, project, name string, within time.Duration, done func(*api.JobRun) bool) *api.JobRun {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := c.GetJobRun(context.Background(), project, name)
		if err == nil && done(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("job run %s: condition not met within %s: %+v %v", name, within, r, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func finished(r *api.JobRun) bool { return r.Status == "completed" || r.Status == "failed" }

func TestJobRunArray(t *testing.T) { forEngines(t, testJobRunArray) }

func testJobRunArray(t *testing.T, eng string) {
	s := startServerOn(t, eng)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "jobs")
	if _, err := c.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: "fail", Data: map[string]string{"FAIL_INDICES": "3"}}); err != nil {
		t.Fatal(err)
	}
	job, err := c.CreateJob(ctx, p.ID, api.JobPrototype{Name: "array", RunSpec: api.RunSpec{
		ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"testprog", "job"},
		ScaleArraySpec: "0-9", ScaleRetryLimit: intp(1), ScaleCPULimit: "0.25", ScaleMemoryLimit: "0.5G",
		RunEnvVariables: []api.EnvVar{{Type: "config_map_full_reference", Reference: "fail"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if job.ScaleMaxExecutionTime == nil || *job.ScaleMaxExecutionTime != 7200 || job.RunMode != "task" || job.ScaleEphemeralStorageLimit != "400M" {
		t.Errorf("job defaults: %+v", job.RunSpec)
	}
	run, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{JobName: "array"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.Name, "array-jobrun-") || len(run.Name) != len("array-jobrun-")+5 || run.StatusDetails.Requested != 10 {
		t.Fatalf("submitted run: %+v", run)
	}
	run = waitRun(t, c, p.ID, run.Name, 120*time.Second, finished)
	d := run.StatusDetails
	if run.Status != "failed" || d.Succeeded != 9 || d.Failed != 1 || d.FailedIndices != "3" || d.SucceededIndices != "0-2,4-9" {
		t.Fatalf("run status %s, details %+v", run.Status, d)
	}
	if i3 := d.IndicesDetails["3"]; i3.Retries != 1 || i3.LastFailureReason != "ContainerExitedCode1" {
		t.Errorf("index 3: %+v", i3)
	}
	if i5 := d.IndicesDetails["5"]; i5.Retries != 0 || i5.Status != "succeeded" || i5.StartedAt == "" || i5.FinishedAt == "" {
		t.Errorf("index 5: %+v", i5)
	}
	if d.StartTime == "" || d.CompletionTime == "" {
		t.Errorf("run times: %+v", d)
	}
	for i := range 10 {
		var b bytes.Buffer
		if err := c.JobRunLogs(ctx, p.ID, run.Name, i, api.LogOptions{}, &b); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("index %d of 10", i); !strings.Contains(b.String(), want) {
			t.Errorf("logs of index %d: %q, want %q", i, b.String(), want)
		}
	}
	// Tail, since and timestamps. Index 3 wrote two lines, one to stdout and
	// one to stderr (in either order: two streams).
	stamped := regexp.MustCompile(`^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (index 3 of 10|failing on purpose)\n$`)
	for _, tc := range []struct {
		opts api.LogOptions
		ok   func(string) bool
	}{
		{api.LogOptions{Tail: 1}, func(s string) bool { return s == "index 3 of 10\n" || s == "failing on purpose\n" }},
		{api.LogOptions{Tail: 1, Timestamps: true}, stamped.MatchString},
		{api.LogOptions{Since: "1h"}, func(s string) bool { return strings.Count(s, "\n") == 2 && strings.Contains(s, "failing on purpose\n") }},
		{api.LogOptions{Since: time.Now().Add(time.Hour).Format(time.RFC3339)}, func(s string) bool { return s == "" }},
	} {
		var b bytes.Buffer
		if err := c.JobRunLogs(ctx, p.ID, run.Name, 3, tc.opts, &b); err != nil || !tc.ok(b.String()) {
			t.Errorf("logs of index 3 with %+v: %q %v", tc.opts, b.String(), err)
		}
	}
	err = c.JobRunLogs(ctx, p.ID, run.Name, 3, api.LogOptions{Since: "yesterday"}, io.Discard)
	wantStatus(t, err, 400, "logs since yesterday")
	if err == nil || !strings.Contains(err.Error(), "since") {
		t.Errorf("a bad since: %v, want an error naming it", err)
	}
	// The CLI shows the same.
	cfg := t.TempDir() + "/c.yaml"
	out := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin, "COLIGO_PROJECT=" + p.ID}, "jobrun", "logs", "--name", run.Name, "--index", "7")
	if out.code != 0 || !strings.Contains(out.stdout, "index 7 of 10") {
		t.Errorf("jobrun logs: %d %q %q", out.code, out.stdout, out.stderr)
	}
	list, err := c.ListJobRuns(ctx, p.ID, api.ListOptions{}, "array")
	if err != nil || len(list.JobRuns) != 1 {
		t.Errorf("runs of job array: %+v %v", list, err)
	}
	// Deleting the job deletes its runs and their instances.
	if err := c.DeleteJob(ctx, p.ID, "array"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetJobRun(ctx, p.ID, run.Name)
	wantStatus(t, err, 404, "run of a deleted job")
}

func TestJobRunPullFailures(t *testing.T) { forEngines(t, testJobRunPullFailures) }

func testJobRunPullFailures(t *testing.T, eng string) {
	s := startServerOn(t, eng)
	c := s.adminClient()
	ctx := context.Background()
	p, parts, image := jobProject(t, s, "pulls")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "wrong", Format: "registry",
		Data: map[string]string{"server": parts.Registry, "username": parts.User, "password": "wrong"}}); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, secret, reason string }{
		{"no-secret", "", "fetch_image_failed_missing_pull_credentials"},
		{"wrong-secret", "wrong", "fetch_image_failed_wrong_pull_credentials"},
		{"missing-secret", "nope", "fetch_image_failed_missing_pull_secret"},
		{"with-secret", "regcred", ""},
		// The image is cached now: a run without credentials still may not
		// run it (it once did, from the cache, without asking the registry).
		{"no-secret-after", "", "fetch_image_failed_missing_pull_credentials"},
		{"wrong-secret-after", "wrong", "fetch_image_failed_wrong_pull_credentials"},
	}
	for _, tc := range cases {
		_, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: tc.name, RunSpec: api.RunSpec{
			ImageReference: image, ImageSecret: tc.secret, RunCommands: []string{"true"}, ScaleCPULimit: "0.25", ScaleMemoryLimit: "0.5G"}})
		if err != nil {
			t.Fatal(err)
		}
		r := waitRun(t, c, p.ID, tc.name, 60*time.Second, finished)
		got := r.StatusDetails.IndicesDetails["0"].LastFailureReason
		if tc.reason == "" && r.Status != "completed" || tc.reason != "" && (r.Status != "failed" || got != tc.reason) {
			t.Errorf("%s: status %s reason %q, want reason %q", tc.name, r.Status, got, tc.reason)
		}
	}
}

func TestJobRunTimeoutDaemonAndOOM(t *testing.T) { forEngines(t, testJobRunTimeoutDaemonAndOOM) }

func testJobRunTimeoutDaemonAndOOM(t *testing.T, eng string) {
	s := startServerOn(t, eng)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "limits")
	spec := func(cmd ...string) api.RunSpec {
		return api.RunSpec{ImageReference: image, ImageSecret: "regcred", RunCommands: cmd, ScaleCPULimit: "0.25", ScaleMemoryLimit: "0.5G"}
	}
	sleepy := spec("sleep", "1000")
	sleepy.ScaleMaxExecutionTime, sleepy.ScaleArraySpec = intp(2), "0-1"
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "sleepy", RunSpec: sleepy}); err != nil {
		t.Fatal(err)
	}
	hog := spec("testprog", "alloc", "2048")
	hog.ScaleRetryLimit = intp(0)
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "hog", RunSpec: hog}); err != nil {
		t.Fatal(err)
	}
	filler := spec("sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=20 && sleep 60")
	filler.ScaleEphemeralStorageLimit, filler.ScaleRetryLimit = "5M", intp(0)
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "filler", RunSpec: filler}); err != nil {
		t.Fatal(err)
	}
	daemon := spec("sh", "-c", "sleep 0.2; exit 2")
	daemon.RunMode = "daemon"
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "daemon", RunSpec: daemon}); err != nil {
		t.Fatal(err)
	}
	bad := spec("true")
	bad.RunMode, bad.ScaleRetryLimit = "daemon", intp(2)
	_, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "bad", RunSpec: bad})
	wantStatus(t, err, 400, "daemon run with a retry limit")

	r := waitRun(t, c, p.ID, "sleepy", 60*time.Second, finished)
	for _, i := range []string{"0", "1"} {
		if d := r.StatusDetails.IndicesDetails[i]; r.Status != "failed" || d.LastFailureReason != "MaxExecutionTimeExceeded" {
			t.Errorf("sleepy index %s: %s %+v", i, r.Status, d)
		}
	}
	r = waitRun(t, c, p.ID, "hog", 60*time.Second, finished)
	if d := r.StatusDetails.IndicesDetails["0"]; r.Status != "failed" || d.LastFailureReason != "OOMKilled" {
		t.Errorf("hog: %s %+v", r.Status, d)
	}
	r = waitRun(t, c, p.ID, "filler", 60*time.Second, finished)
	if d := r.StatusDetails.IndicesDetails["0"]; r.Status != "failed" || d.LastFailureReason != "EphemeralStorageExceeded" {
		t.Errorf("filler (20 MB written, 5 MB allowed): %s %+v", r.Status, d)
	}
	r = waitRun(t, c, p.ID, "daemon", 60*time.Second, func(r *api.JobRun) bool { return r.StatusDetails.IndicesDetails["0"].Retries >= 3 })
	if r.Status != "running" || r.StatusDetails.IndicesDetails["0"].LastFailureReason != "ContainerExitedCode2" {
		t.Errorf("daemon: %s %+v", r.Status, r.StatusDetails.IndicesDetails["0"])
	}
	if err := c.DeleteJobRun(ctx, p.ID, "daemon"); err != nil {
		t.Fatal(err)
	}
	// Its instances go with it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command("ctr", "--address", os.Getenv("COLIGO_TEST_CONTAINERD"), "-n", "coligo-"+p.ID, "containers", "ls", "-q").Output()
		if !strings.Contains(string(out), "daemon-0-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances of the deleted daemon run remain:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
