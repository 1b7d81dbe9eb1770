package tracing

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestSpansReachACollector runs a traced handler against an OTLP/HTTP
// receiver that decodes what it is sent as the protocol defines it: the
// request's span arrives, named as the handler named it, with coligo's
// service name, continuing the caller's trace.
func TestSpansReachACollector(t *testing.T) {
	got := make(chan *collectortrace.ExportTraceServiceRequest, 10)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not OTLP/HTTP traces", http.StatusBadRequest)
			return
		}
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
		if err := proto.Unmarshal(b, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got <- &req
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	defer collector.Close()
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
	select {
	case req := <-got:
		rs := req.ResourceSpans[0]
		service := ""
		for _, a := range rs.Resource.Attributes {
			if a.Key == "service.name" {
				service = a.Value.GetStringValue()
			}
		}
		span := rs.ScopeSpans[0].Spans[0]
		if service != "coligo" || span.Name != "GET /v2/projects" || trace.TraceID(span.TraceId).String() != traceID {
			t.Errorf("span %q of service %q in trace %x", span.Name, service, span.TraceId)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the collector received no spans")
	}
}

func TestStartRefusesABadEndpoint(t *testing.T) {
	for _, e := range []string{"", "127.0.0.1:4318", "ftp://x", "http://"} {
		if _, err := Start(context.Background(), e, "v"); err == nil {
			t.Errorf("%q accepted", e)
		}
	}
}
