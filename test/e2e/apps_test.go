package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// appServer starts a server whose autoscaler windows are short enough for
// tests: scale to zero after 4 s without requests.
func appServer(t *testing.T, args ...string) *server {
	return appServerOn(t, "local", args...)
}

func appServerOn(t *testing.T, eng string, args ...string) *server {
	return startServerOn(t, eng, append([]string{"--autoscale-stable-window", "4s", "--autoscale-panic-window", "1s"}, args...)...)
}

// testApp is the prototype of an app that runs testprog's app mode.
func testApp(name, image string) api.AppPrototype {
	return api.AppPrototype{Name: name, AppSpec: api.AppSpec{
		ImageReference: image, ImageSecret: "regcred", RunCommands: []string{"/bin/testprog", "app"},
		ScaleCPULimit: "0.25", ScaleMemoryLimit: "0.5G",
		RunEnvVariables: []api.EnvVar{{Type: "literal", Name: "VERSION", Value: "v1"}},
	}}
}

// deployApp creates an app and waits until it is ready.
func deployApp(t *testing.T, c *api.Client, project string, proto api.AppPrototype) *api.App {
	t.Helper()
	if _, err := c.CreateApp(context.Background(), project, proto); err != nil {
		t.Fatal(err)
	}
	return waitApp(t, c, project, proto.Name, 60*time.Second, func(a *api.App) bool { return a.Status == "ready" })
}

// waitApp polls an app until done reports true.
func waitApp(t *testing.T, c *api.Client, project, name string, within time.Duration, done func(*api.App) bool) *api.App {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		a, err := c.GetApp(context.Background(), project, name)
		if err == nil && done(a) {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("app %s: condition not met within %s: %+v %v", name, within, a, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func instances(t *testing.T, c *api.Client, project, app string) []api.AppInstance {
	t.Helper()
	l, err := c.ListAppInstances(context.Background(), project, app, api.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Instances
}

// waitInstances polls until the app has n ready instances (and no others
// when exact).
func waitInstances(t *testing.T, c *api.Client, project, app string, within time.Duration, ok func(ready, all int) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ins := instances(t, c, project, app)
		ready := 0
		for _, in := range ins {
			if in.StatusDetails.Ready {
				ready++
			}
		}
		if ok(ready, len(ins)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("app %s: instances not as wanted within %s: %+v", app, within, ins)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var routerClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}, Timeout: 60 * time.Second}

// call sends a request through the server's router for the app's host.
func routerGet(s *server, a *api.App, path string) (int, string, error) {
	host := strings.TrimPrefix(a.Endpoint, "http://")
	req, _ := http.NewRequest("GET", "http://"+s.router+path, nil)
	req.Host = host
	resp, err := routerClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func mustCall(t *testing.T, s *server, a *api.App, path string) string {
	t.Helper()
	code, body, err := routerGet(s, a, path)
	if err != nil || code != 200 {
		t.Fatalf("GET %s%s: %d %q %v", a.Endpoint, path, code, body, err)
	}
	return body
}

func TestAppServesScalesToZeroAndBack(t *testing.T) { forEngines(t, testAppServesScalesToZeroAndBack) }

func testAppServesScalesToZeroAndBack(t *testing.T, eng string) {
	s := appServerOn(t, eng)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "apps")
	ctx := context.Background()
	created, err := c.CreateApp(ctx, p.ID, testApp("hello", image))
	if err != nil {
		t.Fatal(err)
	}
	if created.Status != "deploying" || *created.ImagePort != 8080 || *created.ScaleConcurrency != 100 || *created.ScaleMaxInstances != 10 ||
		*created.ScaleInitialInstances != 1 || *created.ScaleRequestTimeout != 300 || created.ManagedDomainMappings != "local_public" {
		t.Errorf("created app lacks Code Engine's defaults: %+v", created)
	}
	wantURL := fmt.Sprintf("http://hello.%s.localhost:%s", p.Name, s.router[strings.LastIndex(s.router, ":")+1:])
	if created.Endpoint != wantURL || created.EndpointInternal != "http://hello."+p.Name+".svc" {
		t.Errorf("endpoints %q %q, want %q", created.Endpoint, created.EndpointInternal, wantURL)
	}
	a := waitApp(t, c, p.ID, "hello", 60*time.Second, func(a *api.App) bool { return a.Status == "ready" })
	if a.StatusDetails.LatestReadyRevision != "hello-00001" || a.StatusDetails.LatestCreatedRevision != "hello-00001" {
		t.Errorf("status details %+v", a.StatusDetails)
	}
	if got := mustCall(t, s, a, "/"); got != "hello from hello-00001 v1\n" {
		t.Errorf("GET / = %q", got)
	}
	env := mustCall(t, s, a, "/env")
	for _, want := range []string{"PORT=8080", "K_REVISION=hello-00001", "K_SERVICE=hello", "K_CONFIGURATION=hello", "CE_APP=hello",
		"CE_SUBDOMAIN=" + p.Name, "CE_PROJECT_ID=" + p.ID, "CE_DOMAIN=localhost", "CE_REGION=local", "CE_API_BASE_URL=http://" + s.addr + "/v2",
		"HOSTNAME=hello-00001-", "VERSION=v1"} {
		if !strings.Contains(env, want) {
			t.Errorf("instance environment lacks %s:\n%s", want, env)
		}
	}
	var logs strings.Builder
	if err := c.AppLogs(ctx, p.ID, "hello", "", api.LogOptions{}, &logs); err != nil || !strings.Contains(logs.String(), "app listening on :8080") {
		t.Errorf("app logs %q %v", logs.String(), err)
	}
	if code, body, _ := routerGet(s, &api.App{Endpoint: "http://nothing." + p.Name + ".localhost"}, "/"); code != 404 || !strings.Contains(body, "no app") {
		t.Errorf("unknown host: %d %q", code, body)
	}

	// No requests for the stable window: down to zero.
	waitInstances(t, c, p.ID, "hello", 30*time.Second, func(ready, all int) bool { return all == 0 })
	start := time.Now()
	if got := mustCall(t, s, a, "/"); got != "hello from hello-00001 v1\n" {
		t.Errorf("GET / after scale to zero = %q", got)
	}
	t.Logf("first request after scale to zero answered in %s", time.Since(start))
	waitInstances(t, c, p.ID, "hello", 5*time.Second, func(ready, all int) bool { return ready == 1 })
	// The instance that woke stays for the next requests: no second cold start.
	woke := instances(t, c, p.ID, "hello")[0].Name
	for range 10 {
		time.Sleep(100 * time.Millisecond)
		mustCall(t, s, a, "/")
	}
	if ins := instances(t, c, p.ID, "hello"); len(ins) != 1 || ins[0].Name != woke {
		t.Errorf("instances a second after waking: %+v, want only %s", ins, woke)
	}
	revs, err := c.ListAppRevisions(ctx, p.ID, "hello", api.ListOptions{})
	if err != nil || len(revs.Revisions) != 1 || revs.Revisions[0].Status != "ready" || !strings.Contains(revs.Revisions[0].ImageDigest, "@sha256:") {
		t.Errorf("revisions %+v %v", revs, err)
	}
}

func TestAppUpdateUnderLoad(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "updates")
	ctx := context.Background()
	a := deployApp(t, c, p.ID, testApp("web", image))

	// A load generator runs through two updates.
	var failed, ok atomic.Int64
	var lastMu sync.Mutex
	last := ""
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := routerGet(s, a, "/")
				if err != nil || code != 200 {
					failed.Add(1)
					t.Logf("failed request: %d %q %v", code, body, err)
					continue
				}
				ok.Add(1)
				lastMu.Lock()
				last = body
				lastMu.Unlock()
			}
		})
	}
	for i, version := range []string{"v2", "v3"} {
		cur, err := c.GetApp(ctx, p.ID, "web")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.UpdateApp(ctx, p.ID, "web", cur.EntityTag, map[string]any{
			"run_env_variables": []api.EnvVar{{Type: "literal", Name: "VERSION", Value: version}},
		}); err != nil {
			t.Fatal(err)
		}
		rev := fmt.Sprintf("web-%05d", i+2)
		waitApp(t, c, p.ID, "web", 60*time.Second, func(a *api.App) bool {
			return a.Status == "ready" && a.StatusDetails.LatestReadyRevision == rev
		})
		want := "hello from " + rev + " " + version + "\n"
		deadline := time.Now().Add(10 * time.Second)
		for {
			lastMu.Lock()
			got := last
			lastMu.Unlock()
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("traffic not on %s 10 s after it was ready: last answer %q", rev, got)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during updates", failed.Load(), failed.Load()+ok.Load())
	}
	t.Logf("%d requests during two updates, %d failed", ok.Load(), failed.Load())
	// The serving revision and one inactive one are kept.
	deadline := time.Now().Add(10 * time.Second)
	for {
		revs, err := c.ListAppRevisions(ctx, p.ID, "web", api.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range revs.Revisions {
			names = append(names, r.Name)
		}
		if strings.Join(names, ",") == "web-00002,web-00003" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revisions %v, want web-00002,web-00003", names)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Old revisions' instances are gone.
	waitInstances(t, c, p.ID, "web", 20*time.Second, func(ready, all int) bool {
		for _, in := range instances(t, c, p.ID, "web") {
			if in.RevisionName != "web-00003" {
				return false
			}
		}
		return true
	})
}

func TestAppAutoscalesOnConcurrency(t *testing.T) { forEngines(t, testAppAutoscalesOnConcurrency) }

func testAppAutoscalesOnConcurrency(t *testing.T, eng string) {
	s := appServerOn(t, eng)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "scaling")
	proto := testApp("busy", image)
	proto.ScaleConcurrency, proto.ScaleConcurrencyTarget, proto.ScaleMaxInstances = intp(10), intp(2), intp(6)
	a := deployApp(t, c, p.ID, proto)
	// Six clients keep six requests in flight: the target of 2 per
	// instance predicts 3 instances.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 6 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if code, _, err := routerGet(s, a, "/sleep?ms=300"); err != nil || code != 200 {
					failed.Add(1)
				}
			}
		})
	}
	waitInstances(t, c, p.ID, "busy", 30*time.Second, func(ready, all int) bool { return ready >= 2 && ready <= 4 })
	// Hold the load for a stable window and check the count stays near 3.
	seen := map[int]bool{}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		n := 0
		for _, in := range instances(t, c, p.ID, "busy") {
			if in.StatusDetails.Ready {
				n++
			}
		}
		seen[n] = true
	}
	// Down to one client of long requests: the scale-down cuts none of them.
	longStop := make(chan struct{})
	var longWG sync.WaitGroup
	var longOK atomic.Int64
	longWG.Go(func() {
		for {
			select {
			case <-longStop:
				return
			default:
			}
			if code, _, err := routerGet(s, a, "/sleep?ms=700"); err != nil || code != 200 {
				failed.Add(1)
				t.Logf("long request during scale-down: %d %v", code, err)
			} else {
				longOK.Add(1)
			}
		}
	})
	close(stop)
	wg.Wait()
	waitInstances(t, c, p.ID, "busy", 30*time.Second, func(ready, all int) bool { return all == 1 })
	close(longStop)
	longWG.Wait()
	for n := range seen {
		if n < 2 || n > 4 {
			t.Errorf("under a steady 6 concurrent requests with target 2 the app had %d ready instances (seen %v), want 3±1", n, seen)
		}
	}
	if failed.Load() != 0 || longOK.Load() == 0 {
		t.Errorf("%d requests failed while scaling up and down (%d long ones succeeded)", failed.Load(), longOK.Load())
	}
	// Silence: back to zero after the stable window.
	waitInstances(t, c, p.ID, "busy", 30*time.Second, func(ready, all int) bool { return all == 0 })
}

func TestAppRequestTimeoutAndQueue(t *testing.T) {
	s := appServer(t, "--router-queue-depth", "2")
	c := s.adminClient()
	p, _, image := jobProject(t, s, "limits")
	proto := testApp("narrow", image)
	proto.ScaleConcurrency, proto.ScaleMinInstances, proto.ScaleMaxInstances, proto.ScaleRequestTimeout = intp(1), intp(1), intp(1), intp(2)
	a := deployApp(t, c, p.ID, proto)

	start := time.Now()
	code, body, err := routerGet(s, a, "/sleep?ms=5000")
	if err != nil || code != 504 || !strings.Contains(body, "scale_request_timeout (2s)") {
		t.Errorf("a request past the timeout: %d %q %v, want 504", code, body, err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("504 came after %s, want about 2s", d)
	}
	// Wait until the instance is idle again (its request was cut).
	time.Sleep(200 * time.Millisecond)

	// Concurrency 1: one in flight, two queue, the fourth gets 503.
	codes := make(chan int, 3)
	for range 3 {
		go func() { code, _, _ := routerGet(s, a, "/sleep?ms=500"); codes <- code }()
		time.Sleep(100 * time.Millisecond)
	}
	code, body, _ = routerGet(s, a, "/")
	if code != 503 || !strings.Contains(body, "concurrency limit") {
		t.Errorf("request beyond the queue: %d %q, want 503", code, body)
	}
	for range 3 {
		if code := <-codes; code != 200 {
			t.Errorf("an in-flight or queued request got %d, want 200", code)
		}
	}
}

func TestAppKeepsServingThroughRestart(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "restarts")
	proto := testApp("steady", image)
	proto.ScaleMinInstances = intp(1)
	a := deployApp(t, c, p.ID, proto)
	waitInstances(t, c, p.ID, "steady", 10*time.Second, func(ready, all int) bool { return ready == 1 && all == 1 })
	before := instances(t, c, p.ID, "steady")[0].Name

	for _, how := range []string{"SIGTERM", "SIGKILL"} {
		if how == "SIGTERM" {
			s.stop()
		} else {
			s.kill9()
		}
		// Requests while the router is down fail; the instance lives on.
		if _, _, err := routerGet(s, a, "/"); err == nil {
			t.Fatalf("%s: the router answered while the server was down", how)
		}
		s.start()
		for i := range 50 {
			if got := mustCall(t, s, a, "/"); got != "hello from steady-00001 v1\n" {
				t.Fatalf("%s: request %d after the restart: %q", how, i, got)
			}
		}
		ins := instances(t, s.adminClient(), p.ID, "steady")
		if len(ins) != 1 || ins[0].Name != before {
			t.Fatalf("%s: instances after the restart %+v, want only %s", how, ins, before)
		}
	}
}

func TestAppCLI(t *testing.T) {
	s := appServer(t)
	p, _, image := jobProject(t, s, "appcli")
	c := s.adminClient()
	ctx := context.Background()
	if _, err := c.CreateConfigMap(ctx, p.ID, api.ConfigMapPrototype{Name: "settings", Data: map[string]string{"LOG_LEVEL": "debug"}}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	run := func(args ...string) cliResult {
		t.Helper()
		r := s.cli(t, cfg, "", nil, args...)
		if r.code != 0 {
			t.Fatalf("coligo %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	run("login", "--endpoint", s.url(), "--token-file", filepath.Join(s.dataDir, "admin.token"))
	run("project", "select", "--name", p.Name)
	created := run("app", "create", "--name", "cli", "--image", image, "--registry-secret", "regcred",
		"--command", "/bin/testprog", "--argument", "app", "--env", "VERSION=one", "--cpu", "0.25", "--memory", "0.5G",
		"--mount-configmap", "/etc/settings=settings", "--probe-ready", "type=http,path=/", "--max-scale", "3",
		"--min-scale", "1") // an instance to show in app events, however long the commands take
	lines := strings.Split(strings.TrimSpace(created.stdout), "\n")
	url := lines[len(lines)-1]
	if !strings.HasPrefix(created.stdout, "Created app cli\n") || !strings.Contains(created.stdout, "revision cli-00001: ready, 1 of 1 instances ready") ||
		url != fmt.Sprintf("http://cli.%s.localhost:%s", p.Name, s.router[strings.LastIndex(s.router, ":")+1:]) {
		t.Errorf("app create --wait printed:\n%s", created.stdout)
	}
	// The shell completes the names of apps and config maps, and flag values.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"app", "get", ""}, "cli\n"},
		{[]string{"app", "logs", "--name", ""}, "cli\n"},
		{[]string{"configmap", "get", ""}, "settings\n"},
		{[]string{"project", "select", "--name", ""}, p.Name + "\n"},
		{[]string{"job", "create", "--mode", ""}, "task\ndaemon\n"},
	} {
		if got := run(append([]string{"__complete"}, tc.args...)...).stdout; !strings.Contains("\n"+got, "\n"+tc.want) {
			t.Errorf("completion of %q: %q, want %q among its lines", tc.args, got, tc.want)
		}
	}
	if got := strings.TrimSpace(run("app", "get", "--name", "cli", "-o", "url").stdout); got != url {
		t.Errorf("app get -o url = %q, want %q", got, url)
	}
	a := &api.App{Endpoint: url}
	if got := mustCall(t, s, a, "/file?path=/etc/settings/LOG_LEVEL"); got != "debug" {
		t.Errorf("mounted config map file holds %q", got)
	}
	updated := run("app", "update", "--name", "cli", "--env", "VERSION=two")
	if !strings.Contains(updated.stdout, "revision cli-00002: ready") {
		t.Errorf("app update printed:\n%s", updated.stdout)
	}
	if got := mustCall(t, s, a, "/"); got != "hello from cli-00002 two\n" {
		t.Errorf("after update: %q", got)
	}
	revs := run("revision", "list", "--app", "cli").stdout
	if !strings.Contains(revs, "cli-00001") || !strings.Contains(revs, "cli-00002") || !strings.Contains(revs, "@sha256:") {
		t.Errorf("revision list:\n%s", revs)
	}
	if got := run("revision", "get", "--name", "cli-00002", "-o", "json").stdout; !strings.Contains(got, `"status": "ready"`) {
		t.Errorf("revision get:\n%s", got)
	}
	if got := run("app", "list").stdout; !strings.Contains(got, "cli") || !strings.Contains(got, "ready") || !strings.Contains(got, url) {
		t.Errorf("app list:\n%s", got)
	}
	if got := run("app", "logs", "--name", "cli").stdout; !strings.Contains(got, "app listening on :8080") {
		t.Errorf("app logs:\n%s", got)
	}
	if got := run("app", "events", "--name", "cli").stdout; !strings.Contains(got, "instance cli-00002-") {
		t.Errorf("app events:\n%s", got)
	}
	for _, bad := range [][]string{
		{"app", "create", "--name", "bad", "--image", image, "--port", "grpc:1", "--no-wait"},
		{"app", "create", "--name", "bad", "--image", image, "--probe-ready", "path=/"},
		{"app", "create", "--name", "bad", "--image", image, "--visibility", "internet"},
		{"app", "create", "--name", "bad", "--image", image, "--max-scale", "300"},
	} {
		if r := s.cli(t, cfg, "", nil, bad...); r.code == 0 || r.stderr == "" {
			t.Errorf("coligo %s: exit %d, want an error\n%s", strings.Join(bad, " "), r.code, r.stdout)
		}
	}
	if got := run("app", "delete", "--name", "cli", "-f").stdout; got != "Deleted app cli\n" {
		t.Errorf("app delete printed %q", got)
	}
	if _, err := c.ListAppInstances(ctx, p.ID, "cli", api.ListOptions{}); !strings.Contains(fmt.Sprint(err), "404") {
		t.Errorf("instances of a deleted app: %v, want 404", err)
	}
}

var runs int

// defaultGateway reads the default route's gateway from /proc/net/route.
func defaultGateway(t *testing.T, table string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[1] == "00000000" {
			v, err := strconv.ParseUint(f[2], 16, 32)
			if err == nil {
				return fmt.Sprintf("%d.%d.%d.%d", byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
			}
		}
	}
	t.Fatalf("no default route in:\n%s", table)
	return ""
}

// fetchFrom runs testprog fetch URL [HOST] as a job run in project and
// returns whether it succeeded and what it printed.
func fetchFrom(t *testing.T, c *api.Client, project, image string, fetch ...string) (bool, string) {
	t.Helper()
	return runIn(t, c, project, image, append([]string{"/bin/testprog", "fetch"}, fetch...)...)
}

// runIn runs a command as a job run in project and returns whether it
// succeeded and what it printed.
func runIn(t *testing.T, c *api.Client, project, image string, command ...string) (bool, string) {
	t.Helper()
	runs++
	return runJob(t, c, project, api.JobRunPrototype{Name: fmt.Sprintf("run-%d", runs), RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
		RunCommands: command, ScaleRetryLimit: intp(0), ScaleCPULimit: "0.25", ScaleMemoryLimit: "0.5G"}})
}

// runJob submits a job run, waits until it ends, and returns whether it
// completed and what index 0 printed.
func runJob(t *testing.T, c *api.Client, project string, proto api.JobRunPrototype) (bool, string) {
	t.Helper()
	ctx := context.Background()
	run, err := c.CreateJobRun(ctx, project, proto)
	if err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, c, project, run.Name, 60*time.Second, finished)
	var logs strings.Builder
	c.JobRunLogs(ctx, project, run.Name, 0, api.LogOptions{}, &logs)
	return r.Status == "completed", logs.String()
}

func TestAppProjectVisibility(t *testing.T) { forEngines(t, testAppProjectVisibility) }

func testAppProjectVisibility(t *testing.T, eng string) {
	s := appServerOn(t, eng)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "inside")
	other, _, _ := jobProject(t, s, "outside")
	proto := testApp("private", image)
	proto.ManagedDomainMappings = "local"
	a := deployApp(t, c, p.ID, proto)
	if a.Endpoint != "" || a.EndpointInternal != "http://private.inside.svc" {
		t.Errorf("endpoints of a project-only app: %q %q", a.Endpoint, a.EndpointInternal)
	}
	if code, body, _ := routerGet(s, &api.App{Endpoint: "http://private.inside.localhost"}, "/"); code != 404 {
		t.Errorf("the public router served a project-only app: %d %q", code, body)
	}
	ok, out := fetchFrom(t, c, p.ID, image, a.EndpointInternal+"/")
	if !ok || !strings.Contains(out, "hello from private-00001 v1") {
		t.Errorf("from a container of the same project: ok=%v %q", ok, out)
	}
	if ok, out := fetchFrom(t, c, other.ID, image, a.EndpointInternal+"/"); ok || strings.Contains(out, "hello from") {
		t.Errorf("from another project's container: ok=%v %q", ok, out)
	}
	// Nor by the address of the project's gateway, with the right Host.
	_, route := runIn(t, c, p.ID, image, "cat", "/proc/net/route")
	gw := defaultGateway(t, route)
	if ok, out := fetchFrom(t, c, other.ID, image, "http://"+gw+"/", "private.inside.svc"); ok || strings.Contains(out, "hello from") {
		t.Errorf("from another project's container through %s: ok=%v %q", gw, ok, out)
	}
	// Scaled to zero, the internal endpoint wakes it too.
	waitInstances(t, c, p.ID, "private", 30*time.Second, func(ready, all int) bool { return all == 0 })
	if ok, out := fetchFrom(t, c, p.ID, image, "http://private.inside.svc.cluster.local/"); !ok || !strings.Contains(out, "hello from") {
		t.Errorf("after scale to zero, from the same project: ok=%v %q", ok, out)
	}
}

func TestAppFailuresAndWarnings(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	p, parts, image := jobProject(t, s, "failures")
	ctx := context.Background()
	revision := func(app, name string) *api.AppRevision {
		t.Helper()
		r, err := c.GetAppRevision(ctx, p.ID, app, name)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// An image that does not exist: failed, with the pull reason.
	missing := testApp("missing", parts.Registry+"/coligo-test/busybox:no-such-tag")
	if _, err := c.CreateApp(ctx, p.ID, missing); err != nil {
		t.Fatal(err)
	}
	a := waitApp(t, c, p.ID, "missing", 30*time.Second, func(a *api.App) bool { return a.Status == "failed" })
	if a.StatusDetails.Reason != "no_revision_ready" {
		t.Errorf("failed app reason %q", a.StatusDetails.Reason)
	}
	if r := revision("missing", "missing-00001"); r.Status != "failed" || r.StatusDetails.Reason != "fetch_image_failed_unknown_manifest" {
		t.Errorf("revision of a missing image: %s %s", r.Status, r.StatusDetails.Reason)
	}
	// No pull secret: the reason says so.
	noSecret := testApp("nosecret", image)
	noSecret.ImageSecret = "no-such-secret"
	c.CreateApp(ctx, p.ID, noSecret)
	waitApp(t, c, p.ID, "nosecret", 30*time.Second, func(a *api.App) bool { return a.Status == "failed" })
	if r := revision("nosecret", "nosecret-00001"); r.StatusDetails.Reason != "fetch_image_failed_missing_pull_secret" {
		t.Errorf("revision without its pull secret: %s", r.StatusDetails.Reason)
	}
	// A ready app updated to a command that is not in the image: it keeps
	// serving the old revision and warns.
	good := deployApp(t, c, p.ID, testApp("good", image))
	if _, err := c.UpdateApp(ctx, p.ID, "good", good.EntityTag, map[string]any{"run_commands": []string{"/bin/no-such-program"}}); err != nil {
		t.Fatal(err)
	}
	w := waitApp(t, c, p.ID, "good", 30*time.Second, func(a *api.App) bool { return a.Status == "warning" })
	if w.StatusDetails.Reason != "ready_but_latest_revision_failed" || w.StatusDetails.LatestReadyRevision != "good-00001" || w.StatusDetails.LatestCreatedRevision != "good-00002" {
		t.Errorf("status details of a failed update: %+v", w.StatusDetails)
	}
	if r := revision("good", "good-00002"); r.StatusDetails.Reason != "container_failed_exit_code_127" {
		t.Errorf("revision with a missing command: %s %s", r.StatusDetails.Reason, r.StatusDetails.Message)
	}
	if got := mustCall(t, s, good, "/"); got != "hello from good-00001 v1\n" {
		t.Errorf("after the failed update the app answers %q, want the old revision", got)
	}
	// A revision whose instances crash before they are ready fails too.
	cur, _ := c.GetApp(ctx, p.ID, "good")
	if _, err := c.UpdateApp(ctx, p.ID, "good", cur.EntityTag, map[string]any{"run_commands": []string{"sh", "-c", "exit 3"}}); err != nil {
		t.Fatal(err)
	}
	waitApp(t, c, p.ID, "good", 60*time.Second, func(a *api.App) bool {
		return a.Status == "warning" && a.StatusDetails.LatestCreatedRevision == "good-00003"
	})
	if r := revision("good", "good-00003"); r.StatusDetails.Reason != "container_failed_exit_code_3" {
		t.Errorf("revision whose instances exit 3: %s", r.StatusDetails.Reason)
	}
}

func TestAppSoftDeleteStopsAndRestoreServes(t *testing.T) {
	forEngines(t, testAppSoftDeleteStopsAndRestoreServes)
}

func testAppSoftDeleteStopsAndRestoreServes(t *testing.T, eng string) {
	s := appServerOn(t, eng)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "pausing")
	ctx := context.Background()
	proto := testApp("kept", image)
	proto.ScaleMinInstances = intp(1)
	a := deployApp(t, c, p.ID, proto)
	mustCall(t, s, a, "/")
	if err := c.DeleteProject(ctx, p.ID, false); err != nil {
		t.Fatal(err)
	}
	// A soft-deleted project serves nothing and runs nothing.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := routerGet(s, a, "/")
		runs := running(t, s, p.ID)
		if code == 404 && len(runs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after a soft delete: router answers %d, running %v", code, runs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.RestoreProject(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, p.ID, "active")
	deadline = time.Now().Add(30 * time.Second)
	for {
		if code, body, _ := routerGet(s, a, "/"); code == 200 && body == "hello from kept-00001 v1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restored project's app does not serve again")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestAppLivenessProbeReplacesSickInstance(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "liveness")
	proto := testApp("fragile", image)
	proto.ScaleMinInstances = intp(1)
	proto.ProbeLiveness = &api.Probe{Type: "http", Path: "/live", Interval: 1, FailureThreshold: 2}
	a := deployApp(t, c, p.ID, proto)
	waitInstances(t, c, p.ID, "fragile", 10*time.Second, func(ready, all int) bool { return ready == 1 && all == 1 })
	sick := instances(t, c, p.ID, "fragile")[0].Name
	mustCall(t, s, a, "/sicken")
	// Two failed probes a second apart, then a new instance takes over.
	waitInstances(t, c, p.ID, "fragile", 30*time.Second, func(ready, all int) bool {
		ins := instances(t, c, p.ID, "fragile")
		return ready == 1 && all == 1 && ins[0].Name != sick
	})
	if got := mustCall(t, s, a, "/live"); got != "" {
		t.Errorf("the new instance's /live answers %q", got)
	}
}

func TestAppPicksUpChangedSecretAfterScaleToZero(t *testing.T) {
	forEngines(t, testAppPicksUpChangedSecretAfterScaleToZero)
}

func testAppPicksUpChangedSecretAfterScaleToZero(t *testing.T, eng string) {
	s := appServerOn(t, eng)
	c := s.adminClient()
	p, _, image := jobProject(t, s, "rotation")
	ctx := context.Background()
	sec, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "db", Format: "generic", Data: map[string]string{"PASSWORD": "pw-first-7f3a"}})
	if err != nil {
		t.Fatal(err)
	}
	proto := testApp("reader", image)
	proto.RunEnvVariables = append(proto.RunEnvVariables, api.EnvVar{Type: "secret_key_reference", Reference: "db", Key: "PASSWORD"})
	proto.RunVolumeMounts = []api.VolumeMount{{Type: "secret", Reference: "db", MountPath: "/run/db"}}
	a := deployApp(t, c, p.ID, proto)
	if env := mustCall(t, s, a, "/env"); !strings.Contains(env, "PASSWORD=pw-first-7f3a") {
		t.Fatalf("environment lacks the secret:\n%s", env)
	}
	if got := mustCall(t, s, a, "/file?path=/run/db/PASSWORD"); got != "pw-first-7f3a" {
		t.Errorf("mounted secret file holds %q", got)
	}
	// At zero (an instance prepared meanwhile), the secret changes: the next
	// instance starts with the new value.
	waitInstances(t, c, p.ID, "reader", 30*time.Second, func(ready, all int) bool { return all == 0 })
	time.Sleep(time.Second)
	if _, err := c.ReplaceSecret(ctx, p.ID, "db", sec.EntityTag, api.SecretReplace{Format: "generic", Data: map[string]string{"PASSWORD": "pw-second-9c1e"}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if env := mustCall(t, s, a, "/env"); !strings.Contains(env, "PASSWORD=pw-second-9c1e") {
		t.Errorf("after the secret changed and the app scaled from zero, the environment has:\n%s", env)
	}
	if got := mustCall(t, s, a, "/file?path=/run/db/PASSWORD"); got != "pw-second-9c1e" {
		t.Errorf("mounted secret file holds %q after the change", got)
	}
	// The secret's value is in no log of the server.
	if strings.Contains(s.allLogs(), "second") || strings.Contains(s.allLogs(), "PASSWORD=pw-first-7f3a") {
		t.Error("the server log holds the secret's value")
	}
}
