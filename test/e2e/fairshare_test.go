package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestFairShare: one writer once took every slot of --max-instances with a
// 1,000-index daemon run. With 8 slots a project holds at most 6 (3/4), so a
// 2-index run of another project, submitted after, starts at once.
func TestFairShare(t *testing.T) {
	s := startServer(t, "--max-instances", "8")
	c := s.adminClient()
	ctx := context.Background()
	a, _, image := jobProject(t, s, "greedy")
	b := activeProject(t, c, "modest")
	if _, err := c.CreateSecret(ctx, b.ID, api.SecretPrototype{Name: "regcred", Format: "registry", Data: secretData(t, c, a.ID)}); err != nil {
		t.Fatal(err)
	}
	spec := func(cmd ...string) api.RunSpec {
		return api.RunSpec{ImageReference: image, ImageSecret: "regcred", RunCommands: cmd, ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G"}
	}
	big := spec("sleep", "600")
	big.RunMode, big.ScaleArraySpec = "daemon", "0-999"
	if _, err := c.CreateJobRun(ctx, a.ID, api.JobRunPrototype{Name: "big", RunSpec: big}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteJobRun(context.Background(), a.ID, "big") })
	most := 0
	sample := func() {
		r, err := c.GetJobRun(ctx, a.ID, "big")
		if err == nil {
			most = max(most, r.StatusDetails.Running)
		}
	}
	waitRun(t, c, a.ID, "big", 60*time.Second, func(r *api.JobRun) bool { return r.StatusDetails.Running >= 6 })
	small := spec("sleep", "2")
	small.ScaleArraySpec = "0-1"
	if _, err := c.CreateJobRun(ctx, b.ID, api.JobRunPrototype{Name: "small", RunSpec: small}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		sample()
		r, err := c.GetJobRun(ctx, b.ID, "small")
		if err == nil && r.StatusDetails.Running+r.StatusDetails.Succeeded == 2 {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("project B's 2 indices did not start within 5 s beside A's big run: %+v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 20 {
		sample()
		time.Sleep(50 * time.Millisecond)
	}
	if most > 6 {
		t.Errorf("project A held %d instances of 8, more than its share of 6", most)
	}
}

// secretData is the data of project's registry secret regcred.
func secretData(t *testing.T, c *api.Client, project string) map[string]string {
	t.Helper()
	sec, err := c.GetSecret(context.Background(), project, "regcred")
	if err != nil {
		t.Fatal(err)
	}
	return sec.Data
}
