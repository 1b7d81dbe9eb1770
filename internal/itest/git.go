package itest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// GitRepo commits files (path → content) on branch main of a new
// repository and serves it over plain HTTP on loopback (git's dumb
// protocol) until the test ends; it returns the repository's URL,
// http://127.0.0.1:PORT/app.git.
func GitRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	srv := httptest.NewServer(http.StripPrefix("/app.git", http.FileServer(http.Dir(filepath.Join(commitRepo(t, files), ".git")))))
	t.Cleanup(srv.Close)
	return srv.URL + "/app.git"
}

// commitRepo commits files on branch main of a new repository, ready to
// be served by git's dumb protocol, and returns its directory.
func commitRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	repo := t.TempDir()
	for p, body := range files {
		p = filepath.Join(repo, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "."}, {"commit", "-q", "-m", "first"}, {"update-server-info"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada", "GIT_AUTHOR_EMAIL=ada@example.org", "GIT_COMMITTER_NAME=Ada", "GIT_COMMITTER_EMAIL=ada@example.org")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	return repo
}

// PrivateGit is a repository served only to those who authenticate.
type PrivateGit struct {
	// HTTPURL is http://127.0.0.1:PORT/app.git (git's dumb protocol),
	// which answers 401 but to basic auth with User and Password.
	HTTPURL, User, Password string
	// SSHURL is ssh://git@127.0.0.1:PORT/app.git, which lets in user git
	// with SSHKey (an unencrypted OpenSSH private key, PEM) only; the
	// server's key is KnownHosts (a known_hosts line).
	SSHURL, SSHKey, KnownHosts string
}

// PrivateGitRepo commits files as GitRepo does and serves the repository
// over HTTP with basic auth and over SSH (x/crypto/ssh on loopback,
// running the real git-upload-pack) until the test ends.
func PrivateGitRepo(t testing.TB, files map[string]string) PrivateGit {
	t.Helper()
	repo := commitRepo(t, files)
	g := PrivateGit{User: "builder", Password: "git-" + randomHex(t)}
	dumb := http.StripPrefix("/app.git", http.FileServer(http.Dir(filepath.Join(repo, ".git"))))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != g.User || p != g.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		dumb.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.HTTPURL = srv.URL + "/app.git"

	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	userPub, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	allowed, _ := ssh.NewPublicKey(userPub)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(c ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if c.User() == "git" && bytes.Equal(k.Marshal(), allowed.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("not this key")
	}}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go serveGitSSH(conn, cfg, filepath.Join(repo, ".git"))
		}
	}()
	block, err := ssh.MarshalPrivateKey(userPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	g.SSHURL = "ssh://git@" + l.Addr().String() + "/app.git"
	g.SSHKey = string(pem.EncodeToMemory(block))
	g.KnownHosts = knownhosts.Line([]string{knownhosts.Normalize(l.Addr().String())}, hostKey.PublicKey())
	return g
}

// serveGitSSH serves one SSH connection: its sessions may run
// git-upload-pack of /app.git, nothing else.
func serveGitSSH(conn net.Conn, cfg *ssh.ServerConfig, gitDir string) {
	defer conn.Close()
	_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "sessions only")
			continue
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			return
		}
		go func() {
			defer ch.Close()
			var env []string
			for req := range reqs {
				switch req.Type {
				case "env":
					var kv struct{ Name, Value string }
					ssh.Unmarshal(req.Payload, &kv)
					if kv.Name == "GIT_PROTOCOL" {
						env = append(env, kv.Name+"="+kv.Value)
					}
					req.Reply(true, nil)
				case "exec":
					var cmd struct{ Command string }
					ssh.Unmarshal(req.Payload, &cmd)
					if cmd.Command != "git-upload-pack '/app.git'" && cmd.Command != "git-upload-pack /app.git" {
						req.Reply(false, nil)
						return
					}
					req.Reply(true, nil)
					c := exec.Command("git-upload-pack", gitDir)
					c.Env, c.Stdin, c.Stdout, c.Stderr = append(os.Environ(), env...), ch, ch, ch.Stderr()
					status := uint32(0)
					if err := c.Run(); err != nil {
						status = 1
					}
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{status}))
					return
				default:
					req.Reply(false, nil)
				}
			}
		}()
	}
}

// randomHex is 16 random bytes in hex.
func randomHex(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
