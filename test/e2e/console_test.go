package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
)

// The payloads a tenant could put in names and values to run script in
// another user's console.
const (
	xssScript = `<script>window.__xss=1</script>`
	xssImg    = `"><img src=x onerror="window.__xss=2">`
)

// TestConsole drives the web console in a real headless Chromium against a
// server with the local engine, as a user would: log in with a token,
// create a project, deploy an app from the test registry and open its URL,
// submit a job run and watch its indices, read a log line, create a secret
// and reveal it (an audited read), and hard delete the project with its
// name typed. Every page is checked by axe-core and photographed at 1280
// and 390 px wide (go test -artifacts keeps the pictures).
func TestConsole(t *testing.T) {
	parts := itest.Need(t)
	b := newBrowser(t)
	image := parts.BusyboxImage(t)
	repo := itest.GitRepo(t, map[string]string{"Dockerfile": "FROM " + image + "\nRUN echo console-build-step\nENTRYPOINT [\"/bin/testprog\", \"app\"]\n"})
	s := appServer(t, append(buildArgs(t, repo), "--app-history-interval", "500ms", "--function-pool", "1")...)
	c := s.adminClient()
	console := s.url() + "/console/"

	tb := b.tab()
	// A module that fails to load (as when the machine's network changes
	// mid-load): the page loads itself again, then says so and offers to.
	tb.block("*://*:*/console/js/dom.js")
	tb.open(console)
	tb.waitText("The console did not load", 15*time.Second)
	tb.block("")
	tb.click("Load it again")
	tb.waitText("Log in to coligo", 10*time.Second)
	tb.check("login")
	tb.fill("Log in to coligo", "Token", "coligo_not-a-token")
	tb.click("Log in")
	tb.waitText("That token is not valid", 5*time.Second)
	tb.fill("Log in to coligo", "Token", s.admin)
	tb.click("Log in")
	tb.waitText("Create a project", 10*time.Second)

	// Keyboard: from the top of the page, Tab reaches the form's button.
	eval[bool](tb, `document.activeElement.blur(), window.scrollTo(0, 0), true`)
	reached := false
	for range 40 {
		tb.run(chromedp.KeyEvent("\t"))
		if eval[string](tb, `document.activeElement ? document.activeElement.textContent : ''`) == "Create project" {
			reached = true
			break
		}
	}
	if !reached {
		t.Error("keyboard: Tab never reached the Create project button")
	}

	// The session is in an HttpOnly cookie: no script reads it, and the
	// token is in no storage.
	if got := eval[string](tb, `document.cookie + '|' + localStorage.length + '|' + sessionStorage.length`); got != "|0|0" {
		t.Errorf("the page's script can read session state: document.cookie, localStorage and sessionStorage give %q", got)
	}
	if eval[bool](tb, `document.documentElement.outerHTML.includes(`+js(s.admin)+`)`) {
		t.Error("the token is in the page")
	}

	tb.fill("Create a project", "Name", "console")
	tb.click("Create project")
	tb.waitFor("the new project's link", `[...document.querySelectorAll('main a')].some((a) => a.textContent === 'console')`, 15*time.Second)
	tb.waitText("active", 30*time.Second)
	tb.check("projects")
	p := projectNamed(t, c, "console")
	tb.click("console")
	tb.waitText("console: Applications", 10*time.Second)

	// A registry secret for the test image, through the console.
	tb.click("Secrets")
	tb.waitText("Create a secret", 10*time.Second)
	tb.fill("Create a secret", "Name", "regcred")
	tb.pick("Create a secret", "Format", "registry")
	tb.fill("Create a secret", "Key", "server")
	tb.fill("Create a secret", "Value", parts.Registry)
	for _, kv := range [][2]string{{"username", parts.User}, {"password", parts.Password}} {
		tb.click("Add a key")
		ids := eval[[]string](tb, `[...[...document.querySelectorAll('.kv-row')].pop().querySelectorAll('input')].map((i) => i.id)`)
		tb.run(typeInto(ids[0], kv[0]), typeInto(ids[1], kv[1]))
	}
	tb.click("Create secret")
	tb.waitText("Secret regcred", 10*time.Second)

	// An app from the test registry; it becomes ready, and its URL answers.
	tb.open(console + "#/projects/" + p.ID + "/apps")
	tb.waitText("Create an application", 10*time.Second)
	tb.fillForm("Create an application",
		"Name", "web",
		"Image", image,
		"Registry secret", "regcred",
		"Command", "/bin/testprog app",
		"CPU", "0.25",
		"Memory", "0.5G",
	)
	tb.click("Create application")
	tb.waitText("Application web", 10*time.Second)
	tb.waitFor("the app ready", `[...document.querySelectorAll('main dd .badge')].some((b) => b.textContent === 'ready')`, 90*time.Second)
	tb.waitText("web-00001", 10*time.Second)
	tb.check("app")
	url := eval[string](tb, `[...document.querySelectorAll('main dd a')].map((a) => a.href).find((h) => h.startsWith('http://web.')) || ''`)
	if url == "" {
		t.Fatalf("the app's page shows no URL:\n%s", tb.text())
	}
	// Settings: a bad value gets the API's message naming the field, and
	// changes nothing.
	tb.fill("Settings", "Memory", "lots")
	tb.click("Save changes")
	tb.waitText("scale_memory_limit", 10*time.Second)
	if a, _ := c.GetApp(context.Background(), p.ID, "web"); a == nil || a.ScaleMemoryLimit != "0.5G" {
		t.Errorf("a refused change changed the app: %+v", a)
	}
	// The log shows the app's line after a request.
	appTab := b.tab()
	appTab.open(url)
	appTab.waitFor("the app's answer", `document.body && document.body.innerText.length > 0`, 30*time.Second)
	if body := appTab.text(); !strings.Contains(body, "hello from web-00001") {
		t.Errorf("the app's URL answered %q", body)
	}
	// The load charts: sampled from the server's metrics, they show the
	// ready instance and the requests just made.
	for range 20 {
		appTab.open(url)
	}
	tb.waitFor("the instances chart", `[...document.querySelectorAll('svg.chart')].some((s) => s.getAttribute('aria-label').startsWith('Ready instances: now 1 '))`, 20*time.Second)
	tb.waitFor("the requests chart's line", `[...document.querySelectorAll('svg.chart')].some((s) => /^Requests per second: now [0-9.]+ requests\/s, peak [1-9]/.test(s.getAttribute('aria-label')) && s.querySelector('polyline'))`, 20*time.Second)
	if m, err := c.GetAppMetrics(context.Background(), p.ID, "web"); err != nil || m.IntervalSeconds != 0.5 || len(m.Points) == 0 {
		t.Errorf("app metrics: %+v %v", m, err)
	}

	// A job with an array of 4, a run submitted from the console; its grid
	// shows every index succeed, and an index's log is read.
	tb.open(console + "#/projects/" + p.ID + "/jobs")
	tb.waitText("Create a job", 10*time.Second)
	tb.fillForm("Create a job",
		"Name", "batch",
		"Image", image,
		"Registry secret", "regcred",
		"Array indices", "0-3",
		"Command", "testprog job",
		"CPU", "0.25",
		"Memory", "0.5G",
	)
	tb.click("Create job")
	tb.click("Submit a run of job batch")
	tb.waitText("Job run batch-jobrun-", 10*time.Second)
	tb.waitFor("four indices succeeded", `document.querySelectorAll('ul.indices li.succeeded').length === 4`, 120*time.Second)
	tb.waitText("4 succeeded", 10*time.Second)
	tb.check("jobrun")
	tb.pick("", "Index", "2")
	tb.click("Show logs of this index")
	tb.waitFor("index 2's log line", `[...document.querySelectorAll('pre.logs')].some((p) => p.textContent.includes('index 2 of 4'))`, 20*time.Second)

	// A function from code typed in the console, invoked from its page.
	tb.open(console + "#/projects/" + p.ID + "/functions")
	tb.waitText("Create a function", 10*time.Second)
	tb.fill("Create a function", "Name", "hello")
	tb.click("Create function")
	tb.waitText("Function hello", 10*time.Second)
	tb.waitFor("the function ready", `[...document.querySelectorAll('main dd .badge')].some((b) => b.textContent === 'ready')`, 60*time.Second)
	tb.fill("Invoke", "Request body", `{"name": "<b>console</b>"}`)
	tb.click("Invoke")
	tb.waitFor("the function's answer", `[...document.querySelectorAll('pre.logs')].some((p) => p.textContent === 'Hello <b>console</b>')`, 30*time.Second)
	if n := eval[int](tb, `document.querySelectorAll('main b').length`); n != 0 {
		t.Error("a function's answer became markup in the console")
	}
	tb.check("function")

	// A build of a Git repository, submitted and followed in the console;
	// its page links to the image it built.
	tb.open(console + "#/projects/" + p.ID + "/builds")
	tb.waitText("Create a build", 10*time.Second)
	tb.fillForm("Create a build",
		"Name", "site",
		"Git repository", repo,
		"Output image", parts.Registry+"/coligo-test/console-site:1",
		"Registry secret", "regcred",
	)
	tb.click("Create build")
	tb.click("Submit a run of build site")
	tb.waitText("Build run site-", 10*time.Second)
	tb.click("Follow")
	tb.waitFor("the build's log", `[...document.querySelectorAll('pre.logs')].some((p) => p.textContent.includes('console-build-step'))`, 120*time.Second)
	tb.waitFor("the build succeeded", `[...document.querySelectorAll('main dd .badge')].some((b) => b.textContent === 'succeeded')`, 120*time.Second)
	tb.check("buildrun")
	tb.click("Deploy it as an app")
	tb.waitFor("the built image in the app form", `[...document.querySelectorAll('input')].some((i) => i.value.includes('/coligo-test/console-site@sha256:'))`, 10*time.Second)

	// A secret whose values are markup: shown masked, then revealed as text.
	tb.open(console + "#/projects/" + p.ID + "/secrets")
	tb.waitText("Create a secret", 10*time.Second)
	tb.fillForm("Create a secret",
		"Name", "markup",
		"Key", "html",
		"Value", xssScript+xssImg,
	)
	tb.click("Create secret")
	tb.waitText("Secret markup", 10*time.Second)
	if strings.Contains(tb.text(), "window.__xss") {
		t.Error("a secret's value is shown before it is revealed")
	}
	tb.check("secret")
	tb.click("Reveal values")
	tb.waitText(xssScript+xssImg, 10*time.Second)
	if got := eval[string](tb, `String(window.__xss) + '|' + document.querySelectorAll('main img, main script').length`); got != "undefined|0" {
		t.Errorf("a secret's markup ran or became elements in the console: %s", got)
	}
	// An env value and a config map of markup are text too.
	if _, err := c.CreateConfigMap(context.Background(), p.ID, api.ConfigMapPrototype{Name: "markup", Data: map[string]string{"page": xssImg + xssScript}}); err != nil {
		t.Fatal(err)
	}
	tb.open(console + "#/projects/" + p.ID + "/config_maps/markup")
	tb.waitText(xssImg+xssScript, 10*time.Second)
	if got := eval[string](tb, `String(window.__xss) + '|' + document.querySelectorAll('main img, main script').length`); got != "undefined|0" {
		t.Errorf("a config map's markup ran in the console: %s", got)
	}
	tb.check("configmap")
	a, err := c.GetApp(context.Background(), p.ID, "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateApp(context.Background(), p.ID, "web", a.EntityTag, map[string]any{
		"run_env_variables": []api.EnvVar{{Type: "literal", Name: "PAGE", Value: xssScript + xssImg}}}); err != nil {
		t.Fatal(err)
	}
	tb.open(console + "#/projects/" + p.ID + "/apps/web")
	tb.waitFor("the env value in the settings", `[...document.querySelectorAll('textarea')].some((t) => t.value.includes(`+js(xssScript+xssImg)+`))`, 10*time.Second)
	if got := eval[string](tb, `String(window.__xss) + '|' + document.querySelectorAll('main img, main script').length`); got != "undefined|0" {
		t.Errorf("an app's env value ran in the console: %s", got)
	}

	// The reveal is in the audit log, which the console shows verified.
	tb.open(console + "#/audit")
	tb.waitText("hash chain is intact", 10*time.Second)
	tb.waitText("secret.read", 10*time.Second)
	tb.waitText("console.login", 10*time.Second)
	tb.check("audit")
	tb.open(console + "#/tokens")
	tb.waitText("Create a token", 10*time.Second)
	tb.check("tokens")

	testConsoleCrossOrigin(t, s, b)
	testConsoleReader(t, s, b, p.ID)
	testConsoleRevoked(t, s, b, p.ID)

	// Hard delete with the name typed: the button waits for it.
	tb.open(console + "#/projects")
	tb.click("Hard delete project console")
	id := tb.control("Hard delete console?", "Type console to confirm")
	if !eval[bool](tb, `[...document.querySelectorAll('dialog button')].find((b) => b.textContent === 'Hard delete').disabled`) {
		t.Error("the hard delete button is enabled before the name is typed")
	}
	tb.run(typeInto(id, "console"))
	tb.click("Hard delete")
	waitStatus(t, c, p.ID, "")
	tb.waitFor("the project gone from the list", `![...document.querySelectorAll('main a, main th')].some((a) => a.textContent === 'console')`, 15*time.Second)

	// Logging out ends the session on the server.
	tb.click("Log out")
	tb.waitText("Log in to coligo", 10*time.Second)
	if code := eval[int](tb, `fetch('/v2/projects').then((r) => r.status)`); code != http.StatusUnauthorized {
		t.Errorf("after logging out, the API answers the browser %d", code)
	}
}

func projectNamed(t *testing.T, c *api.Client, name string) *api.Project {
	t.Helper()
	l, err := c.ListProjects(context.Background(), api.ListOptions{}, false)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(l.Projects, func(p api.Project) bool { return p.Name == name })
	if i < 0 {
		t.Fatalf("no project %s", name)
	}
	return &l.Projects[i]
}

// testConsoleCrossOrigin: a page of another origin (same site: the same
// loopback address, another port, so the SameSite cookie goes along) posts
// a form and a fetch to the API; the server refuses both, and nothing is
// made. A request with the session but without its CSRF token is refused
// too.
func testConsoleCrossOrigin(t *testing.T, s *server, b *browser) {
	base := s.url()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>evil</title>
<form id=f method=POST action="%[1]s/v2/projects" enctype="text/plain"><input name='{"name":"evil-form","x":"' value='"}'></form>
<script>
fetch(%[2]q, {method: 'POST', credentials: 'include', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: '{"name":"evil-fetch"}'})
  .finally(() => document.getElementById('f').submit());
</script>`, base, base+"/v2/projects")
	}))
	defer evil.Close()
	tb := b.login(s.url(), s.admin)
	tb.open(evil.URL)
	tb.waitFor("the form's answer", `location.href.includes('/v2/projects')`, 10*time.Second)
	if body := tb.text(); !strings.Contains(body, "forbidden") {
		t.Errorf("the cross-origin form post got %q, want a refusal", body)
	}
	l, err := s.adminClient().ListProjects(context.Background(), api.ListOptions{Limit: 100}, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Projects {
		if strings.HasPrefix(p.Name, "evil") {
			t.Errorf("another origin made project %s with the console's session", p.Name)
		}
	}
	// The same session, by hand: the cookie alone does not change anything.
	tb.open(s.url() + "/console/")
	tb.waitText("Projects", 10*time.Second)
	code := eval[int](tb, `fetch('/v2/projects', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"name":"evil-nocsrf"}'}).then((r) => r.status)`)
	if code != http.StatusForbidden {
		t.Errorf("a session request without the CSRF token: %d, want 403", code)
	}
}

// testConsoleReader: a reader's console has no reveal, edit or delete
// controls, and the API refuses those calls from its session anyway.
func testConsoleReader(t *testing.T, s *server, b *browser, project string) {
	tok, err := s.adminClient().CreateToken(context.Background(), api.TokenPrototype{Name: "console-reader", ProjectID: project, Role: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	tb := b.login(s.url(), tok.Token)
	tb.open(s.url() + "/console/#/projects/" + project + "/secrets/markup")
	tb.waitText("Secret markup", 10*time.Second)
	tb.waitText("Your role may not read values", 5*time.Second)
	for _, name := range []string{"Reveal values", "Save", "Delete secret markup", "Add a key"} {
		if tb.has(name) {
			t.Errorf("a reader's console shows %q", name)
		}
	}
	if strings.Contains(tb.text(), "window.__xss") {
		t.Error("a reader sees a secret's value")
	}
	tb.check("secret-reader")
	tb.open(s.url() + "/console/#/projects/" + project + "/apps/web")
	tb.waitText("Application web", 10*time.Second)
	if tb.has("Save changes") || tb.has("Delete application web") {
		t.Error("a reader's console offers to change or delete an app")
	}
	// The API, asked directly from the reader's session with its CSRF token.
	got := eval[string](tb, `fetch('/console/session').then((r) => r.json()).then((s) => Promise.all([
		fetch('/v2/projects/`+project+`/secrets/markup', {method: 'DELETE', headers: {'X-CSRF-Token': s.csrf_token}}).then((r) => r.status),
		fetch('/v2/projects/`+project+`/secrets/markup').then((r) => r.json()).then((j) => j.data.html),
	])).then((a) => a.join('|'))`)
	if got != "403|REDACTED" {
		t.Errorf("a reader's session: delete and read of a secret gave %q, want 403|REDACTED", got)
	}
	// Another project's is not even found.
	other := activeProject(t, s.adminClient(), "console-other")
	if code := eval[int](tb, `fetch('/v2/projects/`+other.ID+`').then((r) => r.status)`); code != http.StatusNotFound {
		t.Errorf("a project reader's session reads another project: %d", code)
	}
}

// testConsoleRevoked: revoking the token ends its console sessions at
// their next request.
func testConsoleRevoked(t *testing.T, s *server, b *browser, project string) {
	c := s.adminClient()
	tok, err := c.CreateToken(context.Background(), api.TokenPrototype{Name: "console-writer", ProjectID: project, Role: "writer"})
	if err != nil {
		t.Fatal(err)
	}
	tb := b.login(s.url(), tok.Token)
	if err := c.RevokeToken(context.Background(), tok.ID); err != nil {
		t.Fatal(err)
	}
	tb.waitText("Log in to coligo", 15*time.Second)
}
