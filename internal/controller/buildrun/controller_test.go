package buildrun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/builder"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/quota"
	"github.com/coligo/coligo/internal/store"
	"github.com/coligo/coligo/internal/store/storetest"
)

// fakeBuilder records requests and answers as its test says.
type fakeBuilder struct {
	mu     sync.Mutex
	reqs   []builder.Request
	answer func(ctx context.Context, req builder.Request) (builder.Result, error)
}

func (f *fakeBuilder) Build(ctx context.Context, req builder.Request) (builder.Result, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	fmt.Fprintf(req.Progress, "STEP building %s\n", req.Output)
	return f.answer(ctx, req)
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

type harness struct {
	t    *testing.T
	db   *store.DB
	b    *fakeBuilder
	c    *Controller
	stop func() // as the server stops

	mu      sync.Mutex
	deleted []string // the source images deleted, with the output's password
}

func newHarness(t *testing.T, db *store.DB, answer func(context.Context, builder.Request) (builder.Result, error)) *harness {
	t.Helper()
	return newHarnessOn(t, db, nil, answer)
}

// newHarnessWith is newHarness on a new store with change made to the
// controller's config.
func newHarnessWith(t *testing.T, change func(*Config), answer func(context.Context, builder.Request) (builder.Result, error)) *harness {
	t.Helper()
	return newHarnessOn(t, nil, change, answer)
}

func newHarnessOn(t *testing.T, db *store.DB, change func(*Config), answer func(context.Context, builder.Request) (builder.Result, error)) *harness {
	t.Helper()
	if db == nil {
		db = storetest.Open(t)
		if _, err := db.CreateProject(context.Background(), core.Project{ID: "p", Name: "p", Subdomain: "sub", Status: core.ProjectActive}, func() string { return "sub" }); err != nil {
			t.Fatal(err)
		}
		for ref, v := range map[core.Ref]any{
			{Project: "p", Kind: core.KindSecret, Name: "push"}: core.Secret{Name: "push", Format: core.FormatRegistry,
				Data: map[string]string{"server": "registry.example", "username": "u", "password": "push-pw"}},
			{Project: "p", Kind: core.KindSecret, Name: "creds"}: core.Secret{Name: "creds", Format: core.FormatGeneric, Data: map[string]string{"token": "t0k3n"}},
			{Project: "p", Kind: core.KindSecret, Name: "git-ssh"}: core.Secret{Name: "git-ssh", Format: core.FormatSSHAuth,
				Data: map[string]string{"ssh_key": "KEY", "known_hosts": "HOSTS"}},
			{Project: "p", Kind: core.KindSecret, Name: "git-basic"}: core.Secret{Name: "git-basic", Format: core.FormatBasicAuth,
				Data: map[string]string{"username": "ada", "password": "git-pw"}},
			{Project: "p", Kind: core.KindConfigMap, Name: "settings"}: core.ConfigMap{Name: "settings", Data: map[string]string{"mode": "fast"}},
		} {
			if _, err := db.Create(context.Background(), ref, mustJSON(v), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := &harness{t: t, db: db, b: &fakeBuilder{answer: answer}}
	// Runs start on the store's events: the resync (for retention) is
	// left out but where a test asks for it.
	cfg := Config{Store: db, Builder: h.b, Logger: slog.New(slog.DiscardHandler), Tick: 20 * time.Millisecond, Resync: time.Hour,
		FetchSource: func(_ context.Context, ref string, auth *engine.RegistryAuth) (map[string][]byte, error) {
			if ref != "registry.example/ns/app-source@sha256:1" || auth == nil || auth.Password != "push-pw" {
				return nil, errors.New("unexpected status from GET request: 401 Unauthorized")
			}
			return map[string][]byte{"Dockerfile": []byte("FROM scratch")}, nil
		},
		CheckSource: func(_ context.Context, url string) error {
			if strings.Contains(url, "inward") {
				return errors.New("inward.example:443 resolves to 127.0.0.1: not allowed")
			}
			return nil
		},
		DeleteSource: func(_ context.Context, ref string, auth *engine.RegistryAuth) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.deleted = append(h.deleted, ref+" "+auth.Password)
			return nil
		}}
	if change != nil {
		change(&cfg)
	}
	h.c = New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.c.Run(ctx); close(done) }()
	h.stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(h.stop)
	return h
}

func (h *harness) submit(name string, change func(*core.BuildSpec)) {
	h.t.Helper()
	s := core.NewBuildSpec()
	s.OutputImage, s.OutputSecret, s.StrategyType, s.SourceURL = "registry.example/ns/app:1", "push", core.StrategyDockerfile, "https://git.example/org/app"
	if change != nil {
		change(&s)
	}
	run := core.BuildRun{Name: name, Spec: s, Status: core.BuildRunPending, Reason: core.BuildRunPending, ServiceAccount: "default"}
	if _, err := h.db.Create(context.Background(), core.Ref{Project: "p", Kind: core.KindBuildRun, Name: name}, mustJSON(run), 0); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) wait(name string, done func(core.BuildRun) bool) core.BuildRun {
	h.t.Helper()
	var run core.BuildRun
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		rec, err := h.db.Get(context.Background(), core.Ref{Project: "p", Kind: core.KindBuildRun, Name: name})
		if err == nil && json.Unmarshal(rec.Value, &run) == nil && done(run) {
			return run
		}
	}
	h.t.Fatalf("run %s: %+v", name, run)
	return run
}

func ended(r core.BuildRun) bool {
	return r.Status == core.BuildRunSucceeded || r.Status == core.BuildRunFailed
}

func TestBuildRunSucceeds(t *testing.T) {
	h := newHarness(t, nil, func(context.Context, builder.Request) (builder.Result, error) {
		return builder.Result{Digest: "sha256:abc"}, nil
	})
	h.submit("ok", func(s *core.BuildSpec) {
		s.SourceRevision, s.SourceContextDir, s.StrategySpecFile = "main", "web", "Dockerfile.prod"
		s.RunBuildParams = []core.BuildParam{{Type: core.EnvLiteral, Name: "VERSION", Value: "1"},
			{Type: core.EnvSecretKey, Name: "TOKEN", Reference: "creds", Key: "token"}, {Type: core.EnvConfigMapKey, Name: "MODE", Reference: "settings", Key: "mode"}}
	})
	run := h.wait("ok", ended)
	if run.Status != core.BuildRunSucceeded || run.Reason != core.BuildRunSucceeded || run.OutputDigest != "sha256:abc" || run.StartTime == nil || run.CompletionTime == nil {
		t.Fatalf("%+v", run)
	}
	h.b.mu.Lock()
	req := h.b.reqs[0]
	h.b.mu.Unlock()
	if req.GitURL != "https://git.example/org/app" || req.GitRevision != "main" || req.ContextDir != "web" || req.Dockerfile != "Dockerfile.prod" ||
		req.Auth == nil || req.Auth.Password != "push-pw" || req.BuildArgs["VERSION"] != "1" || req.BuildArgs["MODE"] != "fast" ||
		string(req.Secrets["TOKEN"]) != "t0k3n" || req.BuildArgs["TOKEN"] != "" || req.MilliCPU != 1000 || req.MemoryBytes != 4e9 {
		t.Errorf("request %+v", req)
	}
	if log, done := h.c.BuildLogs("p", "ok"); !done || !bytes.Contains(log, []byte("STEP building")) {
		t.Errorf("logs %q (ended %v)", log, done)
	}
}

// TestPrivateSources: a run's source secret reaches the builder as the
// credentials its URL takes.
func TestPrivateSources(t *testing.T) {
	h := newHarness(t, nil, func(context.Context, builder.Request) (builder.Result, error) {
		return builder.Result{Digest: "sha256:abc"}, nil
	})
	h.submit("ssh", func(s *core.BuildSpec) { s.SourceURL, s.SourceSecret = "git@git.example:org/app.git", "git-ssh" })
	h.submit("basic", func(s *core.BuildSpec) { s.SourceSecret = "git-basic" })
	h.wait("ssh", ended)
	h.wait("basic", ended)
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	for _, req := range h.b.reqs {
		a := req.GitAuth
		switch {
		case a == nil:
			t.Errorf("%s: no credentials", req.GitURL)
		case req.GitURL == "git@git.example:org/app.git" && (string(a.SSHKey) != "KEY" || a.KnownHosts != "HOSTS" || a.Password != ""):
			t.Errorf("ssh: %+v", a)
		case req.GitURL == "https://git.example/org/app" && (a.Username != "ada" || a.Password != "git-pw" || a.SSHKey != nil):
			t.Errorf("basic: %+v", a)
		}
	}
}

func TestBuildRunFailures(t *testing.T) {
	h := newHarness(t, nil, func(ctx context.Context, req builder.Request) (builder.Result, error) {
		switch req.Output {
		case "registry.example/ns/slow:1":
			<-ctx.Done()
			return builder.Result{}, ctx.Err()
		case "registry.example/ns/denied:1":
			return builder.Result{}, errors.New("failed to push: unexpected status from PUT request: 401 Unauthorized")
		case "registry.example/ns/repo-refused:1":
			return builder.Result{}, errors.New("failed to solve: failed to read dockerfile: failed to load cache key: failed to fetch remote ssh://git@git.example/org/app.git: git stderr:\ngit@git.example: Permission denied (publickey).")
		case "registry.example/ns/bad-key:1":
			return builder.Result{}, builder.ErrSSHKey
		}
		return builder.Result{}, errors.New("process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3")
	})
	for name, tt := range map[string]struct {
		change func(*core.BuildSpec)
		reason string
	}{
		"no-secret": {func(s *core.BuildSpec) { s.OutputSecret = "absent" }, core.ReasonMissingSecrets},
		"no-key": {func(s *core.BuildSpec) {
			s.RunBuildParams = []core.BuildParam{{Type: core.EnvSecretKey, Name: "T", Reference: "creds", Key: "nope"}}
		}, core.ReasonMissingSecrets},
		"slow":                 {func(s *core.BuildSpec) { s.OutputImage, s.Timeout = "registry.example/ns/slow:1", 1 }, core.ReasonBuildTimeout},
		"denied":               {func(s *core.BuildSpec) { s.OutputImage = "registry.example/ns/denied:1" }, core.ReasonMissingRegistryAccess},
		"step-failed":          {nil, core.ReasonBuildRunFailed},
		"no-source-secret":     {func(s *core.BuildSpec) { s.SourceSecret = "absent" }, core.ReasonMissingSecrets},
		"inward-source":        {func(s *core.BuildSpec) { s.SourceURL = "https://inward.example/org/app" }, core.ReasonMissingCodeRepoAccess},
		"ssh-url-basic-secret": {func(s *core.BuildSpec) { s.SourceURL, s.SourceSecret = "git@git.example:org/app.git", "git-basic" }, core.ReasonMissingSecrets},
		"https-url-ssh-secret": {func(s *core.BuildSpec) { s.SourceSecret = "git-ssh" }, core.ReasonMissingSecrets},
		"repo-refused": {func(s *core.BuildSpec) {
			s.OutputImage, s.SourceURL, s.SourceSecret = "registry.example/ns/repo-refused:1", "ssh://git@git.example/org/app.git", "git-ssh"
		}, core.ReasonMissingCodeRepoAccess},
		"bad-key": {func(s *core.BuildSpec) {
			s.OutputImage, s.SourceURL, s.SourceSecret = "registry.example/ns/bad-key:1", "ssh://git@git.example/org/app.git", "git-ssh"
		}, core.ReasonMissingSecrets},
	} {
		h.submit(name, tt.change)
		defer func() {
			run := h.wait(name, ended)
			if run.Status != core.BuildRunFailed || run.Reason != tt.reason || run.Message == "" {
				t.Errorf("%s: %+v, want failed %s", name, run, tt.reason)
			}
		}()
	}
}

// TestBuildRunResumes: a run left running by a server that stopped is
// built again by the next.
func TestBuildRunResumes(t *testing.T) {
	h := newHarness(t, nil, func(ctx context.Context, _ builder.Request) (builder.Result, error) {
		<-ctx.Done()
		return builder.Result{}, ctx.Err()
	})
	h.submit("resumed", nil)
	h.wait("resumed", func(r core.BuildRun) bool { return r.Status == core.BuildRunRunning })
	h.stop()
	h2 := newHarness(t, h.db, func(context.Context, builder.Request) (builder.Result, error) {
		return builder.Result{Digest: "sha256:def"}, nil
	})
	if run := h2.wait("resumed", ended); run.Status != core.BuildRunSucceeded || run.OutputDigest != "sha256:def" {
		t.Fatalf("%+v", run)
	}
}

func TestExpired(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	for _, tt := range []struct {
		name string
		run  core.BuildRun
		want bool
	}{
		{"succeeded 4 h ago", core.BuildRun{BuildName: "b", Status: core.BuildRunSucceeded, CompletionTime: ago(4 * time.Hour)}, true},
		{"succeeded 2 h ago", core.BuildRun{BuildName: "b", Status: core.BuildRunSucceeded, CompletionTime: ago(2 * time.Hour)}, false},
		{"failed 2 days ago", core.BuildRun{BuildName: "b", Status: core.BuildRunFailed, CompletionTime: ago(48 * time.Hour)}, false},
		{"failed 8 days ago", core.BuildRun{BuildName: "b", Status: core.BuildRunFailed, CompletionTime: ago(8 * 24 * time.Hour)}, true},
		{"stand-alone", core.BuildRun{Status: core.BuildRunSucceeded, CompletionTime: ago(30 * 24 * time.Hour)}, false},
		{"running", core.BuildRun{BuildName: "b", Status: core.BuildRunRunning}, false},
	} {
		if got := Expired(tt.run, now); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestDeletedRunStopsItsBuild: deleting a run while it builds ends the
// build.
func TestDeletedRunStopsItsBuild(t *testing.T) {
	stopped := make(chan struct{})
	h := newHarness(t, nil, func(ctx context.Context, _ builder.Request) (builder.Result, error) {
		<-ctx.Done()
		close(stopped)
		return builder.Result{}, ctx.Err()
	})
	h.submit("doomed", nil)
	h.wait("doomed", func(r core.BuildRun) bool { return r.Status == core.BuildRunRunning })
	if err := h.db.Delete(context.Background(), core.Ref{Project: "p", Kind: core.KindBuildRun, Name: "doomed"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the build of a deleted run goes on")
	}
}

// TestExpiredRunsAreDeleted: a build's run past its retention goes; a
// recent one stays.
func TestExpiredRunsAreDeleted(t *testing.T) {
	h := newHarnessWith(t, func(c *Config) { c.Resync = 20 * time.Millisecond },
		func(context.Context, builder.Request) (builder.Result, error) { return builder.Result{}, nil })
	old, recent := time.Now().Add(-4*time.Hour), time.Now().Add(-time.Minute)
	for name, at := range map[string]time.Time{"old": old, "recent": recent} {
		run := core.BuildRun{Name: name, BuildName: "b", Status: core.BuildRunSucceeded, Reason: core.BuildRunSucceeded, CompletionTime: &at}
		if _, err := h.db.Create(context.Background(), core.Ref{Project: "p", Kind: core.KindBuildRun, Name: name}, mustJSON(run), 0); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		_, err := h.db.Get(context.Background(), core.Ref{Project: "p", Kind: core.KindBuildRun, Name: "old"})
		if errors.Is(err, core.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an expired run stays")
		}
	}
	if _, err := h.db.Get(context.Background(), core.Ref{Project: "p", Kind: core.KindBuildRun, Name: "recent"}); err != nil {
		t.Errorf("a recent run: %v", err)
	}
}

// TestLocalSource: a run of a local source builds the files of its source
// image, read with the output's credentials.
func TestLocalSource(t *testing.T) {
	h := newHarness(t, nil, func(context.Context, builder.Request) (builder.Result, error) {
		return builder.Result{Digest: "sha256:abc"}, nil
	})
	for name, src := range map[string]string{"local": "registry.example/ns/app-source@sha256:1", "local-refused": "registry.example/ns/other-source@sha256:2"} {
		s := core.NewBuildSpec()
		s.OutputImage, s.OutputSecret, s.StrategyType, s.SourceType = "registry.example/ns/app:1", "push", core.StrategyDockerfile, core.SourceLocal
		run := core.BuildRun{Name: name, Spec: s, SourceImage: src, Status: core.BuildRunPending, Reason: core.BuildRunPending}
		if _, err := h.db.Create(context.Background(), core.Ref{Project: "p", Kind: core.KindBuildRun, Name: name}, mustJSON(run), 0); err != nil {
			t.Fatal(err)
		}
	}
	if run := h.wait("local", ended); run.Status != core.BuildRunSucceeded {
		t.Fatalf("%+v", run)
	}
	h.b.mu.Lock()
	req := h.b.reqs[0]
	h.b.mu.Unlock()
	if string(req.Files["Dockerfile"]) != "FROM scratch" || req.GitURL != "" {
		t.Errorf("request %+v", req)
	}
	if run := h.wait("local-refused", ended); run.Status != core.BuildRunFailed || run.Reason != core.ReasonMissingRegistryAccess {
		t.Errorf("%+v", run)
	}
	// Each source goes once its run has ended, with the output's
	// credentials.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		h.mu.Lock()
		got := slices.Sorted(slices.Values(h.deleted))
		h.mu.Unlock()
		if slices.Equal(got, []string{"registry.example/ns/app-source@sha256:1 push-pw", "registry.example/ns/other-source@sha256:2 push-pw"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sources deleted: %q", got)
		}
	}
}

// TestBuildRunsWithinQuota: a run builds when its size fits in the
// project's quota beside what the project's workloads hold; until then it
// stays pending and says why.
func TestBuildRunsWithinQuota(t *testing.T) {
	release := make(chan struct{})
	h := newHarnessWith(t, func(c *Config) {
		c.Quota = quota.NewLedger(quota.Amount{Instances: 10, MilliCPU: 1500, Memory: 1e12, Ephemeral: 1e12})
	},
		func(ctx context.Context, req builder.Request) (builder.Result, error) {
			select {
			case <-release:
			case <-ctx.Done():
			}
			return builder.Result{Digest: "sha256:abc"}, nil
		})
	h.submit("first", nil) // medium: 1 vCPU
	h.wait("first", func(r core.BuildRun) bool { return r.Status == core.BuildRunRunning })
	h.submit("second", nil)
	second := h.wait("second", func(r core.BuildRun) bool { return strings.Contains(r.Message, "vCPU") })
	if second.Status != core.BuildRunPending {
		t.Fatalf("a run beyond the quota: %+v", second)
	}
	if used := h.c.cfg.Quota.Used("p"); used.MilliCPU != 1000 {
		t.Errorf("the project holds %+v, want the first run's 1 vCPU", used)
	}
	close(release)
	h.wait("first", ended)
	if second = h.wait("second", ended); second.Status != core.BuildRunSucceeded {
		t.Errorf("the second run after the first: %+v", second)
	}
	if used := h.c.cfg.Quota.Used("p"); used != (quota.Amount{}) {
		t.Errorf("ended runs hold %+v", used)
	}
}

// TestCanceledRunStopsItsBuild: a run canceled (as the API does it) while
// it builds stops its build and stays failed, canceled; one canceled
// while it waits is never built.
func TestCanceledRunStopsItsBuild(t *testing.T) {
	stopped := make(chan struct{})
	h := newHarnessWith(t, func(c *Config) { c.Parallel = 1 }, func(ctx context.Context, req builder.Request) (builder.Result, error) {
		<-ctx.Done()
		close(stopped)
		return builder.Result{}, ctx.Err()
	})
	h.submit("building", nil)
	h.wait("building", func(r core.BuildRun) bool { return r.Status == core.BuildRunRunning })
	h.submit("waiting", nil) // behind the first: one build at a time
	for _, name := range []string{"waiting", "building"} {
		ref := core.Ref{Project: "p", Kind: core.KindBuildRun, Name: name}
		rec, err := h.db.Get(context.Background(), ref)
		if err != nil {
			t.Fatal(err)
		}
		var run core.BuildRun
		json.Unmarshal(rec.Value, &run)
		run.Status, run.Reason = core.BuildRunFailed, core.ReasonBuildCanceled
		if _, err := h.db.Replace(context.Background(), ref, mustJSON(run), rec.Version); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("the canceled run's build goes on")
	}
	time.Sleep(100 * time.Millisecond)
	for _, name := range []string{"building", "waiting"} {
		if run := h.wait(name, ended); run.Reason != core.ReasonBuildCanceled {
			t.Errorf("%s after its cancel: %+v", name, run)
		}
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if len(h.b.reqs) != 1 {
		t.Errorf("%d builds, want only the first's", len(h.b.reqs))
	}
}
