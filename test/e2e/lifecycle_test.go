package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coligo/coligo/api"
)

func TestSecretAndConfigMapLifecycleThroughClient(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "lifecycle")

	// Create more secrets than one page holds.
	var names []string
	for i := range 7 {
		name := fmt.Sprintf("s-%02d", i)
		names = append(names, name)
		sec, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: name, Format: "generic", Data: map[string]string{"k": fmt.Sprint("v", i)}})
		if err != nil {
			t.Fatal(err)
		}
		if sec.ResourceType != "secret_generic_v2" || sec.EntityTag == "" || sec.ProjectID != p.ID || sec.Href == "" || sec.CreatedAt == "" {
			t.Fatalf("create returned %+v", sec)
		}
	}
	var listed []string
	pages := 0
	o := api.ListOptions{Limit: 3}
	for {
		page, err := c.ListSecrets(ctx, p.ID, o, "")
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if page.Limit != 3 || page.First == nil {
			t.Fatalf("page without limit/first: %+v", page)
		}
		for _, sec := range page.Secrets {
			listed = append(listed, sec.Name)
			if sec.Data["k"] != "REDACTED" {
				t.Fatalf("list returned a secret value for %s", sec.Name)
			}
		}
		if page.Next == nil {
			break
		}
		if page.Next.Href == "" || page.Next.Start == "" {
			t.Fatalf("next without href/start: %+v", page.Next)
		}
		o.Start = page.Next.Start
	}
	if pages != 3 {
		t.Errorf("7 secrets at limit 3: want 3 pages, got %d", pages)
	}
	if diff := cmp.Diff(names, listed); diff != "" {
		t.Errorf("listed secrets (-want +got):\n%s", diff)
	}

	got, err := c.GetSecret(ctx, p.ID, "s-03")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["k"] != "v3" {
		t.Fatalf("get: data %v", got.Data)
	}
	// A stale If-Match is refused; a fresh one works; a missing one is 428.
	fresh, err := c.ReplaceSecret(ctx, p.ID, "s-03", got.EntityTag, api.SecretReplace{Format: "generic", Data: map[string]string{"k": "new"}})
	if err != nil {
		t.Fatal(err)
	}
	if fresh.EntityTag == got.EntityTag {
		t.Errorf("entity tag did not change on replace")
	}
	_, err = c.ReplaceSecret(ctx, p.ID, "s-03", got.EntityTag, api.SecretReplace{Format: "generic", Data: map[string]string{"k": "lost"}})
	wantStatus(t, err, 412, "replace with stale If-Match")
	_, err = c.ReplaceSecret(ctx, p.ID, "s-03", "", api.SecretReplace{Format: "generic", Data: map[string]string{"k": "lost"}})
	wantStatus(t, err, 428, "replace without If-Match")
	_, err = c.ReplaceSecret(ctx, p.ID, "s-03", "*", api.SecretReplace{Format: "generic", Data: map[string]string{"k": "star"}})
	wantStatus(t, err, 200, "replace with If-Match *")
	got, _ = c.GetSecret(ctx, p.ID, "s-03")
	if got.Data["k"] != "star" {
		t.Errorf("after replace: %v", got.Data)
	}
	_, err = c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "s-03", Format: "generic"})
	wantStatus(t, err, 409, "duplicate name")

	// Format filter.
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "reg", Format: "registry",
		Data: map[string]string{"server": "r.example:5000", "username": "u", "password": "p"}}); err != nil {
		t.Fatal(err)
	}
	regs, err := c.ListSecrets(ctx, p.ID, api.ListOptions{}, "registry")
	if err != nil || len(regs.Secrets) != 1 || regs.Secrets[0].ResourceType != "secret_registry_v2" {
		t.Fatalf("format filter: %+v %v", regs, err)
	}

	wantStatus(t, c.DeleteSecret(ctx, p.ID, "s-03"), 202, "delete")
	_, err = c.GetSecret(ctx, p.ID, "s-03")
	wantStatus(t, err, 404, "get deleted secret")
	wantStatus(t, c.DeleteSecret(ctx, p.ID, "s-03"), 404, "delete twice")

	// Config maps.
	cm, err := c.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: "settings", Data: map[string]string{"A": "1"}})
	if err != nil || cm.ResourceType != "config_map_v2" {
		t.Fatalf("create config map: %+v %v", cm, err)
	}
	for i := range 4 {
		if _, err := c.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: fmt.Sprintf("cm-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := c.ListConfigMaps(ctx, p.ID, api.ListOptions{Limit: 2})
	if err != nil || len(page.ConfigMaps) != 2 || page.Next == nil {
		t.Fatalf("config map page: %+v %v", page, err)
	}
	_, err = c.ReplaceConfigMap(ctx, p.ID, "settings", "999999", api.ConfigMapReplace{Data: map[string]string{"A": "2"}})
	wantStatus(t, err, 412, "config map stale If-Match")
	upd, err := c.ReplaceConfigMap(ctx, p.ID, "settings", cm.EntityTag, api.ConfigMapReplace{Data: map[string]string{"A": "2"}})
	if err != nil || upd.Data["A"] != "2" {
		t.Fatalf("replace config map: %+v %v", upd, err)
	}
	wantStatus(t, c.DeleteConfigMap(ctx, p.ID, "settings"), 202, "delete config map")
	_, err = c.GetConfigMap(ctx, p.ID, "settings")
	wantStatus(t, err, 404, "get deleted config map")
}

func TestProjectFieldsAndPagination(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	var ids []string
	for i := range 5 {
		ids = append(ids, activeProject(t, c, fmt.Sprintf("proj %d", i)).ID)
	}
	p, err := c.GetProject(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if p.ResourceType != "project_v2" || p.Region != "local" || p.AccountID != "local" || p.ResourceGroupID != "default" ||
		p.CRN != "crn:v1:coligo:local:codeengine:local:a/local:"+p.ID+"::" || p.Encryption == nil || p.Encryption.Provider != "local" {
		t.Errorf("project fields: %+v", p)
	}
	// "proj 0" is not a DNS label, so the subdomain is generated.
	if len(p.Subdomain) != 11 {
		t.Errorf("subdomain %q: want a generated 11-character id", p.Subdomain)
	}
	var got []string
	o := api.ListOptions{Limit: 2}
	for {
		page, err := c.ListProjects(ctx, o, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Projects {
			got = append(got, p.ID)
		}
		if page.Next == nil {
			break
		}
		o.Start = page.Next.Start
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("projects in creation order (-want +got):\n%s", diff)
	}
	_, err = c.CreateProject(ctx, api.ProjectPrototype{Name: "proj 0"})
	wantStatus(t, err, 409, "duplicate project name")
}

// TestWireFormat checks raw HTTP: status codes, the error body, ETag, the
// version parameter and the health endpoints.
func TestWireFormat(t *testing.T) {
	s := startServer(t)
	p := activeProject(t, s.adminClient(), "wire")
	do := func(method, path, body string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, s.url()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.admin)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	base := "/v2/projects/" + p.ID
	resp, body := do("POST", base+"/secrets?version=2024-01-01", `{"name":"w","format":"generic","data":{"a":"b"}}`)
	if resp.StatusCode != 201 || resp.Header.Get("ETag") == "" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var sec map[string]any
	json.Unmarshal(body, &sec)
	keys := make([]string, 0, len(sec))
	for k := range sec {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"created_at", "data", "entity_tag", "format", "generated_by", "href", "id", "name", "project_id", "region", "resource_type"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("secret fields (-want +got):\n%s", diff)
	}
	if `"`+sec["entity_tag"].(string)+`"` != resp.Header.Get("ETag") {
		t.Errorf("ETag header %s does not carry entity_tag %v", resp.Header.Get("ETag"), sec["entity_tag"])
	}
	resp, body = do("GET", base+"/secrets/nope", "")
	var e api.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 404 || e.StatusCode != 404 ||
		len(e.Errors) != 1 || e.Errors[0].Code != "resource_not_found" || !strings.HasPrefix(e.Trace, "coligo-") || len(e.Trace) != 7+32 {
		t.Errorf("404 body: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(s.logs(), e.Trace) {
		t.Errorf("trace %s is not in the server log", e.Trace)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		r, err := http.Get(s.url() + path)
		if err != nil || r.StatusCode != 200 {
			t.Errorf("GET %s without token: %v %v", path, r, err)
		}
	}
	r, _ := http.Get(s.url() + "/metrics")
	if r.StatusCode != 401 {
		t.Errorf("metrics without token: %d", r.StatusCode)
	}
	resp, body = do("GET", "/metrics", "")
	for _, m := range []string{"coligo_api_requests_total", "coligo_api_request_duration_seconds", "coligo_store_operation_duration_seconds", `method="POST",route="/v2/projects/{project}/secrets"`} {
		if resp.StatusCode != 200 || !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	resp, _ = do("DELETE", base+"/secrets/w", "")
	if resp.StatusCode != 202 {
		t.Errorf("delete: %d", resp.StatusCode)
	}
	resp, _ = do("GET", "/v2/nothing-here", "")
	if resp.StatusCode != 404 {
		t.Errorf("unknown route: %d", resp.StatusCode)
	}
	// The store file and root key exist with private modes.
	for name, mode := range map[string]string{"root.key": "-rw-------", "admin.token": "-rw-------", "coligo.db": "-rw-------"} {
		assertMode(t, filepath.Join(s.dataDir, name), mode)
	}
	assertMode(t, s.dataDir, "drwx------")
}
