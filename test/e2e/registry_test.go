package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
)

// TestRegistryStoppedMidway runs from a private registry of the test's own,
// stops it, and checks that a run needing a new pull fails with the
// registry's reason, and so does a new run of the cached image: each job
// run asks the registry to accept its credentials (a manifest HEAD), so a
// registry that cannot answer cannot authorise it either.
func TestRegistryStoppedMidway(t *testing.T) {
	itest.Need(t)
	reg := itest.StartRegistry(t)
	reg.PushBusybox(t, reg.Addr+"/private/busybox:1")
	reg.PushBusybox(t, reg.Addr+"/private/busybox:2")
	s := startServer(t, "--insecure-registry", reg.Addr)
	c := s.adminClient()
	ctx := context.Background()
	p, _, _ := jobProject(t, s, "midway")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "private", Format: "registry",
		Data: map[string]string{"server": reg.Addr, "username": reg.User, "password": reg.Password}}); err != nil {
		t.Fatal(err)
	}
	submit := func(name, tag string) *api.JobRun {
		t.Helper()
		if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: name, RunSpec: api.RunSpec{
			ImageReference: reg.Addr + "/private/busybox:" + tag, ImageSecret: "private", RunCommands: []string{"true"},
			ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G"}}); err != nil {
			t.Fatal(err)
		}
		return waitRun(t, c, p.ID, name, 60*time.Second, finished)
	}
	if r := submit("before", "1"); r.Status != "completed" {
		t.Fatalf("run before the registry stops: %s %+v", r.Status, r.StatusDetails)
	}
	reg.Stop()
	if r := submit("new-tag", "2"); r.Status != "failed" || r.StatusDetails.IndicesDetails["0"].LastFailureReason != "fetch_image_failed_registry_not_found" {
		t.Errorf("run of an image not pulled yet: %s %+v", r.Status, r.StatusDetails.IndicesDetails["0"])
	}
	if r := submit("cached", "1"); r.Status != "failed" || r.StatusDetails.IndicesDetails["0"].LastFailureReason != "fetch_image_failed_registry_not_found" {
		t.Errorf("run of the cached image with the registry down: %s %+v", r.Status, r.StatusDetails.IndicesDetails["0"])
	}
}

// TestUnusedImagesAreRemoved checks that coligo keeps an image only while a
// job or an unfinished run refers to it.
func TestUnusedImagesAreRemoved(t *testing.T) {
	s := startServer(t, "--image-prune-interval", "200ms")
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "prune")
	images := func() string {
		out, _ := exec.Command("ctr", "--address", os.Getenv("COLIGO_TEST_CONTAINERD"), "-n", "coligo-"+p.ID, "images", "ls", "-q").Output()
		return string(out)
	}
	if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "once", RunSpec: api.RunSpec{
		ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"true"}, ScaleCPULimit: "0.125", ScaleMemoryLimit: "0.25G"}}); err != nil {
		t.Fatal(err)
	}
	waitRun(t, c, p.ID, "once", 60*time.Second, finished)
	// The finished run's instance still holds the image it was made of (by
	// digest) until the run goes; its tag may go as soon as the run ends.
	repo := image[:strings.LastIndex(image, ":")]
	if !strings.Contains(images(), repo+"@sha256:") {
		t.Fatalf("image missing while the run's instance exists: %q", images())
	}
	if err := c.DeleteJobRun(ctx, p.ID, "once"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); strings.Contains(images(), repo); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("image still cached with no workload referring to it: %q", images())
		}
	}
}
