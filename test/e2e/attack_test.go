package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// The attack suite: each finding of a review made as an attacker would, replayed
// against a real server. Every case here once worked against coligo; each
// names what it did then. New findings go here, so the list grows in one
// place. The workload side (sandbox, fence) has its own file.

// attack is one raw request and what the server must answer.
type attack struct {
	method, path, token, body string
	header                    map[string]string
}

func (s *server) send(t *testing.T, a attack) (int, string) {
	t.Helper()
	req, err := http.NewRequest(a.method, s.url()+a.path, strings.NewReader(a.body))
	if err != nil {
		t.Fatal(err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if a.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range a.header {
		req.Header.Set(k, v)
		if strings.EqualFold(k, "Host") {
			req.Host = v
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", a.method, a.path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestControlPlaneAttacks(t *testing.T) {
	s := startServer(t)
	admin := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, admin, "target")
	tokens := map[string]string{}
	for _, role := range []string{"reader", "writer", "manager"} {
		tok, err := admin.CreateToken(ctx, api.TokenPrototype{Name: role, ProjectID: p.ID, Role: role})
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok.Token
	}
	alive := func(t *testing.T) {
		t.Helper()
		if code, _ := s.send(t, attack{method: "GET", path: "/healthz"}); code != 200 {
			t.Fatalf("the server does not answer after the attack: %d", code)
		}
	}

	// Once a body of 1,500,000 '[' from a reader token ended the server with
	// "fatal error: stack overflow": the duplicate-key walker recursed before
	// anything capped depth, and the body was decoded before the role check.
	t.Run("deep nesting", func(t *testing.T) {
		deep := strings.Repeat("[", 1_500_000)
		if code, body := s.send(t, attack{method: "POST", path: "/v2/tokens", token: tokens["reader"], body: deep}); code != 403 {
			t.Errorf("reader: %d %s, want 403 before the body is read", code, body)
		}
		alive(t)
		if code, body := s.send(t, attack{method: "POST", path: "/v2/tokens", token: tokens["manager"], body: deep}); code != 400 || !strings.Contains(body, "deeper than 64") {
			t.Errorf("manager: %d %s, want 400 naming the depth", code, body)
		}
		obj := `{"name":"n","format":"generic","data":` + strings.Repeat(`{"a":`, 200_000) + `1` + strings.Repeat("}", 200_001)
		if code, body := s.send(t, attack{method: "POST", path: "/v2/projects/" + p.ID + "/secrets", token: tokens["writer"], body: obj}); code != 400 || !strings.Contains(body, "deeper than 64") {
			t.Errorf("nested objects: %d %.200s, want 400", code, body)
		}
		alive(t)
	})

	// Once {"name":"aa","NAME":"bb"} created config map "bb": encoding/json
	// matched keys case-insensitively, the duplicate check case-sensitively.
	t.Run("case-variant keys", func(t *testing.T) {
		for _, body := range []string{`{"name":"aa","NAME":"bb"}`, `{"Name":"cc"}`, `{"name":"dd","Data":{"k":"v"}}`} {
			code, out := s.send(t, attack{method: "POST", path: "/v2/projects/" + p.ID + "/config_maps", token: tokens["writer"], body: body})
			if code != 400 || !strings.Contains(out, "invalid_field") {
				t.Errorf("%s: %d %s, want 400 naming the field", body, code, out)
			}
		}
		list, err := admin.ListConfigMaps(ctx, p.ID, api.ListOptions{})
		if err != nil || len(list.ConfigMaps) != 0 {
			t.Errorf("config maps after the refused calls: %+v %v", list, err)
		}
	})

	// Once PATCH {"probe_readiness":{"path":"/b"}} answered 400: nested
	// objects were replaced, not merged (RFC 7396).
	t.Run("merge patch merges objects", func(t *testing.T) {
		initial := 0
		_, err := admin.CreateApp(ctx, p.ID, api.AppPrototype{Name: "patched", AppSpec: api.AppSpec{ImageReference: nowhereImage,
			ScaleInitialInstances: &initial, ProbeReadiness: &api.Probe{Type: "http", Path: "/a", Port: 8080}}})
		if err != nil {
			t.Fatal(err)
		}
		code, body := s.send(t, attack{method: "PATCH", path: "/v2/projects/" + p.ID + "/apps/patched", token: tokens["writer"],
			body: `{"probe_readiness":{"path":"/b"}}`, header: map[string]string{"If-Match": "*"}})
		if code != 200 {
			t.Fatalf("patch: %d %s", code, body)
		}
		got, err := admin.GetApp(ctx, p.ID, "patched")
		if err != nil || got.ProbeReadiness == nil || got.ProbeReadiness.Path != "/b" || got.ProbeReadiness.Type != "http" || got.ProbeReadiness.Port != 8080 {
			t.Errorf("after the patch: %+v %v, want path /b with type and port kept", got.ProbeReadiness, err)
		}
	})

	// Once every raw method became a metric label, even on a 401: 2,000 odd
	// methods added 31 MB of RSS for good, and 4 KB methods made /metrics
	// a 122 MB answer.
	t.Run("methods do not grow metrics", func(t *testing.T) {
		before := len(s.get(t, "/metrics"))
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		for i := range 300 {
			method := fmt.Sprintf("X%04d%s", i, strings.Repeat("M", 1000))
			fmt.Fprintf(conn, "%s /v2/projects/%d HTTP/1.1\r\nHost: x\r\n\r\n", method, i)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		metrics := s.get(t, "/metrics")
		if strings.Contains(metrics, "X0001") || len(metrics)-before > 8<<10 {
			t.Errorf("/metrics grew from %d to %d bytes with 300 odd methods", before, len(metrics))
		}
		if !strings.Contains(metrics, `method="other",route="other"`) {
			t.Errorf("unmatched requests are not counted as other")
		}
	})

	// Once the servers set no read or idle timeout: a connection that sent
	// nothing, or half a header, was held forever.
	t.Run("slow clients are cut off", func(t *testing.T) {
		t.Parallel()
		for _, partial := range []string{"", "GET /v2/projects HTTP/1.1\r\nHost: x\r\nX-Slow: "} {
			conn, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, partial)
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			start := time.Now()
			_, err = io.Copy(io.Discard, conn) // returns when the server closes
			conn.Close()
			if err != nil || time.Since(start) > 25*time.Second {
				t.Errorf("a client that sent %q was held %s (%v)", partial, time.Since(start), err)
			}
		}
		conn, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("h", 100<<10))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil || resp.StatusCode != 431 {
			t.Errorf("a 100 KB header: %v %v, want 431", resp, err)
		}
	})

	// Once a Host header came back in every href: a link a victim follows
	// could point at the attacker.
	t.Run("host header is not echoed", func(t *testing.T) {
		for _, path := range []string{"/v2/projects", "/v2/projects/" + p.ID, "/v2/projects/" + p.ID + "/apps?limit=1", "/v2/tokens"} {
			code, body := s.send(t, attack{method: "GET", path: path, token: s.admin, header: map[string]string{"Host": "attacker.example", "X-Forwarded-Host": "attacker.example"}})
			if code != 200 || strings.Contains(body, "attacker.example") || !strings.Contains(body, `"http://`+s.addr+`/v2/`) {
				t.Errorf("%s: %d %.300s", path, code, body)
			}
		}
		// Behind a proxy, the operator names the URL clients use.
		ext := startServer(t, "--external-url", "https://coligo.example.com")
		code, body := ext.send(t, attack{method: "GET", path: "/v2/tokens", token: ext.admin, header: map[string]string{"Host": "attacker.example"}})
		if code != 200 || strings.Contains(body, "attacker.example") || !strings.Contains(body, `"href":"https://coligo.example.com/v2/tokens/`) {
			t.Errorf("--external-url: %d %.300s", code, body)
		}
	})

	// Once /readyz told anyone the KMS provider names, key ids and raw
	// provider errors.
	t.Run("readyz tells strangers only the status", func(t *testing.T) {
		for _, tok := range []string{"", tokens["manager"], "coligo_bogus"} {
			if code, body := s.send(t, attack{method: "GET", path: "/readyz", token: tok}); code != 200 || body != "ok\n" {
				t.Errorf("token %.8q: %d %q, want the status only", tok, code, body)
			}
		}
		if body := s.get(t, "/readyz"); !strings.Contains(body, "key provider local: ok") {
			t.Errorf("admin: %q, want the providers' health", body)
		}
	})

	// Once bidi overrides, zero-width and C1 characters were accepted in
	// project and token names, so one name could show as another.
	t.Run("display spoofing", func(t *testing.T) {
		for _, name := range []string{"prod\u202egnp", "pro\u200bd", "prod\u0085", "\ufeffprod", "a\u2066b"} {
			if code, body := s.send(t, attack{method: "POST", path: "/v2/projects", token: s.admin, body: fmt.Sprintf(`{"name":%q}`, name)}); code != 400 || !strings.Contains(body, "invalid_name") {
				t.Errorf("project %+q: %d %s", name, code, body)
			}
			if code, body := s.send(t, attack{method: "POST", path: "/v2/tokens", token: s.admin, body: fmt.Sprintf(`{"name":%q,"role":"admin"}`, name)}); code != 400 || !strings.Contains(body, "invalid_name") {
				t.Errorf("token %+q: %d %s", name, code, body)
			}
		}
	})

	// Once "echo | coligo project delete --hard" crypto-shredded without -f,
	// and "coligo app creat" printed help and exited 0.
	t.Run("cli refuses what it cannot confirm", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		env := []string{"COLIGO_TOKEN=" + s.admin}
		res := s.cli(t, cfg, "\n", env, "project", "delete", "--name", "target", "--hard")
		if res.code == 0 || !strings.Contains(res.stderr, "-f") {
			t.Errorf("hard delete from a pipe: exit %d %q", res.code, res.stderr)
		}
		if got, err := admin.GetProject(ctx, p.ID); err != nil || got.Status != "active" {
			t.Fatalf("the project after a refused delete: %+v %v", got, err)
		}
		res = s.cli(t, cfg, "", env, "app", "creat", "--name", "x")
		if res.code == 0 || !strings.Contains(res.stderr, "Did you mean this?") {
			t.Errorf("app creat: exit %d %q", res.code, res.stderr)
		}
	})
}

// TestRootKeyFileModes: a --root-key-file its group or others may read is
// refused at start, before anything is served.
func TestRootKeyFileModes(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "root.key")
	os.WriteFile(key, []byte(strings.Repeat("k", 32)), 0o600)
	os.Chmod(key, 0o644)
	out, err := exec.Command(binary, "server", "--data-dir", filepath.Join(dir, "data"), "--api-addr", freeAddr(t), "--router-addr", freeAddr(t),
		"--router-tls-addr", freeAddr(t), "--containerd-address", "", "--root-key-file", key).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "chmod 600") {
		t.Errorf("server with a 0644 root key: %v\n%s", err, out)
	}
}

// TestRouterAttacks: what a client may send the router's own HTTP/1.1 core
// to make it misread a request, exhaust it, or fall over. Each answer is
// the one net/http gives, or the request is served whole; the app keeps
// serving others throughout.
func TestRouterAttacks(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "routerattack")
	a := deployApp(t, c, p.ID, testApp("target", image))
	host := strings.TrimPrefix(a.Endpoint, "http://")
	hello := "hello from target-00001 v1\n"

	// roundTrip writes request on a connection of its own and reads n
	// responses.
	roundTrip := func(t *testing.T, request string, n int) []*http.Response {
		t.Helper()
		conn, err := net.Dial("tcp", s.router)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		go io.WriteString(conn, request)
		br := bufio.NewReader(conn)
		var out []*http.Response
		for range n {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("response %d of %d: %v", len(out)+1, n, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body = io.NopCloser(strings.NewReader(string(b)))
			out = append(out, resp)
		}
		return out
	}
	get := "GET / HTTP/1.1\r\nHost: " + host + "\r\n"
	tests := []struct {
		name, request string
		code          int
		body          string
	}{
		// A head larger than the core's buffer goes to net/http, which
		// serves it up to its 64 KiB limit and refuses it beyond.
		{"a 20 KiB head", get + "X-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", 200, hello},
		{"a 100 KiB head", get + "X-Big: " + strings.Repeat("b", 100<<10) + "\r\n\r\n", 431, ""},
		{"more header lines than the core parses", get + strings.Repeat("X-Many: 1\r\n", 80) + "\r\n", 200, hello},
		{"a NUL in a header", get + "X-Nul: a\x00b\r\n\r\n", 400, ""},
		{"two Hosts", get + "Host: other.localhost\r\n\r\n", 400, ""},
		{"a negative length", "POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: -1\r\n\r\n", 400, ""},
		{"lengths that disagree", "POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, ""},
		{"a length beyond any body", "POST / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: 99999999999999999999\r\n\r\n", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := roundTrip(t, tt.request, 1)[0]
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != tt.code || tt.body != "" && string(b) != tt.body {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, b, tt.code, tt.body)
			}
		})
	}

	t.Run("a thousand pipelined requests", func(t *testing.T) {
		for i, resp := range roundTrip(t, strings.Repeat(get+"\r\n", 1000), 1000) {
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 || string(b) != hello {
				t.Fatalf("response %d: %d %q", i+1, resp.StatusCode, b)
			}
		}
	})

	// Connections that send half a head and wait (slowloris) hold a
	// goroutine each until the header timeout, nothing more: the app is
	// served meanwhile.
	t.Run("slow heads", func(t *testing.T) {
		var slow []net.Conn
		defer func() {
			for _, c := range slow {
				c.Close()
			}
		}()
		for range 500 {
			conn, err := net.Dial("tcp", s.router)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+host+"\r\nX-Slow: ")
			slow = append(slow, conn)
		}
		start := time.Now()
		if resp := roundTrip(t, get+"Connection: close\r\n\r\n", 1)[0]; resp.StatusCode != 200 {
			t.Errorf("with 500 slow heads open: %d", resp.StatusCode)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("with 500 slow heads open a request took %s", d)
		}
	})
}

// TestIntegrationRouteAttacks: the routes of cron subscriptions, domain
// mappings, persistent data stores and volume mounts, as an attacker would
// call them: huge or injected values, another project's names, another
// project's token, and the quota. Each is refused and changes nothing.
func TestIntegrationRouteAttacks(t *testing.T) {
	s := startServer(t, "--object-storage", "local=http://127.0.0.1:1")
	admin := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, admin, "victim")
	other := activeProject(t, admin, "attacker")
	if _, err := admin.CreateApp(ctx, p.ID, api.AppPrototype{Name: "web", AppSpec: api.AppSpec{ImageReference: "registry.example/app:1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "victim-hmac", Format: "hmac_auth",
		Data: map[string]string{"access_key_id": "a", "secret_access_key": "b"}}); err != nil {
		t.Fatal(err)
	}
	tok, err := admin.CreateToken(ctx, api.TokenPrototype{Name: "attacker", ProjectID: other.ID, Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	attacker := s.client(tok.Token)
	sub := api.CronSubscriptionPrototype{Name: "tick", Destination: "web"}
	for what, tc := range map[string]struct {
		in   api.CronSubscriptionPrototype
		want string
	}{
		"100 kB of data":           {func() api.CronSubscriptionPrototype { v := sub; v.Data = strings.Repeat("x", 100_000); return v }(), "data"},
		"a header in content_type": {func() api.CronSubscriptionPrototype { v := sub; v.ContentType = "text/plain\r\nX-Evil: 1"; return v }(), "content_type"},
		"a header in an extension": {func() api.CronSubscriptionPrototype {
			v := sub
			v.Extensions = map[string]string{"x": "a\r\nX-Evil: 1"}
			return v
		}(), "extensions"},
		"a schedule of 10 kB": {func() api.CronSubscriptionPrototype {
			v := sub
			v.Schedule = strings.Repeat("1,", 5000) + "1 * * * *"
			return v
		}(), "schedule"},
		"a time zone file path":  {func() api.CronSubscriptionPrototype { v := sub; v.TimeZone = "/etc/localtime"; return v }(), "time_zone"},
		"another project's app":  {func() api.CronSubscriptionPrototype { v := sub; v.Destination = "nope"; return v }(), "destination"},
		"a path to another host": {func() api.CronSubscriptionPrototype { v := sub; v.Path = "http://169.254.169.254/"; return v }(), "path"},
	} {
		if _, err := admin.CreateCronSubscription(ctx, p.ID, tc.in); !isStatus(err, 400) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want 400 naming %s", what, err, tc.want)
		}
	}
	if _, err := attacker.CreateCronSubscription(ctx, p.ID, sub); !isStatus(err, 403) && !isStatus(err, 404) {
		t.Errorf("another project's writer creates a subscription: %v", err)
	}
	if _, err := attacker.CreateCronSubscription(ctx, other.ID, sub); !isStatus(err, 400) {
		t.Errorf("a subscription of the attacker's to the victim's app (by name): %v", err)
	}
	for i := range 100 {
		v := sub
		v.Name = fmt.Sprintf("tick-%d", i)
		v.Schedule = "0 0 1 1 *"
		if _, err := admin.CreateCronSubscription(ctx, p.ID, v); err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
	}
	if _, err := admin.CreateCronSubscription(ctx, p.ID, api.CronSubscriptionPrototype{Name: "one-too-many", Destination: "web"}); err == nil {
		t.Error("the 101st subscription of a project was created")
	}

	// Persistent data stores and mounts.
	if _, err := attacker.CreateSecret(ctx, other.ID, api.SecretPrototype{Name: "mine", Format: "generic", Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := attacker.CreatePersistentDataStore(ctx, other.ID, api.PersistentDataStorePrototype{Name: "steal", StorageType: "object_storage",
		Data: map[string]string{"bucket_name": "victim-bucket", "bucket_location": "local", "secret_name": "victim-hmac"}}); !isStatus(err, 400) {
		t.Errorf("a data store with another project's secret: %v", err)
	}
	for _, subPath := range []string{"../../etc", "a/../../b", "x\x00y"} {
		ro := false
		_, err := admin.CreateJob(ctx, p.ID, api.JobPrototype{Name: "j", RunSpec: api.RunSpec{ImageReference: "registry.example/j:1",
			RunVolumeMounts: []api.VolumeMount{{Type: "persistent_data_store", Reference: "x", MountPath: "/d", SubPath: subPath, ReadOnly: &ro}}}})
		if !isStatus(err, 400) {
			t.Errorf("a sub_path %q: %v", subPath, err)
		}
	}
	// Domain mappings: the platform's names and another project's.
	if _, err := admin.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "tls", Format: "generic", Data: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web." + other.Name + ".localhost", "localhost.localhost", strings.Repeat("a", 63) + "." + strings.Repeat("b", 200) + ".com"} {
		if _, err := admin.CreateDomainMapping(ctx, p.ID, api.DomainMappingPrototype{Name: name, Component: api.DomainMappingComponent{Name: "web", ResourceType: "app_v2"}, TLSSecret: "tls"}); !isStatus(err, 400) {
			t.Errorf("a mapping of %q: %v", name, err)
		}
	}
}

// TestConsoleRouteAttacks: the console's session routes and the routes it
// added to /v2 (invoke, app metrics), as an attacker would call them.
func TestConsoleRouteAttacks(t *testing.T) {
	s := startServer(t)
	admin := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, admin, "victim")
	other := activeProject(t, admin, "attacker")
	atk, err := admin.CreateToken(ctx, api.TokenPrototype{Name: "attacker", ProjectID: other.ID, Role: "manager"})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := admin.CreateToken(ctx, api.TokenPrototype{Name: "reader", ProjectID: p.ID, Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	for what, tc := range map[string]struct {
		body   string
		header map[string]string
		want   int
	}{
		"a token of 1 MB":          {`{"token":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413},
		"not JSON":                 {`token=x`, nil, 400},
		"an unknown field":         {`{"token":"x","role":"admin"}`, nil, 400},
		"a made-up token":          {`{"token":"coligo_made-up"}`, nil, 401},
		"a compute resource token": {`{"token":"coligo-crt.eyJ4IjoxfQ.sig"}`, nil, 401},
		"from another origin":      {`{"token":"` + s.admin + `"}`, map[string]string{"Origin": "http://evil.example"}, 403},
		"a page of another site":   {`{"token":"` + s.admin + `"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		"an empty token":           {`{"token":""}`, nil, 401},
		"nested 2k deep":           {strings.Repeat("[", 2000), nil, 400},
	} {
		if code, body := s.send(t, attack{method: "POST", path: "/console/session", body: tc.body, header: tc.header}); code != tc.want {
			t.Errorf("login with %s: %d %s, want %d", what, code, clipBody(body), tc.want)
		}
	}

	// A forged or ended session gets nothing.
	if code, _ := s.send(t, attack{method: "GET", path: "/v2/projects", header: map[string]string{"Cookie": "coligo_session=forged"}}); code != 401 {
		t.Errorf("a forged session cookie: %d", code)
	}
	// The reader's session, with a manager's bearer token of another
	// project: the bearer decides, and the cookie adds nothing to it.
	cookie := loginCookie(t, s, rd.Token)
	if code, _ := s.send(t, attack{method: "GET", path: "/v2/projects/" + p.ID, token: atk.Token, header: map[string]string{"Cookie": cookie}}); code != 404 {
		t.Errorf("another project's bearer with the victim reader's cookie reads the victim's project: %d", code)
	}
	// The reader's own session cannot write, even with its CSRF token.
	sess := sessionOf(t, s, cookie)
	if code, _ := s.send(t, attack{method: "POST", path: "/v2/projects/" + p.ID + "/config_maps", body: `{"name":"x","data":{"a":"b"}}`,
		header: map[string]string{"Cookie": cookie, "X-CSRF-Token": sess.CSRFToken}}); code != 403 {
		t.Errorf("a reader's session writes: %d", code)
	}
	// One token's sessions are capped: the oldest end.
	first := loginCookie(t, s, rd.Token)
	for range 16 {
		loginCookie(t, s, rd.Token)
	}
	if code, _ := s.send(t, attack{method: "GET", path: "/v2/projects/" + p.ID, header: map[string]string{"Cookie": first}}); code != 401 {
		t.Errorf("a token's 18th login left its first session alive: %d", code)
	}

	// Invoke and app metrics: another project's, a reader, injected headers,
	// a body over the limit.
	for what, tc := range map[string]struct {
		a    attack
		want int
	}{
		"invoke another project's function": {attack{method: "POST", path: "/v2/projects/" + p.ID + "/functions/fn/invoke", token: atk.Token, body: `{}`}, 404},
		"invoke as a reader":                {attack{method: "POST", path: "/v2/projects/" + p.ID + "/functions/fn/invoke", token: rd.Token, body: `{}`}, 403},
		"a header in content_type":          {attack{method: "POST", path: "/v2/projects/" + p.ID + "/functions/fn/invoke", token: s.admin, body: `{"content_type":"text/plain\r\nX-Evil: 1"}`}, 400},
		"a body of 3 MB":                    {attack{method: "POST", path: "/v2/projects/" + p.ID + "/functions/fn/invoke", token: s.admin, body: `{"body":"` + strings.Repeat("x", 3<<20) + `"}`}, 413},
		"a function that is not there":      {attack{method: "POST", path: "/v2/projects/" + p.ID + "/functions/nope/invoke", token: s.admin, body: `{}`}, 404},
		"another project's app's metrics":   {attack{method: "GET", path: "/v2/projects/" + p.ID + "/apps/web/metrics", token: atk.Token}, 404},
	} {
		if code, body := s.send(t, tc.a); code != tc.want {
			t.Errorf("%s: %d %s, want %d", what, code, clipBody(body), tc.want)
		}
	}
}

// loginCookie logs in to the console with token and returns the session
// cookie as a Cookie header value.
func loginCookie(t *testing.T, s *server, token string) string {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"token": token})
	resp, err := http.Post(s.url()+"/console/session", "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == "coligo_session" && c.HttpOnly && c.SameSite == http.SameSiteStrictMode {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("login: %s, no HttpOnly SameSite=Strict session cookie", resp.Status)
	return ""
}

func sessionOf(t *testing.T, s *server, cookie string) api.ConsoleSession {
	t.Helper()
	code, body := s.send(t, attack{method: "GET", path: "/console/session", header: map[string]string{"Cookie": cookie}})
	var sess api.ConsoleSession
	if code != 200 || json.Unmarshal([]byte(body), &sess) != nil || sess.CSRFToken == "" {
		t.Fatalf("session: %d %s", code, body)
	}
	return sess
}

func clipBody(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
