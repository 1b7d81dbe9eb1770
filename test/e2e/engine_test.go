package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
)

// TestContainerdComesAndGoes runs a server against a containerd of the
// test's own: started before containerd, it serves the API and starts its
// workloads when containerd appears; with containerd stopped under it while
// a job run and an app are in flight (the run's instances ending while it
// is down), the app keeps serving, and after containerd is back the run
// completes with no index run twice and new work runs.
func TestContainerdComesAndGoes(t *testing.T) {
	parts := itest.Need(t)
	cd := itest.NewContainerd(t, parts) // first: it must outlive the server
	s := newServer(t, "local", "--containerd-address", cd.Socket, "--autoscale-stable-window", "4s", "--autoscale-panic-window", "1s")
	s.launch()
	s.waitUp("/healthz")

	// No containerd: the API serves, /readyz says why it is not ready.
	if code, body := readyz(t, s, ""); code != http.StatusServiceUnavailable || !strings.Contains(body, "engine not connected") || strings.Contains(body, cd.Socket) {
		t.Fatalf("readyz without containerd, anonymous: %d %q, want 503 without the socket path", code, body)
	}
	if code, body := readyz(t, s, s.admin); code != http.StatusServiceUnavailable || !strings.Contains(body, cd.Socket) {
		t.Fatalf("readyz without containerd, admin: %d %q, want 503 naming the socket", code, body)
	}
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "nocontainerd")
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "early", RunSpec: api.RunSpec{
		ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"testprog", "job"}, ScaleArraySpec: "0-1"}}); err != nil {
		t.Fatal(err)
	}
	proto := testApp("steady", image)
	proto.ScaleMinInstances = intp(1)
	if _, err := c.CreateApp(ctx, p.ID, proto); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if r, err := c.GetJobRun(ctx, p.ID, "early"); err != nil || r.Status != "pending" {
		t.Fatalf("a run without an engine: %+v %v, want pending", r, err)
	}

	// containerd appears: the server connects and the waiting work runs.
	cd.Start()
	s.waitReady()
	if r := waitRun(t, c, p.ID, "early", 60*time.Second, finished); r.Status != "completed" {
		t.Fatalf("the run made before containerd: %s %+v", r.Status, r.StatusDetails)
	}
	a := waitApp(t, c, p.ID, "steady", 60*time.Second, func(a *api.App) bool { return a.Status == "ready" })
	mustCall(t, s, a, "/")

	// containerd goes away under a run whose instances end meanwhile, and
	// (most likely) while another run's instance is being created.
	run := func(name, cmd string) {
		t.Helper()
		if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: name, RunSpec: api.RunSpec{
			ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"sh", "-c", cmd}, ScaleArraySpec: "0-1"}}); err != nil {
			t.Fatal(err)
		}
		waitRun(t, c, p.ID, name, 60*time.Second, func(r *api.JobRun) bool { return r.StatusDetails.Running == 2 })
	}
	run("through", "sleep 3; testprog job")
	time.Sleep(1500 * time.Millisecond) // created and started
	run("interrupted", "testprog job")
	cd.Stop()
	for range 20 { // four seconds without containerd: "through" ends
		if got := mustCall(t, s, a, "/"); got != "hello from steady-00001 v1\n" {
			t.Fatalf("the app without containerd: %q", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cd.Start()
	for _, name := range []string{"through", "interrupted"} {
		r := waitRun(t, c, p.ID, name, 60*time.Second, finished)
		if r.Status != "completed" || r.StatusDetails.Succeeded != 2 {
			t.Fatalf("run %s through the restart: %s %+v", name, r.Status, r.StatusDetails)
		}
		for i, d := range r.StatusDetails.IndicesDetails {
			if d.Retries != 0 {
				t.Errorf("run %s: index %s ran %d extra times", name, i, d.Retries)
			}
		}
	}

	// After the restart the engine takes new work, and the app serves.
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "after", RunSpec: api.RunSpec{
		ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"testprog", "job"}}}); err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, c, p.ID, "after", 60*time.Second, finished); r.Status != "completed" {
		t.Fatalf("a run after the restart: %s %+v", r.Status, r.StatusDetails)
	}
	mustCall(t, s, a, "/")
}

// readyz answers /readyz's status and body, with token when given.
func readyz(t *testing.T, s *server, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url()+"/readyz", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
