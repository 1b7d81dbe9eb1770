package router

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestParseRequestHead(t *testing.T) {
	tests := []struct {
		name, head string
		ok         bool
		host       string
		length     int64
		close      bool
	}{
		{"plain", "GET /a?b=1 HTTP/1.1\r\nHost: app.p.localhost\r\nAccept: */*\r\n\r\n", true, "app.p.localhost", 0, false},
		{"body", "POST / HTTP/1.1\r\nHost: a:8080\r\nContent-Length: 12\r\n\r\n", true, "a:8080", 12, false},
		{"close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", true, "a", 0, true},
		{"white space around values", "GET / HTTP/1.1\r\nHost:  a \t\r\nX-A:\r\n\r\n", true, "a", 0, false},
		// Every other shape is net/http's, which serves or refuses it.
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n", false, "", 0, false},
		{"h2c preface", "PRI * HTTP/2.0\r\n\r\n", false, "", 0, false},
		{"absolute form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", false, "", 0, false},
		{"no host", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", false, "", 0, false},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false, "", 0, false},
		{"two lengths", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", false, "", 0, false},
		{"length and chunked", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n", false, "", 0, false},
		{"signed length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +4\r\n\r\n", false, "", 0, false},
		{"huge length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n", false, "", 0, false},
		{"expect", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", false, "", 0, false},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, "", 0, false},
		{"connection names a header", "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Secret\r\nX-Secret: 1\r\n\r\n", false, "", 0, false},
		{"folded line", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", false, "", 0, false},
		{"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", false, "", 0, false},
		{"bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", false, "", 0, false},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x002\r\n\r\n", false, "", 0, false},
		{"space in target", "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", false, "", 0, false},
		{"odd host", "GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", false, "", 0, false},
		{"lower-case version", "GET / http/1.1\r\nHost: a\r\n\r\n", false, "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h requestHead
			ok := parseRequestHead([]byte(tt.head), &h)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (string(h.host) != tt.host || h.contentLength != tt.length || h.close != tt.close) {
				t.Errorf("host %q length %d close %v, want %q %d %v", h.host, h.contentLength, h.close, tt.host, tt.length, tt.close)
			}
		})
	}
}

func TestParseResponseHead(t *testing.T) {
	tests := []struct {
		name, head string
		ok         bool
		status     int
		length     int64
	}{
		{"plain", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\n", true, 200, 5},
		{"no reason", "HTTP/1.1 204\r\n\r\n", true, 204, -1},
		{"close", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", true, 200, 0},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 0, 0},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false, 0, 0},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", false, 0, 0},
		{"short code", "HTTP/1.1 20 OK\r\n\r\n", false, 0, 0},
		{"code glued to reason", "HTTP/1.1 200OK\r\n\r\n", false, 0, 0},
		{"control byte in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", false, 0, 0},
		{"connection names a header", "HTTP/1.1 200 OK\r\nConnection: X-A\r\nContent-Length: 0\r\n\r\n", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h responseHead
			ok := parseResponseHead([]byte(tt.head), &h)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (h.status != tt.status || h.contentLength != tt.length) {
				t.Errorf("status %d length %d, want %d %d", h.status, h.contentLength, tt.status, tt.length)
			}
		})
	}
}

func TestRouteHost(t *testing.T) {
	for in, want := range map[string]string{
		"App.P.localhost": "app.p.localhost", "a:8080": "a", "a:": "a", "a:b:c": "a:b:c",
		"[::1]:80": "::1", "[::1]": "[::1]", "[::1]x": "[::1]x", "": "",
	} {
		if got := string(routeHost(nil, []byte(in))); got != want {
			t.Errorf("routeHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRequestHead: a head the core takes is one net/http reads the same
// way — method, target, host, length and every header it forwards — so
// the core and the instance (and net/http, which serves the rest) never
// disagree on where a request ends.
func FuzzRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /x?y HTTP/1.1\r\nHost: a:1\r\nContent-Length: 3\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nKeep-Alive: 5\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 01\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b)
		if n <= 0 {
			return
		}
		head := b[:n]
		var h requestHead
		if !parseRequestHead(head, &h) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(head)))
		if err != nil {
			t.Fatalf("the core takes a head net/http refuses (%v): %q", err, head)
		}
		if req.Method != string(h.method) || req.RequestURI != string(h.target) || req.Host != string(h.host) {
			t.Fatalf("core %q %q %q, net/http %q %q %q", h.method, h.target, h.host, req.Method, req.RequestURI, req.Host)
		}
		if req.ContentLength != h.contentLength || req.Close != h.close || len(req.TransferEncoding) > 0 {
			t.Fatalf("core length %d close %v, net/http %d %v %v: %q", h.contentLength, h.close, req.ContentLength, req.Close, req.TransferEncoding, head)
		}
		for _, l := range h.lines {
			if l.kind != lineCopy {
				continue
			}
			name, _, _ := strings.Cut(string(head[l.start:l.end]), ":")
			if got := strings.Join(req.Header.Values(name), "\x00"); !strings.Contains(got, string(head[l.val:l.vend])) {
				t.Fatalf("header %q: core %q, net/http %q", name, head[l.val:l.vend], got)
			}
		}
	})
}

// FuzzResponseHead: a response head the core copies itself is one
// net/http reads the same way: status and, where there is a body, its
// length.
func FuzzResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\nDate: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nConnection: close, keep-alive\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 999 \r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := headEnd(b)
		if n <= 0 {
			return
		}
		head := b[:n]
		var h responseHead
		if !parseResponseHead(head, &h) {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), &http.Request{Method: http.MethodGet})
		if err != nil {
			t.Fatalf("the core takes a head net/http refuses (%v): %q", err, head)
		}
		if resp.StatusCode != h.status || !bodyless([]byte("GET"), h.status) && h.contentLength >= 0 && resp.ContentLength != h.contentLength {
			t.Fatalf("core %d %d, net/http %d %d: %q", h.status, h.contentLength, resp.StatusCode, resp.ContentLength, head)
		}
		if got := strconv.Itoa(resp.StatusCode); string(h.statusLine[9:12]) != got {
			t.Fatalf("status line %q, net/http %s", h.statusLine, got)
		}
	})
}
