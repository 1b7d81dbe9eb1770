package enginetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
)

// Harness gives the suite an engine and the images it needs.
type Harness struct {
	// New returns the engine under test; the suite does not close it.
	New func(t *testing.T) engine.Engine
	// Image is a private image with busybox and testprog
	// (internal/itest/testprog) in /bin; Auth pulls it.
	Image string
	Auth  *engine.RegistryAuth
	// Missing is a reference to a tag that does not exist in the registry
	// of Image; Unreachable one on a registry that does not answer.
	Missing     string
	Unreachable string

	// What the engine cannot do, by the nature of what it drives; the
	// README lists these differences.
	NoPrepare         bool // Prepare is engine.ErrNotSupported
	HostsFixedAtStart bool // ProjectNetwork names reach only instances started after the call
	NodeImages        bool // images are the node's to collect: PruneImages removes none
	// IsolationByPolicy: projects are isolated by a policy the cluster's
	// network plugin may not enforce; the engine's own test checks the policy.
	IsolationByPolicy bool
	// Restartable returns an engine of its own and a function that restarts
	// what it drives under it (containerd, the fake's event streams); nil
	// for an engine whose runtime the test cannot restart (a cluster's API
	// server), whose events after a reconnect its own tests show.
	Restartable func(t *testing.T) (engine.Engine, func())
	// ImageFree: the engine runs no image (the fake): only the tests whose
	// commands need nothing of one run ("true", "sleep S", "sh -c 'exit N'").
	ImageFree bool
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	e := h.New(t)
	tests := []struct {
		name      string
		test      func(*testing.T, engine.Engine, Harness)
		imageFree bool
	}{
		{"Lifecycle", testLifecycle, true},
		{"RunExitLogsList", testRunExit, false},
		{"StopWithGrace", testStop, false},
		{"MemoryLimitOOM", testOOM, false},
		{"PullFailures", testPull, false},
		{"PullPinsDigest", testPullPins, true},
		{"Mounts", testMounts, false},
		{"ProjectNetworkNames", testProjectNetwork, false},
		{"PrepareThenRun", testPrepare, false},
		{"EphemeralStorageLimit", testEphemeral, false},
		{"ProjectIsolation", testIsolation, false},
		{"PruneImages", testPrune, true},
		{"Purge", testPurge, true},
		{"FollowThenRemove", testFollowRemoved, true},
		{"EventsAfterRestart", testEventsAfterRestart, true},
		{"LogOptions", testLogOptions, false},
	}
	for _, tt := range tests {
		if tt.imageFree || !h.ImageFree {
			t.Run(tt.name, func(t *testing.T) { tt.test(t, e, h) })
		}
	}
}

func rnd() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Project returns a fresh project id for a test and purges it afterwards.
func Project(t *testing.T, e engine.Engine) string {
	p := "t" + rnd() + "-0000-0000-0000-000000000000"
	t.Cleanup(func() { e.Purge(context.Background(), p) })
	return p
}

func run(t *testing.T, e engine.Engine, h Harness, project, id string, cmd ...string) engine.Instance {
	t.Helper()
	in, err := e.Run(context.Background(), engine.Spec{ID: id, Project: project, Image: h.Image, Auth: h.Auth, Command: cmd,
		Env: []string{"FOO=bar"}, Labels: map[string]string{"coligo.test": "yes", "coligo.id": id}, MemoryBytes: 64 << 20, MilliCPU: 500})
	if err != nil {
		t.Fatalf("run %s: %v", id, err)
	}
	return in
}

// waitExited polls List until the instance has exited.
func waitExited(t *testing.T, e engine.Engine, project, id string, within time.Duration) engine.Instance {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ins, err := e.List(context.Background(), project, map[string]string{"coligo.id": id})
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) == 1 && ins[0].State == engine.StateExited {
			return ins[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s has not exited within %s: %+v", id, within, ins)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvent waits for the exit event of instance id of project p.
func waitEvent(t *testing.T, events <-chan engine.Event, p, id string) engine.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Project == p && ev.ID == id {
				return ev
			}
		case <-timeout:
			t.Fatalf("no exit event of %s", id)
		}
	}
}

func testRunExit(t *testing.T, e engine.Engine, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := e.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := Project(t, e)
	in := run(t, e, h, p, "exit3", "sh", "-c", "echo hello $FOO; echo oops >&2; exit 3")
	if in.ID != "exit3" || in.Project != p {
		t.Errorf("run returned %+v", in)
	}
	if ev := waitEvent(t, events, p, "exit3"); ev.ExitCode != 3 || ev.OOMKilled {
		t.Errorf("exit event %+v, want exit code 3", ev)
	}
	got := waitExited(t, e, p, "exit3", 10*time.Second)
	if got.ExitCode != 3 || got.Labels["coligo.test"] != "yes" {
		t.Errorf("listed %+v", got)
	}
	var logs bytes.Buffer
	if err := e.Logs(ctx, p, "exit3", &logs, engine.LogOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "hello bar") || !strings.Contains(logs.String(), "oops") {
		t.Errorf("logs %q lack stdout or stderr", logs.String())
	}
	// The process runs as the spec's user.
	in2, err := e.Run(ctx, engine.Spec{ID: "uid", Project: p, Image: h.Image, Auth: h.Auth, UID: 1234, Labels: map[string]string{"coligo.id": "uid"}, Command: []string{"sh", "-c", `while read k v; do [ "$k" = Uid: ] && echo "uid $v"; done < /proc/self/status`}})
	if err != nil {
		t.Fatal(err)
	}
	waitExited(t, e, p, in2.ID, 10*time.Second)
	var uid bytes.Buffer
	e.Logs(ctx, p, "uid", &uid, engine.LogOptions{})
	if !strings.Contains(uid.String(), "1234") {
		t.Errorf("run as uid 1234: %q", uid.String())
	}
	if err := e.Remove(ctx, p, "uid"); err != nil {
		t.Fatal(err)
	}
	// Run is idempotent.
	again, err := e.Run(ctx, engine.Spec{ID: "exit3", Project: p, Image: h.Image, Auth: h.Auth})
	if err != nil || again.State != engine.StateExited {
		t.Errorf("second run of the same id: %+v %v", again, err)
	}
	if err := e.Remove(ctx, p, "exit3"); err != nil {
		t.Fatal(err)
	}
	if ins, _ := e.List(ctx, p, nil); len(ins) != 0 {
		t.Errorf("after remove: %+v", ins)
	}
	if err := e.Logs(ctx, p, "exit3", &logs, engine.LogOptions{}); err == nil {
		t.Error("logs of a removed instance")
	}
}

// testLifecycle: an instance runs with its labels and an address, its
// exit is an event and a state with its code, Run is idempotent, and a
// removed instance is gone.
func testLifecycle(t *testing.T, e engine.Engine, h Harness) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := e.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := Project(t, e)
	in := run(t, e, h, p, "exit3", "sh", "-c", "exit 3")
	if in.ID != "exit3" || in.Project != p || in.IP == "" {
		t.Errorf("run returned %+v", in)
	}
	run(t, e, h, p, "long", "sleep", "1000")
	if ev := waitEvent(t, events, p, "exit3"); ev.ExitCode != 3 || ev.OOMKilled {
		t.Errorf("exit event %+v, want exit code 3", ev)
	}
	if got := waitExited(t, e, p, "exit3", 10*time.Second); got.ExitCode != 3 || got.Labels["coligo.test"] != "yes" {
		t.Errorf("listed %+v", got)
	}
	if ins, err := e.List(ctx, p, map[string]string{"coligo.id": "long"}); err != nil || len(ins) != 1 || ins[0].State != engine.StateRunning {
		t.Errorf("list by label: %+v %v", ins, err)
	}
	again, err := e.Run(ctx, engine.Spec{ID: "exit3", Project: p, Image: h.Image, Auth: h.Auth})
	if err != nil || again.State != engine.StateExited || again.ExitCode != 3 {
		t.Errorf("second run of the same id: %+v %v", again, err)
	}
	if err := e.Stop(ctx, p, "no-such-instance", 0); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("stop a missing instance: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"exit3", "long"} {
		if err := e.Stop(ctx, p, id, 0); err != nil {
			t.Fatal(err)
		}
		if err := e.Remove(ctx, p, id); err != nil {
			t.Fatal(err)
		}
	}
	if ins, _ := e.List(ctx, p, nil); len(ins) != 0 {
		t.Errorf("after remove: %+v", ins)
	}
	if err := e.Logs(ctx, p, "exit3", io.Discard, engine.LogOptions{}); err == nil {
		t.Error("logs of a removed instance")
	}
	if err := e.Remove(ctx, p, "exit3"); err != nil {
		t.Errorf("removing a removed instance: %v", err)
	}
}

func testStop(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	run(t, e, h, p, "graceful", "sh", "-c", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done")
	run(t, e, h, p, "stubborn", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
	time.Sleep(300 * time.Millisecond) // let the traps be set
	start := time.Now()
	if err := e.Stop(ctx, p, "graceful", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if g := waitExited(t, e, p, "graceful", 5*time.Second); g.ExitCode != 0 || time.Since(start) > 5*time.Second {
		t.Errorf("graceful stop: %+v after %s", g, time.Since(start))
	}
	start = time.Now()
	if err := e.Stop(ctx, p, "stubborn", time.Second); err != nil {
		t.Fatal(err)
	}
	s := waitExited(t, e, p, "stubborn", 5*time.Second)
	if s.ExitCode != 137 || time.Since(start) < time.Second {
		t.Errorf("stubborn stop: exit %d after %s, want SIGKILL (137) after the 1s grace", s.ExitCode, time.Since(start))
	}
	if err := e.Stop(ctx, p, "stubborn", time.Second); err != nil {
		t.Errorf("stopping a stopped instance: %v", err)
	}
}

func testOOM(t *testing.T, e engine.Engine, h Harness) {
	p := Project(t, e)
	// The limit is 64 MiB.
	run(t, e, h, p, "hog", "testprog", "alloc", "256")
	got := waitExited(t, e, p, "hog", 30*time.Second)
	if !got.OOMKilled || got.ExitCode == 0 {
		t.Errorf("instance over its memory limit: %+v, want OOMKilled", got)
	}
}

func testPull(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	cases := []struct {
		name, image string
		auth        *engine.RegistryAuth
		reason      string
	}{
		{"no credentials", h.Image, nil, engine.PullMissingAuth},
		{"wrong password", h.Image, &engine.RegistryAuth{Server: h.Auth.Server, Username: h.Auth.Username, Password: "wrong"}, engine.PullUnauthorized},
		{"unknown tag", h.Missing, h.Auth, engine.PullNotFound},
		{"registry down", h.Unreachable, h.Auth, engine.PullUnreachable},
		// A registry on this host that the operator did not name: the
		// engine does not connect (there is a registry there: h.Image's).
		{"registry on this host, not allowed", strings.Replace(h.Image, "127.0.0.1:", "localhost:", 1), h.Auth, engine.PullNotAllowed},
	}
	for _, c := range cases {
		_, err := e.Run(ctx, engine.Spec{ID: "pull-" + rnd(), Project: p, Image: c.image, Auth: c.auth, Command: []string{"true"}})
		pe, ok := engine.IsPullError(err)
		if !ok || pe.Reason != c.reason {
			t.Errorf("%s: got %v, want a pull error %s", c.name, err, c.reason)
		}
		if err != nil && strings.Contains(err.Error(), h.Auth.Password) {
			t.Errorf("%s: the error shows the registry password", c.name)
		}
	}
}

func testPullPins(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	pinned, err := e.Pull(ctx, p, h.Image, h.Auth)
	if err != nil {
		t.Fatal(err)
	}
	repo, digest, ok := strings.Cut(pinned, "@sha256:")
	if !ok || len(digest) != 64 || !strings.HasSuffix(repo, strings.Split(strings.SplitN(h.Image, "/", 2)[1], ":")[0]) {
		t.Fatalf("pinned %q, want <repository>@sha256:<64 hex>", pinned)
	}
	// The pinned image runs without credentials: the engine has it.
	in, err := e.Run(ctx, engine.Spec{ID: "pinned", Project: p, Image: pinned, Command: []string{"true"}, Labels: map[string]string{"coligo.id": "pinned"}})
	if err != nil {
		t.Fatalf("run the pinned image: %v", err)
	}
	if in.IP == "" {
		t.Error("Run returned no address for the instance")
	}
	if got := waitExited(t, e, p, in.ID, 10*time.Second); got.ExitCode != 0 {
		t.Errorf("pinned instance exited %d", got.ExitCode)
	}
	// A command that is not in the image is not worth trying again.
	if _, err := e.Run(ctx, engine.Spec{ID: "nocmd", Project: p, Image: pinned, Command: []string{"no-such-command"}}); !errors.Is(err, engine.ErrNoCommand) {
		t.Errorf("run a command that is not in the image: %v, want ErrNoCommand", err)
	}
	for _, c := range []struct {
		image  string
		auth   *engine.RegistryAuth
		reason string
	}{{h.Image, nil, engine.PullMissingAuth}, {h.Missing, h.Auth, engine.PullNotFound}} {
		// Pull asks the registry even when the project has the image.
		if _, err := e.Pull(ctx, p, c.image, c.auth); err == nil {
			t.Errorf("pull %s without the right credentials succeeded", c.image)
		} else if pe, ok := engine.IsPullError(err); !ok || pe.Reason != c.reason {
			t.Errorf("pull %s: %v, want %s", c.image, err, c.reason)
		}
	}
}

func testMounts(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	in, err := e.Run(ctx, engine.Spec{ID: "mounts", Project: p, Image: h.Image, Auth: h.Auth, UID: 1000,
		Labels:  map[string]string{"coligo.id": "mounts"},
		Mounts:  []engine.Mount{{Dir: "/etc/secret", Files: map[string][]byte{"password": []byte("s3cr3t"), "user": []byte("me")}}, {Dir: "/config", Files: map[string][]byte{"mode": []byte("fast")}}},
		Command: []string{"sh", "-c", `echo "$(cat /etc/secret/user):$(cat /etc/secret/password):$(cat /config/mode)"; echo x > /etc/secret/new && echo writable`},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitExited(t, e, p, in.ID, 10*time.Second)
	var out bytes.Buffer
	e.Logs(ctx, p, "mounts", &out, engine.LogOptions{})
	if !strings.Contains(out.String(), "me:s3cr3t:fast") {
		t.Errorf("mounted files as seen by uid 1000: %q", out.String())
	}
	if strings.Contains(out.String(), "writable") {
		t.Error("a mount is writable")
	}
}

func testProjectNetwork(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	gw, sub, err := e.ProjectNetwork(ctx, p, []string{"one.p.svc"})
	if err != nil {
		t.Fatal(err)
	}
	if !sub.Contains(gw) {
		t.Fatalf("gateway %s is not in the project's subnet %s", gw, sub)
	}
	// An instance started before a name is added sees it too.
	in, err := e.Run(ctx, engine.Spec{ID: "hosts", Project: p, Image: h.Image, Auth: h.Auth, Labels: map[string]string{"coligo.id": "hosts"},
		Command: []string{"sh", "-c", "sleep 1; cat /etc/hosts"}})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := netip.ParseAddr(in.IP); err != nil || !sub.Contains(a) {
		t.Errorf("instance address %q is not in %s", in.IP, sub)
	}
	if _, _, err := e.ProjectNetwork(ctx, p, []string{"one.p.svc", "two.p.svc"}); err != nil {
		t.Fatal(err)
	}
	waitExited(t, e, p, "hosts", 10*time.Second)
	var out bytes.Buffer
	e.Logs(ctx, p, "hosts", &out, engine.LogOptions{})
	want := "one.p.svc two.p.svc"
	if h.HostsFixedAtStart {
		want = "one.p.svc"
	}
	if !strings.Contains(out.String(), gw.String()+"\t"+want) || !strings.Contains(out.String(), "localhost") {
		t.Errorf("/etc/hosts in the instance:\n%s", out.String())
	}
}

func testPrepare(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	if h.NoPrepare {
		if _, err := e.Prepare(ctx, engine.Spec{ID: "prepared", Project: p, Image: h.Image, Auth: h.Auth}); !errors.Is(err, engine.ErrNotSupported) {
			t.Errorf("prepare on an engine that cannot: %v, want ErrNotSupported", err)
		}
		return
	}
	spec := engine.Spec{ID: "prepared", Project: p, Image: h.Image, Auth: h.Auth, Env: []string{"FOO=prepared"},
		Labels: map[string]string{"coligo.id": "prepared"}, Command: []string{"sh", "-c", "echo started $FOO"}}
	in, err := e.Prepare(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if in.State != engine.StateCreated || in.IP == "" {
		t.Fatalf("prepared instance %+v, want created with an address", in)
	}
	if again, err := e.Prepare(ctx, spec); err != nil || again.State != engine.StateCreated {
		t.Errorf("prepare again: %+v %v", again, err)
	}
	time.Sleep(200 * time.Millisecond)
	var out bytes.Buffer
	e.Logs(ctx, p, "prepared", &out, engine.LogOptions{})
	if out.Len() != 0 {
		t.Errorf("a prepared instance ran its process: %q", out.String())
	}
	run, err := e.Run(ctx, engine.Spec{ID: "prepared", Project: p})
	if err != nil {
		t.Fatal(err)
	}
	if run.IP != in.IP {
		t.Errorf("started instance has address %q, prepared %q", run.IP, in.IP)
	}
	waitExited(t, e, p, "prepared", 10*time.Second)
	e.Logs(ctx, p, "prepared", &out, engine.LogOptions{})
	if !strings.Contains(out.String(), "started prepared") {
		t.Errorf("logs of the started instance: %q", out.String())
	}
	// A prepared instance that is never started can be removed.
	if _, err := e.Prepare(ctx, engine.Spec{ID: "unused", Project: p, Image: h.Image, Auth: h.Auth, Command: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, p, "unused"); err != nil {
		t.Fatal(err)
	}
	if ins, _ := e.List(ctx, p, nil); len(ins) != 1 {
		t.Errorf("after removing the unused prepared instance: %+v", ins)
	}
}

func testEphemeral(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	// 20 MB written with a limit of 5 MB: the engine ends the instance.
	if _, err := e.Run(ctx, engine.Spec{ID: "writer", Project: p, Image: h.Image, Auth: h.Auth, EphemeralBytes: 5 << 20,
		Labels:  map[string]string{"coligo.id": "writer"},
		Command: []string{"sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=20 && sleep 60"}}); err != nil {
		t.Fatal(err)
	}
	// 1 MB under the same limit: left alone.
	if _, err := e.Run(ctx, engine.Spec{ID: "modest", Project: p, Image: h.Image, Auth: h.Auth, EphemeralBytes: 5 << 20,
		Labels:  map[string]string{"coligo.id": "modest"},
		Command: []string{"sh", "-c", "dd if=/dev/zero of=/fill bs=1M count=1 && sleep 60"}}); err != nil {
		t.Fatal(err)
	}
	got := waitExited(t, e, p, "writer", 30*time.Second)
	if got.Evicted != engine.EvictedEphemeralStorage {
		t.Errorf("instance over its ephemeral storage limit: %+v, want evicted for ephemeral storage", got)
	}
	ins, _ := e.List(ctx, p, map[string]string{"coligo.id": "modest"})
	if len(ins) != 1 || ins[0].State != engine.StateRunning || ins[0].Evicted != "" {
		t.Errorf("instance under its limit: %+v, want running", ins)
	}
}

func testIsolation(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	a, b := Project(t, e), Project(t, e)
	srv := run(t, e, h, a, "web", "testprog", "serve", ":8080")
	deadline := time.Now().Add(10 * time.Second)
	for srv.IP == "" && time.Now().Before(deadline) {
		ins, _ := e.List(ctx, a, map[string]string{"coligo.id": "web"})
		if len(ins) == 1 {
			srv = ins[0]
		}
		time.Sleep(20 * time.Millisecond)
	}
	if srv.IP == "" {
		t.Fatal("the instance has no address")
	}
	url := "http://" + srv.IP + ":8080/"
	run(t, e, h, a, "same-project", "testprog", "fetch", url)
	run(t, e, h, b, "other-project", "testprog", "fetch", url)
	same := waitExited(t, e, a, "same-project", 30*time.Second)
	other := waitExited(t, e, b, "other-project", 60*time.Second)
	var logs bytes.Buffer
	e.Logs(ctx, a, "same-project", &logs, engine.LogOptions{})
	if same.ExitCode != 0 || !strings.Contains(logs.String(), "coligo-test-page") {
		t.Errorf("an instance of the same project cannot reach the server: exit %d, %q", same.ExitCode, logs.String())
	}
	if other.ExitCode == 0 && !h.IsolationByPolicy {
		t.Errorf("an instance of another project reached the server")
	}
}

func testPrune(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	run(t, e, h, p, "user", "sleep", "1000")
	if removed, err := e.PruneImages(ctx, p, nil); err != nil || len(removed) != 0 {
		t.Fatalf("pruned an image a running instance uses: %v %v", removed, err)
	}
	if err := e.Stop(ctx, p, "user", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, p, "user"); err != nil {
		t.Fatal(err)
	}
	if removed, err := e.PruneImages(ctx, p, []string{h.Image}); err != nil || len(removed) != 0 {
		t.Fatalf("pruned an image that is kept: %v %v", removed, err)
	}
	removed, err := e.PruneImages(ctx, p, nil)
	if h.NodeImages {
		if err != nil || len(removed) != 0 {
			t.Fatalf("prune on an engine whose nodes own the images: %v %v", removed, err)
		}
	} else if err != nil || len(removed) != 1 {
		t.Fatalf("prune of an unused image: %v %v", removed, err)
	}
	// The next run pulls it again.
	run(t, e, h, p, "again", "true")
	waitExited(t, e, p, "again", 30*time.Second)
}

func testPurge(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	run(t, e, h, p, "running", "sleep", "1000")
	run(t, e, h, p, "done", "true")
	waitExited(t, e, p, "done", 10*time.Second)
	for range 2 { // idempotent
		if err := e.Purge(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if ins, err := e.List(ctx, p, nil); err != nil || len(ins) != 0 {
		t.Errorf("after purge: %+v %v", ins, err)
	}
}

// testFollowRemoved: following the logs of an instance that is stopped and
// removed meanwhile ends the stream; it does not fail or hang.
func testFollowRemoved(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	run(t, e, h, p, "followed", "sh", "-c", "echo first; sleep 1000")
	done := make(chan error, 1)
	go func() { done <- e.Logs(ctx, p, "followed", io.Discard, engine.LogOptions{Follow: true}) }()
	time.Sleep(500 * time.Millisecond)
	if err := e.Stop(ctx, p, "followed", 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Remove(ctx, p, "followed"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, core.ErrNotFound) {
			t.Errorf("following a removed instance: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("following a removed instance did not end within 30 s")
	}
}

// testEventsAfterRestart restarts what the engine drives under a watch of
// its events (engine.Watch, as the controllers follow them): the watch says
// that exits may have been missed, an instance that ended meanwhile is seen
// exited by List, and exits after the restart arrive as events.
func testEventsAfterRestart(t *testing.T, _ engine.Engine, h Harness) {
	if h.Restartable == nil {
		t.Skip("the engine's runtime cannot be restarted by a test")
	}
	e, restart := h.Restartable(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := engine.Watch(ctx, e, slog.New(slog.DiscardHandler))
	p := Project(t, e)
	run(t, e, h, p, "before", "sleep", "0.5") // its event shows the watch is on
	waitEvent(t, events, p, "before")
	run(t, e, h, p, "through", "sleep", "1")
	restart()
	timeout := time.After(30 * time.Second)
	for marked := false; !marked; {
		select {
		case ev := <-events:
			marked = ev == engine.Event{}
		case <-timeout:
			t.Fatal("no sign after the restart that exits may have been missed")
		}
	}
	if in := waitExited(t, e, p, "through", 30*time.Second); in.ExitCode != 0 {
		t.Errorf("the instance through the restart exited %d, want 0", in.ExitCode)
	}
	run(t, e, h, p, "after", "sh", "-c", "exit 3")
	if ev := waitEvent(t, events, p, "after"); ev.ExitCode != 3 {
		t.Errorf("exit event after the restart: %+v, want code 3", ev)
	}
}

// testLogOptions reads back one stream's lines with a tail, since and
// timestamps, as kubectl logs shows them.
func testLogOptions(t *testing.T, e engine.Engine, h Harness) {
	ctx := context.Background()
	p := Project(t, e)
	before := time.Now().Add(-time.Second)
	run(t, e, h, p, "lines", "sh", "-c", "echo one; echo two; echo three")
	waitExited(t, e, p, "lines", 30*time.Second)
	stamp := regexp.MustCompile(`^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z (two|three)$`)
	tests := []struct {
		opts engine.LogOptions
		ok   func(string) bool
	}{
		{engine.LogOptions{}, func(s string) bool { return s == "one\ntwo\nthree\n" }},
		{engine.LogOptions{Tail: 2}, func(s string) bool { return s == "two\nthree\n" }},
		{engine.LogOptions{Tail: 2, Timestamps: true}, func(s string) bool {
			lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
			return len(lines) == 2 && stamp.MatchString(lines[0]) && stamp.MatchString(lines[1])
		}},
		{engine.LogOptions{Since: before}, func(s string) bool { return s == "one\ntwo\nthree\n" }},
		{engine.LogOptions{Since: time.Now().Add(time.Hour)}, func(s string) bool { return s == "" }},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		if err := e.Logs(ctx, p, "lines", &out, tt.opts); err != nil || !tt.ok(out.String()) {
			t.Errorf("logs with %+v: %q %v", tt.opts, out.String(), err)
		}
	}
}
