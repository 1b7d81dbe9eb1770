package router

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// instance is an app instance: a real HTTP server on loopback.
func instance(t *testing.T, h http.HandlerFunc) Endpoint {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return Endpoint{ID: s.URL, Addr: strings.TrimPrefix(s.URL, "http://")}
}

// newRouter returns a router served as coligo serves it: by its own core
// (Server), which hands what it does not serve to net/http.
func newRouter(t *testing.T, cfg Config) (*Router, string) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	r := New(cfg)
	return r, serve(t, r)
}

// serve serves r on a loopback port of its own and returns its base URL.
func serve(t testing.TB, r *Router) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fallback := &http.Server{Handler: r, Protocols: new(http.Protocols)}
	fallback.Protocols.SetHTTP1(true)
	fallback.Protocols.SetUnencryptedHTTP2(true)
	s := NewServer(r, fallback)
	useRings(t, s)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve: %v, want http.ErrServerClosed", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// useRings serves the test's connections on io_uring loops, as coligo
// does, unless COLIGO_ROUTER_RINGS=0 (make test runs the package both
// ways). Where io_uring is refused the goroutine core serves them, but in
// CI that fails the test.
func useRings(t testing.TB, s *Server) {
	t.Helper()
	if os.Getenv("COLIGO_ROUTER_RINGS") == "0" {
		return
	}
	if err := s.UseRings(2); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("COLIGO_REQUIRE_INTEGRATION") != "" {
			t.Fatal(err)
		}
		t.Logf("the goroutine core serves: %v", err)
	}
}

func get(t *testing.T, base, host string) (int, string) {
	t.Helper()
	return getPath(t, base, "/path?q=1", host)
}

// getPath is get of another path.
func getPath(t *testing.T, base, path, host string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUnknownHost(t *testing.T) {
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"private.p.localhost": {Revision: "p/a-00001", Public: false}})
	for _, host := range []string{"nothing.localhost", "private.p.localhost:8080"} {
		code, body := get(t, base, host)
		if code != 404 || !strings.Contains(body, "no app is served at") {
			t.Errorf("%s: %d %q, want 404 naming the host", host, code, body)
		}
	}
}

func TestProxiesWithForwardedHeaders(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s uri=%s xff=%s xfh=%s xfp=%s", r.Host, r.RequestURI,
			r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"))
	})
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	code, body := get(t, base, "App.P.localhost:8080")
	want := "host=App.P.localhost:8080 uri=/path?q=1 xff=127.0.0.1 xfh=App.P.localhost:8080 xfp=http"
	if code != 200 || body != want {
		t.Errorf("got %d %q, want 200 %q", code, body, want)
	}
}

// gate is an instance whose requests block until released.
type gate struct {
	mu      sync.Mutex
	release chan struct{}
	arrived chan string
}

func newGate() *gate { return &gate{release: make(chan struct{}), arrived: make(chan string, 100)} }

func (g *gate) handler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		g.arrived <- name
		<-g.release
		fmt.Fprint(w, name)
	}
}

func TestLeastInFlight(t *testing.T) {
	g := newGate()
	a, b := instance(t, g.handler("a")), instance(t, g.handler("b"))
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{a, b})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { get(t, base, "app.p.localhost") })
	}
	got := map[string]int{}
	for range 4 {
		got[<-g.arrived]++
	}
	close(g.release)
	wg.Wait()
	if got["a"] != 2 || got["b"] != 2 {
		t.Errorf("4 concurrent requests went %v, want 2 to each instance", got)
	}
}

func TestConcurrencyCapQueuesThen503(t *testing.T) {
	g := newGate()
	ep := instance(t, g.handler("a"))
	r, base := newRouter(t, Config{QueueDepth: 1})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 1, Timeout: time.Minute}, []Endpoint{ep})
	codes := make(chan int, 2)
	go func() { c, _ := get(t, base, "app.p.localhost"); codes <- c }()
	<-g.arrived
	go func() { c, _ := get(t, base, "app.p.localhost"); codes <- c }()
	waitFor(t, func() bool { return queued(r, "rev") == 1 })
	select {
	case name := <-g.arrived:
		t.Fatalf("a second request reached the instance (%s) past concurrency 1", name)
	default:
	}
	code, body := get(t, base, "app.p.localhost")
	if code != 503 || !strings.Contains(body, "concurrency limit") {
		t.Errorf("third request: %d %q, want 503", code, body)
	}
	close(g.release)
	for range 2 {
		if c := <-codes; c != 200 {
			t.Errorf("queued request got %d", c)
		}
	}
}

func queued(r *Router, key string) int {
	rev := r.revision(key)
	rev.mu.Lock()
	defer rev.mu.Unlock()
	return len(rev.waiters)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRequestTimeout(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"slow.p.localhost": {Revision: "rev", Public: true}, "cold.p.localhost": {Revision: "cold", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: 200 * time.Millisecond}, []Endpoint{ep})
	r.SetRevision("cold", RevisionConfig{Concurrency: 10, Timeout: 200 * time.Millisecond}, nil)
	for _, host := range []string{"slow.p.localhost", "cold.p.localhost"} {
		code, body := get(t, base, host)
		if code != 504 || !strings.Contains(body, "scale_request_timeout (200ms)") {
			t.Errorf("%s: %d %q, want 504 naming the timeout", host, code, body)
		}
	}
	if n := queued(r, "cold"); n != 0 {
		t.Errorf("%d requests still queued after their timeout", n)
	}
}

func TestScaleFromZeroHoldsAndWakes(t *testing.T) {
	woken := make(chan string, 10)
	r, base := newRouter(t, Config{Wake: func(rev string) { woken <- rev }})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, nil)
	done := make(chan string)
	go func() { _, body := get(t, base, "app.p.localhost"); done <- body }()
	if got := <-woken; got != "rev" {
		t.Fatalf("woke %q", got)
	}
	if st := r.Stats("")["rev"]; !st.Waiting {
		t.Errorf("stats %+v: want Waiting while held", st)
	}
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	select {
	case body := <-done:
		if body != "hello" {
			t.Errorf("held request got %q", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held request not served once an instance was ready")
	}
}

func TestDrainKeepsInFlightRequests(t *testing.T) {
	g := newGate()
	old := instance(t, g.handler("old"))
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{old})
	done := make(chan string)
	go func() { _, body := get(t, base, "app.p.localhost"); done <- body }()
	<-g.arrived
	fresh := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "new") })
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{fresh})
	if n := r.InFlight("rev", old.ID); n != 1 {
		t.Errorf("draining instance in flight = %d, want 1", n)
	}
	if _, body := get(t, base, "app.p.localhost"); body != "new" {
		t.Errorf("new request went to %q, want the new instance", body)
	}
	close(g.release)
	if body := <-done; body != "old" {
		t.Errorf("in-flight request got %q", body)
	}
	if n := r.InFlight("rev", old.ID); n != 0 {
		t.Errorf("drained instance in flight = %d", n)
	}
}

func TestStreamsWithoutBuffering(t *testing.T) {
	next := make(chan struct{})
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		fmt.Fprint(w, "second\n")
	})
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	req, _ := http.NewRequest("GET", base, nil)
	req.Host = "app.p.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	close(next)
	if line, _ := br.ReadString('\n'); line != "second\n" {
		t.Errorf("second line %q", line)
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		rw.Flush()
		line, _ := rw.ReadString('\n')
		rw.WriteString("echo " + line)
		rw.Flush()
	})
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"ws.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: ws.p.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	fmt.Fprint(conn, "ping\n")
	if line, _ := br.ReadString('\n'); line != "echo ping\n" {
		t.Errorf("through the upgraded connection: %q", line)
	}
}

func TestH2C(t *testing.T) {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}))
	s.Config.Protocols = new(http.Protocols)
	s.Config.Protocols.SetUnencryptedHTTP2(true)
	s.Start()
	t.Cleanup(s.Close)
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"grpc.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute, H2C: true},
		[]Endpoint{{ID: "i", Addr: strings.TrimPrefix(s.URL, "http://")}})
	if code, body := get(t, base, "grpc.p.localhost"); code != 200 || body != "HTTP/2.0" {
		t.Errorf("got %d %q, want the instance to see HTTP/2.0", code, body)
	}
}

func TestStatsAverageConcurrency(t *testing.T) {
	g := newGate()
	ep := instance(t, g.handler("a"))
	r, base := newRouter(t, Config{})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	r.Stats("")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { get(t, base, "app.p.localhost") })
	}
	for range 3 {
		<-g.arrived
	}
	r.Stats("") // from here on exactly 3 are in flight
	time.Sleep(100 * time.Millisecond)
	st := r.Stats("")["rev"]
	close(g.release)
	wg.Wait()
	if st.Concurrency < 2.9 || st.Concurrency > 3.01 {
		t.Errorf("average concurrency %.3f, want 3", st.Concurrency)
	}
}

func TestRemoveRevisionReleasesWaiters(t *testing.T) {
	var woken atomic.Int32
	r, base := newRouter(t, Config{Wake: func(string) { woken.Add(1) }})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	done := make(chan int)
	go func() { c, _ := get(t, base, "app.p.localhost"); done <- c }()
	waitFor(t, func() bool { return woken.Load() == 1 })
	r.RemoveRevision("rev")
	if code := <-done; code != 503 {
		t.Errorf("held request of a removed revision got %d, want 503", code)
	}
}

func TestInternalListenerServesOnlyItsProject(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "internal") })
	r, _ := newRouter(t, Config{})
	t.Cleanup(r.Close)
	r.SetRoutes(map[string]Route{
		"private.p.svc": {Revision: "rev", Project: "p"},
		"other.q.svc":   {Revision: "rev", Project: "q"},
	})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	addr := func() netip.AddrPort {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return netip.MustParseAddrPort(ln.Addr().String())
	}
	own, foreign := addr(), addr()
	if err := r.ServeProject("p", own, netip.MustParsePrefix("127.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	if err := r.ServeProject("p", own, netip.MustParsePrefix("127.0.0.0/8")); err != nil {
		t.Fatalf("serving again with the same values: %v", err)
	}
	if err := r.ServeProject("x", foreign, netip.MustParsePrefix("10.0.0.0/24")); err != nil {
		t.Fatal(err)
	}
	base := "http://" + own.String()
	if code, body := get(t, base, "private.p.svc"); code != 200 || body != "internal" {
		t.Errorf("own project: %d %q", code, body)
	}
	if code, _ := get(t, base, "other.q.svc"); code != 404 {
		t.Errorf("another project's app on this project's listener: %d, want 404", code)
	}
	if code, _ := get(t, "http://"+foreign.String(), "private.p.svc"); code != 403 {
		t.Errorf("a client outside the project's subnet: %d, want 403", code)
	}
	r.StopProject("p")
	if _, err := http.Get(base); err == nil {
		t.Error("the listener still answers after StopProject")
	}
}

// TestSharedListenerServesEachCallerItsProject: where projects share one
// network, one listener serves every project, each caller the project its
// address belongs to, and a caller of no served project nothing.
func TestSharedListenerServesEachCallerItsProject(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "internal") })
	var caller atomic.Value
	caller.Store("p")
	r, _ := newRouter(t, Config{ProjectOf: func(a netip.Addr) (string, bool) {
		p := caller.Load().(string)
		return p, p != "" && a.IsLoopback()
	}})
	t.Cleanup(r.Close)
	r.SetRoutes(map[string]Route{
		"private.p.svc": {Revision: "rev", Project: "p"},
		"other.q.svc":   {Revision: "rev", Project: "q"},
	})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	for _, p := range []string{"p", "q"} {
		if err := r.ServeProject(p, addr, netip.MustParsePrefix("127.0.0.0/8")); err != nil {
			t.Fatalf("serve %s on the shared address: %v", p, err)
		}
	}
	base := "http://" + addr.String()
	tests := []struct {
		caller, host string
		code         int
	}{
		{"p", "private.p.svc", 200},
		{"p", "other.q.svc", 404},
		{"q", "other.q.svc", 200},
		{"q", "private.p.svc", 404},
		{"z", "private.p.svc", 403}, // a project not served
		{"", "private.p.svc", 403},  // an address of no instance
	}
	for _, tt := range tests {
		caller.Store(tt.caller)
		if code, _ := get(t, base, tt.host); code != tt.code {
			t.Errorf("caller %q, host %s: %d, want %d", tt.caller, tt.host, code, tt.code)
		}
	}
	r.StopProject("p")
	caller.Store("p")
	if code, _ := get(t, base, "private.p.svc"); code != 403 {
		t.Errorf("after StopProject(p): %d, want 403", code)
	}
}

func TestWaitingRequestFollowsTheRouteToANewRevision(t *testing.T) {
	r, base := newRouter(t, Config{Wake: func(string) {}})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "old", Public: true}})
	r.SetRevision("old", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, nil)
	done := make(chan string)
	go func() { _, body := get(t, base, "app.p.localhost"); done <- body }()
	waitFor(t, func() bool { return queued(r, "old") == 1 })
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "new") })
	r.SetRevision("new", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "new", Public: true}})
	select {
	case body := <-done:
		if body != "new" {
			t.Errorf("the waiting request got %q, want the new revision's answer", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a request waiting for the old revision was not moved to the new one")
	}
}

// TestRoutesOfTwoOwners: the app and function controllers each publish
// their routes; one replacing its own leaves the other's, and where both
// route a host, the first owner by name keeps it.
func TestRoutesOfTwoOwners(t *testing.T) {
	app := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "app") })
	fn := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "function") })
	r, base := newRouter(t, Config{})
	r.SetRevision("p/a-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{app})
	r.SetRevision("p/f-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{fn})
	r.SetRoutes(map[string]Route{"a.p.localhost": {Revision: "p/a-00001", Public: true}, "both.p.localhost": {Revision: "p/a-00001", Public: true}})
	r.SetRoutesOf("function", map[string]Route{"f.p.localhost": {Revision: "p/f-00001", Public: true}, "both.p.localhost": {Revision: "p/f-00001", Public: true}})
	for host, want := range map[string]string{"a.p.localhost": "app", "f.p.localhost": "function", "both.p.localhost": "app"} {
		if _, body := get(t, base, host); body != want {
			t.Errorf("%s: %q, want %q", host, body, want)
		}
	}
	r.SetRoutes(nil)
	for host, want := range map[string]int{"a.p.localhost": 404, "f.p.localhost": 200, "both.p.localhost": 200} {
		if code, _ := get(t, base, host); code != want {
			t.Errorf("after the apps' routes went, %s: %d, want %d", host, code, want)
		}
	}
}

// TestDomains: a custom domain serves as its target's host, follows the
// target to a new revision, and goes with it; it never takes over a host
// an app serves, and its certificate is handed out only while it routes.
func TestDomains(t *testing.T) {
	one := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "one") })
	two := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "two") })
	r, base := newRouter(t, Config{})
	r.SetRevision("p/a-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{one})
	r.SetRevision("p/a-00002", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{two})
	r.SetRevision("q/b-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{two})
	r.SetRoutes(map[string]Route{"a.p.localhost": {Revision: "p/a-00001", Project: "p"}, "b.q.localhost": {Revision: "q/b-00001", Public: true}})
	cert := &tls.Certificate{}
	r.SetDomains(map[string]string{"WWW.example.com": "a.p.localhost", "b.q.localhost": "a.p.localhost", "gone.example.com": "x.p.localhost"},
		map[string]*tls.Certificate{"www.example.com": cert, "gone.example.com": cert})
	for host, want := range map[string]string{"www.example.com": "one", "b.q.localhost": "two"} {
		if _, body := get(t, base, host); body != want {
			t.Errorf("%s: %q, want %q", host, body, want)
		}
	}
	if code, _ := get(t, base, "gone.example.com"); code != 404 {
		t.Errorf("a domain whose target is not served: %d", code)
	}
	if r.Certificate("www.example.com") != cert || r.Certificate("gone.example.com") != nil || r.Certificate("a.p.localhost") != nil {
		t.Error("certificates handed out for the wrong names")
	}
	r.SetRoutes(map[string]Route{"a.p.localhost": {Revision: "p/a-00002", Project: "p"}})
	if _, body := get(t, base, "www.example.com"); body != "two" {
		t.Errorf("after the target's new revision: %q", body)
	}
	r.SetRoutes(nil)
	if code, _ := get(t, base, "www.example.com"); code != 404 || r.Certificate("www.example.com") != nil {
		t.Errorf("after the target went: %d", code)
	}
}

// TestRedirect: a route that redirects answers plain HTTP, through the core
// and through net/http, with a redirect to the same URL over HTTPS, custom
// domains too; HTTPS requests are served; without HTTPS nothing redirects.
func TestRedirect(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "served") })
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // Location; "" when served
	}{
		{"https on 8443", Config{HTTPSPort: ":8443"}, "https://%s:8443/p?q=1"},
		{"https on 443", Config{}, "https://%s/p?q=1"},
		{"no https", Config{HTTPSOff: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, base := newRouter(t, tc.cfg)
			r.SetRevision("p/a-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
			r.SetRoutes(map[string]Route{"a.p.localhost": {Revision: "p/a-00001", Public: true, Redirect: true}})
			r.SetDomains(map[string]string{"www.example.com": "a.p.localhost"}, nil)
			for _, host := range []string{"a.p.localhost", "www.example.com"} {
				for _, method := range []string{"GET", "POST"} {
					req, _ := http.NewRequest(method, base+"/p?q=1", strings.NewReader("body"))
					req.Host = host
					resp, err := noFollow.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if tc.want == "" {
						if resp.StatusCode != 200 {
							t.Errorf("%s %s: %d, want it served", method, host, resp.StatusCode)
						}
						continue
					}
					if want := fmt.Sprintf(tc.want, host); resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
						t.Errorf("%s %s: %d %q, want 308 %q", method, host, resp.StatusCode, resp.Header.Get("Location"), want)
					}
				}
			}
			req := httptest.NewRequest("GET", "https://a.p.localhost/p", nil)
			req.TLS = &tls.ConnectionState{}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.String() != "served" {
				t.Errorf("over HTTPS: %d %q", rec.Code, rec.Body.String())
			}
		})
	}
}

// TestChallenge: an ACME HTTP-01 challenge is answered on plain HTTP for
// any host, before routing and redirects, through the core too; once
// removed, the path is the app's again.
func TestChallenge(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "app") })
	r, base := newRouter(t, Config{HTTPSPort: ":8443"})
	r.SetRevision("p/a-00001", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	r.SetRoutes(map[string]Route{"a.p.localhost": {Revision: "p/a-00001", Public: true, Redirect: true}})
	r.SetChallenge("tok", "tok.thumbprint")
	for _, host := range []string{"www.example.com", "a.p.localhost"} {
		if code, body := getPath(t, base, ChallengePath+"tok", host); code != 200 || body != "tok.thumbprint" {
			t.Errorf("%s: %d %q", host, code, body)
		}
	}
	if code, _ := getPath(t, base, ChallengePath+"other", "www.example.com"); code != 404 {
		t.Errorf("another token: %d", code)
	}
	r.RemoveChallenge("tok")
	if code, _ := getPath(t, base, ChallengePath+"tok", "www.example.com"); code != 404 {
		t.Errorf("a removed challenge: %d", code)
	}
}
