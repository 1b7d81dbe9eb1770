package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestBadInputIsRefusedAndChangesNothing feeds every handler bad requests:
// each answers 4xx with a message naming what is wrong, and the store is the
// same afterwards.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "bad")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "exists", Format: "generic", Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: "exists", Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateApp(ctx, p.ID, api.AppPrototype{Name: "exists", AppSpec: api.AppSpec{ImageReference: nowhereImage, ScaleInitialInstances: intp(0)}}); err != nil {
		t.Fatal(err)
	}
	apps := "/v2/projects/" + p.ID + "/apps"
	big := strings.Repeat("x", 1<<20)
	huge := `{"name":"h","format":"generic","data":{"k":"` + strings.Repeat("x", 2<<20) + `"}}`
	sec := "/v2/projects/" + p.ID + "/secrets"
	cms := "/v2/projects/" + p.ID + "/config_maps"
	cases := []struct {
		name, method, path, body string
		status                   int
		code, mention            string
	}{
		{"malformed json", "POST", sec, `{"name":`, 400, "bad_request", "malformed JSON"},
		{"not an object", "POST", sec, `[1,2]`, 400, "bad_request", "JSON object"},
		{"empty body", "POST", sec, ``, 400, "bad_request", "empty"},
		{"trailing data", "POST", sec, `{"name":"a","format":"generic"} {}`, 400, "bad_request", "after the JSON"},
		{"unknown field", "POST", sec, `{"name":"a","format":"generic","colour":"red"}`, 400, "invalid_field", `"colour"`},
		{"wrong type", "POST", sec, `{"name":5,"format":"generic"}`, 400, "invalid_name", `"name"`},
		{"wrong data type", "POST", sec, `{"name":"a","format":"generic","data":{"k":1}}`, 400, "invalid_data", `"data"`},
		{"duplicate key", "POST", sec, `{"name":"a","name":"b","format":"generic"}`, 400, "invalid_name", "more than once"},
		{"missing name", "POST", sec, `{"format":"generic"}`, 400, "invalid_name", "name"},
		{"uppercase name", "POST", sec, `{"name":"Upper","format":"generic"}`, 400, "invalid_name", "lowercase"},
		{"long name", "POST", sec, `{"name":"` + strings.Repeat("a", 254) + `","format":"generic"}`, 400, "invalid_name", "253"},
		{"missing format", "POST", sec, `{"name":"a"}`, 400, "invalid_format", "format"},
		{"unknown format", "POST", sec, `{"name":"a","format":"magic"}`, 400, "invalid_format", "magic"},
		{"registry without server", "POST", sec, `{"name":"a","format":"registry","data":{"username":"u","password":"p"}}`, 400, "invalid_data", `"server"`},
		{"registry extra key", "POST", sec, `{"name":"a","format":"registry","data":{"server":"s","username":"u","password":"p","x":"y"}}`, 400, "invalid_data", `"x"`},
		{"bad key", "POST", sec, `{"name":"a","format":"generic","data":{"a b":"v"}}`, 400, "invalid_data", `"a b"`},
		{"data over 1 MiB", "POST", sec, `{"name":"a","format":"generic","data":{"k":"` + big + `"}}`, 400, "invalid_data", "1048576"},
		{"body over 2 MiB", "POST", sec, huge, 413, "request_too_large", "2097152"},
		{"duplicate secret", "POST", sec, `{"name":"exists","format":"generic"}`, 409, "resource_already_exists", "exists"},
		{"wrong content type", "POST", sec, `name=a`, 415, "unsupported_media_type", "Content-Type"},
		{"replace changes format", "PUT", sec + "/exists", `{"format":"tls","data":{"tls_cert":"c","tls_key":"k"}}`, 400, "invalid_format", "cannot change"},
		{"replace bad if-match", "PUT", sec + "/exists", `{"format":"generic","data":{"k":"z"}}`, 412, "entity_tag_mismatch", "If-Match"},
		{"config map bad key", "POST", cms, `{"name":"c","data":{"ä":"v"}}`, 400, "invalid_data", "key"},
		{"config map unknown field", "POST", cms, `{"name":"c","format":"generic"}`, 400, "invalid_field", `"format"`},
		{"config map replace no if-match", "PUT", cms + "/exists", `{"data":{}}`, 428, "precondition_required", "If-Match"},
		{"limit zero", "GET", sec + "?limit=0", ``, 400, "invalid_limit", "limit"},
		{"limit too big", "GET", sec + "?limit=101", ``, 400, "invalid_limit", "limit"},
		{"limit not a number", "GET", cms + "?limit=abc", ``, 400, "invalid_limit", "limit"},
		{"bad start", "GET", "/v2/projects?start=!!!", ``, 400, "invalid_start", "start"},
		{"project name too long", "POST", "/v2/projects", `{"name":"` + strings.Repeat("p", 129) + `"}`, 400, "invalid_name", "128"},
		{"project name bad char", "POST", "/v2/projects", `{"name":"a/b"}`, 400, "invalid_name", `'/'`},
		{"project unknown provider", "POST", "/v2/projects", `{"name":"x","encryption":{"provider":"vault"}}`, 400, "invalid_encryption", "vault"},
		{"hard not a bool", "DELETE", "/v2/projects/" + p.ID + "?hard=yes", ``, 400, "invalid_hard", "hard"},
		{"token bad role", "POST", "/v2/tokens", `{"name":"t","project_id":"` + p.ID + `","role":"owner"}`, 400, "invalid_role", "owner"},
		{"admin token with project", "POST", "/v2/tokens", `{"name":"t","project_id":"` + p.ID + `","role":"admin"}`, 400, "invalid_role", "admin"},
		{"app without image", "POST", apps, `{"name":"a"}`, 400, "invalid_image_reference", "required"},
		{"app name with a digit first", "POST", apps, `{"name":"1a","image_reference":"r/i"}`, 400, "invalid_name", "letter"},
		{"app reserved port", "POST", apps, `{"name":"a","image_reference":"r/i","image_port":8012}`, 400, "invalid_image_port", "reserved"},
		{"app concurrency too high", "POST", apps, `{"name":"a","image_reference":"r/i","scale_concurrency":1001}`, 400, "invalid_scale_concurrency", "1000"},
		{"app min over max", "POST", apps, `{"name":"a","image_reference":"r/i","scale_min_instances":5,"scale_max_instances":2}`, 400, "invalid_scale_min_instances", "scale_max_instances"},
		{"app timeout too long", "POST", apps, `{"name":"a","image_reference":"r/i","scale_request_timeout":601}`, 400, "invalid_scale_request_timeout", "600"},
		{"app bad cpu memory pair", "POST", apps, `{"name":"a","image_reference":"r/i","scale_cpu_limit":"1","scale_memory_limit":"1G"}`, 400, "invalid_scale_memory_limit", "combination"},
		{"app private visibility", "POST", apps, `{"name":"a","image_reference":"r/i","managed_domain_mappings":"local_private"}`, 400, "invalid_managed_domain_mappings", "private"},
		{"app probe type", "POST", apps, `{"name":"a","image_reference":"r/i","probe_readiness":{"type":"exec"}}`, 400, "invalid_probe_readiness", "exec"},
		{"app mount twice", "POST", apps, `{"name":"a","image_reference":"r/i","run_volume_mounts":[{"type":"secret","reference":"s","mount_path":"/m"},{"type":"config_map","reference":"c","mount_path":"/m"}]}`, 400, "invalid_run_volume_mounts", "twice"},
		{"app unknown field", "POST", apps, `{"name":"a","image_reference":"r/i","colour":"red"}`, 400, "invalid_field", `"colour"`},
		{"duplicate app", "POST", apps, `{"name":"exists","image_reference":"r/i"}`, 409, "resource_already_exists", "exists"},
		{"app patch no if-match", "PATCH", apps + "/exists", `{"scale_max_instances":2}`, 428, "precondition_required", "If-Match"},
		{"app patch name", "PATCH", apps + "/exists", `{"name":"other"}`, 400, "invalid_name", "cannot be changed"},
		{"app patch bad value", "PATCH", apps + "/exists", `{"scale_max_instances":-1}`, 400, "invalid_scale_max_instances", "-1"},
		{"delete latest revision", "DELETE", apps + "/exists/revisions/exists-00001", ``, 400, "invalid_name", "latest"},
		{"revision of another app", "GET", apps + "/exists/revisions/other-00001", ``, 404, "resource_not_found", "not found"},
		{"project id not a uuid", "GET", "/v2/projects/not-a-uuid", ``, 404, "resource_not_found", "not found"},
		{"wrong method on a known path", "PUT", apps + "/exists", ``, 405, "method_not_allowed", "GET, HEAD, PATCH, DELETE"},
		{"wrong method on a collection", "DELETE", "/v2/projects", ``, 405, "method_not_allowed", "GET, HEAD, POST"},
		{"no such path", "GET", "/v2/nothing-here", ``, 404, "resource_not_found", "no route"},
	}
	before := snapshot(t, c, p.ID)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.url()+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+s.admin)
			switch tc.name {
			case "wrong content type":
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			case "replace bad if-match":
				req.Header.Set("If-Match", `"12345678"`)
			case "replace changes format", "app patch name", "app patch bad value":
				req.Header.Set("If-Match", "*")
				req.Header.Set("Content-Type", "application/merge-patch+json")
			default:
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var e api.ErrorResponse
			if err := json.Unmarshal(b, &e); err != nil || len(e.Errors) != 1 {
				t.Fatalf("status %d, body %.200s: not an error body", resp.StatusCode, b)
			}
			if resp.StatusCode != tc.status || e.StatusCode != tc.status || e.Errors[0].Code != tc.code || !strings.Contains(e.Errors[0].Message, tc.mention) {
				t.Errorf("got %d %s %q; want %d %s mentioning %q", resp.StatusCode, e.Errors[0].Code, e.Errors[0].Message, tc.status, tc.code, tc.mention)
			}
			if tc.status == 405 && !strings.Contains(tc.mention, resp.Header.Get("Allow")) {
				t.Errorf("Allow %q, want %q", resp.Header.Get("Allow"), tc.mention)
			}
			if len(e.Errors[0].Message) > 400 {
				t.Errorf("message of %d bytes quotes too much input", len(e.Errors[0].Message))
			}
		})
	}
	if after := snapshot(t, c, p.ID); after != before {
		t.Errorf("bad input changed the store:\nbefore %s\nafter  %s", before, after)
	}
}

// snapshot renders what the API shows of the server, for comparison.
func snapshot(t *testing.T, c *api.Client, project string) string {
	t.Helper()
	ctx := context.Background()
	ps, err := c.AllProjects(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := c.ListSecrets(ctx, project, api.ListOptions{Limit: 100}, "")
	cs, _ := c.ListConfigMaps(ctx, project, api.ListOptions{Limit: 100})
	tl, _ := c.ListTokens(ctx)
	al, _ := c.ListApps(ctx, project, api.ListOptions{Limit: 100})
	var b strings.Builder
	for _, p := range ps {
		b.WriteString(p.ID + p.Status + p.EntityTag + ";")
	}
	for _, s := range ss.Secrets {
		b.WriteString(s.Name + s.EntityTag + ";")
	}
	for _, cm := range cs.ConfigMaps {
		b.WriteString(cm.Name + cm.EntityTag + ";")
	}
	for _, a := range al.Apps {
		b.WriteString(a.Name + a.EntityTag + ";")
	}
	for _, tk := range tl.Tokens {
		b.WriteString(tk.ID + ";")
	}
	return b.String()
}

func TestQuotas(t *testing.T) {
	s := startServer(t, "--max-projects", "2", "--max-secrets", "2")
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "q1")
	activeProject(t, c, "q2")
	_, err := c.CreateProject(ctx, api.ProjectPrototype{Name: "q3"})
	wantStatus(t, err, 422, "third project over quota 2")
	for i, want := range []int{201, 201, 422} {
		_, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "s" + string(rune('a'+i)), Format: "generic"})
		wantStatus(t, err, want, "secret under quota 2")
	}
}

// TestServerRefusesPlainHTTPOffLoopback and serves TLS when asked to.
func TestServerTLSRules(t *testing.T) {
	out, err := exec.Command(binary, "server", "--data-dir", t.TempDir(), "--api-addr", "0.0.0.0:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "plain HTTP is allowed only on loopback") {
		t.Errorf("plain HTTP on 0.0.0.0: err %v, output %s", err, out)
	}
	out, err = exec.Command(binary, "server", "--data-dir", t.TempDir(), "--soft-delete-retention", "-1h").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--soft-delete-retention") {
		t.Errorf("negative retention: err %v, output %s", err, out)
	}
	cmd := exec.Command(binary, "server", "--data-dir", t.TempDir(), "--api-addr", "127.0.0.1:0", "--router-addr", "127.0.0.1:0", "--router-tls-addr", "127.0.0.1:0", "--tls-self-signed")
	cmd.Env = append(cmd.Environ(), "COLIGO_LOG_FORMAT=json") // flags also come from COLIGO_*
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	dec := json.NewDecoder(stderr)
	deadline := time.Now().Add(20 * time.Second)
	var url string
	for url == "" && time.Now().Before(deadline) {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("read json log: %v", err)
		}
		if line["msg"] == "api listening" {
			url, _ = line["url"].(string)
		}
	}
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("self-signed server url %q", url)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	resp, err := hc.Get(strings.TrimSuffix(url, "/v2") + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https healthz: %v %v", resp, err)
	}
	resp.Body.Close()
}
