package apiserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coligo/coligo/internal/core"
)

func TestNotFoundMessage(t *testing.T) {
	tests := []struct {
		pattern, path string
		err           error
		want          string
	}{
		{"GET /v2/projects/{project}/apps/{name}", "/v2/projects/p1/apps/web", core.ErrNotFound, `app "web" not found in project p1`},
		{"GET /v2/projects/{project}/config_maps/{name}", "/v2/projects/p1/config_maps/cfg", core.ErrNotFound, `config_map "cfg" not found in project p1`},
		{"GET /v2/projects/{project}/job_runs/{name}", "/v2/projects/p1/job_runs/r", core.ErrNotFound, `job_run "r" not found in project p1`},
		{"GET /v2/projects/{project}/apps/{app}/revisions/{name}", "/v2/projects/p1/apps/web/revisions/web-00001", core.ErrNotFound, `revision "web-00001" not found in project p1`},
		{"GET /v2/projects/{project}", "/v2/projects/p9", core.ErrNotFound, `project "p9" not found`},
		{"GET /v2/projects/{project}", "/v2/projects/p9", fmt.Errorf(`project "p9": %w`, core.ErrNotFound), `project "p9": not found`},
	}
	for _, tt := range tests {
		mux := http.NewServeMux()
		var got string
		mux.HandleFunc(tt.pattern, func(w http.ResponseWriter, r *http.Request) { got = notFoundMessage(r, tt.err) })
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", tt.path, nil))
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
		}
	}
	// A huge name is not echoed whole.
	mux := http.NewServeMux()
	var got string
	mux.HandleFunc("GET /v2/projects/{project}/apps/{name}", func(w http.ResponseWriter, r *http.Request) { got = notFoundMessage(r, core.ErrNotFound) })
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v2/projects/p1/apps/"+strings.Repeat("a", 5000), nil))
	if len(got) > 200 {
		t.Errorf("a 5000-byte name echoed in a %d-byte message", len(got))
	}
}
