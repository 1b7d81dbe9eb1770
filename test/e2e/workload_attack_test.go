package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestForkBombLeavesTheHostResponsive: an instance that forks as fast as it
// can stops at its pids limit, and the API answers within a second while
// it runs (the sandbox's limits are tested from inside instances in the
// engine's tests; this is the platform's view).
func TestForkBombLeavesTheHostResponsive(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "forkbomb")
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "bomb", RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
		RunCommands: []string{"/bin/testprog", "forks", "100000"}, ScaleRetryLimit: intp(0), ScaleCPULimit: "0.5", ScaleMemoryLimit: "1G"}}); err != nil {
		t.Fatal(err)
	}
	waitRun(t, c, p.ID, "bomb", 30*time.Second, func(r *api.JobRun) bool {
		return r.StatusDetails.Running+r.StatusDetails.Succeeded+r.StatusDetails.Failed > 0
	})
	hc := &http.Client{Timeout: time.Second}
	for range 10 {
		start := time.Now()
		resp, err := hc.Get(s.url() + "/healthz")
		if err != nil {
			t.Fatalf("the API did not answer within 1 s during the fork bomb: %v", err)
		}
		resp.Body.Close()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("the API took %s during the fork bomb", d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r := waitRun(t, c, p.ID, "bomb", 60*time.Second, finished)
	var logs strings.Builder
	c.JobRunLogs(ctx, p.ID, "bomb", 0, api.LogOptions{}, &logs)
	if !strings.Contains(logs.String(), "resource temporarily unavailable") {
		t.Errorf("the fork bomb did not meet its limit: %s %s", r.Status, logs.String())
	}
}
