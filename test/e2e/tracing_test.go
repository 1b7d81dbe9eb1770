package e2e

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestTracesGoToTheCollector: with --otlp-endpoint the server sends a span
// per API request, named by its route, to an OTLP/HTTP collector (one the
// test runs, decoding the protocol); what is buffered is sent on shutdown.
func TestTracesGoToTheCollector(t *testing.T) {
	var mu sync.Mutex
	names := map[string]bool{}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(body)
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "not OTLP/HTTP traces", http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names[s.Name] = true
				}
			}
		}
		mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	defer collector.Close()
	s := startServer(t, "--otlp-endpoint", collector.URL)
	if _, err := s.adminClient().AllProjects(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	s.stop()
	mu.Lock()
	defer mu.Unlock()
	if !names["GET /v2/projects"] {
		t.Errorf("spans received: %v, want one named GET /v2/projects", names)
	}
}
