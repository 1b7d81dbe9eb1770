package e2e

import (
	"bytes"
	"context"
	bin "encoding/binary"
	"encoding/json"
	"os"
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
	want := "project.create project.create secret.create secret.read token.create token.create token.revoke"
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
	if out := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin}, "audit", "list", "--verify"); out.code != 0 || !strings.Contains(out.stdout, "Verified: 7 entries") {
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

// TestAuditCompleteness is the audit matrix: every mutating route, called by
// a project token (or the admin where only an admin may), leaves exactly
// one event of that caller with the route's action and kind, the project,
// the resource's name (sealed, shown to the admin while the project lives)
// or its id, and the outcome with the status code — for refused calls too.
// Then the server's own verification fails after a byte of an entry is
// changed on disk with the server stopped, and after the chain is cut off.
func TestAuditCompleteness(t *testing.T) {
	s := startServer(t)
	admin := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, admin, "matrix")
	ids, toks := map[string]string{}, map[string]string{"admin": s.admin}
	for _, role := range []string{"reader", "writer", "manager"} {
		tok, err := admin.CreateToken(ctx, api.TokenPrototype{Name: role, ProjectID: p.ID, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		ids[role], toks[role] = tok.ID, tok.Token
	}
	all, err := admin.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range all.Tokens {
		if tk.Role == "admin" {
			ids["admin"] = tk.ID
		}
	}
	if _, err := admin.CreateApp(ctx, p.ID, api.AppPrototype{Name: "web", AppSpec: api.AppSpec{ImageReference: nowhereImage, ScaleInitialInstances: intp(0)}}); err != nil {
		t.Fatal(err)
	}
	latest := ""
	for deadline := time.Now().Add(20 * time.Second); latest == ""; time.Sleep(20 * time.Millisecond) {
		revs, err := admin.ListAppRevisions(ctx, p.ID, "web", api.ListOptions{})
		if err == nil && len(revs.Revisions) == 1 {
			latest = revs.Revisions[0].Name
		} else if time.Now().After(deadline) {
			t.Fatalf("revisions of web: %+v %v", revs, err)
		}
	}
	newToken := ""
	secretBody := `{"name":"s1","format":"generic","data":{"k":"v"}}`
	steps := []struct {
		who, method, path, body string
		action, kind, name      string // name: the resource's name as the admin sees it; "" for none
		target                  string // in clear; "*" for whatever id the call made
		outcome                 string
		code                    int
	}{
		{"writer", "POST", "/v2/projects/{P}/secrets", secretBody, "secret.create", "secret", "s1", "", "success", 201},
		{"writer", "POST", "/v2/projects/{P}/secrets", secretBody, "secret.create", "secret", "s1", "", "failure", 409},
		{"reader", "POST", "/v2/projects/{P}/secrets", `{"name":"s2","format":"generic"}`, "secret.create", "secret", "", "", "failure", 403},
		{"writer", "PUT", "/v2/projects/{P}/secrets/s1", `{"format":"generic","data":{"k":"w"}}`, "secret.replace", "secret", "s1", "", "success", 200},
		{"writer", "DELETE", "/v2/projects/{P}/secrets/s1", "", "secret.delete", "secret", "s1", "", "success", 202},
		{"writer", "DELETE", "/v2/projects/{P}/secrets/nope", "", "secret.delete", "secret", "nope", "", "failure", 404},
		{"writer", "POST", "/v2/projects/{P}/config_maps", `{"name":"c1","data":{"k":"v"}}`, "config_map.create", "config_map", "c1", "", "success", 201},
		{"writer", "PUT", "/v2/projects/{P}/config_maps/c1", `{"data":{"k":"w"}}`, "config_map.replace", "config_map", "c1", "", "success", 200},
		{"writer", "DELETE", "/v2/projects/{P}/config_maps/c1", "", "config_map.delete", "config_map", "c1", "", "success", 202},
		{"writer", "POST", "/v2/projects/{P}/jobs", `{"name":"j1","image_reference":"` + nowhereImage + `"}`, "job.create", "job", "j1", "", "success", 201},
		{"writer", "PATCH", "/v2/projects/{P}/jobs/j1", `{"scale_retry_limit":2}`, "job.update", "job", "j1", "", "success", 200},
		{"writer", "PATCH", "/v2/projects/{P}/jobs/j1", `{"scale_retry_limit":"x"}`, "job.update", "job", "j1", "", "failure", 400},
		{"writer", "POST", "/v2/projects/{P}/job_runs", `{"name":"r1","image_reference":"` + nowhereImage + `"}`, "job_run.create", "job_run", "r1", "", "success", 202},
		{"writer", "DELETE", "/v2/projects/{P}/job_runs/r1", "", "job_run.delete", "job_run", "r1", "", "success", 202},
		{"writer", "DELETE", "/v2/projects/{P}/jobs/j1", "", "job.delete", "job", "j1", "", "success", 202},
		{"writer", "POST", "/v2/projects/{P}/apps", `{"name":"a1","image_reference":"` + nowhereImage + `","scale_initial_instances":0}`, "app.create", "app", "a1", "", "success", 201},
		{"writer", "PATCH", "/v2/projects/{P}/apps/a1", `{"scale_max_instances":3}`, "app.update", "app", "a1", "", "success", 200},
		{"writer", "DELETE", "/v2/projects/{P}/apps/a1", "", "app.delete", "app", "a1", "", "success", 202},
		{"writer", "DELETE", "/v2/projects/{P}/apps/web/revisions/" + latest, "", "revision.delete", "revision", latest, "", "failure", 400},
		{"writer", "POST", "/v2/projects/{P}/allowed_outbound_destinations", `{"name":"lan","type":"cidr_block","cidr_block":"10.9.0.0/16"}`,
			"allowed_outbound_destination.create", "allowed_outbound_destination", "lan", "", "success", 201},
		{"writer", "PATCH", "/v2/projects/{P}/allowed_outbound_destinations/lan", `{"cidr_block":"10.9.0.0/24"}`,
			"allowed_outbound_destination.update", "allowed_outbound_destination", "lan", "", "success", 200},
		{"writer", "DELETE", "/v2/projects/{P}/allowed_outbound_destinations/lan", "", "allowed_outbound_destination.delete", "allowed_outbound_destination", "lan", "", "success", 202},
		{"manager", "POST", "/v2/tokens", `{"name":"ci","role":"reader"}`, "token.create", "token", "", "*", "success", 201},
		{"manager", "DELETE", "/v2/tokens/{T}", "", "token.revoke", "token", "", "{T}", "success", 202},
		{"writer", "POST", "/v2/tokens", `{"name":"ci","role":"reader"}`, "token.create", "token", "", "", "failure", 403},
		{"manager", "POST", "/v2/projects/{P}/rotate_key", "", "key.rotate_dek", "project", "", "", "success", 202},
		{"admin", "POST", "/v2/key_providers/local/rotate", "", "key.rotate", "key", "", "*", "success", 202},
		{"manager", "DELETE", "/v2/projects/{P}", "", "project.delete", "project", "", "soft", "success", 202},
		{"manager", "POST", "/v2/projects/{P}/restore", "", "project.restore", "project", "", "", "success", 202},
		{"writer", "POST", "/v2/projects/{P}/restore", "", "project.restore", "project", "", "", "failure", 403},
		{"admin", "POST", "/v2/projects", `{"name":"second"}`, "project.create", "project", "second", "", "success", 202},
	}
	lastSeq := func() uint64 {
		evs, err := admin.AllAuditEvents(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return evs[len(evs)-1].Seq
	}
	for _, st := range steps {
		path := strings.ReplaceAll(strings.ReplaceAll(st.path, "{P}", p.ID), "{T}", newToken)
		before := lastSeq()
		code, body := s.send(t, attack{method: st.method, path: path, token: toks[st.who], body: st.body, header: map[string]string{"If-Match": "*"}})
		var out struct {
			ID string `json:"id"`
		}
		json.Unmarshal([]byte(body), &out)
		what := st.who + " " + st.method + " " + st.path
		if code != st.code {
			t.Errorf("%s: status %d, want %d", what, code, st.code)
			continue
		}
		if st.action == "token.create" && st.code == 201 {
			newToken = out.ID
		}
		var mine []api.AuditEvent
		evs, _ := admin.AllAuditEvents(ctx, "")
		for _, e := range evs {
			if e.Seq > before && e.Actor == ids[st.who] {
				mine = append(mine, e)
			}
		}
		if len(mine) != 1 {
			t.Errorf("%s: %d events of the caller, want exactly one: %+v", what, len(mine), mine)
			continue
		}
		e := mine[0]
		target := strings.ReplaceAll(st.target, "{T}", newToken)
		if e.Action != st.action || e.Kind != st.kind || e.Outcome != st.outcome || e.StatusCode != st.code || e.TargetName != st.name ||
			target == "*" && e.Target == "" || target != "*" && e.Target != target {
			t.Errorf("%s: event %+v, want %s %s %s (%d) name %q target %q", what, e, st.action, st.kind, st.outcome, st.code, st.name, target)
		}
		if st.action != "project.create" && st.action != "key.rotate" && st.kind != "token" && e.ProjectID != p.ID {
			t.Errorf("%s: event of project %q, want %s", what, e.ProjectID, p.ID)
		}
	}
	// Calls nobody authenticated leave no event (anyone could flood the log).
	before := lastSeq()
	if code := call(t, s, "coligo_bogus", "POST", "/v2/projects/{P}/secrets", secretBody, p.ID, 0); code != 401 || lastSeq() != before {
		t.Errorf("unauthenticated call: %d, events %d → %d", code, before, lastSeq())
	}
	rep, err := admin.VerifyAuditEvents(ctx)
	if err != nil || !rep.Valid || rep.Entries < len(steps) {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	if _, err := s.client(toks["manager"]).VerifyAuditEvents(ctx); !isStatus(err, 403) {
		t.Errorf("a manager verified the whole log: %v", err)
	}

	// A byte of an entry changed on disk, with the server stopped (every copy
	// bbolt holds, freed pages included, so that the live one is among them).
	s.stop()
	dbFile := filepath.Join(s.dataDir, "coligo.db")
	raw, err := os.ReadFile(dbFile)
	if err != nil {
		t.Fatal(err)
	}
	from, to := []byte(`"action":"config_map.replace"`), []byte(`"action":"config_map.replacf"`)
	if !bytes.Contains(raw, from) {
		t.Fatal("the audit entry to alter is not in the file")
	}
	os.WriteFile(dbFile, bytes.ReplaceAll(raw, from, to), 0o600)
	s.start()
	if rep, err := admin.VerifyAuditEvents(ctx); err != nil || rep.Valid || !strings.Contains(rep.Problem, "was altered") {
		t.Errorf("after a byte changed: %+v %v", rep, err)
	}
	s.stop()
	os.WriteFile(dbFile, raw, 0o600) // the intact file again
	// The chain cut off: its last entry removed.
	db, err := bolt.Open(dbFile, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket([]byte("audit")).Cursor().Last()
		return tx.Bucket([]byte("audit")).Delete(k)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	if rep, err := admin.VerifyAuditEvents(ctx); err != nil || rep.Valid || !strings.Contains(rep.Problem, "cut off") {
		t.Errorf("after the last entry was removed: %+v %v", rep, err)
	}
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if out := s.cli(t, cfg, "", []string{"COLIGO_TOKEN=" + s.admin}, "audit", "list", "--verify"); out.code == 0 || !strings.Contains(out.stderr, "cut off") {
		t.Errorf("audit list --verify of a cut-off log: exit %d %q", out.code, out.stderr)
	}
}
