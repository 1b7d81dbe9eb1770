package router

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/coligo/coligo/internal/uring"
)

// The core's common case on io_uring (package uring): on these machines a
// proxy's cost is its system calls (BENCHMARKS.md), and a goroutine per
// connection makes more of them than nginx does (a read that returns
// EAGAIN before each wait, and the scheduler's). A loop per core, on a
// thread of its own, serves the client connections the Server accepts:
// it receives a request, writes it to a kept-alive connection to an
// instance, receives the response and sends it, all as operations on its
// ring, and waits for all that are ready in one system call.
//
// A loop serves what the core serves in the same way, and nothing else: a
// request of the core's shape (head.go) without a body, to a host whose
// revision has room on an instance now, whose response has a length and
// fits its buffer (16 KiB, head and body). At the first request of any
// other kind the connection is handed, with the bytes read of it, to the
// goroutine core (coreConn), and stays there: before the request is
// consumed, or, when the response is not of the loop's kind, with the
// instance connection and what was read of the response. The loop keeps
// the router's promises as the core does: room on an instance taken
// before the request goes and given back before its response's last
// byte, X-Forwarded-*, the request timeout (the loop's deadline timer
// cancels the instance's receive; 504), a kept-alive instance connection closed
// between requests sent again once, a client that goes away while its
// request is at an instance ends it (the loop receives from the client
// meanwhile: its end ends the wait, a byte is the next request's), the
// idle and header timeouts (checked each second), Shutdown and Close.

const (
	loopEntries = 4096     // operations a ring holds at a time
	loopBuf     = 16 << 10 // a connection's buffer, each way
	dialTimeout = 5 * time.Second
)

// The operations of a connection, in a completion's user data: the
// connection's slot (24 bits), its generation (32 bits), the operation.
const (
	lopClientRecv = iota + 1
	lopClientSend
	lopClientSendNow
	lopUpConnect
	lopUpConnectTimeout
	lopUpSend
	lopUpRecv
	lopCancel
	lopWake
	lopTick
	lopDeadline
)

// loops are the Server's loops; it gives each accepted connection to one
// in turn.
type loops struct {
	all  []*loop
	next atomic.Uint32
}

// UseRings makes n io_uring loops serve the connections Serve accepts
// (the goroutine core still serves those they hand over). It fails, and
// nothing changes, where io_uring is refused or missing: the goroutine
// core serves everything then. It is called before Serve.
func (s *Server) UseRings(n int) error {
	ls := &loops{}
	for range max(n, 1) {
		// A ring is its creator thread's (IORING_SETUP_SINGLE_ISSUER):
		// the loop's goroutine, locked to its thread, sets it up.
		l := &loop{s: s, idle: map[*upstream][]*lup{}, tickTS: unix.NsecToTimespec(int64(time.Second))}
		errc := make(chan error, 1)
		go l.run(errc)
		if err := <-errc; err != nil {
			ls.stop(true)
			return err
		}
		ls.all = append(ls.all, l)
	}
	s.rings = ls
	return nil
}

// give gives the accepted connection c to a loop; false when c is not a
// TCP connection (the goroutine core serves it then).
func (ls *loops) give(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	raw.Control(func(s uintptr) { fd, err = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	if err != nil || fd < 0 {
		return false
	}
	var ip []byte
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		ip = []byte(host)
	}
	c.Close() // the duplicate is the loop's, out of Go's poller
	l := ls.all[int(ls.next.Add(1))%len(ls.all)]
	l.n.Add(1)
	l.mu.Lock()
	l.inbox = append(l.inbox, adopted{fd: fd, ip: ip})
	l.mu.Unlock()
	l.wakeUp()
	return true
}

// count is how many connections the loops serve.
func (ls *loops) count() int {
	n := 0
	for _, l := range ls.all {
		n += int(l.n.Load())
	}
	return n
}

// stop tells the loops to close their idle connections (Shutdown: the
// others close after their response) or all of them (Close); each loop
// ends once it serves none.
func (ls *loops) stop(all bool) {
	for _, l := range ls.all {
		l.mu.Lock()
		l.stopping = max(l.stopping, 1)
		if all {
			l.stopping = 2
		}
		l.mu.Unlock()
		l.wakeUp()
	}
}

type adopted struct {
	fd int
	ip []byte
}

// loop is one io_uring loop. Its fields past mu's are its thread's only.
type loop struct {
	s    *Server
	ring *uring.Ring
	efd  int          // eventfd: wakes the loop for its inbox and stop
	n    atomic.Int32 // connections given to it and not yet closed or handed over
	full atomic.Int64 // responses their client's socket had no room for at once

	mu       sync.Mutex
	inbox    []adopted
	stopping int // 1: close the idle connections; 2: close all

	wake    [8]byte
	tickTS  unix.Timespec
	ticking bool
	dlTS    unix.Timespec
	dlAt    time.Time // when the deadline timer fires (zero: it is not set)
	dlSeq   uint32    // the deadline timer's, in its user data
	stop    int
	conns   []*lconn // by slot
	free    []uint32
	idle    map[*upstream][]*lup
	done    []uring.Completion
	sentNow []*lconn // responses sent with SendNow, in the order prepared
}

// setUp sets up the loop's ring and eventfd.
func (l *loop) setUp() error {
	r, err := uring.New(loopEntries)
	if err != nil {
		return err
	}
	if l.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC); err != nil {
		r.Close()
		return fmt.Errorf("eventfd: %w", err)
	}
	l.ring = r
	return nil
}

func (l *loop) wakeUp() {
	unix.Write(l.efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

// lconn is a client connection a loop serves.
type lconn struct {
	slot, gen uint32
	fd        int
	ip        []byte
	in        []byte // what was received of the client, n bytes
	n         int
	out       []byte // the response being sent, sent bytes of it
	sent      int
	pending   int    // its client operations in the ring
	nowOp     uint64 // its SendNow's number in the ring
	nowRes    int32  // its SendNow's completion (0: none came)
	recv      bool   // a receive from the client is pending
	state     lstate
	since     time.Time // reading since, for the idle and header timeouts
	gone      bool      // the client went away
	closing   bool      // closed once nothing is pending
	handing   bool      // handed to the goroutine core once nothing is pending

	// The current request.
	head     []byte
	req      requestHead
	resp     responseHead
	host     []byte
	rev      *revision
	b        *backend
	start    time.Time
	deadline time.Time
	timeout  time.Duration
	owner    string
	attempt  int
	up       *lup // its instance connection
}

type lstate uint8

const (
	lReading  lstate = iota // waiting for a request's head
	lAwaiting               // the request is at an instance
	lSending                // the response is being sent
)

// lup is a loop's connection to an instance.
type lup struct {
	fd     int
	u      *upstream
	in     []byte // what was received of the response, m bytes
	m      int
	out    []byte // the request
	used   time.Time
	reused bool
	sa     unix.RawSockaddrAny
	salen  uint32
	ts     unix.Timespec

	// The exchange under way: its operations in the ring, and their results.
	pending    int
	connecting bool
	connRes    int32
	sendRes    int32
	recvRes    int32
	timedOut   bool
}

func (l *loop) data(c *lconn, op int) uint64 {
	return uint64(c.slot)<<40 | uint64(c.gen)<<8 | uint64(op)
}

// run sets the loop up on a thread of its own, says whether it could on
// errc, and loops: submit, wait, complete; until stopped with no
// connection left.
func (l *loop) run(errc chan<- error) {
	runtime.LockOSThread()
	err := l.setUp()
	errc <- err
	if err != nil {
		return
	}
	defer l.close()
	l.ring.Read(l.efd, l.wake[:], lopWake)
	for {
		if err := l.ring.Submit(l.wait()); err != nil {
			l.s.rt.log.Error("router: io_uring loop", "err", err)
			return
		}
		sent := l.ring.Submitted() // a send's completion is there once it is submitted
		l.done = l.ring.Reap(l.done[:0])
		for _, c := range l.done {
			l.complete(c)
		}
		l.confirm(sent)
		if l.stop > 0 && l.n.Load() == 0 {
			return
		}
	}
}

// close ends the loop: its idle instance connections, its ring.
func (l *loop) close() {
	for _, ups := range l.idle {
		for _, up := range ups {
			unix.Close(up.fd)
		}
	}
	l.idle = nil
	l.ring.Close()
	unix.Close(l.efd)
}

func (l *loop) complete(cq uring.Completion) {
	slot, gen, op := uint32(cq.UserData>>40), uint32(cq.UserData>>8), int(cq.UserData&0xff)
	res := cq.Res
	switch op {
	case lopWake:
		l.onWake()
		return
	case lopTick:
		l.onTick()
		return
	case lopDeadline:
		l.onDeadline(gen)
		return
	case lopCancel:
		return
	}
	if int(slot) >= len(l.conns) || l.conns[slot] == nil || l.conns[slot].gen != gen {
		return
	}
	c := l.conns[slot]
	switch op {
	case lopClientRecv:
		c.pending--
		c.recv = false
		l.onClientRecv(c, res)
	case lopClientSend:
		c.pending--
		l.onClientSend(c, res)
	case lopClientSendNow:
		c.nowRes = res // confirm ends it
		return
	case lopUpSend:
		// The request's send completes only when it failed or the
		// instance's socket had no room for all of it (SendNow): the
		// receive of its response ends then, and the request fails, or
		// goes once more on a new connection. A send never stays under
		// way in the kernel, reading a buffer the loop may have let go.
		if up := c.up; up != nil && up.pending > 0 {
			if up.sendRes = res; res >= 0 {
				up.sendRes = -int32(unix.EAGAIN)
			}
			unix.Shutdown(up.fd, unix.SHUT_RDWR)
		}
	default:
		up := c.up
		up.pending--
		switch op {
		case lopUpConnect:
			up.connRes = res
		case lopUpRecv:
			up.recvRes = res
		case lopUpConnectTimeout:
			up.timedOut = up.timedOut || res == -int32(unix.ETIME)
		}
		if up.pending == 0 {
			l.onUpDone(c)
		}
	}
	l.settle(c)
}

// onWake takes the connections given to the loop, and its stop.
func (l *loop) onWake() {
	l.ring.Read(l.efd, l.wake[:], lopWake)
	l.mu.Lock()
	inbox := l.inbox
	l.inbox = nil
	l.stop = l.stopping
	l.mu.Unlock()
	for _, a := range inbox {
		if l.stop > 0 {
			unix.Close(a.fd)
			l.n.Add(-1)
			continue
		}
		c := l.newConn(a)
		l.recvClient(c)
	}
	if l.stop > 0 {
		for _, c := range l.conns {
			if c != nil && !c.closing && !c.handing && (l.stop == 2 || c.idle()) {
				l.drop(c)
			}
		}
	}
	l.armTick()
}

func (l *loop) newConn(a adopted) *lconn {
	var c *lconn
	if k := len(l.free); k > 0 {
		c = l.conns[l.free[k-1]]
		l.free = l.free[:k-1]
		c.gen++
	} else {
		c = &lconn{slot: uint32(len(l.conns)), in: make([]byte, loopBuf), head: make([]byte, 0, 1024), host: make([]byte, 0, 64)}
		c.req.lines = make([]span, 0, maxHeaderLines)
		c.resp.lines = make([]span, 0, maxHeaderLines)
		l.conns = append(l.conns, c)
	}
	c.fd, c.ip, c.n, c.state, c.since = a.fd, a.ip, 0, lReading, time.Now()
	c.gone, c.closing, c.handing = false, false, false
	return c
}

// idle reports whether c waits for a request and has none of it.
func (c *lconn) idle() bool { return c.state == lReading && c.n == 0 }

// armTick sets the loop's one-second tick while it has connections.
func (l *loop) armTick() {
	if !l.ticking && (l.n.Load() > 0 || len(l.idle) > 0) {
		l.reserve(1)
		l.ring.Timeout(&l.tickTS, lopTick)
		l.ticking = true
	}
}

// onTick closes connections past their idle or header timeout, and
// instance connections idle too long or whose instance is gone.
func (l *loop) onTick() {
	l.ticking = false
	now := time.Now()
	for _, c := range l.conns {
		if c == nil || c.closing || c.handing || c.state != lReading || !c.recv {
			continue
		}
		limit := l.s.idleTimeout
		if c.n > 0 {
			limit = l.s.headerTimeout
		}
		if now.Sub(c.since) > limit {
			l.drop(c)
		}
	}
	for u, ups := range l.idle {
		keep := ups[:0]
		for _, up := range ups {
			if now.Sub(up.used) < upstreamIdle && !u.closed() {
				keep = append(keep, up)
			} else {
				unix.Close(up.fd)
			}
		}
		if len(keep) == 0 {
			delete(l.idle, u)
		} else {
			l.idle[u] = keep
		}
	}
	l.armTick()
}

// reserve makes room in the ring for n operations prepared together.
func (l *loop) reserve(n int) {
	if err := l.ring.Reserve(n); err != nil {
		l.s.rt.log.Error("router: io_uring loop", "err", err)
	}
}

func (l *loop) recvClient(c *lconn) {
	l.reserve(1)
	l.ring.Recv(c.fd, c.in[c.n:], l.data(c, lopClientRecv), false)
	c.pending++
	c.recv = true
}

func (l *loop) onClientRecv(c *lconn, res int32) {
	if c.closing {
		return
	}
	if res <= 0 {
		if c.handing && res == -int32(unix.ECANCELED) {
			return // canceled for the hand-over
		}
		c.gone = true
		switch c.state {
		case lReading:
			l.drop(c)
		case lAwaiting:
			if c.up != nil && c.up.pending > 0 {
				unix.Shutdown(c.up.fd, unix.SHUT_RDWR) // its receive ends, and onUpDone sees the client gone
			}
		}
		return
	}
	if c.n == 0 {
		c.since = time.Now() // a head begins: the header timeout runs
	}
	c.n += int(res)
	if c.state == lReading && !c.handing {
		l.process(c)
	}
	// Received while the request is at an instance: the next request's,
	// served after this one.
}

// process serves the request whose bytes are received, or receives more.
func (l *loop) process(c *lconn) {
	hn := headEnd(c.in[:c.n])
	switch {
	case hn < 0:
		l.handOff(c)
		return
	case hn == 0:
		if c.n == len(c.in) {
			l.handOff(c)
			return
		}
		l.recvClient(c)
		return
	}
	c.head = append(c.head[:0], c.in[:hn]...)
	if !parseRequestHead(c.head, &c.req) || c.req.contentLength > 0 {
		l.handOff(c)
		return
	}
	r := l.s.rt
	c.host = routeHost(c.host, c.req.host)
	rev, b, cfg, action := r.routeCore(c.host, c.req.target)
	switch action {
	case routeNetHTTP, routeWait:
		l.handOff(c) // the goroutine core routes it again, and waits, or hands it on
		return
	}
	c.n = copy(c.in, c.in[hn:c.n])
	if action == routeNotFound {
		l.refuse(c, 404, notFoundText(c.host))
		return
	}
	c.rev, c.b, c.timeout, c.owner, c.attempt = rev, b, cfg.Timeout, cfg.Owner, 0
	c.start = time.Now()
	c.deadline = c.start.Add(cfg.Timeout)
	c.state = lAwaiting
	if c.n == 0 {
		// The client is heard from while its request is at the instance:
		// its going away ends the request; a byte is its next request's.
		l.recvClient(c)
	}
	l.startUp(c, false)
}

// startUp sends the request on a kept-alive instance connection, or on a
// new one (fresh: always).
func (l *loop) startUp(c *lconn, fresh bool) {
	if !fresh {
		if up := l.idleUp(c.b.up); up != nil {
			up.reused = true
			c.up = up
			l.exchange(c)
			return
		}
	}
	up, err := newLup(c.b.up)
	if err != nil {
		l.s.rt.log.Warn("proxy", "host", string(c.host), "err", err)
		l.refuse(c, 502, "the app's instance did not answer: "+err.Error()+"\n")
		return
	}
	c.up = up
	up.connecting, up.connRes, up.timedOut = true, 0, false
	up.ts = unix.NsecToTimespec(int64(max(min(dialTimeout, time.Until(c.deadline)), time.Millisecond)))
	l.reserve(2)
	l.ring.Connect(up.fd, &up.sa, up.salen, l.data(c, lopUpConnect), true)
	l.ring.LinkTimeout(&up.ts, l.data(c, lopUpConnectTimeout))
	up.pending += 2
}

// exchange writes the request on c.up and receives its response, by the
// request's deadline.
func (l *loop) exchange(c *lconn) {
	up := c.up
	up.out = appendRequestHead(up.out[:0], &c.req, c.head, c.ip)
	up.m, up.connecting, up.sendRes, up.recvRes, up.timedOut = 0, false, 0, 0, false
	l.reserve(2)
	l.ring.SendNow(up.fd, up.out, l.data(c, lopUpSend))
	l.ring.Recv(up.fd, up.in, l.data(c, lopUpRecv), false)
	up.pending++
	l.armDeadline(roundDeadline(c.deadline, c.timeout))
}

// recvMore receives more of the response.
func (l *loop) recvMore(c *lconn) {
	up := c.up
	up.recvRes, up.timedOut = 0, false
	l.reserve(1)
	l.ring.Recv(up.fd, up.in[up.m:], l.data(c, lopUpRecv), false)
	up.pending++
	l.armDeadline(roundDeadline(c.deadline, c.timeout))
}

// armDeadline sets the loop's deadline timer to fire by d (a request's
// deadline, rounded up as the goroutine core rounds its deadlines), unless
// it fires by then already. One timer serves the requests at instances:
// onDeadline ends those past their deadline and sets it for the next. A
// timeout linked to each receive cost a completion per request, and often
// a system call to reap it.
func (l *loop) armDeadline(d time.Time) {
	if !l.dlAt.IsZero() && !d.Before(l.dlAt) {
		return
	}
	l.dlAt = d
	l.dlSeq++
	l.dlTS = unix.NsecToTimespec(int64(max(time.Until(d), time.Microsecond)))
	l.reserve(1)
	l.ring.Timeout(&l.dlTS, uint64(l.dlSeq)<<8|lopDeadline)
}

// onDeadline ends the requests at instances that are past their deadline
// (their receive is canceled; they are answered 504) and sets the timer
// for the others. A timer set before the last one (seq) is let go.
func (l *loop) onDeadline(seq uint32) {
	if seq != l.dlSeq {
		return
	}
	l.dlAt = time.Time{}
	now := time.Now()
	var next time.Time // the earliest deadline still ahead
	for _, c := range l.conns {
		if c == nil || c.state != lAwaiting || c.closing || c.up == nil || c.up.connecting || c.up.pending == 0 {
			continue
		}
		if now.Before(c.deadline) {
			if d := roundDeadline(c.deadline, c.timeout); next.IsZero() || d.Before(next) {
				next = d
			}
			continue
		}
		c.up.timedOut = true
		l.reserve(1)
		l.ring.Cancel(l.data(c, lopUpRecv), lopCancel)
	}
	if !next.IsZero() {
		l.armDeadline(next)
	}
}

// onUpDone goes on once the operations on the instance connection ended.
func (l *loop) onUpDone(c *lconn) {
	up := c.up
	switch {
	case c.closing:
		return
	case c.gone:
		l.drop(c)
	case up.connecting && (up.connRes < 0 || up.timedOut):
		l.upFailed(c, up.connRes)
	case up.connecting:
		l.exchange(c)
	case up.sendRes < 0:
		l.upFailed(c, up.sendRes)
	case up.recvRes > 0:
		up.m += int(up.recvRes)
		l.response(c)
	default:
		l.upFailed(c, up.recvRes)
	}
}

// response sends the instance's response, once it is all there, or
// receives more, or hands it to the goroutine core when it is not of the
// loop's kind.
func (l *loop) response(c *lconn) {
	up := c.up
	buf := up.in[:up.m]
	hn := headEnd(buf)
	switch {
	case hn < 0:
		l.handOff(c)
		return
	case hn == 0:
		if up.m == len(up.in) {
			l.handOff(c)
		} else {
			l.recvMore(c)
		}
		return
	}
	if !parseResponseHead(buf[:hn], &c.resp) || c.resp.status < 200 {
		l.handOff(c)
		return
	}
	total := hn
	if !bodyless(c.req.method, c.resp.status) {
		if c.resp.contentLength < 0 || c.resp.contentLength > int64(len(up.in)-hn) {
			l.handOff(c)
			return
		}
		total += int(c.resp.contentLength)
	}
	if up.m < total {
		l.recvMore(c)
		return
	}
	c.out = appendResponseHead(c.out[:0], &c.resp, buf[:hn], c.req.close)
	c.out = append(c.out, buf[hn:total]...)
	l.finish(c, c.resp.status)
	if c.resp.close || up.m > total {
		l.closeUp(c) // bytes the request did not ask for: not reused
	} else {
		l.putUp(c)
	}
	l.send(c)
}

// upFailed answers a request whose response did not come (res: why):
// 504 past its deadline, else 502, or sends it again on a new connection
// when a kept-alive one turned out closed.
func (l *loop) upFailed(c *lconn, res int32) {
	up := c.up
	timedOut, first := up.timedOut, up.m == 0 && up.reused && c.attempt == 0
	l.closeUp(c)
	switch {
	case timedOut || !time.Now().Before(c.deadline):
		l.refuse(c, 504, timeoutText(c.timeout, c.owner))
	case first:
		c.attempt++
		l.startUp(c, true)
	default:
		why := "EOF"
		if res < 0 {
			why = syscall.Errno(-res).Error()
		}
		l.s.rt.log.Warn("proxy", "host", string(c.host), "err", why)
		l.refuse(c, 502, "the app's instance did not answer: "+why+"\n")
	}
}

// refuse answers the request with the router's own response.
func (l *loop) refuse(c *lconn, code int, msg string) {
	c.out = appendRefusal(c.out[:0], code, msg, true, c.req.close)
	l.finish(c, code)
	l.send(c)
}

// finish gives back the request's room on its instance and counts it.
func (l *loop) finish(c *lconn, code int) {
	if c.b != nil {
		l.s.rt.finishRequest(c.rev, c.b, c.start, code)
		c.rev, c.b = nil, nil
	}
}

// send sends c's response. It is sent, or not, while the next Submit
// runs, and confirm goes on from there: the loop's next wait is for the
// next request, not for the send's completion.
func (l *loop) send(c *lconn) {
	c.state, c.sent, c.nowRes = lSending, 0, 0
	l.reserve(1)
	l.ring.SendNow(c.fd, c.out, l.data(c, lopClientSendNow))
	c.nowOp = l.ring.Prepared()
	c.pending++
	l.sentNow = append(l.sentNow, c)
}

// wait is how many completions the loop's next Submit waits for: none
// when a response it sends is one its connection goes on from at once,
// with no completion to wake the loop (the next request is there already,
// or the connection closes), or when a Reserve sent one; else one.
func (l *loop) wait() uint32 {
	for _, c := range l.sentNow {
		if c.nowOp <= l.ring.Submitted() || !c.recv || c.req.close || c.gone || l.stop > 0 {
			return 0
		}
	}
	return 1
}

// confirm goes on after the responses of sentNow that were submitted (the
// ring's operations up to sent), whose completions were reaped: those that
// posted none were sent whole; the others sent what their completion says
// (-EAGAIN: nothing, the socket is full), and their rest is sent as a Send
// that waits for room.
func (l *loop) confirm(sent uint64) {
	n := 0
	for n < len(l.sentNow) && l.sentNow[n].nowOp <= sent {
		n++
	}
	for i := range n {
		c := l.sentNow[i]
		c.pending--
		res := int32(len(c.out))
		switch {
		case c.nowRes == -int32(unix.EAGAIN):
			res = 0
			l.full.Add(1)
		case c.nowRes > 0:
			res = c.nowRes
			l.full.Add(1)
		case c.nowRes < 0:
			res = c.nowRes
		}
		l.onClientSend(c, res)
		l.settle(c)
	}
	l.sentNow = l.sentNow[:copy(l.sentNow, l.sentNow[n:])]
}

func (l *loop) onClientSend(c *lconn, res int32) {
	if c.closing {
		return
	}
	if res < 0 {
		c.gone = true
		l.drop(c)
		return
	}
	if c.sent += int(res); c.sent < len(c.out) {
		l.reserve(1)
		l.ring.Send(c.fd, c.out[c.sent:], l.data(c, lopClientSend), false)
		c.pending++
		return
	}
	c.state, c.since = lReading, time.Now()
	switch {
	case c.gone || c.req.close || l.stop > 0:
		l.drop(c)
	case c.recv:
		// The receive under way is the next request's.
	case c.n > 0:
		l.process(c)
	default:
		l.recvClient(c)
	}
}

// drop closes c (and its instance connection), once nothing of theirs is
// pending in the ring.
func (l *loop) drop(c *lconn) {
	l.finish(c, 0)
	c.closing = true
	if c.pending > 0 {
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
	if c.up != nil {
		if c.up.pending > 0 {
			unix.Shutdown(c.up.fd, unix.SHUT_RDWR)
		} else {
			l.closeUp(c)
		}
	}
}

// handOff hands c to the goroutine core once nothing of its is pending.
func (l *loop) handOff(c *lconn) {
	c.handing = true
	if c.recv {
		l.reserve(1)
		l.ring.Cancel(l.data(c, lopClientRecv), lopCancel)
	}
}

// settle closes or hands over c once nothing of its is pending.
func (l *loop) settle(c *lconn) {
	if c.pending > 0 || c.up != nil && c.up.pending > 0 || !c.closing && !c.handing {
		return
	}
	l.n.Add(-1) // before the goroutine core serves it, and counts it
	if c.closing {
		if c.up != nil {
			l.closeUp(c)
		}
		unix.Close(c.fd)
	} else if err := l.give(c); err != nil {
		l.s.rt.log.Warn("router: hand a connection over", "err", err)
		l.finish(c, 0)
		if c.up != nil {
			l.closeUp(c)
		}
		unix.Close(c.fd)
	}
	c.fd = -1
	l.free = append(l.free, c.slot)
	c.gen++ // late completions are not its next connection's
}

// give gives c, with what was received of it (and of its response, when
// the request is at an instance), to the goroutine core.
func (l *loop) give(c *lconn) error {
	nc, err := fdConn(c.fd)
	if err != nil {
		return err
	}
	cc := l.s.newConn(&replayConn{Conn: nc, pre: append([]byte(nil), c.in[:c.n]...)})
	if up := c.up; up != nil {
		unc, err := fdConn(up.fd)
		if err != nil {
			nc.Close()
			return err
		}
		c.up = nil
		uc := newUpConn(&replayConn{Conn: unc, pre: append([]byte(nil), up.in[:up.m]...)})
		uc.expireBy(c.deadline, c.timeout)
		cc.head = append(cc.head[:0], c.head...)
		parseRequestHead(cc.head, &cc.req)
		cc.host = append(cc.host[:0], c.host...)
		cc.rev, cc.b, cc.start, cc.timeout, cc.owner = c.rev, c.b, c.start, c.timeout, c.owner
		cc.resume, cc.resumeUp = uc, c.b.up
		c.rev, c.b = nil, nil
	}
	l.s.mu.Lock()
	l.s.conns[cc] = struct{}{}
	l.s.mu.Unlock()
	go cc.serve()
	return nil
}

// fdConn makes the descriptor fd a net.Conn of Go's poller, and closes fd.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	return net.FileConn(f)
}

// idleUp returns a kept-alive connection to u, or nil.
func (l *loop) idleUp(u *upstream) *lup {
	ups := l.idle[u]
	for len(ups) > 0 {
		up := ups[len(ups)-1]
		ups = ups[:len(ups)-1]
		l.idle[u] = ups
		if time.Since(up.used) < upstreamIdle && !u.closed() {
			return up
		}
		unix.Close(up.fd)
	}
	return nil
}

// putUp keeps c's instance connection for the next request.
func (l *loop) putUp(c *lconn) {
	up := c.up
	c.up = nil
	if up.u.closed() || len(l.idle[up.u]) >= 256 {
		unix.Close(up.fd)
		return
	}
	up.used = time.Now()
	l.idle[up.u] = append(l.idle[up.u], up)
}

func (l *loop) closeUp(c *lconn) {
	unix.Close(c.up.fd)
	c.up = nil
}

// newLup opens a socket for a connection to u's instance.
func newLup(u *upstream) (*lup, error) {
	ap, err := netip.ParseAddrPort(u.addr)
	if err != nil {
		return nil, fmt.Errorf("the instance's address %q: %w", u.addr, err)
	}
	up := &lup{u: u, in: make([]byte, loopBuf), out: make([]byte, 0, 1024)}
	family := unix.AF_INET
	port := (*[2]byte)(unsafe.Pointer(&up.sa.Addr.Data[0])) // sin_port and sin6_port, big-endian, lead both
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	if a := ap.Addr().Unmap(); a.Is4() {
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&up.sa))
		in.Family, in.Addr, up.salen = unix.AF_INET, a.As4(), unix.SizeofSockaddrInet4
	} else {
		family = unix.AF_INET6
		in := (*unix.RawSockaddrInet6)(unsafe.Pointer(&up.sa))
		in.Family, in.Addr, up.salen = unix.AF_INET6, a.As16(), unix.SizeofSockaddrInet6
	}
	if up.fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	unix.SetsockoptInt(up.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	return up, nil
}

// closed reports whether u's instance is gone.
func (u *upstream) closed() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.shut
}
