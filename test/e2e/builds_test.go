package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// TestBuildConfigurations: builds with Code Engine's defaults, status and
// reason, PATCH as a merge patch, and the input a build refuses — each a
// 400 naming the field; another project's writer and a reader change
// nothing.
func TestBuildConfigurations(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "builds")
	q := activeProject(t, c, "builds-b")
	spec := api.BuildSpec{OutputImage: "registry.example:5000/ns/app:1", OutputSecret: "push", StrategyType: "dockerfile",
		SourceURL: "https://git.example/org/app", RunBuildParams: []api.BuildParam{{Type: "secret_key_reference", Name: "TOKEN", Reference: "creds", Key: "token"}}}
	b, err := c.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "app", BuildSpec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if b.ResourceType != "build_v2" || b.Status != "ready" || b.StatusDetails.Reason != "registered" || b.StrategySize != "medium" ||
		b.StrategySpecFile != "Dockerfile" || b.SourceType != "git" || *b.Timeout != 600 || b.EntityTag == "" || len(b.RunBuildParams) != 1 {
		t.Errorf("created build lacks Code Engine's defaults: %+v", b)
	}
	b, err = c.UpdateBuild(ctx, p.ID, "app", b.EntityTag, map[string]any{"source_revision": "v2", "timeout": 900})
	if err != nil || b.SourceRevision != "v2" || *b.Timeout != 900 || b.SourceURL != spec.SourceURL {
		t.Fatalf("patched: %+v %v", b, err)
	}
	if l, err := c.ListBuilds(ctx, p.ID, api.ListOptions{}); err != nil || len(l.Builds) != 1 {
		t.Fatalf("list: %+v %v", l, err)
	}

	for field, in := range map[string]api.BuildSpec{
		"strategy_type":      {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "buildpacks", SourceURL: spec.SourceURL},
		"source_url":         {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceURL: "http://git.example/org/app"},
		"source_url ":        {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceURL: "https://127.0.0.1/org/app"},
		"source_url  ":       {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceType: "local", SourceURL: spec.SourceURL},
		"source_context_dir": {OutputImage: spec.OutputImage, OutputSecret: "push", StrategyType: "dockerfile", SourceURL: spec.SourceURL, SourceContextDir: "../../etc"},
		"output_image":       {OutputImage: "127.0.0.1:2/ns/app:1", OutputSecret: "push", StrategyType: "dockerfile", SourceURL: spec.SourceURL},
		"output_secret":      {OutputImage: spec.OutputImage, StrategyType: "dockerfile", SourceURL: spec.SourceURL},
	} {
		_, err := c.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "bad", BuildSpec: in})
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
			t.Errorf("%s: %v, want 400", field, err)
		}
	}
	if _, err := c.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "Bad_Name", BuildSpec: spec}); err == nil {
		t.Error("a build with a bad name was created")
	}

	tokens := map[string]string{}
	for name, tp := range map[string]api.TokenPrototype{"reader": {Name: "b-reader", ProjectID: p.ID, Role: "reader"}, "other": {Name: "b-other", ProjectID: q.ID, Role: "writer"}} {
		tok, err := c.CreateToken(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok.Token
	}
	reader, other := s.client(tokens["reader"]), s.client(tokens["other"])
	if _, err := reader.GetBuild(ctx, p.ID, "app"); err != nil {
		t.Errorf("a reader reads the build: %v", err)
	}
	_, readerCreate := reader.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "planted", BuildSpec: spec})
	readerDelete := reader.DeleteBuild(ctx, p.ID, "app")
	_, otherGet := other.GetBuild(ctx, p.ID, "app")
	_, otherPatch := other.UpdateBuild(ctx, p.ID, "app", "*", map[string]any{"output_image": "evil.example/x/y:1"})
	otherDelete := other.DeleteBuild(ctx, p.ID, "app")
	for what, err := range map[string]error{"reader create": readerCreate, "reader delete": readerDelete, "other get": otherGet, "other patch": otherPatch, "other delete": otherDelete} {
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 && apiErr.StatusCode != 404 {
			t.Errorf("%s: %v, want 403 or 404", what, err)
		}
	}
	if got, err := c.GetBuild(ctx, p.ID, "app"); err != nil || got.OutputImage != spec.OutputImage {
		t.Errorf("the build after the refused calls: %+v %v", got, err)
	}
	if err := c.DeleteBuild(ctx, p.ID, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBuild(ctx, p.ID, "app"); err == nil {
		t.Error("a deleted build is still there")
	}
}

// TestBuildRuns: a build of a Git repository (served over plain HTTP on
// loopback, an --insecure-git-host) runs with the test buildkitd, pushes
// to the private test registry with the project's registry secret, and an
// app runs the image it made; a run whose secret the registry refuses
// fails with missing_registry_access; a build's runs go with it.
func TestBuildRuns(t *testing.T) {
	parts := itest.Need(t)
	base := parts.BusyboxImage(t)
	repo := itest.GitRepo(t, map[string]string{"web/Dockerfile": "FROM " + base + "\nARG STAMP=none\nENV VERSION=built-$STAMP\nENTRYPOINT [\"/bin/testprog\", \"app\"]\n",
		"slow/Dockerfile": "FROM " + base + "\nRUN sleep 300\n"})
	s := buildServer(t, repo)
	c := s.adminClient()
	ctx := context.Background()
	p, _, _ := jobProject(t, s, "buildruns")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "wrongcreds", Format: "registry",
		Data: map[string]string{"server": parts.Registry, "username": parts.User, "password": "wrong"}}); err != nil {
		t.Fatal(err)
	}
	repoName := parts.Registry + "/coligo-test/built-app"
	if _, err := c.CreateBuild(ctx, p.ID, api.BuildPrototype{Name: "web", BuildSpec: api.BuildSpec{OutputImage: repoName + ":1", OutputSecret: "regcred",
		StrategyType: "dockerfile", SourceURL: repo, SourceRevision: "main", SourceContextDir: "web",
		RunBuildParams: []api.BuildParam{{Type: "literal", Name: "STAMP", Value: "e2e"}}}}); err != nil {
		t.Fatal(err)
	}
	run, err := c.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{BuildName: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(run.Name, "web-run-") || run.Status != "pending" || run.ResourceType != "build_run_v2" || run.SourceURL != repo {
		t.Errorf("submitted run: %+v", run)
	}
	run = waitBuildRun(t, c, p.ID, run.Name, func(r *api.BuildRun) bool { return r.Status == "succeeded" || r.Status == "failed" })
	if d := run.StatusDetails; run.Status != "succeeded" || !strings.HasPrefix(d.OutputDigest, "sha256:") || d.StartTime == "" || d.CompletionTime == "" ||
		len(d.GitCommitSHA) != 40 || d.GitCommitAuthor != "Ada" || d.GitBranchName != "main" || d.SourceTimestamp == "" {
		var logs strings.Builder
		c.BuildRunLogs(ctx, p.ID, run.Name, false, &logs)
		t.Fatalf("run: %+v\n%s", run, logs.String())
	}
	var logs strings.Builder
	if err := c.BuildRunLogs(ctx, p.ID, run.Name, false, &logs); err != nil || !strings.Contains(logs.String(), "STEP") {
		t.Errorf("logs: %v\n%s", err, logs.String())
	}
	app := deployApp(t, c, p.ID, api.AppPrototype{Name: "built", AppSpec: api.AppSpec{ImageReference: repoName + "@" + run.StatusDetails.OutputDigest,
		ImageSecret: "regcred", ScaleCPULimit: "0.25", ScaleMemoryLimit: "0.5G"}})
	if body := mustCall(t, s, app, "/"); !strings.Contains(body, "built-e2e") {
		t.Errorf("the built app answers %q", body)
	}

	refused, err := c.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{Name: "refused", BuildSpec: api.BuildSpec{OutputImage: repoName + ":1", OutputSecret: "wrongcreds",
		StrategyType: "dockerfile", SourceURL: repo, SourceContextDir: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	refused = waitBuildRun(t, c, p.ID, refused.Name, func(r *api.BuildRun) bool { return r.Status == "failed" || r.Status == "succeeded" })
	if refused.Status != "failed" || refused.StatusDetails.Reason != "missing_registry_access" || strings.Contains(refused.StatusDetails.Message, "wrong") {
		t.Errorf("a run pushing with refused credentials: %+v", refused)
	}
	if _, err := c.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{BuildName: "absent"}); err == nil {
		t.Error("a run of a build that does not exist was submitted")
	}

	// Another project's writer and this project's reader: the runs are
	// neither read by the one nor changed by either.
	q := activeProject(t, c, "buildruns-other")
	tokens := map[string]string{}
	for who, tp := range map[string]api.TokenPrototype{"reader": {Name: "br-reader", ProjectID: p.ID, Role: "reader"}, "other": {Name: "br-other", ProjectID: q.ID, Role: "writer"}} {
		tok, err := c.CreateToken(ctx, tp)
		if err != nil {
			t.Fatal(err)
		}
		tokens[who] = tok.Token
	}
	reader, other := s.client(tokens["reader"]), s.client(tokens["other"])
	if _, err := reader.GetBuildRun(ctx, p.ID, run.Name); err != nil {
		t.Errorf("a reader reads the run: %v", err)
	}
	_, readerSubmit := reader.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{BuildName: "web"})
	_, otherGet := other.GetBuildRun(ctx, p.ID, run.Name)
	_, otherList := other.ListBuildRuns(ctx, p.ID, "", api.ListOptions{})
	_, otherSubmit := other.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{BuildName: "web"})
	_, otherCrossBuild := other.CreateBuildRun(ctx, q.ID, api.BuildRunPrototype{BuildName: "web"}) // p's build, named in q
	for what, err := range map[string]error{"reader submit": readerSubmit, "reader delete": reader.DeleteBuildRun(ctx, p.ID, run.Name),
		"other get": otherGet, "other list": otherList, "other submit": otherSubmit, "other delete": other.DeleteBuildRun(ctx, p.ID, run.Name),
		"other logs": other.BuildRunLogs(ctx, p.ID, run.Name, false, io.Discard), "other's run of this project's build": otherCrossBuild} {
		var apiErr *api.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 && apiErr.StatusCode != 403 && apiErr.StatusCode != 404 {
			t.Errorf("%s: %v, want 400, 403 or 404", what, err)
		}
	}
	if l, err := c.ListBuildRuns(ctx, p.ID, "", api.ListOptions{}); err != nil || len(l.BuildRuns) != 2 {
		t.Errorf("the runs after the refused calls: %+v %v", l, err)
	}

	// The CLI: a run of the build, waited for, prints the image pinned by
	// digest; list and logs.
	cfg, cli := s.adminCLI(t, p.Name)
	if out := cli("build", "list"); !strings.Contains(out, "web") {
		t.Errorf("build list:\n%s", out)
	}
	if out := lastLine(cli("buildrun", "submit", "--build", "web", "--name", "from-cli", "--wait", "--wait-timeout", "3m")); !strings.HasPrefix(out, repoName+"@sha256:") {
		t.Errorf("buildrun submit --wait printed %q", out)
	}
	if out := cli("buildrun", "list", "--build", "web"); !strings.Contains(out, "from-cli") || !strings.Contains(out, "succeeded") {
		t.Errorf("buildrun list:\n%s", out)
	}
	if out := cli("buildrun", "logs", "--name", "from-cli"); !strings.Contains(out, "STEP") {
		t.Errorf("buildrun logs:\n%s", out)
	}

	// A local source: the CLI packs the directory (less what .ceignore
	// names) and pushes it beside the output with the user's registry
	// login; the run builds it.
	dockerCfg := t.TempDir()
	os.WriteFile(filepath.Join(dockerCfg, "config.json"), []byte(`{"auths":{"`+parts.Registry+`":{"auth":"`+
		base64.StdEncoding.EncodeToString([]byte(parts.User+":"+parts.Password))+`"}}}`), 0o600)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "Dockerfile"), []byte("FROM "+base+"\nCOPY . /src\nENV VERSION=local\nENTRYPOINT [\"/bin/testprog\", \"app\"]\n"), 0o644)
	os.WriteFile(filepath.Join(src, "notes.txt"), []byte("kept"), 0o644)
	os.WriteFile(filepath.Join(src, "private.key"), []byte("left out"), 0o644)
	os.WriteFile(filepath.Join(src, ".ceignore"), []byte("*.key\n"), 0o644)
	r := s.cli(t, cfg, "", []string{"DOCKER_CONFIG=" + dockerCfg}, "buildrun", "submit", "--name", "local-run", "--source", src,
		"--image", repoName+":local", "--registry-secret", "regcred", "--wait", "--wait-timeout", "3m")
	if r.code != 0 || !strings.HasPrefix(lastLine(r.stdout), repoName+"@sha256:") {
		t.Fatalf("buildrun submit --source DIR: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	local, err := c.GetBuildRun(ctx, p.ID, "local-run")
	if err != nil || local.SourceType != "local" || !strings.HasPrefix(local.SourceImage, repoName+"-source@sha256:") {
		t.Fatalf("the local run: %+v %v", local, err)
	}
	built := parts.ImageFiles(t, repoName+"@"+local.StatusDetails.OutputDigest).Files
	if string(built["src/notes.txt"]) != "kept" || built["src/private.key"] != nil {
		t.Errorf("the image of the local source: notes %q, private.key %q", built["src/notes.txt"], built["src/private.key"])
	}
	// The source lives as long as its run: it is deleted as the run ends.
	srcRef, _ := name.ParseReference(local.SourceImage)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := remote.Head(srcRef, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: parts.User, Password: parts.Password})))
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the local source %s stays after its run: %v", local.SourceImage, err)
		}
	}

	// buildrun cancel: a run that builds stops, failed with reason
	// canceled; an ended run is not canceled again.
	cli("buildrun", "submit", "--name", "slow", "--source", repo, "--context-dir", "slow", "--image", repoName+":slow", "--registry-secret", "regcred")
	waitBuildRun(t, c, p.ID, "slow", func(r *api.BuildRun) bool { return r.Status == "running" })
	time.Sleep(time.Second) // into its RUN step
	cli("buildrun", "cancel", "--name", "slow")
	if slow := waitBuildRun(t, c, p.ID, "slow", func(r *api.BuildRun) bool { return r.Status != "running" }); slow.Status != "failed" || slow.StatusDetails.Reason != "canceled" {
		t.Errorf("a canceled run: %+v", slow)
	}
	if r := s.cli(t, cfg, "", nil, "buildrun", "cancel", "--name", "slow"); r.code == 0 {
		t.Errorf("an ended run was canceled again:\n%s", r.stdout)
	}

	// The shortcuts: an app built from the Git repository, a job from the
	// local directory; each runs the image its stand-alone run built,
	// pinned, and names the run.
	r = s.cli(t, cfg, "", nil, "app", "create", "--name", "from-source", "--build-source", repo, "--build-context-dir", "web", "--build-commit", "main",
		"--image", repoName, "--registry-secret", "regcred", "--cpu", "0.25", "--memory", "0.5G")
	if r.code != 0 || !strings.Contains(r.stderr, "Submitted build run from-source-run-") {
		t.Fatalf("app create --build-source URL: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	fromSource, err := c.GetApp(ctx, p.ID, "from-source")
	if err != nil || !strings.HasPrefix(fromSource.ImageReference, repoName+"@sha256:") || !strings.HasPrefix(fromSource.BuildRun, "from-source-run-") {
		t.Fatalf("the app built from source: %+v %v", fromSource, err)
	}
	if br, err := c.GetBuildRun(ctx, p.ID, fromSource.BuildRun); err != nil || br.Status != "succeeded" || br.BuildName != "" {
		t.Errorf("the app's build run: %+v %v", br, err)
	}
	if body := mustCall(t, s, fromSource, "/"); !strings.Contains(body, "built-none") {
		t.Errorf("the app built from source answers %q", body)
	}
	r = s.cli(t, cfg, "", []string{"DOCKER_CONFIG=" + dockerCfg}, "job", "create", "--name", "from-dir", "--build-source", src,
		"--image", repoName, "--registry-secret", "regcred")
	if r.code != 0 {
		t.Fatalf("job create --build-source DIR: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if j, err := c.GetJob(ctx, p.ID, "from-dir"); err != nil || !strings.HasPrefix(j.ImageReference, repoName+"@sha256:") || !strings.HasPrefix(j.BuildRun, "from-dir-run-") {
		t.Errorf("the job built from a directory: %+v %v", j, err)
	}
	if r = s.cli(t, cfg, "", nil, "app", "create", "--name", "no-image", "--build-source", repo); r.code == 0 || !strings.Contains(r.stderr, "--image") {
		t.Errorf("--build-source without --image: exit %d\n%s", r.code, r.stderr)
	}

	if err := c.DeleteBuild(ctx, p.ID, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBuildRun(ctx, p.ID, run.Name); err == nil {
		t.Error("a deleted build's run is still there")
	}
	if l, err := c.ListBuildRuns(ctx, p.ID, "", api.ListOptions{}); err != nil || len(l.BuildRuns) != 5 {
		t.Errorf("runs after the build's deletion (the stand-alone ones stay): %+v %v", l, err)
	}
}

// buildServer starts a server that builds with the test buildkitd, fences
// its bridge, and fetches from the Git repositories repos on loopback.
func buildServer(t *testing.T, repos ...string) *server {
	t.Helper()
	return appServer(t, buildArgs(t, repos...)...)
}

// buildArgs are the server arguments of buildServer.
func buildArgs(t *testing.T, repos ...string) []string {
	t.Helper()
	addr, bridge := itest.NeedBuildKit(t)
	args := []string{"--buildkit-address", addr, "--buildkit-bridge", bridge, "--buildkit-cgroup", "coligo-e2e-builds"}
	for _, repo := range repos {
		u, err := url.Parse(repo)
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, "--insecure-git-host", u.Host)
	}
	return args
}

// TestPrivateRepositories: a build run fetches a private repository over
// SSH with an ssh_auth secret (its known_hosts given) and over HTTP with a
// basic_auth secret; without the secret, or with one of the other format,
// it fails with missing_code_repo_access or missing_secrets, and no run's
// message or log shows a credential.
func TestPrivateRepositories(t *testing.T) {
	parts := itest.Need(t)
	base := parts.BusyboxImage(t)
	g := itest.PrivateGitRepo(t, map[string]string{"Dockerfile": "FROM " + base + "\nENV VERSION=private\nENTRYPOINT [\"/bin/testprog\", \"app\"]\n"})
	s := buildServer(t, g.HTTPURL, g.SSHURL)
	c := s.adminClient()
	ctx := context.Background()
	p, _, _ := jobProject(t, s, "privaterepo")
	for _, sec := range []api.SecretPrototype{
		{Name: "repo-ssh", Format: "ssh_auth", Data: map[string]string{"ssh_key": g.SSHKey, "known_hosts": g.KnownHosts}},
		{Name: "repo-basic", Format: "basic_auth", Data: map[string]string{"username": g.User, "password": g.Password}},
	} {
		if _, err := c.CreateSecret(ctx, p.ID, sec); err != nil {
			t.Fatal(err)
		}
	}
	out := parts.Registry + "/coligo-test/private"
	for _, tt := range []struct{ name, url, secret, want string }{
		{"over-ssh", g.SSHURL, "repo-ssh", "succeeded"},
		{"over-http", g.HTTPURL, "repo-basic", "succeeded"},
		{"no-secret", g.SSHURL, "", "missing_code_repo_access"},
		{"wrong-format", g.HTTPURL, "repo-ssh", "missing_secrets"},
	} {
		run, err := c.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{Name: tt.name, BuildSpec: api.BuildSpec{OutputImage: out + ":" + tt.name, OutputSecret: "regcred",
			StrategyType: "dockerfile", SourceURL: tt.url, SourceSecret: tt.secret, SourceRevision: "main"}})
		if err != nil {
			t.Fatal(err)
		}
		run = waitBuildRun(t, c, p.ID, run.Name, func(r *api.BuildRun) bool { return r.Status == "succeeded" || r.Status == "failed" })
		var logs strings.Builder
		c.BuildRunLogs(ctx, p.ID, run.Name, false, &logs)
		if run.StatusDetails.Reason != tt.want {
			t.Errorf("%s: %s (%s), want %s\n%s", tt.name, run.StatusDetails.Reason, run.StatusDetails.Message, tt.want, logs.String())
		}
		for _, cred := range []string{g.Password, strings.TrimSpace(strings.Split(g.SSHKey, "\n")[1])} {
			if strings.Contains(run.StatusDetails.Message, cred) || strings.Contains(logs.String(), cred) {
				t.Errorf("%s: a credential shows in the run's message or log", tt.name)
			}
		}
	}
}

// TestBuildNetworkFence: a build step reaches the world (an address of a
// namespace of the test's own, as the world), but not a "LAN" or
// "metadata" address there, nor this host, on the bridge's gateway or any
// other of its addresses; it runs in the build's own cgroup.
func TestBuildNetworkFence(t *testing.T) {
	parts := itest.Need(t)
	base := parts.BusyboxImage(t)
	nb := itest.NewNeighbour(t, "build", 3)
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "the host\n") }))
	t.Cleanup(func() { l.Close() })
	hostPort := l.Addr().(*net.TCPAddr).Port
	probes := map[string]string{
		"world":    fmt.Sprintf("http://%s:%d/", nb.Public, nb.Port),
		"lan":      fmt.Sprintf("http://%s:%d/", nb.LAN, nb.Port),
		"metadata": fmt.Sprintf("http://%s:%d/", nb.Metadata, nb.Port),
		"gateway":  fmt.Sprintf("http://10.218.0.1:%d/", hostPort), // buildkit_start's bridge
		"host":     fmt.Sprintf("http://%s:%d/", nb.HostSide, hostPort),
	}
	for _, ip := range []string{nb.Public.String(), nb.LAN.String(), nb.Metadata.String()} {
		itest.OnThisHost(t, ip)
	}
	df := "FROM " + base + "\nRUN cat /proc/self/cgroup > /cgroup\n"
	for name, url := range probes {
		df += fmt.Sprintf("RUN (/bin/testprog fetch %s && echo reached || echo refused) > /probe-%s 2>&1\n", url, name)
	}
	repo := itest.GitRepo(t, map[string]string{"Dockerfile": df})
	s := buildServer(t, repo)
	c := s.adminClient()
	ctx := context.Background()
	p, _, _ := jobProject(t, s, "buildfence")
	out := parts.Registry + "/coligo-test/buildfence:1"
	run, err := c.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{Name: "probes", BuildSpec: api.BuildSpec{OutputImage: out, OutputSecret: "regcred",
		StrategyType: "dockerfile", SourceURL: repo}})
	if err != nil {
		t.Fatal(err)
	}
	run = waitBuildRun(t, c, p.ID, run.Name, func(r *api.BuildRun) bool { return r.Status == "succeeded" || r.Status == "failed" })
	if run.Status != "succeeded" {
		var logs strings.Builder
		c.BuildRunLogs(ctx, p.ID, run.Name, false, &logs)
		t.Fatalf("run: %+v\n%s", run, logs.String())
	}
	built := parts.ImageFiles(t, parts.Registry+"/coligo-test/buildfence@"+run.StatusDetails.OutputDigest).Files
	for name := range probes {
		got := string(built["probe-"+name])
		if want := map[bool]string{true: "reached", false: "refused"}[name == "world"]; !strings.HasSuffix(strings.TrimSpace(got), want) {
			t.Errorf("a build step's probe of the %s (%s): %q, want %s", name, probes[name], got, want)
		}
	}
	if !strings.Contains(string(built["probe-world"]), "neighbour-build") {
		t.Errorf("the world's answer: %q", built["probe-world"])
	}
	if !strings.Contains(string(built["cgroup"]), "/coligo-e2e-builds/build-") {
		t.Errorf("the steps ran outside the build's cgroup:\n%s", built["cgroup"])
	}
}

// waitBuildRun polls a build run until done reports true.
func waitBuildRun(t *testing.T, c *api.Client, project, name string, done func(*api.BuildRun) bool) *api.BuildRun {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		r, err := c.GetBuildRun(context.Background(), project, name)
		if err == nil && done(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("build run %s: %+v %v", name, r, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestNoBuildSecretAtRest: a build's secret parameter reaches its RUN step
// and is in no file at rest afterwards — not in coligo's data, not in
// buildkitd's root (which keeps nothing of an ended build), not in the
// pushed image; the scan first finds a value planted in buildkitd's root.
func TestNoBuildSecretAtRest(t *testing.T) {
	parts := itest.Need(t)
	base := parts.BusyboxImage(t)
	secret, planted := randomValue(t), randomValue(t)
	repo := itest.GitRepo(t, map[string]string{"Dockerfile": "FROM " + base + "\n" +
		"RUN --mount=type=secret,id=TOKEN sh -c 'sha256sum /run/secrets/TOKEN | cut -c1-64 > /token.sum'\n"})
	s := buildServer(t, repo)
	c := s.adminClient()
	ctx := context.Background()
	p, _, _ := jobProject(t, s, "buildsecret")
	if _, err := c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "token", Format: "generic", Data: map[string]string{"value": secret}}); err != nil {
		t.Fatal(err)
	}
	out := parts.Registry + "/coligo-test/buildsecret:1"
	run, err := c.CreateBuildRun(ctx, p.ID, api.BuildRunPrototype{Name: "secret-run", BuildSpec: api.BuildSpec{OutputImage: out, OutputSecret: "regcred",
		StrategyType: "dockerfile", SourceURL: repo, RunBuildParams: []api.BuildParam{{Type: "secret_key_reference", Name: "TOKEN", Reference: "token", Key: "value"}}}})
	if err != nil {
		t.Fatal(err)
	}
	run = waitBuildRun(t, c, p.ID, run.Name, func(r *api.BuildRun) bool { return r.Status == "succeeded" || r.Status == "failed" })
	var logs strings.Builder
	c.BuildRunLogs(ctx, p.ID, run.Name, false, &logs)
	if run.Status != "succeeded" {
		t.Fatalf("run: %+v\n%s", run, logs.String())
	}
	built := parts.ImageFiles(t, parts.Registry+"/coligo-test/buildsecret@"+run.StatusDetails.OutputDigest).Files
	if strings.TrimSpace(string(built["token.sum"])) != sum(secret) {
		t.Fatalf("the RUN step did not see the secret: %q", built["token.sum"])
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the build's log holds the secret")
	}

	partsDir := filepath.Dir(filepath.Dir(os.Getenv("COLIGO_TEST_CONTAINERD")))
	bkRoot := filepath.Join(partsDir, "buildkit", "root")
	dirs := []string{filepath.Dir(s.dataDir), bkRoot, filepath.Join(partsDir, "registry", "data")}
	plantFile := filepath.Join(bkRoot, "coligo-test-planted")
	var plantBody []byte
	for _, e := range atRestEncodings(planted) {
		plantBody = append(append(plantBody, e...), '\n')
	}
	if err := os.WriteFile(plantFile, plantBody, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, e := range atRestEncodings(planted) {
		if hits := scanDir(t, bkRoot, e); len(hits) != 1 {
			t.Fatalf("the scan finds the planted %q %d times, want once", e, len(hits))
		}
	}
	os.Remove(plantFile)
	for _, dir := range dirs {
		if hits := scanDir(t, dir, atRestEncodings(secret)...); len(hits) > 0 {
			t.Errorf("the build secret is at rest in %v", hits)
		}
	}
}
