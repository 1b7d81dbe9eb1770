package router

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkProxy compares a request through the router with the same
// request straight to the instance (the baseline), from parallel
// keep-alive clients: go test -bench Proxy ./internal/router.
func BenchmarkProxy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello world\n") }))
	defer backend.Close()
	r := New(Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 1000, Timeout: time.Minute}, []Endpoint{{ID: "i", Addr: strings.TrimPrefix(backend.URL, "http://")}})
	front := httptest.NewServer(r) // net/http's server, as the fallback serves
	defer front.Close()
	core := serve(b, r)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	run := func(b *testing.B, url string) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = "app.p.localhost"
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	var direct, routed, viaCore float64
	b.Run("direct", func(b *testing.B) { run(b, backend.URL); direct = float64(b.Elapsed()) / float64(b.N) })
	b.Run("router-nethttp", func(b *testing.B) { run(b, front.URL); routed = float64(b.Elapsed()) / float64(b.N) })
	b.Run("router-core", func(b *testing.B) { run(b, core); viaCore = float64(b.Elapsed()) / float64(b.N) })
	if direct > 0 {
		fmt.Printf("router time per request ÷ direct: net/http %.2f, core %.2f\n", routed/direct, viaCore/direct)
	}
}
