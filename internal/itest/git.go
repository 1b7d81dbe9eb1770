package itest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// GitRepo commits files (path → content) on branch main of a new
// repository and serves it over plain HTTP on loopback (git's dumb
// protocol) until the test ends; it returns the repository's URL,
// http://127.0.0.1:PORT/app.git.
func GitRepo(t testing.TB, files map[string]string) string {
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
	srv := httptest.NewServer(http.StripPrefix("/app.git", http.FileServer(http.Dir(filepath.Join(repo, ".git")))))
	t.Cleanup(srv.Close)
	return srv.URL + "/app.git"
}
