package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
)

var binary string

func TestMain(m *testing.M) {
	binary = os.Getenv("COLIGO_BIN")
	if binary == "" {
		dir, err := os.MkdirTemp("", "coligo-e2e")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		binary = filepath.Join(dir, "coligo")
		cmd := exec.Command("go", "build", "-o", binary, "../../cmd/coligo")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build coligo:", err)
			os.Exit(1)
		}
		cmd = exec.Command("go", "build", "-o", filepath.Join(dir, "coligo-init"), "../../cmd/coligo-init")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build coligo-init:", err)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// server is a coligo server process under test.
type server struct {
	t       *testing.T
	dataDir string
	addr    string
	router  string // the router's address, fixed across restarts
	https   string // the router's HTTPS address, likewise
	engine  string // local or kubernetes
	args    []string
	env     []string
	cmd     *exec.Cmd
	logPath string
	admin   string
	exited  chan struct{}
	tls     bool // the API is served over TLS (--tls-self-signed)
}

// engineArgs points the server at the test run's containerd, CNI plugins and
// registry when make test started them (or, for kubernetes, at its
// cluster); without them the server runs with no engine.
func engineArgs(eng string) []string {
	// nowhereImage's registry, a loopback port where nothing listens, is
	// named as an operator would name a registry on the host.
	nowhere := []string{"--insecure-registry", strings.Split(nowhereImage, "/")[0]}
	if eng == "kubernetes" {
		gw := os.Getenv("COLIGO_TEST_KUBE_GATEWAY")
		return append([]string{"--engine", "kubernetes", "--kubeconfig", os.Getenv("COLIGO_TEST_KUBE_ENGINE_KUBECONFIG"),
			"--kube-gateway", gw, "--kube-pod-cidr", gw + "/24", "--insecure-registry", os.Getenv("COLIGO_TEST_REGISTRY")}, nowhere...)
	}
	addr := os.Getenv("COLIGO_TEST_CONTAINERD")
	if addr == "" {
		return append([]string{"--containerd-address", ""}, nowhere...)
	}
	return append([]string{"--containerd-address", addr, "--cni-bin-dir", os.Getenv("COLIGO_TEST_CNI_BIN_DIR"),
		"--cni-subnet", "10.214.0.0/16", "--insecure-registry", os.Getenv("COLIGO_TEST_REGISTRY")}, nowhere...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// forEngines runs a scenario on the local engine and on the kubernetes
// engine (the cluster make test starts; in CI a missing one fails).
func forEngines(t *testing.T, scenario func(t *testing.T, eng string)) {
	t.Run("local", func(t *testing.T) { scenario(t, "local") })
	t.Run("kubernetes", func(t *testing.T) {
		itest.NeedKube(t).Engine(t) // the server has the rights of deploy/kubernetes/rbac.yaml
		scenario(t, "kubernetes")
	})
}

// startServer starts a server with the local engine on a fresh data dir.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	return startServerOn(t, "local", args...)
}

// startServerOn starts a server with engine eng on a fresh data dir.
func startServerOn(t *testing.T, eng string, args ...string) *server {
	t.Helper()
	s := newServer(t, eng, args...)
	s.start()
	return s
}

// newServer prepares a server with engine eng on a fresh data dir, not
// started; when the test ends its projects are purged and it is stopped.
func newServer(t *testing.T, eng string, args ...string) *server {
	t.Helper()
	s := &server{t: t, dataDir: filepath.Join(t.TempDir(), "data"), addr: freeAddr(t), router: freeAddr(t), https: freeAddr(t), args: args, engine: eng,
		tls: slices.Contains(args, "--tls-self-signed")}
	t.Cleanup(func() {
		s.purgeProjects()
		s.stop()
		s.checkRaces()
		if t.Failed() {
			t.Logf("server log:\n%s", s.allLogs())
		}
	})
	return s
}

// checkRaces fails the test when the server (a -race build, as make test
// builds it) reported a data race.
func (s *server) checkRaces() {
	if logs := s.allLogs(); strings.Contains(logs, "WARNING: DATA RACE") {
		s.t.Errorf("the server reported a data race; its log follows")
	}
}

// purgeProjects hard-deletes every project a local-engine server still
// has, so that their networks, fences and containers go with the test (the
// suite ends by checking that nothing of coligo is left on the machine).
// A server that is not running is left as it is.
func (s *server) purgeProjects() {
	if s.engine != "local" || os.Getenv("COLIGO_TEST_CONTAINERD") == "" || s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.adminClient()
	ps, err := c.AllProjects(ctx, true)
	if err != nil {
		return
	}
	for _, p := range ps {
		c.DeleteProject(ctx, p.ID, true)
	}
	for _, p := range ps {
		for ctx.Err() == nil {
			if _, err := c.GetProject(ctx, p.ID); isStatus(err, 404) || err != nil && !isStatus(err, 409) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// start (re)starts the process on the same data dir and address and waits
// until it is ready.
func (s *server) start() {
	s.t.Helper()
	s.launch()
	s.waitReady()
}

// launch starts the process without waiting for it.
func (s *server) launch() {
	s.t.Helper()
	s.logPath = filepath.Join(filepath.Dir(s.dataDir), fmt.Sprintf("server-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(s.logPath)
	if err != nil {
		s.t.Fatal(err)
	}
	args := append([]string{"server", "--data-dir", s.dataDir, "--api-addr", s.addr, "--router-addr", s.router, "--router-tls-addr", s.https, "--log-level", "debug"}, engineArgs(s.engine)...)
	args = append(args, s.args...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = append(os.Environ(), s.env...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.exited = make(chan struct{})
	go func() { s.cmd.Wait(); logf.Close(); close(s.exited) }()
}

func (s *server) waitReady() {
	s.t.Helper()
	s.waitUp("/readyz")
}

// waitUp waits until path (/readyz, or /healthz for a server that serves
// its API without being ready) answers 200, and reads the admin token.
func (s *server) waitUp(path string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.http().Get(s.url() + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-s.exited:
			s.t.Fatalf("server exited during start:\n%s", s.logs())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("server: %s not 200 after 20s:\n%s", path, s.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin.token"))
	if err != nil {
		s.t.Fatal(err)
	}
	s.admin = strings.TrimSpace(string(b))
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if code := s.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(s.logs(), "store closed") {
			s.t.Errorf("SIGTERM: exit code %d, want a clean stop:\n%s", code, s.logs())
		}
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("server did not stop within 30s of SIGTERM")
	}
}

// kill9 kills the server the hard way.
func (s *server) kill9() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// waitExit waits for the process to end by itself (a failpoint).
func (s *server) waitExit(d time.Duration) {
	s.t.Helper()
	select {
	case <-s.exited:
	case <-time.After(d):
		s.t.Fatalf("server still running after %s", d)
	}
}

func (s *server) logs() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// allLogs returns every log the server wrote across restarts.
func (s *server) allLogs() string {
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(s.dataDir), "server-*.log"))
	var b strings.Builder
	for _, f := range files {
		c, _ := os.ReadFile(f)
		b.Write(c)
	}
	return b.String()
}

func (s *server) url() string {
	if s.tls {
		return "https://" + s.addr
	}
	return "http://" + s.addr
}

// http is a client of the server's API listener (trusting its self-signed
// certificate).
func (s *server) http() *http.Client {
	if s.tls {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	}
	return http.DefaultClient
}

func (s *server) client(token string) *api.Client {
	return &api.Client{BaseURL: s.url(), Token: token, HTTP: s.http()}
}

func (s *server) adminClient() *api.Client { return s.client(s.admin) }

// cliResult is what one CLI run printed.
type cliResult struct {
	stdout, stderr string
	code           int
}

// adminCLI logs the CLI in to s as the admin, with a config file of its
// own (cfg), and selects project; run runs a command of it and fails the
// test unless it exits 0, returning its standard output.
func (s *server) adminCLI(t *testing.T, project string) (cfg string, run func(args ...string) string) {
	t.Helper()
	cfg = filepath.Join(t.TempDir(), "config.yaml")
	run = func(args ...string) string {
		t.Helper()
		r := s.cli(t, cfg, "", nil, args...)
		if r.code != 0 {
			t.Fatalf("coligo %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	run("login", "--endpoint", s.url(), "--token-file", filepath.Join(s.dataDir, "admin.token"))
	run("project", "select", "--name", project)
	return cfg, run
}

// cli runs the coligo CLI against s with its own config file.
func (s *server) cli(t *testing.T, cfgFile string, stdin string, env []string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "COLIGO_CONFIG="+cfgFile, "COLIGO_ENDPOINT="+s.url())
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{stdout: out.String(), stderr: errb.String(), code: code}
}

// activeProject creates a project and waits until it is active.
func activeProject(t *testing.T, c *api.Client, name string) *api.Project {
	t.Helper()
	ctx := context.Background()
	p, err := c.CreateProject(ctx, api.ProjectPrototype{Name: name})
	if err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	return waitStatus(t, c, p.ID, "active")
}

// waitStatus polls a project until it has status want ("" waits for 404).
func waitStatus(t *testing.T, c *api.Client, id, want string) *api.Project {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := c.GetProject(context.Background(), id)
		if want == "" && isStatus(err, 404) {
			return nil
		}
		if err == nil && p.Status == want {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("project %s: want status %q, have %+v (err %v)", id, want, p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isStatus(err error, code int) bool {
	ae, ok := err.(*api.Error)
	return ok && ae.StatusCode == code
}

func wantStatus(t *testing.T, err error, code int, what string) {
	t.Helper()
	if code < 300 {
		if err != nil {
			t.Fatalf("%s: want success, got %v", what, err)
		}
		return
	}
	if !isStatus(err, code) {
		t.Fatalf("%s: want status %d, got %v", what, code, err)
	}
}

// get returns the body of GET path with the admin token.
func (s *server) get(t *testing.T, path string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url()+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
