package router

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the router's own HTTP/1.1 core: it serves the public listener,
// with a goroutine per client connection and nothing else per request. A
// request of the common shape (HTTP/1.1, origin-form, a Host, no body or
// one of known length, no upgrade, no Expect; head.go) to a revision that
// speaks HTTP/1.1 is read into a pooled buffer, routed, written to a
// kept-alive connection to an instance with its header lines copied as
// they came (less the hop-by-hop ones, with X-Forwarded-* set), and the
// instance's response is copied back, head and body in one write where its
// length is known.
//
// A connection whose next request is of any other shape is handed, with
// the bytes read of it, to the fallback *http.Server (whose Handler is the
// Router): WebSockets and other upgrades, h2c (prior knowledge or
// upgrade) and h2c revisions, HTTP/1.0, chunked uploads, Expect:
// 100-continue, heads net/http refuses. It stays there.
type Server struct {
	rt            *Router
	fallback      *http.Server
	rings         *loops // when set, they serve the accepted connections (loop.go)
	handoff       *handoffListener
	headerTimeout time.Duration
	idleTimeout   time.Duration

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*coreConn]struct{}
	closing atomic.Bool
}

// NewServer returns a Server for rt that hands the connections it does not
// serve itself to fallback, whose ReadHeaderTimeout and IdleTimeout it
// keeps too (10 s and 90 s when unset).
func NewServer(rt *Router, fallback *http.Server) *Server {
	s := &Server{rt: rt, fallback: fallback, handoff: newHandoffListener(), headerTimeout: fallback.ReadHeaderTimeout,
		idleTimeout: fallback.IdleTimeout, conns: map[*coreConn]struct{}{}}
	if s.headerTimeout <= 0 {
		s.headerTimeout = 10 * time.Second
	}
	if s.idleTimeout <= 0 {
		s.idleTimeout = 90 * time.Second
	}
	return s
}

// Serve serves connections from ln until Shutdown or Close, and then
// returns http.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln = ln
	s.handoff.addr = ln.Addr()
	s.mu.Unlock()
	if s.closing.Load() {
		ln.Close()
		return http.ErrServerClosed
	}
	go s.fallback.Serve(s.handoff)
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			// Out of descriptors, and the like: wait, as net/http does.
			if te, ok := err.(interface{ Temporary() bool }); ok && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if s.rings != nil && s.rings.give(c) {
			continue
		}
		cc := s.newConn(c)
		s.mu.Lock()
		s.conns[cc] = struct{}{}
		s.mu.Unlock()
		go cc.serve()
	}
}

// Shutdown stops accepting connections, closes the idle ones, and waits
// for the rest to finish their request, or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopAccepting()
	errc := make(chan error, 1)
	go func() { errc <- s.fallback.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeConns(true) == 0 {
			return <-errc
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.stopAccepting()
	if s.rings != nil {
		s.rings.stop(true)
	}
	s.closeConns(false)
	return s.fallback.Close()
}

func (s *Server) stopAccepting() {
	if !s.closing.Swap(true) && s.rings != nil {
		s.rings.stop(false)
	}
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.mu.Unlock()
	s.handoff.Close()
}

// closeConns closes the connections (only the idle ones when idleOnly) and
// returns how many are left.
func (s *Server) closeConns(idleOnly bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for cc := range s.conns {
		if !idleOnly || cc.idle.Load() {
			cc.c.Close()
		}
	}
	if s.rings != nil {
		return len(s.conns) + s.rings.count()
	}
	return len(s.conns)
}

// coreConn is a client connection the core serves.
type coreConn struct {
	s  *Server
	c  net.Conn
	br *bufio.Reader // reads through the coreConn itself (Read)
	bw *bufio.Writer
	ip []byte // the client's address, for X-Forwarded-For

	idle atomic.Bool // waiting for a request: Shutdown may close it
	rdl  time.Time   // the read deadline last set
	head []byte      // the current request's head, copied
	req  requestHead
	resp responseHead
	host []byte // the current request's host, lowered, without port

	timeout time.Duration // the current request's, and whose limit it is
	owner   string
	// The current request's room on an instance, given back by finish.
	rev   *revision
	b     *backend
	start time.Time

	// A request a loop handed over at an instance: its response is read
	// from resume, an instance connection to resumeUp, first.
	resume   *upConn
	resumeUp *upstream

	// The watch of the client while a request waits (watch.go).
	timer    *time.Timer
	running  bool // watch started by startWatch
	wdone    chan struct{}
	wmu      sync.Mutex // guards what follows, to gone
	armed    bool       // timer set
	awaiting bool       // a response is awaited, since start
	watching bool       // watch started by the timer
	onGone   func()
	cut      *upConn // cut short when the client goes
	gone     bool    // the client went away
	pending  [1]byte // a byte the watch read
	hasByte  bool
}

var (
	clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
	clientWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}
)

func (s *Server) newConn(c net.Conn) *coreConn {
	cc := &coreConn{s: s, c: c, wdone: make(chan struct{}, 1), head: make([]byte, 0, 1024), host: make([]byte, 0, 64)}
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		cc.ip = []byte(host)
	}
	cc.req.lines = make([]span, 0, maxHeaderLines)
	cc.resp.lines = make([]span, 0, maxHeaderLines)
	cc.br = clientReaders.Get().(*bufio.Reader)
	cc.br.Reset(cc)
	cc.bw = clientWriters.Get().(*bufio.Writer)
	cc.bw.Reset(c)
	cc.timer = time.AfterFunc(time.Hour, cc.tick)
	cc.timer.Stop()
	return cc
}

// Read reads the client's bytes, the one the watch read first.
func (cc *coreConn) Read(p []byte) (int, error) {
	if cc.hasByte && len(p) > 0 {
		p[0], cc.hasByte = cc.pending[0], false
		return 1, nil
	}
	return cc.c.Read(p)
}

// serve serves the connection's requests until it closes or is handed off.
func (cc *coreConn) serve() {
	handed := false
	defer func() {
		if !handed {
			cc.c.Close()
		}
		cc.timer.Stop()
		cc.s.mu.Lock()
		delete(cc.s.conns, cc)
		cc.s.mu.Unlock()
		cc.br.Reset(nil)
		clientReaders.Put(cc.br)
		cc.bw.Reset(nil)
		clientWriters.Put(cc.bw)
	}()
	if uc := cc.resume; uc != nil {
		cc.resume = nil
		code, keep := cc.respond(cc.resumeUp, uc)
		cc.finish(code)
		if !keep || cc.req.close {
			return
		}
	}
	for !cc.s.closing.Load() {
		n, err := cc.readHead()
		switch {
		case errors.Is(err, errHandOff):
			handed = cc.handOff()
			return
		case err != nil:
			return
		}
		// The head is copied: the reads of the body that follow may
		// move the buffer's bytes.
		cc.head = append(cc.head[:0], cc.peeked(n)...)
		if !parseRequestHead(cc.head, &cc.req) {
			handed = cc.handOff()
			return
		}
		keep, handoff := cc.serveRequest(n)
		if handoff {
			handed = cc.handOff()
			return
		}
		if !keep || cc.req.close {
			return
		}
	}
}

var errHandOff = errors.New("hand off to net/http")

// readHead waits for the next request and returns the length of its head,
// which is then buffered; errHandOff when its shape is not the core's.
func (cc *coreConn) readHead() (int, error) {
	if cc.br.Buffered() == 0 {
		cc.idle.Store(true)
		// The idle deadline moves at most once a second, not per request.
		if d := time.Now().Add(cc.s.idleTimeout); cc.rdl.IsZero() || d.Sub(cc.rdl) > time.Second {
			cc.setReadDeadline(d)
		}
		_, err := cc.br.Peek(1)
		cc.idle.Store(false)
		if err != nil {
			return 0, err
		}
	}
	timed := false
	for {
		buf := cc.peeked(cc.br.Buffered())
		switch n := headEnd(buf); {
		case n > 0:
			return n, nil
		case n < 0:
			return 0, errHandOff
		}
		if len(buf) == cc.br.Size() {
			return 0, errHandOff // a head this large is net/http's to take or refuse
		}
		if !timed {
			cc.setReadDeadline(time.Now().Add(cc.s.headerTimeout))
			timed = true
		}
		if _, err := cc.br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

func (cc *coreConn) peeked(n int) []byte {
	b, _ := cc.br.Peek(n)
	return b
}

// handOff gives the connection, with what was read of it, to the fallback
// server.
func (cc *coreConn) handOff() bool {
	pre := append([]byte(nil), cc.peeked(cc.br.Buffered())...)
	if cc.hasByte {
		pre = append(pre, cc.pending[0])
	}
	cc.setReadDeadline(time.Time{})
	return cc.s.handoff.give(&replayConn{Conn: cc.c, pre: pre})
}

func (cc *coreConn) setReadDeadline(t time.Time) {
	cc.rdl = t
	cc.c.SetReadDeadline(t)
}

// serveRequest serves the request whose head (n bytes) is buffered and
// parsed. keep is false when the connection must close after it; handoff
// is true when the request is net/http's to serve (nothing of it was
// consumed then).
func (cc *coreConn) serveRequest(n int) (keep, handoff bool) {
	r := cc.s.rt
	cc.host = routeHost(cc.host, cc.req.host)
	rev, b, cfg, action := r.routeCore(cc.host, cc.req.target)
	switch action {
	case routeNetHTTP:
		return true, true
	case routeNotFound:
		cc.br.Discard(n)
		return cc.refuse(http.StatusNotFound, notFoundText(cc.host)), false
	}
	start := time.Now()
	cc.timeout, cc.owner = cfg.Timeout, cfg.Owner
	cc.br.Discard(n)
	if b == nil {
		var err error
		if rev, b, err = cc.wait(rev, cfg.Timeout); err != nil {
			if cc.gone {
				return false, false
			}
			code, msg := refusal(err, cfg.Timeout, cfg.Owner, r.cfg.QueueDepth)
			r.requests.WithLabelValues(strconv.Itoa(code)).Inc()
			return cc.refuse(code, msg), false
		}
	}
	cc.rev, cc.b, cc.start = rev, b, start
	code, keep := cc.forward(b.up, start.Add(cfg.Timeout))
	cc.finish(code)
	return keep, false
}

// finish gives back the request's room on its instance and counts it (code
// 0: the client went away). It is called before the last write of the
// response, as net/http's server writes a handler's buffered response
// after the handler returns, and once per request.
func (cc *coreConn) finish(code int) {
	if cc.b == nil {
		return
	}
	cc.s.rt.finishRequest(cc.rev, cc.b, cc.start, code)
	cc.rev, cc.b = nil, nil
}

// wait waits for room on an instance of the revision as the request
// timeout allows, following the host when the revision stops serving it.
// A client that goes away meanwhile ends the wait.
func (cc *coreConn) wait(rev *revision, timeout time.Duration) (*revision, *backend, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cc.startWatch(cancel)
	rev, b, err := cc.s.rt.admit(ctx, rev, string(cc.host), publicRoute)
	cc.stopWatch()
	if err == nil && revisionH2C(rev) {
		// The host moved to an h2c revision while the request waited;
		// its head is consumed, so it cannot be handed to net/http.
		rev.release(b)
		return rev, nil, errReroute
	}
	return rev, b, err
}

func publicRoute(rt Route) bool { return rt.Public }

// routeAction is what the route of a request of the core's shape makes of
// it.
type routeAction uint8

const (
	routeProxy    routeAction = iota // to b, which has room for it
	routeWait                        // no instance has room now: wait for one
	routeNotFound                    // 404 (counted)
	routeNetHTTP                     // net/http's: an ACME challenge, a redirect to HTTPS, an h2c revision
)

// routeCore routes a request of the core's shape to host (routeHost's)
// and target; with routeProxy, it holds room on b, given back by release.
func (r *Router) routeCore(host, target []byte) (rev *revision, b *backend, cfg RevisionConfig, action routeAction) {
	if r.isChallenge(target) {
		return nil, nil, cfg, routeNetHTTP
	}
	rt, found := (*r.routes.Load())[string(host)]
	if !found || !rt.Public {
		r.requests.WithLabelValues("404").Inc()
		return nil, nil, cfg, routeNotFound
	}
	if rt.Redirect && !r.cfg.HTTPSOff {
		return nil, nil, cfg, routeNetHTTP
	}
	rev = r.revision(rt.Revision)
	b, cfg = rev.tryAcquire()
	switch {
	case cfg.H2C:
		return rev, nil, cfg, routeNetHTTP
	case b == nil:
		return rev, nil, cfg, routeWait
	}
	return rev, b, cfg, routeProxy
}

func notFoundText(host []byte) string { return "no app is served at " + string(host) + "\n" }

// finishRequest gives back a request's room on b and counts it (code 0:
// the client went away).
func (r *Router) finishRequest(rev *revision, b *backend, start time.Time, code int) {
	rev.release(b)
	if code != 0 {
		r.count(code)
		rev.requests.Inc()
		rev.latency.Observe(time.Since(start).Seconds())
	}
}

func revisionH2C(rev *revision) bool {
	rev.mu.Lock()
	defer rev.mu.Unlock()
	return rev.cfg.H2C
}

// forward writes the request to an instance behind u and its response to
// the client, by the deadline. It returns the response's status code (0
// when the client went away) and whether the client connection may serve
// another request.
func (cc *coreConn) forward(u *upstream, deadline time.Time) (code int, keep bool) {
	// A request without a body can be sent again on a new connection when
	// a kept-alive one turns out closed by the instance.
	replayable := cc.req.contentLength == 0
	for attempt := 0; ; attempt++ {
		uc, reused, err := u.getBy(deadline)
		if err == nil {
			uc.expireBy(deadline, cc.timeout)
			err = cc.writeRequest(uc, deadline)
		}
		if err == nil {
			err = cc.awaitResponse(uc)
		}
		if err != nil {
			if uc != nil {
				uc.Close()
			}
			if errors.Is(err, errNoResponse) && reused && replayable && attempt == 0 && !cc.gone && time.Now().Before(deadline) {
				continue
			}
			return cc.upstreamFailed(err)
		}
		return cc.respond(u, uc)
	}
}

var (
	errClientRead   = errors.New("client read")
	errUpstreamRead = errors.New("instance read")
)

// writeRequest writes the request's head and body to uc; the body must
// arrive by deadline.
func (cc *coreConn) writeRequest(uc *upConn, deadline time.Time) error {
	h, bw := &cc.req, uc.bw
	bw.Write(appendRequestHead(bw.AvailableBuffer(), h, cc.head, cc.ip))
	if h.contentLength > 0 {
		cc.setReadDeadline(deadline)
		if err := copyN(bw, cc.br, h.contentLength, errClientRead, errNoResponse); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return errors.Join(errNoResponse, err)
	}
	return nil
}

// appendRequestHead appends to b the head of the request h (parsed from
// head, from a client at ip) as the instance gets it: its header lines as
// they came, less the hop-by-hop ones, with X-Forwarded-* set.
func appendRequestHead(b []byte, h *requestHead, head, ip []byte) []byte {
	b = append(b, h.method...)
	b = append(b, ' ')
	b = append(b, h.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, h.host...)
	b = append(b, "\r\n"...)
	for _, l := range h.lines {
		if l.kind == lineCopy {
			b = append(b, head[l.start:l.end]...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "X-Forwarded-For: "...)
	for _, l := range h.lines {
		if l.kind == lineXFF && l.vend > l.val {
			b = append(b, head[l.val:l.vend]...)
			b = append(b, ", "...)
		}
	}
	b = append(b, ip...)
	b = append(b, "\r\nX-Forwarded-Host: "...)
	b = append(b, h.host...)
	b = append(b, "\r\nX-Forwarded-Proto: http\r\n"...)
	switch m := string(h.method); {
	case h.contentLength > 0:
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, h.contentLength, 10)
		b = append(b, "\r\n"...)
	case m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch:
		b = append(b, "Content-Length: 0\r\n"...)
	}
	return append(b, "\r\n"...)
}

// copyN copies n bytes from br to w through br's buffer. A failure to read
// is readErr, a failure to write writeErr, each joined with the cause.
func copyN(w *bufio.Writer, br *bufio.Reader, n int64, readErr, writeErr error) error {
	for n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				return errors.Join(readErr, err)
			}
		}
		k := int(min(n, int64(br.Buffered())))
		p, _ := br.Peek(k)
		if _, err := w.Write(p); err != nil {
			return errors.Join(writeErr, err)
		}
		br.Discard(k)
		n -= int64(k)
	}
	return nil
}

// awaitResponse waits for the first byte of the instance's response,
// watching the client meanwhile when the wait is not short.
func (cc *coreConn) awaitResponse(uc *upConn) error {
	if uc.br.Buffered() > 0 {
		return nil
	}
	cc.beginAwait(uc)
	_, err := uc.br.Peek(1)
	cc.endAwait()
	if err != nil {
		return errors.Join(errNoResponse, err)
	}
	return nil
}

// respond copies the instance's response on uc to the client, then keeps
// uc for the next request or closes it.
func (cc *coreConn) respond(u *upstream, uc *upConn) (code int, keep bool) {
	for {
		n, err := responseHeadLen(uc.br)
		if err != nil {
			uc.Close()
			return cc.upstreamFailed(err)
		}
		if n == 0 || !parseResponseHead(cc.peekedUp(uc, n), &cc.resp) || cc.resp.contentLength < 0 && !bodyless(cc.req.method, cc.resp.status) {
			return cc.respondSlow(u, uc)
		}
		if cc.resp.status < 200 {
			if cc.resp.status == http.StatusSwitchingProtocols {
				uc.Close()
				return cc.upstreamFailed(errors.New("an upgrade nobody asked for"))
			}
			uc.br.Discard(n) // interim responses (103 Early Hints) are not passed on
			continue
		}
		cc.writeResponseHead(cc.peekedUp(uc, n))
		uc.br.Discard(n)
		if !bodyless(cc.req.method, cc.resp.status) {
			if err := copyN(cc.bw, uc.br, cc.resp.contentLength, errUpstreamRead, errClientWrite); err != nil {
				uc.Close()
				if errors.Is(err, errUpstreamRead) {
					cc.s.rt.log.Debug("proxy: the instance's response ended early", "host", string(cc.host), "err", err)
				}
				return cc.resp.status, false // a cut response: the client must not take it for whole
			}
		}
		cc.finish(cc.resp.status)
		if err := cc.bw.Flush(); err != nil {
			uc.Close()
			return cc.resp.status, false
		}
		if cc.resp.close || uc.br.Buffered() > 0 {
			uc.Close() // bytes the request did not ask for: the connection is not reused
		} else {
			u.put(uc)
		}
		return cc.resp.status, true
	}
}

func (cc *coreConn) peekedUp(uc *upConn, n int) []byte {
	b, _ := uc.br.Peek(n)
	return b
}

// responseHeadLen returns the length of the response head buffered in br,
// reading more as needed; 0 when it is not of the core's shape or larger
// than the buffer.
func responseHeadLen(br *bufio.Reader) (int, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		switch n := headEnd(buf); {
		case n > 0:
			return n, nil
		case n < 0:
			return 0, nil
		}
		if len(buf) == br.Size() {
			return 0, nil
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return 0, err
		}
	}
}

// writeResponseHead writes the parsed response head to the client, less
// its hop-by-hop lines, with a Date when it has none.
func (cc *coreConn) writeResponseHead(head []byte) {
	cc.bw.Write(appendResponseHead(cc.bw.AvailableBuffer(), &cc.resp, head, cc.req.close))
}

// appendResponseHead appends to b the response head h (parsed from head)
// as the client gets it: less its hop-by-hop lines, with a Date when it
// has none, and Connection: close when the client asked for it (close).
func appendResponseHead(b []byte, h *responseHead, head []byte, close bool) []byte {
	b = append(b, h.statusLine...)
	b = append(b, "\r\n"...)
	for _, l := range h.lines {
		if l.kind == lineCopy {
			b = append(b, head[l.start:l.end]...)
			b = append(b, "\r\n"...)
		}
	}
	return appendEndHead(b, !h.date, close)
}

// endHead ends a response head, with a Date when date and Connection:
// close when the client asked for it.
func (cc *coreConn) endHead(date bool) {
	cc.bw.Write(appendEndHead(cc.bw.AvailableBuffer(), date, cc.req.close))
}

func appendEndHead(b []byte, date, close bool) []byte {
	if date {
		b = append(b, "Date: "...)
		b = append(b, httpDate(time.Now())...)
		b = append(b, "\r\n"...)
	}
	if close {
		b = append(b, "Connection: close\r\n"...)
	}
	return append(b, "\r\n"...)
}

// respondSlow copies a response the core does not parse itself (chunked,
// close-delimited, HTTP/1.0, a head larger than the buffer) with
// http.ReadResponse; a stream reaches the client as it comes.
func (cc *coreConn) respondSlow(u *upstream, uc *upConn) (code int, keep bool) {
	var resp *http.Response
	for {
		var err error
		if resp, err = http.ReadResponse(uc.br, &http.Request{Method: string(cc.req.method)}); err != nil {
			uc.Close()
			return cc.upstreamFailed(err)
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			uc.Close()
			return cc.upstreamFailed(errors.New("an upgrade nobody asked for"))
		}
	}
	defer resp.Body.Close()
	bw := cc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(resp.Status)
	bw.WriteString("\r\n")
	named := connectionNamed(resp.Header)
	for k, vs := range resp.Header {
		if !hopHeaders[k] && !named[k] && k != "Content-Length" {
			for _, v := range vs {
				writeHeader(bw, k, v)
			}
		}
	}
	noBody := bodyless(cc.req.method, resp.StatusCode)
	chunked := !noBody && resp.ContentLength < 0
	switch {
	case resp.ContentLength >= 0 && (!noBody || resp.Header.Get("Content-Length") != ""):
		writeHeader(bw, "Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	case chunked:
		writeHeader(bw, "Transfer-Encoding", "chunked")
		if len(resp.Trailer) > 0 {
			for k := range resp.Trailer {
				writeHeader(bw, "Trailer", k)
			}
		}
	}
	cc.endHead(resp.Header.Get("Date") == "")
	if noBody {
		cc.finish(resp.StatusCode)
		if err := bw.Flush(); err != nil {
			uc.Close()
			return resp.StatusCode, false
		}
		cc.keepUp(u, uc, resp)
		return resp.StatusCode, true
	}
	var w io.Writer = bw
	var cw io.WriteCloser
	if chunked {
		cw = httputil.NewChunkedWriter(bw)
		w = cw
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	for {
		n, err := resp.Body.Read(*buf)
		if n > 0 {
			if _, werr := w.Write((*buf)[:n]); werr != nil {
				uc.Close()
				return resp.StatusCode, false
			}
			if chunked && bw.Flush() != nil {
				uc.Close()
				return resp.StatusCode, false
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			uc.Close()
			cc.s.rt.log.Debug("proxy: the instance's response ended early", "host", string(cc.host), "err", err)
			return resp.StatusCode, false
		}
	}
	if cw != nil {
		cw.Close()
		for k, vs := range resp.Trailer {
			for _, v := range vs {
				writeHeader(bw, k, v)
			}
		}
		bw.WriteString("\r\n")
	}
	cc.finish(resp.StatusCode)
	if err := bw.Flush(); err != nil {
		uc.Close()
		return resp.StatusCode, false
	}
	cc.keepUp(u, uc, resp)
	return resp.StatusCode, true
}

// keepUp keeps uc after a response read to its end, unless either side
// said close or the instance sent more than it was asked for.
func (cc *coreConn) keepUp(u *upstream, uc *upConn, resp *http.Response) {
	if resp.Close || uc.br.Buffered() > 0 {
		uc.Close()
		return
	}
	u.put(uc)
}

// upstreamFailed answers a request whose response's head did not come:
// 502, or 504 when its deadline passed; nothing to a client that went away.
func (cc *coreConn) upstreamFailed(err error) (int, bool) {
	if cc.gone || errors.Is(err, errClientRead) {
		return 0, false
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return http.StatusGatewayTimeout, cc.refuse(http.StatusGatewayTimeout, timeoutText(cc.timeout, cc.owner))
	}
	cc.s.rt.log.Warn("proxy", "host", string(cc.host), "err", err)
	return http.StatusBadGateway, cc.refuse(http.StatusBadGateway, "the app's instance did not answer: "+err.Error()+"\n")
}

// refuse answers the request with a short plain-text response of the
// router's own. The connection stays open unless the request's body is
// still unread.
func (cc *coreConn) refuse(code int, msg string) (keep bool) {
	keep = cc.req.contentLength == 0
	cc.bw.Write(appendRefusal(cc.bw.AvailableBuffer(), code, msg, keep, cc.req.close))
	cc.finish(code)
	return cc.bw.Flush() == nil && keep
}

// appendRefusal appends to b a short plain-text response of the router's
// own, which closes the connection unless keep and the client did not
// ask to (close).
func appendRefusal(b []byte, code int, msg string, keep, close bool) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, "\r\n"...)
	if !keep && !close {
		b = append(b, "Connection: close\r\n"...)
	}
	b = appendEndHead(b, true, close)
	return append(b, msg...)
}

// dates caches the Date header's value for the current second.
var dates atomic.Pointer[dateValue]

type dateValue struct {
	sec int64
	b   []byte
}

func httpDate(now time.Time) []byte {
	sec := now.Unix()
	if d := dates.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &dateValue{sec: sec, b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dates.Store(d)
	return d.b
}

// handoffListener gives the fallback server the connections the core
// hands it.
type handoffListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
	addr net.Addr
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// replayConn is a connection whose first bytes were read already.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
