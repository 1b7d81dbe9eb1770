package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestCoreHandsOffOtherShapes: requests the core does not serve itself are
// served, or refused with 400, by net/http on the same connection, which
// frames them anew for the instance: a request that could be read two
// ways is read one way (Transfer-Encoding over Content-Length, RFC 9112
// 6.3), so no request hides inside another.
func TestCoreHandsOffOtherShapes(t *testing.T) {
	var paths atomic.Value
	paths.Store("")
	_, addr := routed(t, func(w http.ResponseWriter, r *http.Request) {
		paths.Store(paths.Load().(string) + r.URL.Path + " ")
		fmt.Fprintf(w, "%s %s", r.Proto, r.URL.Path)
	})
	tests := []struct {
		name, request string
		code          int
		body          string
	}{
		{"HTTP/1.0", "GET /old HTTP/1.0\r\nHost: app.p.localhost\r\n\r\n", 200, "HTTP/1.1 /old"},
		{"bare LF", "GET /lf HTTP/1.1\nHost: app.p.localhost\n\n", 200, "HTTP/1.1 /lf"},
		{"absolute form", "GET http://app.p.localhost/abs HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n", 200, "HTTP/1.1 /abs"},
		{"no Host", "GET /nohost HTTP/1.1\r\n\r\n", 400, ""},
		{"length and chunked", "POST /smuggle HTTP/1.1\r\nHost: app.p.localhost\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n", 200, "HTTP/1.1 /smuggle"},
		{"two lengths", "POST /two HTTP/1.1\r\nHost: app.p.localhost\r\nContent-Length: 3\r\nContent-Length: 30\r\n\r\nabc", 400, ""},
		{"folded header", "GET /fold HTTP/1.1\r\nHost: app.p.localhost\r\nX-A: 1\r\n 2\r\n\r\n", 200, "HTTP/1.1 /fold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := raw(t, addr, tt.request, 1)[0]
			if b := body(resp); resp.StatusCode != tt.code || tt.body != "" && b != tt.body {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, b, tt.code, tt.body)
			}
		})
	}
	// The bytes after the chunked body are the connection's next request,
	// which the test did not read: the instance saw it on its own, if at
	// all, never inside /smuggle's body.
	if p := paths.Load().(string); strings.Contains(p, "/two") || strings.Contains(p, "nohost") {
		t.Errorf("the instance saw %q", p)
	}
}

// TestCoreH2CPriorKnowledge: a client that speaks HTTP/2 without TLS from
// its first byte is served (by net/http, handed the connection).
func TestCoreH2CPriorKnowledge(t *testing.T) {
	_, addr := routed(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "app.p.localhost"
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(resp); resp.ProtoMajor != 2 || b != "ok" {
		t.Errorf("%s %q, want HTTP/2 ok", resp.Proto, b)
	}
	resp.Body.Close()
}

// TestCoreHopByHopHeaders: headers of one hop stay on it, both ways, and
// Connection: close from the client closes the connection after the
// response, which says so.
func TestCoreHopByHopHeaders(t *testing.T) {
	_, addr := routed(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		fmt.Fprintf(w, "te=%q ka=%q pa=%q xff=%q", r.Header.Get("Te"), r.Header.Get("Keep-Alive"), r.Header.Get("Proxy-Authorization"), r.Header.Get("X-Forwarded-For"))
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.p.localhost\r\nTE: trailers\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic eA==\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b := body(resp); b != `te="" ka="" pa="" xff="10.0.0.1, 10.0.0.2, 127.0.0.1"` {
		t.Errorf("the instance saw %s", b)
	}
	if resp.Header.Get("Keep-Alive") != "" || resp.Header.Get("Proxy-Authenticate") != "" || !resp.Close {
		t.Errorf("response headers %v, close %v", resp.Header, resp.Close)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close the connection is still open (%v)", err)
	}
}

// rawInstance is an instance that answers each request with what answer
// returns for its request line, written as it is.
func rawInstance(t *testing.T, answer func(line string) string) Endpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					a := answer(req.Method + " " + req.RequestURI)
					if _, err := io.WriteString(c, a); err != nil || strings.Contains(a, "Connection: close") {
						return
					}
				}
			}()
		}
	}()
	return Endpoint{ID: ln.Addr().String(), Addr: ln.Addr().String()}
}

// TestCoreResponseShapes: every framing an instance may answer with
// reaches the client whole and right.
func TestCoreResponseShapes(t *testing.T) {
	ep := rawInstance(t, func(line string) string {
		switch line {
		case "HEAD /head":
			return "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
		case "GET /304":
			return "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"
		case "GET /early":
			return "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly"
		case "GET /chunked":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"
		case "GET /until-close":
			return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
		case "GET /old":
			return "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold"
		case "GET /extra":
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
		case "GET /big-head":
			return "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\nContent-Length: 3\r\n\r\nbig"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"
	})
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 100, Timeout: time.Minute}, []Endpoint{ep})
	addr := strings.TrimPrefix(base, "http://")
	tests := []struct {
		request string
		code    int
		body    string
		header  string // a response header that must be there, name=value
	}{
		{"HEAD /head", 200, "", "Content-Length=1000"},
		{"GET /304", 304, "", "Etag=\"x\""},
		{"GET /extra", 200, "ok", ""},
		{"GET /next", 200, "next", ""}, // not "evil": the connection that carried it was not reused
		{"GET /early", 200, "early", ""},
		{"GET /chunked", 200, "abcde", ""},
		{"GET /until-close", 200, "all of it", ""},
		{"GET /old", 200, "old", ""},
		{"GET /extra", 200, "ok", ""},
		{"GET /next", 200, "next", ""},
		{"GET /big-head", 200, "big", ""},
	}
	// All on one client connection: each response must end where it ends.
	// With the loops (loop.go), the first four are theirs; the interim
	// response hands the connection to the goroutine core, which serves
	// the rest.
	c, br := dial(t, addr)
	for _, tt := range tests {
		if _, err := io.WriteString(c, tt.request+" HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		method, _, _ := strings.Cut(tt.request, " ")
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s: %v", tt.request, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != tt.code || string(b) != tt.body {
			t.Errorf("%s: %d %q, want %d %q", tt.request, resp.StatusCode, b, tt.code, tt.body)
		}
		if name, value, ok := strings.Cut(tt.header, "="); ok && resp.Header.Get(name) != value {
			t.Errorf("%s: %s: %q, want %q", tt.request, name, resp.Header.Get(name), value)
		}
		if tt.request == "GET /chunked" && resp.Trailer.Get("X-Sum") != "5" {
			t.Errorf("trailers %v, want X-Sum: 5", resp.Trailer)
		}
	}
}

// TestCoreClientGoneWhileWaiting: a client that goes away while its request
// waits for the instance's answer, or for room on an instance, gives its
// room back at once, and the autoscaler stops counting it.
func TestCoreClientGoneWhileWaiting(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 1, Timeout: time.Minute}, []Endpoint{ep})
	addr := strings.TrimPrefix(base, "http://")
	var conns []net.Conn
	for range 2 { // the first waits for the instance, the second for room
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n")
		conns = append(conns, c)
	}
	waitFor(t, func() bool { return inFlight(r, "rev") == 3 }) // 2 in the router, 1 on the instance
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, func() bool { return inFlight(r, "rev") == 0 })
}

// TestCoreShutdown: Shutdown closes idle connections at once and lets a
// request in flight finish.
func TestCoreShutdown(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		fmt.Fprint(w, "done")
	})
	r := New(Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(r, &http.Server{Handler: r})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	busy, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busy.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n")
	<-started
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the idle connection: %v, want closed", err)
	}
	close(release)
	resp, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil || body(resp) != "done" {
		t.Fatalf("the request in flight: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != http.ErrServerClosed {
		t.Errorf("Serve: %v", err)
	}
}
