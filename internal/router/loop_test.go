package router

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ringServer serves r on io_uring loops with the idle timeout idle, and
// returns the Server and its address.
func ringServer(t *testing.T, r *Router, idle time.Duration) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("COLIGO_ROUTER_RINGS") == "0" {
		t.Skip("the loops are off (COLIGO_ROUTER_RINGS=0)")
	}
	s := NewServer(r, &http.Server{Handler: r, IdleTimeout: idle})
	if useRings(t, s); s.rings == nil {
		t.Skip("io_uring is refused here")
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return s, ln.Addr().String()
}

func (s *Server) handedOver() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// TestLoopServesTheCommonCase: a loop serves requests of the common shape
// on a kept-alive connection itself, and hands the connection to the
// goroutine core at the first response it does not serve (chunked), which
// serves it from there; the loop closes a connection idle past the idle
// timeout.
func TestLoopServesTheCommonCase(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/chunked" {
			fmt.Fprint(w, "part one, ")
			w.(http.Flusher).Flush()
			fmt.Fprint(w, "part two")
			return
		}
		fmt.Fprintf(w, "%s from %s", req.URL.Path, req.Header.Get("X-Forwarded-For"))
	})
	r := New(Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	s, addr := ringServer(t, r, 1500*time.Millisecond)
	c, br := dial(t, addr)
	ask := func(path string) string {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for i := range 20 {
		if b := ask(fmt.Sprintf("/%d", i)); b != fmt.Sprintf("/%d from 127.0.0.1", i) {
			t.Fatalf("request %d: %q", i, b)
		}
	}
	if n, h := s.rings.count(), s.handedOver(); n != 1 || h != 0 {
		t.Fatalf("after 20 requests of the common shape: %d connections on the loops, %d handed over; want 1 and 0", n, h)
	}
	if b := ask("/chunked"); b != "part one, part two" {
		t.Fatalf("chunked: %q", b)
	}
	if b := ask("/after"); b != "/after from 127.0.0.1" {
		t.Fatalf("after the hand-over: %q", b)
	}
	if n, h := s.rings.count(), s.handedOver(); n != 0 || h != 1 {
		t.Fatalf("after a chunked response: %d connections on the loops, %d handed over; want 0 and 1", n, h)
	}

	// Idle past the timeout, a loop's connection is closed.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprint(idle, "GET /x HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(ibr, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("idle connection's request: %v", err)
	} else {
		io.ReadAll(resp.Body)
	}
	idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Errorf("an idle connection: %v after %v, want it closed (EOF)", err, time.Since(start))
	}
}

// TestLoopRefusesAndTimesOut: a loop answers a host it does not serve
// with 404 and keeps the connection; a request past its timeout gets 504.
func TestLoopRefusesAndTimesOut(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/slow" {
			time.Sleep(time.Second)
		}
		io.WriteString(w, "ok")
	})
	r := New(Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: 200 * time.Millisecond, Owner: "app"}, []Endpoint{ep})
	s, addr := ringServer(t, r, time.Minute)
	resps := raw(t, addr, "GET / HTTP/1.1\r\nHost: nobody.p.localhost\r\n\r\nGET /slow HTTP/1.1\r\nHost: app.p.localhost\r\n\r\nGET / HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n", 3)
	if resps[0].StatusCode != 404 || !strings.Contains(body(resps[0]), "nobody.p.localhost") {
		t.Errorf("an unknown host: %d", resps[0].StatusCode)
	}
	if resps[1].StatusCode != 504 {
		t.Errorf("past the timeout: %d, want 504", resps[1].StatusCode)
	}
	if resps[2].StatusCode != 200 {
		t.Errorf("after a 504: %d", resps[2].StatusCode)
	}
	if h := s.handedOver(); h != 0 {
		t.Errorf("%d connections handed over: the loop serves these itself", h)
	}
}

// TestLoopSlowReader: a client that sends many requests at once and reads
// none of their responses until its socket is full gets each of them
// whole and in order: the loop sends what its socket has room for and the
// rest once there is more, and no response's buffer is reused before it
// is sent.
func TestLoopSlowReader(t *testing.T) {
	const n, size = 600, 12 << 10 // 7 MiB: more than a socket's send buffer grows to (4 MiB)
	ep := instance(t, func(w http.ResponseWriter, req *http.Request) {
		b := strings.Repeat(req.URL.Path[1:], size/6)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		io.WriteString(w, b)
	})
	r := New(Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: time.Minute}, []Endpoint{ep})
	s, addr := ringServer(t, r, time.Minute)
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		for i := range n {
			fmt.Fprintf(c, "GET /%05d HTTP/1.1\r\nHost: app.p.localhost\r\n\r\n", i)
		}
	}()
	full := func() int64 {
		n := int64(0)
		for _, l := range s.rings.all {
			n += l.full.Load()
		}
		return n
	}
	for deadline := time.Now().Add(20 * time.Second); full() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // until the loop's sends find the socket full
	}
	br := bufio.NewReader(c)
	for i := range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		if b, want := body(resp), strings.Repeat(fmt.Sprintf("%05d", i), size/6); b != want {
			t.Fatalf("response %d: %d bytes, %.20q…; want %d bytes of %05d", i, len(b), b, len(want), i)
		}
	}
	if h, f := s.handedOver(), full(); h != 0 || f == 0 {
		t.Errorf("%d connections handed over, %d responses sent in parts: want none handed over, some in parts", h, f)
	}
}

// TestLoopDeadlines: one timer serves a loop's requests at instances; a
// request with a shorter timeout than one already waiting on the same loop
// gets its 504 by its own timeout, and the waiting one is not ended by
// that. (The test's Server has two loops, given connections in turn.)
func TestLoopDeadlines(t *testing.T) {
	ep := instance(t, func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})
	r := New(Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]Route{"long.p.localhost": {Revision: "long", Public: true}, "short.p.localhost": {Revision: "short", Public: true}})
	r.SetRevision("long", RevisionConfig{Concurrency: 10, Timeout: 15 * time.Second, Owner: "app"}, []Endpoint{ep})
	r.SetRevision("short", RevisionConfig{Concurrency: 10, Timeout: 300 * time.Millisecond, Owner: "app"}, []Endpoint{ep})
	s, addr := ringServer(t, r, time.Minute)
	long, lbr := dial(t, addr)
	fmt.Fprint(long, "GET / HTTP/1.1\r\nHost: long.p.localhost\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // at the instance, the timer set for it
	dial(t, addr)                      // the other loop's: the next is long's loop's
	short, sbr := dial(t, addr)
	fmt.Fprint(short, "GET / HTTP/1.1\r\nHost: short.p.localhost\r\n\r\n")
	short.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(sbr, nil); err != nil || resp.StatusCode != 504 {
		t.Fatalf("the request of 300 ms while one of 15 s waits: %v %v, want a 504 (before 5 s)", resp, err)
	}
	long.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := lbr.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the request of 15 s after the other's 504: %v, want it still waiting", err)
	}
	if h := s.handedOver(); h != 0 {
		t.Errorf("%d connections handed over: the loop serves these itself", h)
	}
}

// TestLoopInstanceThatDoesNotRead: an instance that answers each request
// without reading it (a byte of it only) fills its socket; a request the
// loop finds no room for there (its send fails at once: SendNow, never
// left under way in the kernel, TestSendNow) goes again on a new
// connection, and every request is answered.
func TestLoopInstanceThatDoesNotRead(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						return
					}
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
						return
					}
				}
			}()
		}
	}()
	r := New(Config{Logger: slog.New(slog.DiscardHandler)})
	r.SetRoutes(map[string]Route{"app.p.localhost": {Revision: "rev", Public: true}})
	r.SetRevision("rev", RevisionConfig{Concurrency: 10, Timeout: 10 * time.Second}, []Endpoint{{ID: "i", Addr: ln.Addr().String()}})
	s, addr := ringServer(t, r, time.Minute)
	c, br := dial(t, addr)
	pad := strings.Repeat("x", 12<<10)
	for i := range 30 {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: app.p.localhost\r\nX-Pad: %s\r\n\r\n", i, pad)
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if b := body(resp); resp.StatusCode != 200 || b != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	if n, h := accepted.Load(), s.handedOver(); n < 2 || h != 0 {
		t.Errorf("%d connections to the instance, %d handed over: want more than one (a full one is not sent on), none handed over", n, h)
	}
}
