package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

func inlineCode(src string) string {
	return "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte(src))
}

// waitFunction polls a function until done reports true.
func waitFunction(t *testing.T, c *api.Client, project, name string, within time.Duration, done func(*api.Function) bool) *api.Function {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		f, err := c.GetFunction(context.Background(), project, name)
		if err == nil && done(f) {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("function %s: condition not met within %s: %+v %v", name, within, f, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// burstSize is how many requests of 300 ms a wave of the burst sends at
// once: at concurrency 1 they take 6 s one after another. Waves follow one
// another until new instances serve some (on a slow day an instance takes
// longer than a wave to start), for burstFor at most.
const (
	burstSize = 20
	burstFor  = 90 * time.Second
)

// invoke calls a function through the server's router.
func invoke(t *testing.T, s *server, f *api.Function, method, path, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.router+path, strings.NewReader(body))
	req.Host = strings.TrimPrefix(f.Endpoint, "http://")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := routerClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, f.Endpoint, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

const nodeFunction = `
const os = require('os');
async function main(args) {
  if (args.__ce_path === '/slow') { await new Promise((r) => setTimeout(r, 3000)); return { body: 'late' }; }
  if (args.__ce_path === '/throw') throw new Error('e2e-stack-marker');
  if (args.__ce_path === '/hold') { await new Promise((r) => setTimeout(r, 300)); return { body: os.hostname() }; }
  return { headers: { 'Content-Type': 'application/json' },
    body: { host: os.hostname(), greeting: process.env.GREETING, secret: process.env.TOKEN, fn: process.env.CE_FUNCTION,
      method: args.__ce_method, path: args.__ce_path, name: args.name, query: args.__ce_query || '' } };
}
module.exports.main = main;
`

const pythonFunction = `
import socket
def main(args):
    return {"body": "py " + args.get("name", "nobody") + " on " + socket.gethostname()}
`

// TestFunctions: Node.js and Python functions from inline code, invoked
// through the router: cold (from a pre-warmed runtime instance), then warm;
// args and responses per Code Engine's interfaces, environment with
// secrets, 504 past the max execution time, a thrown error as a 500
// without its text; another project's invocations never land in an
// instance that ran this project's code; bad input is refused.
//
// It runs on both engines: on Kubernetes a pool is a set of pods of the
// project's namespace.
func TestFunctions(t *testing.T) { forEngines(t, testFunctions) }

func testFunctions(t *testing.T, eng string) {
	start := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), what) }
	s := appServerOn(t, eng, "--function-pool", "1", "--cron-seconds")
	c := s.adminClient()
	ctx := context.Background()
	p, parts, _ := jobProject(t, s, "functions")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "creds", Format: "generic", Data: map[string]string{"TOKEN": "fn-s3cret"}}); err != nil {
		t.Fatal(err)
	}
	rts, err := c.ListFunctionRuntimes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	runtimes := map[string]string{} // family → default id
	for _, r := range rts.FunctionRuntimes {
		if r.Default {
			runtimes[r.Family] = r.ID
		}
	}
	if runtimes["nodejs"] == "" || runtimes["python"] == "" {
		t.Fatalf("runtimes %+v, want a default of nodejs and of python", rts.FunctionRuntimes)
	}
	exec := 2 // a first invocation on a slow day took more than 1 s
	node, err := c.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: "greet", FunctionSpec: api.FunctionSpec{
		Runtime: runtimes["nodejs"], CodeReference: inlineCode(nodeFunction), ScaleMaxExecutionTime: &exec,
		ScaleCPULimit: "0.25", ScaleMemoryLimit: "1G",
		RunEnvVariables: []api.EnvVar{{Name: "GREETING", Value: "hello"}, {Type: "secret_key_reference", Name: "TOKEN", Reference: "creds", Key: "TOKEN"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if node.Status != "deploying" || node.ResourceType != "function_v2" || *node.ScaleConcurrency != 1 || node.CodeMain != "main" || *node.CodeBinary ||
		*node.ScaleDownDelay != 1 || node.Endpoint == "" || len(node.ComputedEnvVariables) == 0 {
		t.Errorf("created function lacks Code Engine's defaults: %+v", node)
	}
	node = waitFunction(t, c, p.ID, "greet", 180*time.Second, func(f *api.Function) bool { return f.Status == "ready" })
	step("greet ready")

	code, h, body := invoke(t, s, node, "GET", "/hi?name=Ada", "", "")
	if code != 200 || !strings.Contains(body, `"greeting":"hello"`) || !strings.Contains(body, `"secret":"fn-s3cret"`) ||
		!strings.Contains(body, `"name":"Ada"`) || !strings.Contains(body, `"path":"/hi"`) || !strings.Contains(body, `"fn":"greet"`) ||
		h.Get("X-Faas-Activation-Id") == "" {
		t.Fatalf("invocation: %d %v %s", code, h, body)
	}
	// A cron subscription delivers to a function through the router.
	if _, err := c.CreateCronSubscription(ctx, p.ID, api.CronSubscriptionPrototype{Name: "to-fn", DestinationType: "function", Destination: "greet",
		Schedule: "*/2 * * * * *", Data: `{"name":"cron"}`, Path: "/hi"}); err != nil {
		t.Fatal(err)
	}
	waitServed(t, func() bool {
		g, err := c.GetCronSubscription(ctx, p.ID, "to-fn")
		return err == nil && len(g.StatusDetails.Deliveries) > 0 && g.StatusDetails.Deliveries[0].Outcome == "delivered" && g.StatusDetails.Deliveries[0].StatusCode == 200
	}, "a tick delivered to the function")
	if err := c.DeleteCronSubscription(ctx, p.ID, "to-fn"); err != nil {
		t.Fatal(err)
	}
	step("cron to the function")
	if code, _, body := invoke(t, s, node, "POST", "/echo", "application/json", `{"__ce_method":"PUT"}`); code != 400 {
		t.Errorf("a body setting __ce_method: %d %s, want 400", code, body)
	}
	if code, _, body := invoke(t, s, node, "GET", "/throw", "", ""); code != 500 || strings.Contains(body, "e2e-stack-marker") {
		t.Errorf("a thrown error: %d %s, want 500 without its text", code, body)
	}
	// Its stack is in the function's logs (of a running instance, or kept
	// from an ended one).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var logs strings.Builder
		err := c.FunctionLogs(ctx, p.ID, "greet", "", api.LogOptions{}, &logs)
		if err == nil && strings.Contains(logs.String(), "e2e-stack-marker") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the thrown error's stack is not in the function's logs: %v\n%s", err, logs.String())
		}
	}
	if code, _, body := invoke(t, s, node, "GET", "/slow", "", ""); code != 504 || !strings.Contains(body, "scale_max_execution_time (2s)") {
		t.Errorf("past scale_max_execution_time: %d %q, want 504 naming it", code, body)
	}

	py, err := c.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: "pyfn", FunctionSpec: api.FunctionSpec{
		Runtime: runtimes["python"], CodeReference: inlineCode(pythonFunction), ScaleCPULimit: "0.25", ScaleMemoryLimit: "1G"}})
	if err != nil {
		t.Fatal(err)
	}
	py = waitFunction(t, c, p.ID, "pyfn", 180*time.Second, func(f *api.Function) bool { return f.Status == "ready" })
	step("pyfn ready")
	if code, _, body := invoke(t, s, py, "GET", "/?name=Grace", "", ""); code != 200 || !strings.HasPrefix(body, "py Grace on fn-") {
		t.Errorf("python: %d %q", code, body)
	}

	// A burst at concurrency 1 scales out, then back in (a
	// function of its own: the router counts a request's wait in its time).
	if _, err := c.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: "burst", FunctionSpec: api.FunctionSpec{
		Runtime: runtimes["nodejs"], CodeReference: inlineCode(nodeFunction), ScaleCPULimit: "0.25", ScaleMemoryLimit: "1G"}}); err != nil {
		t.Fatal(err)
	}
	bursty := waitFunction(t, c, p.ID, "burst", 180*time.Second, func(f *api.Function) bool { return f.Status == "ready" })
	step("burst ready")
	var mu sync.Mutex
	burst := map[string]bool{}
	waves := 0
	for start := time.Now(); len(burst) < 3 && time.Since(start) < burstFor; waves++ {
		var wg sync.WaitGroup
		for range burstSize {
			wg.Go(func() {
				code, _, b := invoke(t, s, bursty, "GET", "/hold", "", "")
				mu.Lock()
				defer mu.Unlock()
				if code != 200 {
					t.Errorf("a request of the burst: %d %q", code, b)
				}
				burst[b] = true
			})
		}
		wg.Wait()
	}
	if len(burst) < 3 {
		t.Errorf("%d waves of %d requests of 300 ms at concurrency 1 were served by %d instances", waves, burstSize, len(burst))
	}
	step(fmt.Sprintf("the burst served by %d instances in %d waves", len(burst), waves))
	// Back in, by the autoscaler once the stable window has no request: the
	// pool's pre-warmed instance and at most one more.
	for deadline := time.Now().Add(60 * time.Second); len(running(t, s, p.ID)) > 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the project still runs %v", running(t, s, p.ID))
		}
	}

	step("scaled back in")
	// Another project's function of the same runtime and size: its
	// invocations land in instances of its own.
	q, _, _ := jobProject(t, s, "functions-b")
	other, err := c.CreateFunction(ctx, q.ID, api.FunctionPrototype{Name: "greet", FunctionSpec: api.FunctionSpec{
		Runtime: runtimes["nodejs"], CodeReference: inlineCode(nodeFunction), ScaleCPULimit: "0.25", ScaleMemoryLimit: "1G"}})
	if err != nil {
		t.Fatal(err)
	}
	other = waitFunction(t, c, q.ID, "greet", 180*time.Second, func(f *api.Function) bool { return f.Status == "ready" })
	step("the other project's greet ready")
	// A writer of that project reaches none of this project's functions,
	// by name or by listing, and changes none of them.
	tok, err := c.CreateToken(ctx, api.TokenPrototype{Name: "functions-b-writer", ProjectID: q.ID, Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	qc := s.client(tok.Token)
	_, getErr := qc.GetFunction(ctx, p.ID, "greet")
	_, listErr := qc.ListFunctions(ctx, p.ID, api.ListOptions{})
	_, patchErr := qc.UpdateFunction(ctx, p.ID, "greet", "*", map[string]any{"code_reference": inlineCode("function main() { return {body: 'owned'} }")})
	_, createErr := qc.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: "planted", FunctionSpec: api.FunctionSpec{Runtime: runtimes["nodejs"], CodeReference: inlineCode("x")}})
	deleteErr := qc.DeleteFunction(ctx, p.ID, "greet")
	logsErr := qc.FunctionLogs(ctx, p.ID, "greet", "", api.LogOptions{}, io.Discard)
	for what, err := range map[string]error{"get": getErr, "list": listErr, "patch": patchErr, "create": createErr, "delete": deleteErr, "logs": logsErr} {
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 && apiErr.StatusCode != 404 {
			t.Errorf("another project's writer, %s: %v, want 403 or 404", what, err)
		}
	}
	if f, err := c.GetFunction(ctx, p.ID, "greet"); err != nil || f.CodeReference != node.CodeReference {
		t.Errorf("the function after another project's attempts: %+v %v", f, err)
	}
	hosts := func(f *api.Function) map[string]bool {
		out := map[string]bool{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				_, _, b := invoke(t, s, f, "GET", "/", "", "")
				if i := strings.Index(b, `"host":"`); i >= 0 {
					mu.Lock()
					out[strings.SplitN(b[i+8:], `"`, 2)[0]] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return out
	}
	// (burst, not greet: greet's 2 s max execution time may end a wait
	// for a new instance on Kubernetes.)
	mine, theirs := hosts(bursty), hosts(other)
	for h := range theirs {
		if mine[h] {
			t.Errorf("instance %s served both projects", h)
		}
	}
	if len(mine) == 0 || len(theirs) == 0 {
		t.Errorf("instances seen: %v and %v", mine, theirs)
	}

	step("isolation checked")
	// Bad input: each a 400 that names the field, and nothing created.
	yes := true
	for name, spec := range map[string]api.FunctionSpec{
		"runtime":        {Runtime: "cobol-85", CodeReference: inlineCode("x")},
		"code_reference": {Runtime: runtimes["nodejs"], CodeReference: "data:text/plain;base64,!!"},
		"oversized":      {Runtime: runtimes["nodejs"], CodeReference: inlineCode(strings.Repeat("x", 100<<10))},
		"inward bundle":  {Runtime: runtimes["nodejs"], CodeReference: "127.0.0.1:2/ns/fn:1"},
		"binary inline":  {Runtime: runtimes["nodejs"], CodeReference: inlineCode("x"), CodeBinary: &yes},
		"pair":           {Runtime: runtimes["nodejs"], CodeReference: inlineCode("x"), ScaleCPULimit: "1", ScaleMemoryLimit: "2G"},
	} {
		_, err := c.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: "bad", FunctionSpec: spec})
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	if _, err := c.GetFunction(ctx, p.ID, "bad"); err == nil {
		t.Error("a refused function exists")
	}
	if _, err := c.CreateApp(ctx, p.ID, testApp("greet", "registry.invalid/x:1")); err == nil {
		t.Error("an app took the name (and host) of a function")
	}

	step("bad input checked")
	// The CLI: runtimes, create from a file (a family resolves to its
	// default), get -o url, --save, list, delete.
	cfg, run := s.adminCLI(t, p.Name)
	if out := run("function", "runtimes", "--all"); !strings.Contains(out, runtimes["nodejs"]) || !strings.Contains(out, runtimes["python"]) {
		t.Errorf("function runtimes:\n%s", out)
	}
	src := filepath.Join(t.TempDir(), "hello.js")
	os.WriteFile(src, []byte("function main(a) { return {body: 'cli ' + (a.name || '')} }"), 0o600)
	url := strings.TrimSpace(lastLine(run("fn", "create", "--name", "clifn", "--runtime", "nodejs", "--inline-code", src, "--cpu", "0.25", "--memory", "1G")))
	if got := strings.TrimSpace(run("function", "get", "--name", "clifn", "-o", "url")); got != url || !strings.HasPrefix(url, "http://clifn.") {
		t.Errorf("URL printed by create %q and by get %q", url, got)
	}
	cli, _ := c.GetFunction(ctx, p.ID, "clifn")
	if code, _, body := invoke(t, s, cli, "GET", "/?name=cli", "", ""); code != 200 || body != "cli cli" {
		t.Errorf("the function the CLI made: %d %q", code, body)
	}
	saved := filepath.Join(t.TempDir(), "saved.js")
	run("function", "get", "--name", "clifn", "--save", saved)
	if b, _ := os.ReadFile(saved); !strings.Contains(string(b), "'cli '") {
		t.Errorf("saved code %q", b)
	}
	if out := run("function", "list"); !strings.Contains(out, "clifn") || !strings.Contains(out, "greet") {
		t.Errorf("function list:\n%s", out)
	}
	if out := run("function", "logs", "--name", "greet"); !strings.Contains(out, "e2e-stack-marker") {
		t.Errorf("function logs:\n%s", out)
	}
	run("function", "delete", "--name", "clifn", "--force")

	step("CLI checked")
	// Code bundles in the private test registry: the CLI packs a directory
	// (less what .ceignore names) and pushes it with the user's registry
	// login; the function pulls it with the project's registry secret.
	dockerCfg := t.TempDir()
	os.WriteFile(filepath.Join(dockerCfg, "config.json"), []byte(`{"auths":{"`+parts.Registry+`":{"auth":"`+
		base64.StdEncoding.EncodeToString([]byte(parts.User+":"+parts.Password))+`"}}}`), 0o600)
	for _, b := range []struct {
		family, name string
		files        map[string]string
		want         string
	}{
		{"nodejs", "nodebundle", map[string]string{"package.json": `{"main":"lib/fn.js"}`, "lib/fn.js": "const u = require('./util');\nexports.main = (a) => ({body: u.greet(a.name)});\n",
			"lib/util.js": "exports.greet = (n) => 'bundled ' + n;\n", ".ceignore": "notes.txt\n", "notes.txt": "left out"}, "bundled Ada"},
		{"python", "pybundle", map[string]string{"__main__.py": "from helpers import greet\ndef main(a):\n    return {'body': greet(a.get('name', ''))}\n",
			"helpers/__init__.py": "def greet(n):\n    return 'py bundled ' + n\n"}, "py bundled Ada"},
	} {
		dir := t.TempDir()
		for f, body := range b.files {
			os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
			os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644)
		}
		r := s.cli(t, cfg, "", []string{"DOCKER_CONFIG=" + dockerCfg}, "fn", "create", "--name", b.name, "--runtime", b.family,
			"--build-source", dir, "--cb", parts.Registry+"/coligo-test/"+b.name+":1", "--code-bundle-secret", "regcred", "--wait-timeout", "3m",
			"--cpu", "0.25", "--memory", "1G")
		if r.code != 0 {
			t.Fatalf("fn create --build-source: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		f, err := c.GetFunction(ctx, p.ID, b.name)
		if err != nil || !*f.CodeBinary || !strings.Contains(f.CodeReference, "@sha256:") || f.CodeSecret != "regcred" {
			t.Fatalf("a function from a code bundle: %+v %v", f, err)
		}
		if code, _, body := invoke(t, s, f, "GET", "/?name=Ada", "", ""); code != 200 || body != b.want {
			t.Errorf("%s: %d %q, want %q", b.name, code, body, b.want)
		}
		if err := c.DeleteFunction(ctx, p.ID, b.name); err != nil {
			t.Fatal(err)
		}
	}
	step("code bundles checked")
	// A bundle the registry does not have, and one pulled without the
	// project's credentials: failed, with the reason.
	for name, spec := range map[string]api.FunctionSpec{
		"no_code_bundle": {Runtime: runtimes["nodejs"], CodeReference: parts.Registry + "/coligo-test/missing-bundle:1", CodeSecret: "regcred"},
		"fetch_image_failed_missing_pull_credentials": {Runtime: runtimes["nodejs"], CodeReference: parts.Registry + "/coligo-test/nodebundle:1"},
	} {
		fn := strings.ReplaceAll(name, "_", "-")
		if _, err := c.CreateFunction(ctx, p.ID, api.FunctionPrototype{Name: fn, FunctionSpec: spec}); err != nil {
			t.Fatal(err)
		}
		waitFunction(t, c, p.ID, fn, 60*time.Second, func(f *api.Function) bool { return f.Status == "failed" && f.StatusDetails.Reason == name })
		c.DeleteFunction(ctx, p.ID, fn)
	}

	step("failed bundles checked")
	// Gone with its deletion: the router answers 404 for it.
	if err := c.DeleteFunction(ctx, p.ID, "pyfn"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _, _ := invoke(t, s, py, "GET", "/", "", ""); code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a deleted function is still served")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
