package router

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The common case of the data path: an HTTP/1.1 request (not an upgrade)
// to an instance that speaks HTTP/1.1. It is written to, and its response
// read from, a kept-alive connection to the instance on the request's own
// goroutine, with no transport goroutines and no channel handoff per
// request (net/http's Transport has both): headers are written from the
// incoming request as they are, less the hop-by-hop ones, and the body of
// the response is copied through a pooled buffer, in one write where its
// length is known. Upgrades (WebSockets) and h2c revisions take
// httputil.ReverseProxy.

// upstreamIdle is how long an idle kept-alive connection is kept.
const upstreamIdle = 60 * time.Second

// upstream holds the idle kept-alive connections to one instance.
type upstream struct {
	addr string
	mu   sync.Mutex
	idle []*upConn // most recently used last
	shut bool
}

type upConn struct {
	net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time
	dl   time.Time   // the deadline last set (expireBy)
	cut  atomic.Bool // cut short (cutShort): not to be reused
}

// expireBy gives c the deadline d (none when zero) of a request whose
// timeout is timeout, rounded up (roundDeadline), and sets it only when
// that moves it: a kept-alive connection's deadline then moves a few times
// a second, not twice per request.
func (c *upConn) expireBy(d time.Time, timeout time.Duration) {
	d = roundDeadline(d, timeout)
	if !d.Equal(c.dl) && !c.cut.Load() {
		c.dl = d
		c.SetDeadline(d)
	}
}

// roundDeadline rounds d up to a step of a hundredth of timeout, at least
// a millisecond and at most a quarter of a second: a 504 comes at most
// that step late. The zero time (no deadline) stays.
func roundDeadline(d time.Time, timeout time.Duration) time.Time {
	if d.IsZero() {
		return d
	}
	step := min(max(timeout/100, time.Millisecond), 250*time.Millisecond)
	t := d.Truncate(step)
	if t.Before(d) {
		t = t.Add(step)
	}
	return t
}

// cutShort ends c's pending reads and writes, for a client that went away
// or a request past its time; put closes it then.
func (c *upConn) cutShort() {
	c.cut.Store(true)
	c.SetDeadline(aLongTimeAgo)
}

var dialer = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}

// get returns an idle connection (reused: true) or dials a new one.
func (u *upstream) get(ctx context.Context) (c *upConn, reused bool, err error) {
	if c = u.idleConn(); c != nil {
		return c, true, nil
	}
	conn, err := dialer.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, false, err
	}
	return newUpConn(conn), false, nil
}

// getBy is get for a request that must be over by deadline.
func (u *upstream) getBy(deadline time.Time) (c *upConn, reused bool, err error) {
	if c = u.idleConn(); c != nil {
		return c, true, nil
	}
	d := *dialer
	d.Deadline = deadline
	conn, err := d.Dial("tcp", u.addr)
	if err != nil {
		return nil, false, err
	}
	return newUpConn(conn), false, nil
}

func newUpConn(conn net.Conn) *upConn {
	return &upConn{Conn: conn, br: bufio.NewReaderSize(conn, 16<<10), bw: bufio.NewWriterSize(conn, 16<<10)}
}

// idleConn returns the most recently used idle connection, or nil.
func (u *upstream) idleConn() *upConn {
	u.mu.Lock()
	defer u.mu.Unlock()
	for len(u.idle) > 0 {
		c := u.idle[len(u.idle)-1]
		u.idle = u.idle[:len(u.idle)-1]
		if time.Since(c.used) < upstreamIdle {
			return c
		}
		c.Close()
	}
	return nil
}

// put keeps c for the next request, unless the instance is gone or c was
// cut short. Its deadline stays: the next request sets its own.
func (u *upstream) put(c *upConn) {
	c.used = time.Now()
	u.mu.Lock()
	if u.shut || len(u.idle) >= 256 || c.cut.Load() {
		u.mu.Unlock()
		c.Close()
		return
	}
	u.idle = append(u.idle, c)
	u.mu.Unlock()
}

// close closes the idle connections; later ones are closed when put.
func (u *upstream) close() {
	u.mu.Lock()
	idle := u.idle
	u.idle, u.shut = nil, true
	u.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

// hopHeaders are the headers of one hop that a proxy does not forward
// (RFC 9110 7.6.1), besides those the Connection header names.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// fastPath reports whether a request takes forward: HTTP/1.x and not an
// upgrade (WebSockets and the like take the ReverseProxy).
func fastPath(req *http.Request) bool {
	return req.ProtoMajor == 1 && req.Header.Get("Upgrade") == "" && !strings.EqualFold(req.Header.Get("Connection"), "upgrade")
}

// errNoResponse is an upstream failure before any byte of the response.
var errNoResponse = errors.New("no response")

// forward proxies req to the instance behind u, within ctx (the request's
// timeout). It answers 502 when the instance does not answer and 504 when
// the timeout passes first; a client that goes away gets nothing.
func (r *Router) forward(ctx context.Context, w http.ResponseWriter, req *http.Request, u *upstream, timeout time.Duration, owner string) {
	// A request without a body can be sent again on a new connection when
	// a kept-alive one turns out closed by the instance.
	replayable := req.ContentLength == 0 && (req.Body == nil || req.Body == http.NoBody || req.Method == http.MethodGet || req.Method == http.MethodHead)
	for attempt := 0; ; attempt++ {
		c, reused, err := u.get(ctx)
		if err != nil {
			r.upstreamError(ctx, w, req, timeout, owner, err)
			return
		}
		// The connection lives by the request's time: its deadline, and
		// closed for reads and writes when the client goes away.
		d, _ := ctx.Deadline()
		c.expireBy(d, timeout)
		stop := context.AfterFunc(ctx, c.cutShort)
		resp, err := roundTrip(ctx, c, req)
		if err != nil {
			stop()
			c.Close()
			if errors.Is(err, errNoResponse) && reused && replayable && attempt == 0 && ctx.Err() == nil {
				continue
			}
			r.upstreamError(ctx, w, req, timeout, owner, err)
			return
		}
		r.respond(ctx, w, req, u, c, resp, stop)
		return
	}
}

// roundTrip writes req on c and reads the response's head.
func roundTrip(ctx context.Context, c *upConn, req *http.Request) (*http.Response, error) {
	if err := writeRequest(c.bw, req); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", errNoResponse, err)
	}
	for {
		// A response read before any byte of it arrived failed for want
		// of one: a closed kept-alive connection, most often.
		if _, err := c.br.Peek(1); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: %w", errNoResponse, err)
		}
		resp, err := http.ReadResponse(c.br, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		// Interim responses (103 Early Hints) are not passed on.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		return resp, nil
	}
}

// writeRequest writes req as HTTP/1.1 to an instance: its own headers less
// the hop-by-hop ones, Host, X-Forwarded-For/-Host/-Proto as
// httputil.ProxyRequest.SetXForwarded sets them, and the body with its
// length (or chunked, when the client sent it so).
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	uri := req.URL.RequestURI()
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(req.Host)
	bw.WriteString("\r\n")
	named := connectionNamed(req.Header)
	for k, vs := range req.Header {
		if hopHeaders[k] || named[k] || k == "Expect" || k == "X-Forwarded-For" || k == "X-Forwarded-Host" || k == "X-Forwarded-Proto" || k == "Content-Length" {
			continue
		}
		for _, v := range vs {
			writeHeader(bw, k, v)
		}
	}
	if ip, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		prior := strings.Join(req.Header["X-Forwarded-For"], ", ")
		if prior != "" {
			ip = prior + ", " + ip
		}
		writeHeader(bw, "X-Forwarded-For", ip)
	}
	writeHeader(bw, "X-Forwarded-Host", req.Host)
	proto := "http"
	if req.TLS != nil {
		proto = "https"
	}
	writeHeader(bw, "X-Forwarded-Proto", proto)
	body := req.Body != nil && req.Body != http.NoBody
	switch {
	case req.ContentLength > 0:
		writeHeader(bw, "Content-Length", strconv.FormatInt(req.ContentLength, 10))
	case req.ContentLength < 0 && body:
		writeHeader(bw, "Transfer-Encoding", "chunked")
	case req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch:
		writeHeader(bw, "Content-Length", "0")
	}
	bw.WriteString("\r\n")
	switch {
	case req.ContentLength > 0:
		if _, err := io.CopyN(bw, req.Body, req.ContentLength); err != nil {
			return err
		}
	case req.ContentLength < 0 && body:
		cw := httputil.NewChunkedWriter(bw)
		if _, err := io.Copy(cw, req.Body); err != nil {
			return err
		}
		cw.Close()
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

func writeHeader(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	// A value cannot carry a line break past net/http's server, which
	// refuses them; what it passed is written as it came.
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// connectionNamed returns the headers the Connection header names as
// hop-by-hop, or nil.
func connectionNamed(h http.Header) map[string]bool {
	var out map[string]bool
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				if out == nil {
					out = map[string]bool{}
				}
				out[textproto.CanonicalMIMEHeaderKey(f)] = true
			}
		}
	}
	return out
}

// respond writes the instance's response to the client and, when it was
// read to its end on a connection that stays open, keeps the connection;
// stop ends the connection's watch of the request's context.
func (r *Router) respond(ctx context.Context, w http.ResponseWriter, req *http.Request, u *upstream, c *upConn, resp *http.Response, stop func() bool) {
	named := connectionNamed(resp.Header)
	h := w.Header()
	for k, vs := range resp.Header {
		if !hopHeaders[k] && !named[k] {
			h[k] = vs
		}
	}
	if len(resp.Trailer) > 0 {
		names := make([]string, 0, len(resp.Trailer))
		for k := range resp.Trailer {
			names = append(names, k)
		}
		h["Trailer"] = []string{strings.Join(names, ", ")}
	}
	if resp.ContentLength >= 0 {
		h["Content-Length"] = []string{strconv.FormatInt(resp.ContentLength, 10)}
	}
	w.WriteHeader(resp.StatusCode)
	buf := copyBuffers.Get().(*[]byte)
	err := copyBody(w, resp.Body, *buf, resp.ContentLength < 0)
	copyBuffers.Put(buf)
	stop()
	resp.Body.Close()
	if err != nil {
		c.Close()
		if ctx.Err() == nil && !errors.Is(err, errClientWrite) {
			r.log.Debug("proxy: the instance's response ended early", "host", req.Host, "err", err)
		}
		// As httputil.ReverseProxy: the client must not take a cut
		// response for a whole one.
		panic(http.ErrAbortHandler)
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	if resp.Close {
		c.Close()
		return
	}
	u.put(c)
}

var errClientWrite = errors.New("client write")

// copyBody copies an instance's response body to the client; a stream (no
// length) reaches the client as it comes.
func copyBody(w http.ResponseWriter, body io.Reader, buf []byte, stream bool) error {
	var rc *http.ResponseController
	if stream {
		rc = http.NewResponseController(w)
	}
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return errClientWrite
			}
			if rc != nil {
				if err := rc.Flush(); err != nil {
					return errClientWrite
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// upstreamError answers a request the instance did not answer.
func (r *Router) upstreamError(ctx context.Context, w http.ResponseWriter, req *http.Request, timeout time.Duration, owner string, err error) {
	// The connection's deadline is the request's: it may pass a moment
	// before the context says so.
	deadline, ok := ctx.Deadline()
	timedOut := ok && !time.Now().Before(deadline) && errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || timedOut:
		timeoutResponse(w, timeout, owner)
	case errors.Is(ctx.Err(), context.Canceled):
		// the client went away
	default:
		r.log.Warn("proxy", "host", req.Host, "err", err)
		plain(w, http.StatusBadGateway, "the app's instance did not answer: %v\n", err)
	}
}
