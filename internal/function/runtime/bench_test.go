package runtime

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkColdStart measures, per runtime, what a cold invocation costs
// on a pre-warmed runtime (the proxy already runs: take the code, answer
// the first request) against one that starts the interpreter first (the
// baseline: start, listen, take the code, answer), in the same run:
// go test -run '^$' -bench ColdStart ./internal/function/runtime.
func BenchmarkColdStart(b *testing.B) {
	for _, family := range []string{NodeJS, Python} {
		r := interpreter(b, family)
		code := map[string]string{NodeJS: "function main(a) { return {body: 'hi'} }", Python: "def main(a):\n    return {'body': 'hi'}\n"}[family]
		invoke := func(p *proxyProcess) {
			resp, err := http.Get(p.url + "/")
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("invocation: %d", resp.StatusCode)
			}
		}
		var started, warm float64
		b.Run(r.ID+"/interpreter-started", func(b *testing.B) {
			for b.Loop() {
				p := startProxy(b, r)
				if code, body := p.init(b, []byte(code), "main", nil); code != 200 {
					b.Fatalf("init: %d %s", code, body)
				}
				invoke(p)
				p.stop()
			}
			started = float64(b.Elapsed()) / float64(b.N)
		})
		b.Run(r.ID+"/pre-warmed", func(b *testing.B) {
			pool := make([]*proxyProcess, 0, 64)
			for b.Loop() {
				b.StopTimer()
				if len(pool) == 0 {
					for range cap(pool) {
						pool = append(pool, startProxy(b, r))
					}
				}
				p := pool[len(pool)-1]
				pool = pool[:len(pool)-1]
				b.StartTimer()
				if code, body := p.init(b, []byte(code), "main", nil); code != 200 {
					b.Fatalf("init: %d %s", code, body)
				}
				invoke(p)
				b.StopTimer()
				p.stop()
				b.StartTimer()
			}
			for _, p := range pool {
				p.stop()
			}
			warm = float64(b.Elapsed()) / float64(b.N)
		})
		if started > 0 && warm > 0 {
			fmt.Printf("%s: pre-warmed cold invocation %.2f ms, with the interpreter started %.2f ms, ratio %.3f\n", r.ID, warm/1e6, started/1e6, warm/started)
		}
	}
}
