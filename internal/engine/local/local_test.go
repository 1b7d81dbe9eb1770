package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/pkg/namespaces"
	"golang.org/x/sys/unix"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/enginetest"
	"github.com/coligo/coligo/internal/itest"
)

func newEngine(t *testing.T, parts itest.Parts) *Engine {
	t.Helper()
	return newEngineWith(t, parts, func(*Config) {})
}

func newEngineWith(t *testing.T, parts itest.Parts, change func(*Config)) *Engine {
	t.Helper()
	cfg := Config{
		ContainerdAddress: parts.Containerd, CNIBinDir: parts.CNIBinDir, Subnet: netip.MustParsePrefix("10.213.0.0/16"),
		StateDir: t.TempDir(), InsecureRegistries: []string{parts.Registry, "127.0.0.1:1"}, LoggerBinary: parts.Binary,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), DiskCheckEvery: 200 * time.Millisecond,
	}
	change(&cfg)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestConformance(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	enginetest.Run(t, enginetest.Harness{
		New:         func(t *testing.T) engine.Engine { return newEngine(t, parts) },
		Image:       image,
		Auth:        parts.Auth(),
		Missing:     parts.Registry + "/coligo-test/busybox:no-such-tag",
		Unreachable: "127.0.0.1:1/coligo-test/busybox:1",
		Restartable: func(t *testing.T) (engine.Engine, func()) {
			cd := itest.NewContainerd(t, parts)
			cd.Start()
			e := newEngineWith(t, parts, func(c *Config) {
				c.ContainerdAddress, c.Subnet = cd.Socket, netip.MustParsePrefix("10.213.128.0/17")
			})
			return e, func() { cd.Stop(); cd.Start() }
		},
	})
}

// TestPurgeLeavesNothing checks, below the engine interface, that a purge
// leaves no namespace, image, snapshot, log, address or isolation rule.
func TestPurgeLeavesNothing(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	e := newEngine(t, parts)
	ctx := context.Background()
	p := enginetest.Project(t, e)
	for _, id := range []string{"a", "b"} {
		if _, err := e.Run(ctx, engine.Spec{ID: id, Project: p, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "1000"}}); err != nil {
			t.Fatal(err)
		}
	}
	br := bridgeName(p)
	if out, _ := exec.Command("iptables", "-S", "FORWARD").Output(); !strings.Contains(string(out), br) {
		t.Fatalf("no isolation rule for %s while the project runs", br)
	}
	running, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", Namespace(p)))
	if _, err := os.Stat(filepath.Join(cgroupRoot, Namespace(p))); err == nil {
		running = append(running, filepath.Join(cgroupRoot, Namespace(p)))
	}
	if len(running) == 0 {
		t.Fatalf("no cgroup of %s under %s while the project runs", Namespace(p), cgroupRoot)
	}
	if err := e.Purge(ctx, p); err != nil {
		t.Fatal(err)
	}
	nss, err := e.client.NamespaceService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss {
		if ns == Namespace(p) {
			t.Errorf("namespace %s remains", ns)
		}
	}
	nctx := namespaces.WithNamespace(ctx, Namespace(p))
	if imgs, _ := e.client.ImageService().List(nctx); len(imgs) > 0 {
		t.Errorf("images remain: %v", imgs)
	}
	if out, _ := exec.Command("iptables", "-S", "FORWARD").Output(); strings.Contains(string(out), br) {
		t.Errorf("isolation rule remains")
	}
	if out, _ := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").Output(); strings.Contains(string(out), "10.213.1.0/24") {
		t.Errorf("masquerade rule remains:\n%s", out)
	}
	if err := exec.Command("ip", "link", "show", br).Run(); err == nil {
		t.Errorf("bridge %s remains", br)
	}
	cgroups, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", Namespace(p)))
	for _, dir := range append(cgroups, filepath.Join(e.cfg.StateDir, "logs", p), filepath.Join(e.cfg.StateDir, "ipam", "coligo-"+br), filepath.Join(cgroupRoot, Namespace(p))) {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s remains", dir)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := map[string]string{
		"busybox":                       "docker.io/library/busybox:latest",
		"user/app":                      "docker.io/user/app:latest",
		"registry.example.com/ns/app:1": "registry.example.com/ns/app:1",
		"127.0.0.1:5000/app":            "127.0.0.1:5000/app:latest",
		"localhost/app@sha256:" + strings.Repeat("a", 64): "localhost/app@sha256:" + strings.Repeat("a", 64),
	}
	for in, want := range tests {
		if got, err := normalize(in); err != nil || got != want {
			t.Errorf("normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// TestLimitsAreCgroupLimits checks, from the host, that MilliCPU and
// MemoryBytes become the container's cgroup (v1, as these machines mount it)
// CFS quota and memory limit.
func TestLimitsAreCgroupLimits(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	e := newEngine(t, parts)
	ctx := context.Background()
	p := enginetest.Project(t, e)
	if _, err := e.Run(ctx, engine.Spec{ID: "limits", Project: p, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "60"},
		MilliCPU: 250, MemoryBytes: 256 << 20}); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(ctx, p, "limits", 0)
	read := func(controller, file string) string {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", controller, Namespace(p), "limits", file))
		if err != nil {
			t.Fatalf("read the container's cgroup: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	if q := read("cpu", "cpu.cfs_quota_us"); q != "25000" {
		t.Errorf("CFS quota %s µs, want 25000 (250 millicores of a 100000 µs period)", q)
	}
	if m := read("memory", "memory.limit_in_bytes"); m != strconv.Itoa(256<<20) {
		t.Errorf("memory limit %s, want %d", m, 256<<20)
	}
}

func TestLogIsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "i.log")
	w, err := newRotating(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 99) + "\n"
	for range 100 {
		if n, err := w.Write([]byte(line)); err != nil || n != len(line) {
			t.Fatalf("write: %d %v", n, err)
		}
	}
	big := strings.Repeat("y", 5000)
	if n, err := w.Write([]byte(big)); err != nil || n != len(big) {
		t.Fatalf("big write: %d %v", n, err)
	}
	w.close()
	var total int64
	for _, p := range []string{path, path + ".1"} {
		if fi, err := os.Stat(p); err == nil {
			total += fi.Size()
		}
	}
	if total > 1000 {
		t.Errorf("log holds %d bytes, bound is 1000", total)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasSuffix(string(b), "yyy") {
		t.Errorf("the newest output is not kept: %q", b)
	}
}

func TestPullReason(t *testing.T) {
	tests := []struct {
		msg      string
		haveAuth bool
		want     string
	}{
		{`failed to resolve reference "127.0.0.1:40349/x:y": 127.0.0.1:40349/x:y: not found`, true, engine.PullNotFound},
		{`failed to resolve reference "127.0.0.1:40349/x:y": 127.0.0.1:40349/x:y: not found`, false, engine.PullNotFound},
		{`pull access denied: 401 Unauthorized`, true, engine.PullUnauthorized},
		{`unexpected status from HEAD request to http://127.0.0.1:5000/v2/x/manifests/1: 401 Unauthorized`, false, engine.PullMissingAuth},
		{`unexpected status: 403 Forbidden`, true, engine.PullUnauthorized},
		{`dial tcp 127.0.0.1:1: connect: connection refused`, true, engine.PullUnreachable},
		{`something else`, true, engine.PullFailed},
	}
	for _, tt := range tests {
		if got := pullReason(errors.New(tt.msg), tt.haveAuth); got != tt.want {
			t.Errorf("%q (auth %v): %s, want %s", tt.msg, tt.haveAuth, got, tt.want)
		}
	}
}

// TestInitKeepsValuesOutOfTheSpecAndEndsOnSIGTERM: the stored OCI spec of
// an instance holds the names of its mounts and its command but no value
// of its environment or files, the process still sees them, the tmpfs is
// its own and read-only, and a command that ignores SIGTERM as PID 1
// (sleep) ends on SIGTERM because the init is PID 1 (it once ran on until
// the grace period ended in SIGKILL).
func TestInitKeepsValuesOutOfTheSpecAndEndsOnSIGTERM(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	e := newEngine(t, parts)
	ctx := context.Background()
	p := enginetest.Project(t, e)
	value, file := "env-value-5d1f0c", "file-value-8a2e77"
	hash := func(v string) string { h := sha256.Sum256([]byte(v)); return hex.EncodeToString(h[:]) }
	script := fmt.Sprintf(`h() { printf %%s "$1" | sha256sum | cut -c1-64; }
[ "$(h "$SECRET")" = %s ] || exit 4; [ "$(h "$(cat /run/s/key)")" = %s ] || exit 5;
touch /.coligo/x 2>/dev/null && exit 6; touch /run/s/x 2>/dev/null && exit 7; exec sleep 1000`, hash(value), hash(file))
	if _, err := e.Run(ctx, engine.Spec{ID: "quiet", Project: p, Image: image, Auth: parts.Auth(), Command: []string{"sh", "-c", script},
		Env: []string{"SECRET=" + value}, Mounts: []engine.Mount{{Dir: "/run/s", Files: map[string][]byte{"key": []byte(file)}}}}); err != nil {
		t.Fatal(err)
	}
	nctx := namespaces.WithNamespace(ctx, Namespace(p))
	c, err := e.client.LoadContainer(nctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := c.Spec(nctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(spec); strings.Contains(string(b), value) || strings.Contains(string(b), file) {
		t.Errorf("the stored spec holds a value:\n%s", b)
	}
	if spec.Process.Args[0] != "/.coligo/init" {
		t.Errorf("PID 1 is %q, not the init", spec.Process.Args[0])
	}
	var st unix.Statfs_t
	if err := unix.Statfs(e.mountDir(p, "quiet"), &st); err != nil || st.Type != unix.TMPFS_MAGIC || st.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("the instance's files are not on a read-only tmpfs of its own: %v %+v", err, st)
	}
	// Running for a moment means the checks in the script passed.
	time.Sleep(300 * time.Millisecond)
	if in, err := e.inspect(nctx, p, c); err != nil || in.State != engine.StateRunning {
		t.Fatalf("the instance did not pass its checks: %+v %v", in, err)
	}
	if err := e.Stop(ctx, p, "quiet", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	in, err := e.inspect(nctx, p, c)
	if err != nil || in.ExitCode != 128+int(unix.SIGTERM) {
		t.Errorf("after SIGTERM: %+v %v, want exit code 143 (SIGTERM), not 137 (SIGKILL at the end of the grace period)", in, err)
	}
	if err := e.Remove(ctx, p, "quiet"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(e.mountDir(p, "quiet")); !os.IsNotExist(err) {
		t.Errorf("the instance's tmpfs remains: %v", err)
	}
}

// runToExit runs cmd in an instance, waits for it to exit and returns its
// exit code and output.
func runToExit(t *testing.T, e *Engine, parts itest.Parts, p, id, image string, cmd ...string) (int, string) {
	t.Helper()
	return runSpecToExit(t, e, engine.Spec{ID: id, Project: p, Image: image, Auth: parts.Auth(), Command: cmd})
}

// runSpecToExit runs spec, waits for it to exit and returns its exit code
// and output.
func runSpecToExit(t *testing.T, e *Engine, spec engine.Spec) (int, string) {
	t.Helper()
	ctx := context.Background()
	p, id := spec.Project, spec.ID
	if _, err := e.Run(ctx, spec); err != nil {
		t.Fatal(err)
	}
	nctx := namespaces.WithNamespace(ctx, Namespace(p))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := e.client.LoadContainer(nctx, id)
		if err != nil {
			t.Fatal(err)
		}
		in, err := e.inspect(nctx, p, c)
		if err == nil && in.State == engine.StateExited {
			var out strings.Builder
			e.Logs(ctx, p, id, &out, engine.LogOptions{})
			return in.ExitCode, out.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not exit within 30s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSandbox: from inside an instance, what a sandbox must refuse fails
// with EPERM (keyctl, bpf and io_uring by the seccomp profile, a raw socket
// without NET_RAW, mknod without MKNOD), a user namespace cannot be made,
// and a fork bomb stops at the pids limit.
func TestSandbox(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	e := newEngine(t, parts)
	p := enginetest.Project(t, e)
	_, out := runToExit(t, e, parts, p, "escape", image, "/bin/testprog", "escape")
	for _, want := range []string{"keyctl=EPERM", "bpf=EPERM", "io_uring=EPERM", "raw_socket=EPERM", "mknod=EPERM"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("want %s; the instance printed:\n%s", want, out)
		}
	}
	if code, out := runToExit(t, e, parts, p, "userns", image, "sh", "-c", "unshare -U -r true"); code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("unshare -U inside an instance: exit %d %q, want EPERM", code, out)
	}
	// A fork bomb stops at the limit: of 1100 processes tried, the instance
	// starts as many as its 1024 pids allow (less the init's and testprog's
	// threads), and no more.
	_, out = runToExit(t, e, parts, p, "forks", image, "/bin/testprog", "forks", "1100")
	var n int
	if _, err := fmt.Sscanf(out, "started %d of 1100", &n); err != nil || n < 900 || n >= 1024 || !strings.Contains(out, "resource temporarily unavailable") {
		t.Errorf("the fork bomb: %q, want the limit of 1024 pids reached and not passed", out)
	}
}

// TestFence probes, from inside an instance of project A, what the fence
// must keep it from: the "LAN" and "metadata" hosts of a namespace the test
// made, a port of this host that coligo does not serve, and an instance of
// project B; then opens the LAN with an allowed destination and closes it
// again. A neighbour with a route to the instances cannot reach them
// either. Positive controls show each target answers where it may.
func TestFence(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	e := newEngine(t, parts)
	ctx := context.Background()
	nb := itest.NewNeighbour(t, "fence", 1)
	hostLn, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	go http.Serve(hostLn, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "host-service\n") }))
	hostPort := hostLn.Addr().(*net.TCPAddr).Port

	a, b := enginetest.Project(t, e), enginetest.Project(t, e)
	bIn, err := e.Run(ctx, engine.Spec{ID: "server", Project: b, Image: image, Auth: parts.Auth(), Command: []string{"/bin/testprog", "serve", ":8080"}})
	if err != nil {
		t.Fatal(err)
	}
	// An instance of A first: the bridge and its gateway address exist
	// from the project's first instance on (before, that address is
	// nobody's, and a control probe of it would leave the machine).
	if _, err := e.Run(ctx, engine.Spec{ID: "idle", Project: a, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "600"}}); err != nil {
		t.Fatal(err)
	}
	gw, _, err := e.ProjectNetwork(ctx, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(url string) error {
		c := &http.Client{Timeout: 2 * time.Second}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			resp, err := c.Get(url)
			if err == nil {
				resp.Body.Close()
				return nil
			}
			if time.Now().After(deadline) {
				return err
			}
		}
	}
	// Controls: each target answers the host, so a refusal below is the fence's.
	for _, u := range []string{fmt.Sprintf("http://%s:%d/", nb.LAN, nb.Port), fmt.Sprintf("http://%s:%d/", nb.Metadata, nb.Port),
		fmt.Sprintf("http://%s:%d/", gw, hostPort), fmt.Sprintf("http://%s:8080/", bIn.IP)} {
		if err := get(u); err != nil {
			t.Fatalf("control: %s does not answer the host: %v", u, err)
		}
	}
	targets := map[string]string{
		"lan":      fmt.Sprintf("http://%s:%d/", nb.LAN, nb.Port),
		"metadata": fmt.Sprintf("http://%s:%d/", nb.Metadata, nb.Port),
		"host":     fmt.Sprintf("http://%s:%d/", gw, hostPort),
		"projectB": fmt.Sprintf("http://%s:8080/", bIn.IP),
	}
	round := 0
	probe := func() map[string]bool {
		t.Helper()
		round++
		var script strings.Builder
		for name, u := range targets { // all at once: a closed one takes testprog's 3 s
			fmt.Fprintf(&script, "(if /bin/testprog fetch %s >/dev/null 2>&1; then echo %s=open; else echo %s=closed; fi) & ", u, name, name)
		}
		script.WriteString("wait")
		_, out := runToExit(t, e, parts, a, fmt.Sprintf("probe-%d", round), image, "sh", "-c", script.String())
		open := map[string]bool{}
		for name := range targets {
			if !strings.Contains(out, name+"=open") && !strings.Contains(out, name+"=closed") {
				t.Fatalf("probe round %d printed no verdict for %s:\n%s", round, name, out)
			}
			open[name] = strings.Contains(out, name+"=open")
		}
		return open
	}
	want := func(open map[string]bool, lan bool, when string) {
		t.Helper()
		for name, o := range open {
			if o != (name == "lan" && lan) {
				t.Errorf("%s: %s is open=%v", when, name, o)
			}
		}
	}
	want(probe(), false, "by default (allow-all)")
	if err := e.SetEgress(ctx, a, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), nb.LANNet}); err != nil {
		t.Fatal(err)
	}
	want(probe(), true, "with the LAN's CIDR allowed")
	if err := e.SetEgress(ctx, a, []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}); err != nil {
		t.Fatal(err)
	}
	want(probe(), false, "with the LAN rule deleted again")
	// A neighbour with a route to the instances' network cannot reach them.
	if out, err := nb.Exec("ip", "route", "add", "10.213.0.0/16", "via", nb.HostSide.String()); err != nil {
		t.Fatalf("route: %v %s", err, out)
	}
	if out, err := nb.Exec("curl", "-sS", "-m", "2", fmt.Sprintf("http://%s:8080/", bIn.IP)); err == nil {
		t.Errorf("a neighbour reached an instance directly: %s", out)
	}
}

// TestUserNamespace: with UserNS, root in an instance is an unprivileged
// user of the host, from a range of the project's own; the instance still
// gets its environment and files through the init.
func TestUserNamespace(t *testing.T) {
	parts := itest.Need(t)
	image := parts.BusyboxImage(t)
	e := newEngineWith(t, parts, func(c *Config) { c.UserNS = true })
	ctx := context.Background()
	p := enginetest.Project(t, e)
	code, out := runSpecToExit(t, e, engine.Spec{ID: "mapped", Project: p, Image: image, Auth: parts.Auth(), Env: []string{"V=x"},
		Mounts:  []engine.Mount{{Dir: "/run/s", Files: map[string][]byte{"k": []byte("file-ok")}}},
		Command: []string{"sh", "-c", `cat /proc/self/uid_map; [ "$V" = x ] && cat /run/s/k`}})
	if code != 0 {
		t.Fatalf("instance in a user namespace: exit %d: %s", code, out)
	}
	base, err := e.nets.idBase(p)
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(out); len(f) < 4 || f[0] != "0" || f[1] != fmt.Sprint(base) || f[2] != "65536" || f[3] != "file-ok" {
		t.Errorf("uid_map inside: %q, want 0 %d 65536", out, base)
	}
	// The same, seen from the host: the process of a running instance.
	if _, err := e.Run(ctx, engine.Spec{ID: "idle", Project: p, Image: image, Auth: parts.Auth(), Command: []string{"sleep", "600"}}); err != nil {
		t.Fatal(err)
	}
	nctx := namespaces.WithNamespace(ctx, Namespace(p))
	c, _ := e.client.LoadContainer(nctx, "idle")
	task, err := c.Task(nctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", task.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" && f[1] != fmt.Sprint(base) {
			t.Errorf("the instance's PID 1 runs as host uid %s, want %d", f[1], base)
		}
	}
	// The first instances of an image in a new project, started at once,
	// all start: one makes the image's remapped snapshot, the others wait
	// for it instead of failing on it.
	fresh := enginetest.Project(t, e)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := range 4 {
		wg.Go(func() {
			_, err := e.Run(ctx, engine.Spec{ID: fmt.Sprintf("first-%d", i), Project: fresh, Image: image, Auth: parts.Auth(), Command: []string{"true"}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a first instance in a user namespace: %v", err)
		}
	}
}
