package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/coligo/coligo/internal/tracing/tracingtest"
)

// TestTracesGoToTheCollector: with --otlp-endpoint the server sends a span
// per API request, named by its route, to an OTLP/HTTP collector; what is
// buffered is sent on shutdown.
func TestTracesGoToTheCollector(t *testing.T) {
	collector := tracingtest.New(t)
	s := startServer(t, "--otlp-endpoint", collector.URL)
	if _, err := s.adminClient().AllProjects(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	s.stop()
	var names []string
	found := false
	for _, sp := range collector.Spans() {
		found = found || sp.Name == "GET /v2/projects" && sp.Service == "coligo"
		names = append(names, sp.Name)
		// What leaves for the collector holds no token.
		if strings.Contains(sp.String(), s.admin) {
			t.Errorf("span %s carries the admin token", sp.Name)
		}
	}
	if !found {
		t.Errorf("spans received: %v, want one named GET /v2/projects", names)
	}
}
