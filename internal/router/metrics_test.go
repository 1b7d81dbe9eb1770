package router

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRevisionMetrics: requests, their latency and cold starts are counted
// per revision (project and name), requests waiting are a gauge, and a
// removed revision's series go.
func TestRevisionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	woken := make(chan string, 10)
	r, base := newRouter(t, Config{Registry: reg, Wake: func(rev string) { woken <- rev }})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "p1/app-00001", Public: true}})
	r.SetRevision("p1/app-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, nil)
	done := make(chan int)
	go func() { code, _ := get(t, base, "app.p.localhost"); done <- code }()
	<-woken // a cold start: the request waits for an instance
	waitFor(t, func() bool { return queued(r, "p1/app-00001") == 1 })
	load := `
# HELP coligo_revision_queued_requests Requests waiting for an instance of a revision with room (at its concurrency limit, or none ready).
# TYPE coligo_revision_queued_requests gauge
coligo_revision_queued_requests{project="p1",revision="app-00001"} %d
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(load, 1)), "coligo_revision_queued_requests"); err != nil {
		t.Error(err)
	}
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	r.SetRevision("p1/app-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	if code := <-done; code != 200 {
		t.Fatalf("held request: %d", code)
	}
	if code, _ := get(t, base, "app.p.localhost"); code != 200 {
		t.Fatalf("second request: %d", code)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(load, 0)), "coligo_revision_queued_requests"); err != nil {
		t.Error(err)
	}
	want := `
# HELP coligo_revision_cold_starts_total Requests that found no ready instance of a revision and woke one.
# TYPE coligo_revision_cold_starts_total counter
coligo_revision_cold_starts_total{project="p1",revision="app-00001"} 1
# HELP coligo_revision_requests_total Requests proxied to an instance of a revision.
# TYPE coligo_revision_requests_total counter
coligo_revision_requests_total{project="p1",revision="app-00001"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "coligo_revision_requests_total", "coligo_revision_cold_starts_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(r.revLatency); n != 1 {
		t.Errorf("%d latency series, want 1", n)
	}
	r.RemoveRevision("p1/app-00001")
	if n := testutil.CollectAndCount(r.revRequests) + testutil.CollectAndCount(r.revLatency) + testutil.CollectAndCount(r.coldStarts); n != 0 {
		t.Errorf("%d series of a removed revision remain", n)
	}
}
