package benchkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/imagebuild"
)

// Server is a running coligo server.
type Server struct {
	Cmd    *exec.Cmd
	URL    string // http://host:port, without /v2
	Router string // host:port of the router
	// RouterTLS is host:port of the router's HTTPS, RouterCA the file of
	// the CA that signs its certificates.
	RouterTLS, RouterCA string
	Token               string // admin token
	dir                 string
}

// KubeEngineArgs are the server flags of the kubernetes engine on the
// cluster scripts/kube.sh started, or nil when there is none.
func KubeEngineArgs() []string {
	cfg, gw := os.Getenv("COLIGO_TEST_KUBECONFIG"), os.Getenv("COLIGO_TEST_KUBE_GATEWAY")
	if cfg == "" || gw == "" {
		return nil
	}
	return []string{"--engine", "kubernetes", "--kubeconfig", cfg, "--kube-gateway", gw, "--kube-pod-cidr", gw + "/24"}
}

// Env returns a variable that scripts/parts.sh sets, or exits.
func Env(k string) string {
	v := os.Getenv(k)
	if v == "" {
		fmt.Fprintf(os.Stderr, "bench: %s is not set; run through scripts/bench.sh\n", k)
		os.Exit(2)
	}
	return v
}

// Start starts bin as a server on a fresh data dir, the API and router on
// free loopback ports, with args added.
func Start(bin string, args ...string) (*Server, error) {
	dir, err := os.MkdirTemp("", "coligo-bench")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, append([]string{"server", "--data-dir", filepath.Join(dir, "data"), "--api-addr", "127.0.0.1:0",
		"--router-addr", "127.0.0.1:0", "--router-tls-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	apiRe := regexp.MustCompile(`msg="api listening" url=(\S+)/v2`)
	routerRe := regexp.MustCompile(`msg="router listening" addr=(\S+)`)
	tlsRe := regexp.MustCompile(`msg="router listening for HTTPS" addr=(\S+)`)
	sc := bufio.NewScanner(stderr)
	s := &Server{Cmd: cmd, dir: dir}
	for s.URL == "" && sc.Scan() {
		if m := routerRe.FindStringSubmatch(sc.Text()); m != nil {
			s.Router = m[1]
		}
		if m := tlsRe.FindStringSubmatch(sc.Text()); m != nil {
			s.RouterTLS, s.RouterCA = m[1], filepath.Join(dir, "data", "router-ca.crt")
		}
		if m := apiRe.FindStringSubmatch(sc.Text()); m != nil {
			s.URL = m[1]
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if s.URL == "" {
		cmd.Process.Kill()
		return nil, fmt.Errorf("server did not report its address")
	}
	b, err := os.ReadFile(filepath.Join(dir, "data", "admin.token"))
	s.Token = strings.TrimSpace(string(b))
	return s, err
}

// Client is an admin client of the server.
func (s *Server) Client() *api.Client { return &api.Client{BaseURL: s.URL, Token: s.Token} }

// Stop ends the server (SIGINT) and removes its data dir.
func (s *Server) Stop() {
	s.Cmd.Process.Signal(os.Interrupt)
	s.Cmd.Wait()
	os.RemoveAll(s.dir)
}

// RSSKiB is the server's resident memory.
func (s *Server) RSSKiB() int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.Atoi(strings.Fields(l)[1])
			return v
		}
	}
	return 0
}

// Project creates an active project with a registry secret "reg" for the
// test registry; the returned function hard-deletes it.
func (s *Server) Project(ctx context.Context, name, reg, user, pass string) (*api.Project, func(), error) {
	c := s.Client()
	p, err := ActiveProject(ctx, c, name)
	if err != nil {
		return nil, nil, err
	}
	// The hard delete removes the project's network and fence; the server
	// must not stop before it has (a project being deleted answers 409).
	cleanup := func() {
		c.DeleteProject(ctx, p.ID, true)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			var ae *api.Error
			if _, err := c.GetProject(ctx, p.ID); errors.As(err, &ae) && ae.StatusCode == http.StatusNotFound {
				return
			}
		}
		fmt.Fprintf(os.Stderr, "bench: project %s not deleted within a minute; its network may be left\n", p.ID)
	}
	_, err = c.CreateSecret(ctx, p.ID, api.SecretPrototype{Name: "reg", Format: "registry", Data: map[string]string{"server": reg, "username": user, "password": pass}})
	return p, cleanup, err
}

// ActiveProject creates a project and waits until it is active.
func ActiveProject(ctx context.Context, c *api.Client, name string) (*api.Project, error) {
	p, err := c.CreateProject(ctx, api.ProjectPrototype{Name: name})
	if err != nil {
		return nil, err
	}
	for p.Status != "active" {
		time.Sleep(10 * time.Millisecond)
		if p, err = c.GetProject(ctx, p.ID); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// PushHello builds examples/hello into a one-layer image, pushes it to the
// test registry as bench/hello:1 and returns its reference.
func PushHello(ctx context.Context, reg, user, pass string) (string, error) {
	prog, err := imagebuild.GoProgram("examples/hello")
	if err != nil {
		return "", err
	}
	img, err := imagebuild.Image([]imagebuild.File{{Path: "app", Data: prog, Mode: 0o755}}, []string{"/app"}, nil)
	if err != nil {
		return "", err
	}
	ref := reg + "/bench/hello:1"
	_, err = imagebuild.Push(ctx, ref, img, user, pass, true)
	return ref, err
}
