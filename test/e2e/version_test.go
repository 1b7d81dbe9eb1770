package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestVersion: the server says which build it is, in /v2/info and in
// coligo_build_info, and 'coligo version' shows both sides.
func TestVersion(t *testing.T) {
	s := startServer(t)
	info, err := s.adminClient().Info(context.Background())
	if err != nil || info.Version == "" || !strings.HasPrefix(info.GoVersion, "go") {
		t.Fatalf("info: %+v %v", info, err)
	}
	m := s.get(t, "/metrics")
	if !strings.Contains(m, `coligo_build_info{go_version="`+info.GoVersion+`",version="`+info.Version+`"} 1`) {
		t.Errorf("coligo_build_info missing from /metrics")
	}
	if !regexp.MustCompile(`(?m)^coligo_store_size_bytes [1-9]`).MatchString(m) {
		t.Errorf("coligo_store_size_bytes missing from /metrics")
	}
	// Which build serves is for callers with a token only.
	if resp, err := s.http().Get(s.url() + "/v2/info"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/info without a token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// Every answer carries its request id, which the server's log line has.
	req, _ := http.NewRequest("GET", s.url()+"/v2/projects/no-such-project", nil)
	req.Header.Set("Authorization", "Bearer "+s.admin)
	resp, err := s.http().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" {
		t.Error("no X-Request-Id")
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.logs(), "trace="+id); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("request id %s is not in the server's log", id)
			break
		}
	}
	r := s.cli(t, filepath.Join(t.TempDir(), "config.yaml"), "", []string{"COLIGO_TOKEN=" + s.admin}, "version")
	if r.code != 0 || !strings.Contains(r.stdout, "Client: "+info.Version) || !strings.Contains(r.stdout, "Server: "+info.Version) {
		t.Errorf("coligo version: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestCLIListsFollowPages: a list of more than one page (100) shows all of
// it; 'coligo job list' once stopped at the first page.
func TestCLIListsFollowPages(t *testing.T) {
	s := startServer(t, "--max-jobs", "0")
	c := s.adminClient()
	ctx := context.Background()
	p := activeProject(t, c, "many")
	for i := range 105 {
		if _, err := c.CreateJob(ctx, p.ID, api.JobPrototype{Name: fmt.Sprintf("job-%03d", i), RunSpec: api.RunSpec{ImageReference: "registry.example.com/app:1"}}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	env := []string{"COLIGO_TOKEN=" + s.admin}
	if r := s.cli(t, cfg, "", env, "project", "select", "--name", "many"); r.code != 0 {
		t.Fatalf("project select: %s", r.stderr)
	}
	// A positional NAME works where --name does.
	if r := s.cli(t, cfg, "", env, "job", "get", "job-104", "-o", "json"); r.code != 0 || !strings.Contains(r.stdout, `"name": "job-104"`) {
		t.Errorf("job get job-104: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := s.cli(t, cfg, "", env, "job", "get", "job-999"); r.code == 0 || !strings.Contains(r.stderr, `job "job-999"`) || !strings.Contains(r.stderr, "not found") {
		t.Errorf("job get of a job that does not exist: exit %d: %s", r.code, r.stderr)
	}
	r := s.cli(t, cfg, "", env, "job", "list", "-o", "json")
	var jobs []api.Job
	if err := json.Unmarshal([]byte(r.stdout), &jobs); r.code != 0 || err != nil || len(jobs) != 105 {
		t.Errorf("job list: exit %d, %d jobs (%v), want 105\n%s", r.code, len(jobs), err, r.stderr)
	}
}

// TestPrintAdminToken: 'coligo server --print-admin-token' prints the admin
// token of a data dir (for an image without a shell) and starts nothing; a
// data dir without one is an error that names it, and creates nothing.
func TestPrintAdminToken(t *testing.T) {
	s := startServer(t)
	out, err := exec.Command(binary, "server", "--data-dir", s.dataDir, "--print-admin-token").Output()
	if err != nil || strings.TrimSpace(string(out)) != s.admin {
		t.Fatalf("print-admin-token: %v, printed the admin token: %v", err, strings.TrimSpace(string(out)) == s.admin)
	}
	empty := filepath.Join(t.TempDir(), "none")
	out, err = exec.Command(binary, "server", "--data-dir", empty, "--print-admin-token").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "admin token") {
		t.Errorf("a data dir without a token: %v %q", err, out)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("--print-admin-token made the data dir: %v", err)
	}
}
