package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/coligo/coligo/internal/tracing/tracingtest"
)

// TestSpansReachACollector runs a traced handler against an OTLP/HTTP
// receiver: the request's span arrives, named by its route, with coligo's
// service name, continuing the caller's trace.
func TestSpansReachACollector(t *testing.T) {
	collector := tracingtest.New(t)
	ctx := context.Background()
	stop, err := Start(ctx, collector.URL, "v-test")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/projects", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	app := httptest.NewServer(Handler(mux, "api"))
	defer app.Close()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req, _ := http.NewRequest("GET", app.URL+"/v2/projects", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := stop(sctx); err != nil { // flushes
		t.Fatal(err)
	}
	spans := collector.Spans()
	if len(spans) != 1 {
		t.Fatalf("%d spans received, want 1", len(spans))
	}
	if s := spans[0]; s.Service != "coligo" || s.Name != "GET /v2/projects" || trace.TraceID(s.TraceId).String() != traceID {
		t.Errorf("span %q of service %q in trace %x", s.Name, s.Service, s.TraceId)
	}
}

func TestStartRefusesABadEndpoint(t *testing.T) {
	for _, e := range []string{"", "127.0.0.1:4318", "ftp://x", "http://"} {
		if _, err := Start(context.Background(), e, "v"); err == nil {
			t.Errorf("%q accepted", e)
		}
	}
}
