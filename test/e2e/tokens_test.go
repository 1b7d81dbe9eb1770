package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestTokenMatrix checks every route for admin, and reader, writer and
// manager tokens of project A, against project A and project B.
func TestTokenMatrix(t *testing.T) {
	s := startServer(t, "--max-apps", "0") // each call makes an app to delete
	admin := s.adminClient()
	ctx := context.Background()
	a := activeProject(t, admin, "alpha")
	b := activeProject(t, admin, "beta")
	tokens := map[string]string{"admin": s.admin, "none": "", "bogus": "coligo_not-a-real-token"}
	for _, role := range []string{"reader", "writer", "manager"} {
		tok, err := admin.CreateToken(ctx, api.TokenPrototype{Name: role, ProjectID: a.ID, Role: role})
		if err != nil || !strings.HasPrefix(tok.Token, "coligo_") {
			t.Fatalf("create %s token: %+v %v", role, tok, err)
		}
		tokens[role] = tok.Token
	}

	type route struct {
		name, method, path, body string
	}
	// {P} is the project under test. Each call works on fresh names so that
	// the order of calls does not matter.
	routes := []route{
		{"list projects", "GET", "/v2/projects", ""},
		{"create project", "POST", "/v2/projects", `{"name":"new-{R}"}`},
		{"get project", "GET", "/v2/projects/{P}", ""},
		{"status details", "GET", "/v2/projects/{P}/status_details", ""},
		{"list secrets", "GET", "/v2/projects/{P}/secrets", ""},
		{"create secret", "POST", "/v2/projects/{P}/secrets", `{"name":"s-{R}","format":"generic","data":{"k":"v"}}`},
		{"get secret", "GET", "/v2/projects/{P}/secrets/fixed", ""},
		{"replace secret", "PUT", "/v2/projects/{P}/secrets/fixed", `{"format":"generic","data":{"k":"v2"}}`},
		{"delete secret", "DELETE", "/v2/projects/{P}/secrets/del-{R}", ""},
		{"list config maps", "GET", "/v2/projects/{P}/config_maps", ""},
		{"create config map", "POST", "/v2/projects/{P}/config_maps", `{"name":"c-{R}","data":{"k":"v"}}`},
		{"get config map", "GET", "/v2/projects/{P}/config_maps/fixed", ""},
		{"replace config map", "PUT", "/v2/projects/{P}/config_maps/fixed", `{"data":{"k":"v2"}}`},
		{"delete config map", "DELETE", "/v2/projects/{P}/config_maps/del-{R}", ""},
		{"list apps", "GET", "/v2/projects/{P}/apps", ""},
		{"create app", "POST", "/v2/projects/{P}/apps", `{"name":"a-{R}","image_reference":"` + nowhereImage + `"}`},
		{"get app", "GET", "/v2/projects/{P}/apps/fixed", ""},
		{"update app", "PATCH", "/v2/projects/{P}/apps/fixed", `{"scale_max_instances":3}`},
		{"delete app", "DELETE", "/v2/projects/{P}/apps/del-{R}", ""},
		{"list revisions", "GET", "/v2/projects/{P}/apps/fixed/revisions", ""},
		{"list instances", "GET", "/v2/projects/{P}/apps/fixed/instances", ""},
		{"create token", "POST", "/v2/tokens", `{"name":"t","project_id":"{P}","role":"reader"}`},
		{"list tokens", "GET", "/v2/tokens", ""},
		{"metrics", "GET", "/metrics", ""},
		{"rotate root key", "POST", "/v2/key_providers/local/rotate", ""},
		{"restore project", "POST", "/v2/projects/{P}/restore", ""},
		{"delete project", "DELETE", "/v2/projects/{P}", ""},
	}
	// want[route][token] for project A and project B; "A"/"B" columns.
	type codes struct{ A, B int }
	all := func(c int) map[string]codes {
		return map[string]codes{"admin": {c, c}, "reader": {c, c}, "writer": {c, c}, "manager": {c, c}}
	}
	want := map[string]map[string]codes{
		"list projects":      all(200),
		"create project":     {"admin": {202, 202}, "reader": {403, 403}, "writer": {403, 403}, "manager": {403, 403}},
		"get project":        {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"status details":     {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"list secrets":       {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"create secret":      {"admin": {201, 201}, "reader": {403, 404}, "writer": {201, 404}, "manager": {201, 404}},
		"get secret":         {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"replace secret":     {"admin": {200, 200}, "reader": {403, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"delete secret":      {"admin": {202, 202}, "reader": {403, 404}, "writer": {202, 404}, "manager": {202, 404}},
		"list config maps":   {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"create config map":  {"admin": {201, 201}, "reader": {403, 404}, "writer": {201, 404}, "manager": {201, 404}},
		"get config map":     {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"replace config map": {"admin": {200, 200}, "reader": {403, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"delete config map":  {"admin": {202, 202}, "reader": {403, 404}, "writer": {202, 404}, "manager": {202, 404}},
		"list apps":          {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"create app":         {"admin": {201, 201}, "reader": {403, 404}, "writer": {201, 404}, "manager": {201, 404}},
		"get app":            {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"update app":         {"admin": {200, 200}, "reader": {403, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"delete app":         {"admin": {202, 202}, "reader": {403, 404}, "writer": {202, 404}, "manager": {202, 404}},
		"list revisions":     {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		"list instances":     {"admin": {200, 200}, "reader": {200, 404}, "writer": {200, 404}, "manager": {200, 404}},
		// The role is checked before the body, which names the project, is
		// read: a reader or writer learns nothing of B, 403 either way.
		"create token":    {"admin": {201, 201}, "reader": {403, 403}, "writer": {403, 403}, "manager": {201, 404}},
		"list tokens":     {"admin": {200, 200}, "reader": {403, 403}, "writer": {403, 403}, "manager": {200, 200}},
		"metrics":         {"admin": {200, 200}, "reader": {403, 403}, "writer": {403, 403}, "manager": {403, 403}},
		"rotate root key": {"admin": {202, 202}, "reader": {403, 403}, "writer": {403, 403}, "manager": {403, 403}},
		// restore of an active project: allowed to try (409), or hidden.
		"restore project": {"admin": {409, 409}, "reader": {403, 404}, "writer": {403, 404}, "manager": {409, 404}},
		"delete project":  {"admin": {202, 202}, "reader": {403, 404}, "writer": {403, 404}, "manager": {202, 404}},
	}
	seq := 0
	for _, r := range routes {
		for _, who := range []string{"none", "bogus", "reader", "writer", "manager", "admin"} {
			for _, target := range []*api.Project{a, b} {
				col := "A"
				if target == b {
					col = "B"
				}
				if r.name == "delete project" {
					// Deleting needs a project of its own for each call.
					target = activeProject(t, admin, "victim-"+who+"-"+col)
					if col == "A" && who != "admin" {
						// Project tokens of A are tested on A itself at the end.
						continue
					}
				}
				seq++
				prepare(t, admin, target.ID, seq)
				code := call(t, s, tokens[who], r.method, r.path, r.body, target.ID, seq)
				exp := 401
				if w, ok := want[r.name][who]; ok {
					exp = w.A
					if col == "B" {
						exp = w.B
					}
				}
				if code != exp {
					t.Errorf("%s as %s on project %s: got %d, want %d", r.name, who, col, code, exp)
				}
			}
		}
	}
	// A project's data key: its manager may rotate it, no one else's token.
	for who, exp := range map[string]int{"reader": 403, "writer": 403} {
		if code := call(t, s, tokens[who], "POST", "/v2/projects/{P}/rotate_key", "", a.ID, 0); code != exp {
			t.Errorf("rotate key of A as %s: got %d, want %d", who, code, exp)
		}
	}
	if code := call(t, s, tokens["manager"], "POST", "/v2/projects/{P}/rotate_key", "", b.ID, 0); code != 404 {
		t.Errorf("rotate key of B as A's manager: got %d, want 404", code)
	}
	if code := call(t, s, tokens["manager"], "POST", "/v2/projects/{P}/rotate_key", "", a.ID, 0); code != 202 {
		t.Errorf("rotate key of A as manager: got %d, want 202", code)
	}
	// Deleting project A itself: reader and writer may not, manager may.
	for who, exp := range map[string]int{"reader": 403, "writer": 403} {
		if code := call(t, s, tokens[who], "DELETE", "/v2/projects/{P}", "", a.ID, 0); code != exp {
			t.Errorf("delete project A as %s: got %d, want %d", who, code, exp)
		}
	}
	if code := call(t, s, tokens["manager"], "DELETE", "/v2/projects/{P}", "", a.ID, 0); code != 202 {
		t.Errorf("delete project A as manager: got %d, want 202", code)
	}
	// The manager may restore its soft-deleted project; the reader may see it.
	if code := call(t, s, tokens["reader"], "POST", "/v2/projects/{P}/restore", "", a.ID, 0); code != 403 {
		t.Errorf("restore as reader: got %d, want 403", code)
	}
	if code := call(t, s, tokens["reader"], "GET", "/v2/projects/{P}", "", a.ID, 0); code != 200 {
		t.Errorf("get soft-deleted project as reader: got %d, want 200", code)
	}
	if code := call(t, s, tokens["manager"], "POST", "/v2/projects/{P}/restore", "", a.ID, 0); code != 202 {
		t.Errorf("restore as manager: got %d, want 202", code)
	}
}

// prepare makes the fixed resources that the get/replace routes use.
func prepare(t *testing.T, c *api.Client, project string, seq int) {
	t.Helper()
	ctx := context.Background()
	c.CreateSecret(ctx, project, api.SecretPrototype{Name: "fixed", Format: "generic", Data: map[string]string{"k": "v"}})
	c.CreateConfigMap(ctx, project, api.ConfigMapPrototype{Name: "fixed", Data: map[string]string{"k": "v"}})
	r := strconv.Itoa(seq)
	c.CreateSecret(ctx, project, api.SecretPrototype{Name: "del-" + r, Format: "generic"})
	c.CreateConfigMap(ctx, project, api.ConfigMapPrototype{Name: "del-" + r})
	app := api.AppPrototype{Name: "fixed", AppSpec: api.AppSpec{ImageReference: nowhereImage, ScaleInitialInstances: intp(0)}}
	c.CreateApp(ctx, project, app)
	app.Name = "del-" + r
	c.CreateApp(ctx, project, app)
}

// nowhereImage is an image on a loopback port where nothing listens: apps
// of it fail to pull at once, and nothing leaves the machine.
const nowhereImage = "127.0.0.1:1/none/app:1"

func call(t *testing.T, s *server, token, method, path, body, project string, seq int) int {
	t.Helper()
	r := strconv.Itoa(seq)
	path = strings.ReplaceAll(strings.ReplaceAll(path, "{P}", project), "{R}", r)
	body = strings.ReplaceAll(strings.ReplaceAll(body, "{P}", project), "{R}", r)
	req, _ := http.NewRequest(method, s.url()+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == "PUT" || method == "PATCH" {
		req.Header.Set("If-Match", "*")
	}
	if method == "PATCH" {
		req.Header.Set("Content-Type", "application/merge-patch+json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestReaderSeesNoSecretValues(t *testing.T) {
	s := startServer(t)
	admin := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, admin, "redact")
	if _, err := admin.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "s", Format: "basic_auth", Data: map[string]string{"username": "u", "password": "hunter2"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, api.TokenPrototype{Name: "r", ProjectID: p.ID, Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := admin.GetSecretKeys(ctx, p.ID, "s")
	if err != nil || keys.Data["password"] != "REDACTED" {
		t.Fatalf("redacted get: %v %v", keys, err)
	}
	if strings.Contains(s.logs(), "secret values read") {
		t.Errorf("a redacted get was logged as a value read")
	}
	if _, err := admin.GetSecret(ctx, p.ID, "s"); err != nil || !strings.Contains(s.logs(), "secret values read") {
		t.Errorf("a get with values was not logged as a value read: %v", err)
	}
	got, err := s.client(tok.Token).GetSecret(ctx, p.ID, "s")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["password"] != "REDACTED" || got.Data["username"] != "REDACTED" {
		t.Errorf("reader got values: %v", got.Data)
	}
	// Tokens: listed without values; revoked ones stop working.
	list, err := admin.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range list.Tokens {
		if tk.Token != "" {
			t.Errorf("token list carries a token value")
		}
	}
	if err := admin.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.client(tok.Token).GetSecret(ctx, p.ID, "s")
	wantStatus(t, err, 401, "revoked token")
}

// TestIAMTokenExchange: an SDK configured with an API key (a coligo token)
// and coligo as its IAM URL gets an access token the way IAM gives one (a
// form POST, then Bearer), bound to the key's project and role; a refresh
// token gets another and is no bearer token itself; a bad key gets IAM's
// 400; exchange tokens are not listed, and go when their key is revoked.
func TestIAMTokenExchange(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "iam")
	q := activeProject(t, c, "iam-other")
	key, err := c.CreateToken(ctx, api.TokenPrototype{Name: "sdk", ProjectID: p.ID, Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(form url.Values) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.url()+"/identity/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.SetBasicAuth("bx", "bx") // as IBM's SDKs send it
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, out := exchange(url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {key.Token}})
	access, _ := out["access_token"].(string)
	refresh, _ := out["refresh_token"].(string)
	if exp, _ := out["expiration"].(float64); code != 200 || access == "" || refresh == "" || out["token_type"] != "Bearer" || out["expires_in"] != float64(3600) ||
		time.Unix(int64(exp), 0).Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("exchange: %d %v", code, out)
	}
	if _, err := s.client(access).ListApps(ctx, p.ID, api.ListOptions{}); err != nil {
		t.Errorf("the access token in its project: %v", err)
	}
	if _, err := s.client(access).ListApps(ctx, q.ID, api.ListOptions{}); err == nil {
		t.Error("the access token reads another project")
	}
	if _, err := s.client(refresh).ListApps(ctx, p.ID, api.ListOptions{}); err == nil {
		t.Error("a refresh token is taken as a bearer token")
	}
	code, out = exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
	again, _ := out["access_token"].(string)
	if code != 200 || again == "" || again == access {
		t.Fatalf("refresh: %d %v", code, out)
	}
	for what, form := range map[string]url.Values{
		"a bad API key":           {"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {"coligo_nope"}},
		"an access token as key":  {"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {access}},
		"an access token refresh": {"grant_type": {"refresh_token"}, "refresh_token": {access}},
		"another grant":           {"grant_type": {"password"}, "username": {"a"}, "password": {"b"}},
	} {
		if code, out := exchange(form); code != 400 || out["errorCode"] == nil || out["access_token"] != nil {
			t.Errorf("%s: %d %v", what, code, out)
		}
	}
	// A caller that exchanges in a loop drops its own oldest tokens: the
	// first access token stops working, the newest works.
	var newest string
	for range 12 {
		code, out := exchange(url.Values{"grant_type": {"urn:ibm:params:oauth:grant-type:apikey"}, "apikey": {key.Token}})
		if newest, _ = out["access_token"].(string); code != 200 || newest == "" {
			t.Fatalf("exchange in a loop: %d %v", code, out)
		}
	}
	if _, err := s.client(access).ListApps(ctx, p.ID, api.ListOptions{}); err == nil {
		t.Error("the first access token outlives 13 exchanges after it")
	}
	if _, err := s.client(newest).ListApps(ctx, p.ID, api.ListOptions{}); err != nil {
		t.Errorf("the newest access token: %v", err)
	}
	l, err := c.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range l.Tokens {
		if strings.Contains(tok.Name, "(access)") || strings.Contains(tok.Name, "(refresh)") {
			t.Errorf("an exchange's token is listed: %+v", tok)
		}
	}
	if err := c.RevokeToken(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{access, again} {
		if _, err := s.client(tok).ListApps(ctx, p.ID, api.ListOptions{}); err == nil {
			t.Error("an access token outlives its revoked key")
		}
	}
	if code, _ := exchange(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); code != 400 {
		t.Errorf("a refresh token outlives its revoked key: %d", code)
	}
}
