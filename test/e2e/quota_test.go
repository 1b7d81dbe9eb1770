package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestProjectQuota: apps and job runs of a project share its quota (here
// 0.25 vCPU: two instances of 0.125). What does not fit waits with reason
// waiting_for_resources, and starts when room frees; it is never refused.
func TestProjectQuota(t *testing.T) {
	s := appServer(t, "--project-quota-cpu", "0.25")
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "quota")
	spec := api.RunSpec{ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"sleep", "4"},
		ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G", ScaleArraySpec: "0-3"}
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "four", RunSpec: spec}); err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, c, p.ID, "four", 60*time.Second, func(r *api.JobRun) bool { return r.StatusDetails.Running == 2 })
	if r.StatusDetails.Pending != 2 || r.StatusDetails.Reason != "waiting_for_resources" {
		t.Errorf("two indices beyond the quota: %+v, want pending with reason waiting_for_resources", r.StatusDetails)
	}
	// An app of the project waits for the room the run holds.
	proto := testApp("waits", image)
	proto.ScaleCPULimit, proto.ScaleMemoryLimit = "0.125", "0.25G"
	if _, err := c.CreateApp(ctx, p.ID, proto); err != nil {
		t.Fatal(err)
	}
	most, sawWaiting := 0, false
	done := false
	for deadline := time.Now().Add(90 * time.Second); !done; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the run did not finish within 90 s")
		}
		r, err := c.GetJobRun(ctx, p.ID, "four")
		if err != nil {
			t.Fatal(err)
		}
		held := r.StatusDetails.Running + len(instances(t, c, p.ID, "waits"))
		most = max(most, held)
		if a, err := c.GetApp(ctx, p.ID, "waits"); err == nil {
			sawWaiting = sawWaiting || a.Status == "deploying" && a.StatusDetails.Reason == "waiting_for_resources"
		}
		done = finished(r)
	}
	if !sawWaiting {
		t.Error("the app never said it waits for resources while the run held the quota")
	}
	if most > 2 {
		t.Errorf("the project held %d instances of 0.125 vCPU with a quota of 0.25", most)
	}
	if r, _ := c.GetJobRun(ctx, p.ID, "four"); r.Status != "completed" {
		t.Errorf("the run waited, then: %s %+v", r.Status, r.StatusDetails)
	}
	a := waitApp(t, c, p.ID, "waits", 60*time.Second, func(a *api.App) bool { return a.Status == "ready" })
	if a.StatusDetails.Reason != "ready" {
		t.Errorf("app once room freed: %+v", a.StatusDetails)
	}
}
