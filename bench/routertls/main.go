// Command routertls measures what HTTPS costs on coligo's router against
// plain HTTP, in one run, in front of the same app (the sample app of
// examples/hello with 2 vCPU): GET / through the router's plain listener
// and through its HTTPS listener (HTTP/1.1 and HTTP/2, certificate checked
// against the router's CA), from Go clients on kept-alive connections at 1,
// 8 and 64 connections; then a new connection for every request, with TLS
// sessions resumed and without, against plain HTTP's new connections.
//
//	go run ./bench/routertls -bin bin/coligo   (needs the parts of scripts/parts.sh)
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coligo/coligo/bench/internal/benchkit"
)

func main() {
	bin := flag.String("bin", "bin/coligo", "coligo binary")
	n := flag.Int("n", 20000, "requests per row on kept-alive connections")
	fresh := flag.Int("fresh", 2000, "requests per row with a new connection each")
	conns := flag.String("c", "1,8,64", "connection counts")
	flag.Parse()
	if err := run(*bin, *n, *fresh, *conns); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(bin string, n, fresh int, conns string) error {
	ctx := context.Background()
	st, err := benchkit.StartSteady(ctx, bin, "routertls")
	if err != nil {
		return err
	}
	defer st.Stop()
	s, a := st.Server, st.App
	host, _, _ := strings.Cut(strings.TrimPrefix(a.Endpoint, "http://"), ":")
	caPEM, err := os.ReadFile(s.RouterCA)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)

	// client is an HTTP client to the router at addr, keeping up to conns
	// connections alive (none: a new one per request).
	client := func(addr string, conns int, tc *tls.Config, h2 bool) *http.Client {
		tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableKeepAlives: conns == 0, TLSClientConfig: tc, ForceAttemptHTTP2: h2,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		return &http.Client{Transport: tr, Timeout: 30 * time.Second}
	}
	get := func(hc *http.Client, url string) func(int) error {
		return func(int) error {
			resp, err := hc.Get(url)
			if err != nil {
				return err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
	tlsConfig := func(resume bool) *tls.Config {
		tc := &tls.Config{RootCAs: pool, ServerName: host}
		if resume {
			tc.ClientSessionCache = tls.NewLRUClientSessionCache(64)
		}
		return tc
	}
	plainURL, tlsURL := "http://"+host+"/", "https://"+host+"/"
	row := func(conns int, name string, r, base benchkit.Result) {
		fmt.Printf("| %d | %s | %.0f | %s | %s | %.2f | %s |\n", conns, name, r.PerSec, ms(r.P50), ms(r.P99), r.PerSec/base.PerSec, ms(r.P50-base.P50))
	}
	fmt.Printf("GET / of the sample app (2 vCPU) through the router, Go clients, 2 cores shared by clients, router and app\n\n")
	fmt.Println("| connections | path | req/s | p50 | p99 | ÷ plain HTTP | added p50 |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, f := range strings.Split(conns, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			return fmt.Errorf("-c %q: want connection counts", conns)
		}
		var base benchkit.Result
		for i, t := range []struct {
			name string
			hc   *http.Client
			url  string
		}{
			{"plain HTTP/1.1", client(s.Router, k, nil, false), plainURL},
			{"HTTPS, HTTP/1.1", client(s.RouterTLS, k, tlsConfig(true), false), tlsURL},
			{"HTTPS, HTTP/2", client(s.RouterTLS, k, tlsConfig(true), true), tlsURL},
		} {
			op := get(t.hc, t.url)
			if _, err := benchkit.Measure(t.name, min(n/10, 2000), k, op); err != nil { // warm-up: the connections open
				return err
			}
			r, err := benchkit.Measure(t.name, n, k, op)
			if err != nil {
				return err
			}
			if i == 0 {
				base = r
			}
			row(k, t.name, r, base)
		}
	}
	var base benchkit.Result
	for i, t := range []struct {
		name string
		hc   *http.Client
		url  string
	}{
		{"plain HTTP/1.1, a new connection per request", client(s.Router, 0, nil, false), plainURL},
		{"HTTPS, a new connection per request, sessions resumed", client(s.RouterTLS, 0, tlsConfig(true), false), tlsURL},
		{"HTTPS, a new connection per request, full handshakes", client(s.RouterTLS, 0, tlsConfig(false), false), tlsURL},
	} {
		r, err := benchkit.Measure(t.name, fresh, 1, get(t.hc, t.url))
		if err != nil {
			return err
		}
		if i == 0 {
			base = r
		}
		row(1, t.name, r, base)
	}
	return nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Nanoseconds())/1e6) }
