package e2e

import (
	"context"
	bin "encoding/binary"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/coligo/coligo/api"
)

func TestAuditLog(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	a := activeProject(t, c, "audited")
	b := activeProject(t, c, "other")
	secretName := "db-" + randomValue(t)[4:20]
	if _, err := c.CreateSecret(ctx, a.ID, api.SecretPrototype{Name: secretName, Format: "generic", Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetSecret(ctx, a.ID, secretName); err != nil {
		t.Fatal(err)
	}
	mgr, err := c.CreateToken(ctx, api.TokenPrototype{Name: "m", ProjectID: a.ID, Role: "manager"})
	if err != nil {
		t.Fatal(err)
	}
	rdr, err := c.CreateToken(ctx, api.TokenPrototype{Name: "r", ProjectID: a.ID, Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeToken(ctx, rdr.ID); err != nil {
		t.Fatal(err)
	}
	evs, err := c.AllAuditEvents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	read := false
	for _, e := range evs {
		actions = append(actions, e.Action)
		if e.Action == "secret.read" {
			read = e.TargetName == secretName && e.ProjectID == a.ID && e.Actor != "" && e.TargetHash != ""
		}
		if strings.Contains(e.Target, secretName) || strings.Contains(string(e.SealedTarget), secretName) {
			t.Errorf("event %d holds the secret name in clear", e.Seq)
		}
	}
	want := "project.create project.create secret.read token.create token.create token.revoke"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("actions %q, want %q", got, want)
	}
	if !read {
		t.Errorf("the secret read is not recorded with who and what: %+v", evs)
	}
	// A manager sees its own project's events only; a reader none.
	mine, err := s.client(mgr.Token).AllAuditEvents(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range mine {
		if e.ProjectID != a.ID {
			t.Errorf("manager of A sees event %d of project %q", e.Seq, e.ProjectID)
		}
	}
	_, err = s.client(mgr.Token).ListAuditEvents(ctx, api.ListOptions{}, b.ID)
	wantStatus(t, err, 404, "manager asks for another project's events")
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if out := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin}, "audit", "list", "--verify"); out.code != 0 || !strings.Contains(out.stdout, "Verified: 6 entries") {
		t.Fatalf("audit list --verify: %d %s %s", out.code, out.stdout, out.stderr)
	}

	// A hard delete leaves only hashes of the project's names, and the chain holds.
	if err := c.DeleteProject(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, a.ID, "")
	evs, _ = c.AllAuditEvents(ctx, "")
	for _, e := range evs {
		if e.TargetName != "" && e.ProjectID == a.ID {
			t.Errorf("event %d still shows %q after the hard delete", e.Seq, e.TargetName)
		}
	}
	if out := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin}, "audit", "list", "--verify"); out.code != 0 || !strings.Contains(out.stdout, "project.hard_delete") {
		t.Fatalf("audit list --verify after the hard delete: %d %s %s", out.code, out.stdout, out.stderr)
	}
	s.stop()
	if hits := scanDir(t, s.dataDir, []byte(secretName)); len(hits) > 0 {
		t.Errorf("the deleted project's secret name remains in %v", hits)
	}

	// Altering an entry on disk is detected.
	db, err := bolt.Open(filepath.Join(s.dataDir, "coligo.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket([]byte("audit"))
		key := bin.BigEndian.AppendUint64(nil, 3)
		var e map[string]any
		json.Unmarshal(bk.Get(key), &e)
		e["actor"] = "someone-else"
		v, _ := json.Marshal(e)
		return bk.Put(key, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	out := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin}, "audit", "list", "--verify")
	if out.code == 0 || !strings.Contains(out.stderr, "entry 3 was altered") {
		t.Errorf("tampered log: exit %d, stderr %q", out.code, out.stderr)
	}
}
