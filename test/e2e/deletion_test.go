package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/api"
)

func randomValue(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "val-" + hex.EncodeToString(b)
}

// wrappedDEK reads, with the server stopped, the stored forms of a
// project's wrapped DEK: the JSON record and the base64 of the wrapped key.
func wrappedDEK(t *testing.T, dataDir, projectID string) [][]byte {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dataDir, "coligo.db"), 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rec []byte
	db.View(func(tx *bolt.Tx) error {
		rec = append([]byte(nil), tx.Bucket([]byte("deks")).Get([]byte(projectID))...)
		return nil
	})
	if len(rec) == 0 {
		t.Fatalf("no wrapped dek for project %s", projectID)
	}
	var w struct {
		Wrapped []byte `json:"wrapped"`
		ID      string `json:"id"`
	}
	if err := json.Unmarshal(rec, &w); err != nil || len(w.Wrapped) < 32 {
		t.Fatalf("wrapped dek record: %v", err)
	}
	return [][]byte{rec, w.Wrapped, []byte(base64.StdEncoding.EncodeToString(w.Wrapped))}
}

// TestDataDirHoldsNoPlaintext scans every file of the data dir for secret
// values before and after a restart, and after a hard delete for the values
// and the project's wrapped DEK too.
func TestDataDirHoldsNoPlaintext(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "scan")
	keep := activeProject(t, c, "keep")
	var values [][]byte
	for i := range 20 {
		v := randomValue(t)
		values = append(values, []byte(v))
		if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: fmt.Sprint("s", i), Format: "generic", Data: map[string]string{"value": v}}); err != nil {
			t.Fatal(err)
		}
	}
	keepValue := randomValue(t)
	if _, err := c.CreateSecret(ctx, keep.ID, api.SecretPrototype{Name: "k", Format: "generic", Data: map[string]string{"value": keepValue}}); err != nil {
		t.Fatal(err)
	}
	if hits := scanDir(t, s.dataDir, values...); len(hits) > 0 {
		t.Fatalf("plaintext secret values found in %v", hits)
	}
	s.stop()
	dek := wrappedDEK(t, s.dataDir, p.ID)
	if hits := scanDir(t, s.dataDir, dek...); len(hits) == 0 {
		t.Fatal("the scan does not find the wrapped DEK while the project exists; the scan is broken")
	}
	s.start()
	got, err := c.GetSecret(ctx, p.ID, "s7")
	if err != nil || got.Data["value"] != string(values[7]) {
		t.Fatalf("after restart: %v %v", got, err)
	}
	if hits := scanDir(t, s.dataDir, values...); len(hits) > 0 {
		t.Fatalf("after restart, plaintext secret values found in %v", hits)
	}

	if err := c.DeleteProject(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "")
	s.stop()
	if hits := scanDir(t, s.dataDir, append(dek, values...)...); len(hits) > 0 {
		t.Fatalf("after hard delete and compaction, the project's DEK or values remain in %v", hits)
	}
	s.start()
	// The other project is untouched.
	got, err = c.GetSecret(ctx, keep.ID, "k")
	if err != nil || got.Data["value"] != keepValue {
		t.Fatalf("other project after hard delete: %v %v", got, err)
	}
}

func TestSoftDeleteRestoreHardDelete(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "soft")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "a", Format: "generic", Data: map[string]string{"x": "y"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProject(ctx, p.ID, false); err != nil {
		t.Fatal(err)
	}
	got := waitStatus(t, c, p.ID, "soft_deleted")
	del, _ := time.Parse(time.RFC3339, got.DeletedAt)
	hard, _ := time.Parse(time.RFC3339, got.HardDeleteAt)
	if d := hard.Sub(del); d != 168*time.Hour {
		t.Errorf("hard_delete_at - deleted_at = %s, want 168h", d)
	}
	// Everything but get, list and restore is refused.
	_, err := c.GetSecret(ctx, p.ID, "a")
	wantStatus(t, err, 409, "get secret of soft-deleted project")
	_, err = c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "b", Format: "generic"})
	wantStatus(t, err, 409, "create secret in soft-deleted project")
	_, err = c.ListConfigMaps(ctx, p.ID, api.ListOptions{})
	wantStatus(t, err, 409, "list config maps of soft-deleted project")
	wantStatus(t, c.DeleteProject(ctx, p.ID, false), 409, "soft delete twice")
	_, err = c.CreateProject(ctx, api.ProjectPrototype{Name: "soft"})
	wantStatus(t, err, 409, "reuse the name of a soft-deleted project")
	list, _ := c.ListProjects(ctx, api.ListOptions{}, false)
	if len(list.Projects) != 0 {
		t.Errorf("soft-deleted project listed without include_deleted")
	}
	list, _ = c.ListProjects(ctx, api.ListOptions{}, true)
	if len(list.Projects) != 1 || list.Projects[0].HardDeleteAt == "" {
		t.Errorf("include_deleted: %+v", list.Projects)
	}

	if _, err := c.RestoreProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "active")
	sec, err := c.GetSecret(ctx, p.ID, "a")
	if err != nil || sec.Data["x"] != "y" {
		t.Fatalf("secret after restore: %v %v", sec, err)
	}
	_, err = c.RestoreProject(ctx, p.ID)
	wantStatus(t, err, 409, "restore an active project")

	// A hard delete of a soft-deleted project.
	if err := c.DeleteProject(ctx, p.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProject(ctx, p.ID, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "")
	_, err = c.RestoreProject(ctx, p.ID)
	wantStatus(t, err, 404, "restore a hard-deleted project")
	// The name is free again.
	activeProject(t, c, "soft")
}

func TestReaperHardDeletesAfterRetention(t *testing.T) {
	s := startServer(t, "--soft-delete-retention", "1s")
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "reaped")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "a", Format: "generic", Data: map[string]string{"x": "y"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteProject(ctx, p.ID, false); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "")
	if !strings.Contains(s.logs(), "retention ended") {
		t.Errorf("the reaper did not log the hard delete")
	}
}

// TestHardDeleteResumesAfterKill kills the server right after the DEK is
// destroyed (a failpoint sends SIGKILL to itself) and checks that the next
// start finishes the job.
func TestHardDeleteResumesAfterKill(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "interrupted")
	v := randomValue(t)
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "a", Format: "generic", Data: map[string]string{"x": v}}); err != nil {
		t.Fatal(err)
	}
	s.stop()
	dek := wrappedDEK(t, s.dataDir, p.ID)

	// First crash: right after the DEK is destroyed, on the delete call.
	// Second crash: on the restart that resumes it, right after the purge,
	// which may come before the server is even ready.
	for _, step := range []string{"hard-delete-after-dek", "hard-delete-after-purge"} {
		s.env = []string{"COLIGO_FAILPOINT=" + step}
		if step == "hard-delete-after-dek" {
			s.start()
			if err := c.DeleteProject(ctx, p.ID, true); err != nil {
				t.Fatal(err)
			}
		} else {
			s.launch()
		}
		s.waitExit(20 * time.Second)
		if !strings.Contains(s.logs(), "failpoint reached") || !strings.Contains(s.logs(), step) {
			t.Fatalf("server exited without reaching failpoint %s:\n%s", step, s.logs())
		}
	}
	s.env = nil
	s.start()
	waitStatus(t, c, p.ID, "")
	s.stop()
	if hits := scanDir(t, s.dataDir, append(dek, []byte(v))...); len(hits) > 0 {
		t.Fatalf("after the resumed hard delete, DEK or value remain in %v", hits)
	}
}
