package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// routed starts a router serving one revision of the instance h at host
// app.p.localhost and returns the router's address.
func routed(t *testing.T, h http.HandlerFunc) (*Router, string) {
	t.Helper()
	ep := instance(t, h)
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 100, Timeout: time.Minute}, []Endpoint{ep})
	return r, strings.TrimPrefix(base, "http://")
}

// raw sends what a client writes, as it writes it, and returns the
// responses read.
func raw(t *testing.T, addr, request string, responses int) []*http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var out []*http.Response
	for range responses {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", len(out)+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

// dial opens a client connection to addr for 10 s at most, closed when
// the test ends, and a reader of its responses.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func body(r *http.Response) string { b, _ := io.ReadAll(r.Body); return string(b) }

// TestPipelinedRequests: requests a client sends before reading the
// answers come back answered, in order.
func TestPipelinedRequests(t *testing.T) {
	_, addr := routed(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.URL.Path) })
	req := "GET /one HTTP/1.1\r\nHost: app.p.localhost\r\n\r\nGET /two HTTP/1.1\r\nHost: app.p.localhost\r\n\r\nGET /three HTTP/1.1\r\nHost: app.p.localhost\r\nConnection: close\r\n\r\n"
	for i, resp := range raw(t, addr, req, 3) {
		if want := []string{"/one", "/two", "/three"}[i]; resp.StatusCode != 200 || body(resp) != want {
			t.Errorf("response %d: %d %q, want %q", i+1, resp.StatusCode, body(resp), want)
		}
	}
}

// TestExpectContinueAndChunkedUpload: a body sent after 100 Continue, and
// one sent chunked, reach the instance whole.
func TestExpectContinueAndChunkedUpload(t *testing.T) {
	_, addr := routed(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %s %v", len(b), b, r.TransferEncoding)
	})
	c, br := dial(t, addr)
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: app.p.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("before the body: %q, want 100 Continue", line)
	}
	br.ReadString('\n')
	io.WriteString(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || body(resp) != "5 hello []" {
		t.Fatalf("after 100 Continue: %v %q", err, body(resp))
	}
	io.WriteString(c, "POST /up HTTP/1.1\r\nHost: app.p.localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil || body(resp) != "7 abcdefg [chunked]" {
		t.Fatalf("a chunked upload: %v %q", err, body(resp))
	}
}

// TestClientGoneMidResponse: a client that goes away while the instance
// streams its answer ends the request there; its in-flight count is given
// back, and the next request is served.
func TestClientGoneMidResponse(t *testing.T) {
	stopped := make(chan struct{})
	stop := sync.OnceFunc(func() { close(stopped) })
	r, addr := routed(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/stream" {
			fmt.Fprint(w, "ok")
			return
		}
		// The instance learns that its connection from the router closed.
		go func() { <-req.Context().Done(); stop() }()
		for range 100000 { // far longer than the test waits
			if _, err := fmt.Fprintln(w, strings.Repeat("x", 1024)); err != nil {
				return
			}
			if http.NewResponseController(w).Flush() != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n")
	bufio.NewReader(c).ReadString('\n')
	c.Close()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		t.Fatal("the router still reads the instance's answer 2 s after the client went away")
	}
	waitFor(t, func() bool { return inFlight(r, "rev") == 0 })
	if resp := raw(t, addr, "GET /next HTTP/1.1\r\nHost: app.p.localhost\r\nConnection: close\r\n\r\n", 1)[0]; resp.StatusCode != 200 || body(resp) != "ok" {
		t.Errorf("the next request: %d", resp.StatusCode)
	}
}

// TestInstanceClosesKeptAliveConnection: an instance that closes its
// kept-alive connections between requests costs its clients nothing: the
// router sends the request again on a new connection.
func TestInstanceClosesKeptAliveConnection(t *testing.T) {
	var conns atomic.Int32
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	// A listener in front of the instance that closes each connection
	// after it was idle 50 ms, without saying so (as a server's idle
	// timeout does).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			out, err := net.Dial("tcp", ep.Addr)
			if err != nil {
				in.Close()
				continue
			}
			go func() {
				buf := make([]byte, 4096)
				for {
					in.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
					n, err := in.Read(buf)
					if err != nil {
						in.Close()
						out.Close()
						return
					}
					out.Write(buf[:n])
				}
			}()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 100, Timeout: time.Minute}, []Endpoint{{ID: "i", Addr: ln.Addr().String()}})
	for i := range 3 {
		if code, b := get(t, base, "app.p.localhost"); code != 200 || b != "ok" {
			t.Fatalf("request %d: %d %q", i+1, code, b)
		}
		time.Sleep(150 * time.Millisecond) // the kept-alive connection is closed meanwhile
	}
	if n := conns.Load(); n < 2 {
		t.Errorf("%d connections to the instance: the closed one was not replaced", n)
	}
}

func inFlight(r *Router, key string) int {
	rev := r.revision(key)
	rev.mu.Lock()
	defer rev.mu.Unlock()
	n := rev.inRouter
	for _, b := range rev.all {
		n += b.inflight
	}
	return n
}

// TestCoreWatchAcrossRequests: on one kept-alive client connection,
// responses that come at once and responses awaited past watchDelay (the
// client is watched for them) alternate; each is answered, in order, over
// one kept-alive connection to the instance, whose deadline the requests
// share. Then a client that goes away while a response is awaited gives
// its room back, and the instance's request is cut.
func TestCoreWatchAcrossRequests(t *testing.T) {
	var mu sync.Mutex
	remotes := map[string]bool{}
	cut := make(chan struct{}, 1)
	r, addr := routed(t, func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		remotes[req.RemoteAddr] = true
		mu.Unlock()
		switch req.URL.Path {
		case "/slow":
			time.Sleep(3 * watchDelay)
		case "/hang":
			<-req.Context().Done()
			cut <- struct{}{}
			return
		}
		fmt.Fprint(w, req.URL.Path)
	})
	c, br := dial(t, addr)
	for i, path := range []string{"/fast", "/slow", "/fast", "/fast", "/slow", "/slow", "/fast"} {
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d (%s): %v", i+1, path, err)
		}
		if b := body(resp); resp.StatusCode != 200 || b != path {
			t.Fatalf("request %d (%s): %d %q", i+1, path, resp.StatusCode, b)
		}
	}
	mu.Lock()
	if len(remotes) != 1 {
		t.Errorf("%d connections to the instance for one client's requests, one at a time: want 1", len(remotes))
	}
	mu.Unlock()
	io.WriteString(c, "GET /hang HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n")
	waitFor(t, func() bool { return inFlight(r, "rev") == 2 }) // in the router, and on the instance
	c.Close()
	select {
	case <-cut:
	case <-time.After(2 * time.Second):
		t.Fatal("the instance still serves the request 2 s after its client went away")
	}
	waitFor(t, func() bool { return inFlight(r, "rev") == 0 })
}

func TestRoundDeadline(t *testing.T) {
	base := time.Unix(1000, 0)
	for _, c := range []struct {
		name    string
		d       time.Time
		timeout time.Duration
		want    time.Time
	}{
		{"no deadline", time.Time{}, time.Minute, time.Time{}},
		{"a long timeout: a quarter of a second", base.Add(100 * time.Millisecond), 5 * time.Minute, base.Add(250 * time.Millisecond)},
		{"on a step", base.Add(250 * time.Millisecond), 5 * time.Minute, base.Add(250 * time.Millisecond)},
		{"a second: a hundredth", base.Add(11 * time.Millisecond), time.Second, base.Add(20 * time.Millisecond)},
		{"a short timeout: a millisecond", base.Add(1500 * time.Microsecond), 50 * time.Millisecond, base.Add(2 * time.Millisecond)},
	} {
		if got := roundDeadline(c.d, c.timeout); !got.Equal(c.want) {
			t.Errorf("%s: roundDeadline(%v, %v) = %v, want %v", c.name, c.d, c.timeout, got, c.want)
		}
	}
}
