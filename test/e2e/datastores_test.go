package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
)

// TestPersistentDataStore: a persistent data store names a bucket of a
// real S3-compatible store (versitygw on loopback) for a location the
// operator configured (--object-storage); bad input is refused naming the
// field; what a job run's instances write into the mounted bucket, an
// app's instance reads through its own (read-only, under a sub_path)
// mount; a store with the wrong key is accepted (nothing contacts the
// store) and fails the instance that mounts it with the reason; another
// project's token sees none of it.
func TestPersistentDataStore(t *testing.T) {
	s3 := itest.StartS3(t)
	dir := s3.Bucket(t, "results")
	s := newServer(t, "local", "--autoscale-stable-window", "4s", "--autoscale-panic-window", "1s", "--object-storage", "local="+s3.Endpoint)
	s.start()
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "stores")
	for name, data := range map[string]map[string]string{
		"hmac":    {"access_key_id": s3.AccessKeyID, "secret_access_key": s3.SecretAccessKey},
		"badhmac": {"access_key_id": s3.AccessKeyID, "secret_access_key": "not-the-key"},
	} {
		if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: name, Format: "hmac_auth", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	store := func(name, bucket, loc, secret string) api.PersistentDataStorePrototype {
		return api.PersistentDataStorePrototype{Name: name, StorageType: "object_storage",
			Data: map[string]string{"bucket_name": bucket, "bucket_location": loc, "secret_name": secret}}
	}
	for _, tc := range []struct {
		what string
		in   api.PersistentDataStorePrototype
		want string
	}{
		{"an unknown location", store("x", "results", "eu-de", "hmac"), "data.bucket_location"},
		{"a registry secret", store("x", "results", "local", "regcred"), "hmac_auth"},
		{"no such secret", store("x", "results", "local", "nope"), "no secret nope"},
		{"a bad bucket name", store("x", "Results_1", "local", "hmac"), "data.bucket_name"},
		{"block storage", api.PersistentDataStorePrototype{Name: "x", StorageType: "block_storage", Data: store("x", "results", "local", "hmac").Data}, "storage_type"},
		{"a bad name", store("X Y", "results", "local", "hmac"), "invalid name"},
	} {
		if _, err := c.CreatePersistentDataStore(ctx, p.ID, tc.in); !isStatus(err, 400) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 400 with %q", tc.what, err, tc.want)
		}
	}
	if l, err := c.ListPersistentDataStores(ctx, p.ID, api.ListOptions{}); err != nil || len(l.PersistentDataStores) != 0 {
		t.Fatalf("refused stores left something: %+v %v", l, err)
	}
	for _, in := range []api.PersistentDataStorePrototype{store("results", "results", "local", "hmac"), store("broken", "results", "local", "badhmac")} {
		d, err := c.CreatePersistentDataStore(ctx, p.ID, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.ResourceType != "persistent_data_store_v2" || d.StorageType != "object_storage" || d.Data["bucket_name"] != "results" {
			t.Errorf("created: %+v", d)
		}
	}

	rw, ro := false, true
	job := api.JobRunPrototype{Name: "write", RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred", ScaleArraySpec: "0-1",
		RunCommands:     []string{"sh", "-c", `mkdir -p /mnt/data/run && echo "from index $JOB_INDEX" > /mnt/data/run/out-$JOB_INDEX.txt`},
		RunVolumeMounts: []api.VolumeMount{{Type: "persistent_data_store", Reference: "results", MountPath: "/mnt/data", ReadOnly: &rw}}}}
	if ok, logs := runJob(t, c, p.ID, job); !ok {
		t.Fatalf("the writing run failed: %s", logs)
	}
	for _, i := range []string{"0", "1"} {
		if b, err := os.ReadFile(filepath.Join(dir, "run", "out-"+i+".txt")); err != nil || string(b) != "from index "+i+"\n" {
			t.Errorf("index %s's object in the bucket: %q %v", i, b, err)
		}
	}
	proto := testApp("reader", image)
	proto.RunVolumeMounts = []api.VolumeMount{{Type: "persistent_data_store", Reference: "results", MountPath: "/data", SubPath: "run", ReadOnly: &ro}}
	a := deployApp(t, c, p.ID, proto)
	if body := mustCall(t, s, a, "/file?path=/data/out-1.txt"); !strings.Contains(body, "from index 1") {
		t.Errorf("the app reads %q", body)
	}
	if a.RunVolumeMounts[0].ReadOnly == nil || !*a.RunVolumeMounts[0].ReadOnly || a.RunVolumeMounts[0].SubPath != "run" {
		t.Errorf("the app's mount as shown: %+v", a.RunVolumeMounts)
	}

	job.Name, job.RunVolumeMounts[0].Reference, job.ScaleArraySpec = "broken", "broken", "0"
	job.ScaleRetryLimit = new(int)
	run, err := c.CreateJobRun(ctx, p.ID, job)
	if err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, c, p.ID, run.Name, 60*time.Second, finished)
	if d := r.StatusDetails.IndicesDetails["0"]; r.Status != "failed" || d.LastFailureReason != "persistent_data_store_mount_failed" {
		t.Errorf("a run mounting a store with the wrong key: %s %+v", r.Status, r.StatusDetails)
	}

	tok, err := c.CreateToken(ctx, api.TokenPrototype{Name: "other", ProjectID: activeProject(t, c, "stores-other").ID, Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	other := s.client(tok.Token)
	_, err = other.GetPersistentDataStore(ctx, p.ID, "results")
	wantForbidden(t, err, "another project's token reads a store")
	wantForbidden(t, other.DeletePersistentDataStore(ctx, p.ID, "results"), "another project's token deletes a store")
	// What a Code Engine SDK sends along: the version date, and
	// keep_service_access on a delete (there are no service-access secrets
	// here to keep).
	if code, body := s.send(t, attack{method: "GET", path: "/v2/projects/" + p.ID + "/persistent_data_stores?version=2025-10-01&limit=10", token: s.admin}); code != 200 || !strings.Contains(body, `"results"`) {
		t.Errorf("a list with version: %d %s", code, body)
	}
	if code, body := s.send(t, attack{method: "DELETE", path: "/v2/projects/" + p.ID + "/apps/reader?keep_service_access=true&version=2025-10-01", token: s.admin}); code != 202 {
		t.Errorf("a delete with keep_service_access: %d %s", code, body)
	}
	if err := c.DeletePersistentDataStore(ctx, p.ID, "broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "out-0.txt")); err != nil {
		t.Errorf("deleting a store touched the bucket: %v", err)
	}
}
