package uring

import (
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/coligo/coligo/internal/itest"
)

// newRing returns a ring for the test's goroutine, locked to its thread,
// or skips (fails in CI) when the kernel allows none.
func newRing(t *testing.T, entries uint32) *Ring {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	r, err := New(entries)
	if err != nil {
		itest.Missing(t, err.Error())
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// await submits and reaps until n completions came, or fails after 5 s.
func await(t *testing.T, r *Ring, n int) map[uint64]int32 {
	t.Helper()
	got := map[uint64]int32{}
	var cs []Completion
	// A timeout of its own ends a wait for completions that do not come.
	ts := unix.NsecToTimespec(int64(5 * time.Second))
	t.Cleanup(func() { _ = ts })
	r.Timeout(&ts, awaitTimeout)
	for deadline := time.Now().Add(5 * time.Second); len(got) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d completions of %d in 5 s: %v", len(got), n, got)
		}
		if err := r.Submit(1); err != nil {
			t.Fatal(err)
		}
		cs = r.Reap(cs[:0])
		for _, c := range cs {
			if c.UserData != awaitTimeout {
				got[c.UserData] = c.Res
			}
		}
	}
	return got
}

// awaitTimeout is the user data of await's timeouts.
const awaitTimeout = ^uint64(0)

func socketPair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func errno(e syscall.Errno) int32 { return -int32(e) }

// TestSendThenRecv: a send linked to a receive on the other end of a
// socket pair; both complete with the length, and the bytes arrive.
func TestSendThenRecv(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPair(t)
	out, in := []byte("GET / HTTP/1.1\r\n\r\n"), make([]byte, 64)
	if err := r.Send(a, out, 1, true); err != nil {
		t.Fatal(err)
	}
	if err := r.Recv(b, in, 2, false); err != nil {
		t.Fatal(err)
	}
	got := await(t, r, 2)
	if got[1] != int32(len(out)) || got[2] != int32(len(out)) || string(in[:len(out)]) != string(out) {
		t.Errorf("send %d, receive %d of %q: want %d each", got[1], got[2], in[:max(got[2], 0)], len(out))
	}
	// The peer closes: a receive of 0.
	unix.Close(a)
	if err := r.Recv(b, in, 3, false); err != nil {
		t.Fatal(err)
	}
	if got := await(t, r, 1); got[3] != 0 {
		t.Errorf("receive after the peer closed: %d, want 0", got[3])
	}
}

// TestLinkTimeout: a receive that nothing arrives for ends with its
// linked timeout; one that data arrives for ends before it.
func TestLinkTimeout(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPair(t)
	buf := make([]byte, 16)
	ts := unix.NsecToTimespec(int64(20 * time.Millisecond))
	r.Recv(b, buf, 1, true)
	r.LinkTimeout(&ts, 2)
	start := time.Now()
	got := await(t, r, 2)
	if got[1] != errno(unix.ECANCELED) || got[2] != errno(unix.ETIME) {
		t.Errorf("receive %d, timeout %d: want %d and %d", got[1], got[2], errno(unix.ECANCELED), errno(unix.ETIME))
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("the timeout ended the receive after %v, before its 20 ms", d)
	}
	long := unix.NsecToTimespec(int64(time.Minute))
	unix.Write(a, []byte("x"))
	r.Recv(b, buf, 3, true)
	r.LinkTimeout(&long, 4)
	if got := await(t, r, 2); got[3] != 1 || got[4] != errno(unix.ECANCELED) {
		t.Errorf("receive %d, timeout %d: want 1 and %d", got[3], got[4], errno(unix.ECANCELED))
	}
}

// TestCancel: a pending receive is canceled; canceling what is not
// pending says so.
func TestCancel(t *testing.T) {
	r := newRing(t, 8)
	_, b := socketPair(t)
	buf := make([]byte, 16)
	r.Recv(b, buf, 1, false)
	r.Submit(0)
	r.Cancel(1, 2)
	if got := await(t, r, 2); got[1] != errno(unix.ECANCELED) || got[2] != 0 {
		t.Errorf("receive %d, cancel %d: want %d and 0", got[1], got[2], errno(unix.ECANCELED))
	}
	r.Cancel(1, 3)
	if got := await(t, r, 1); got[3] != errno(unix.ENOENT) {
		t.Errorf("cancel of nothing: %d, want %d", got[3], errno(unix.ENOENT))
	}
}

// TestAcceptAndRead: an accept on a listening socket completes with the
// connection a client opens; a read of an eventfd completes when it is
// written.
func TestAcceptAndRead(t *testing.T) {
	r := newRing(t, 8)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, _ := ln.(*net.TCPListener).SyscallConn()
	var lfd int
	raw.Control(func(fd uintptr) { lfd = int(fd) })
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	counter := make([]byte, 8)
	r.Accept(lfd, 1)
	r.Read(efd, counter, 2)
	r.Submit(0)
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
		}
		unix.Write(efd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}()
	got := await(t, r, 2)
	if got[1] < 0 {
		t.Errorf("accept: %d", got[1])
	} else {
		unix.Close(int(got[1]))
	}
	if got[2] != 8 || counter[0] != 1 {
		t.Errorf("read of the eventfd: %d (%v), want 8 bytes of 1", got[2], counter)
	}
}

// TestFull: a ring takes as many operations as it has entries, then says
// it is full, and has room again once they are submitted.
func TestFull(t *testing.T) {
	r := newRing(t, 4)
	ts := unix.NsecToTimespec(int64(time.Minute))
	n := 0
	for ; n < 100; n++ {
		if err := r.Timeout(&ts, uint64(n)); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			break
		}
	}
	if n != 4 || r.Room() != 0 {
		t.Fatalf("%d operations prepared in a ring of 4, room %d", n, r.Room())
	}
	if err := r.Submit(0); err != nil {
		t.Fatal(err)
	}
	if r.Room() != 4 {
		t.Errorf("room after a submit: %d, want 4", r.Room())
	}
}

func TestSetupError(t *testing.T) {
	for _, c := range []struct {
		errno syscall.Errno
		want  string
	}{
		{unix.ENOSYS, "this kernel has none"},
		{unix.EPERM, "kernel.io_uring_disabled"},
		{unix.EINVAL, "older than 6.1"},
		{unix.EMFILE, "no room"},
		{unix.EFAULT, "io_uring_setup: bad address"},
	} {
		err := setupError(c.errno)
		if !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.errno) {
			t.Errorf("setupError(%v) = %q, want it to say %q and wrap the errno", c.errno, err, c.want)
		}
	}
}

// TestConnect: a connect linked to a send reaches a listener, and the
// bytes with it; a connect to a port nobody listens on is refused.
func TestConnect(t *testing.T) {
	r := newRing(t, 8)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		b := make([]byte, 5)
		n, _ := c.Read(b)
		got <- string(b[:n])
	}()
	sa := func(port int) (*unix.RawSockaddrAny, uint32) {
		var any unix.RawSockaddrAny
		in := (*unix.RawSockaddrInet4)(unsafe.Pointer(&any))
		in.Family = unix.AF_INET
		in.Addr = [4]byte{127, 0, 0, 1}
		p := (*[2]byte)(unsafe.Pointer(&in.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return &any, unix.SizeofSockaddrInet4
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	addr, n := sa(ln.Addr().(*net.TCPAddr).Port)
	if err := r.Reserve(2); err != nil {
		t.Fatal(err)
	}
	r.Connect(fd, addr, n, 1, true)
	r.Send(fd, []byte("hello"), 2, false)
	if res := await(t, r, 2); res[1] != 0 || res[2] != 5 {
		t.Errorf("connect %d, send %d: want 0 and 5", res[1], res[2])
	}
	if s := <-got; s != "hello" {
		t.Errorf("the listener read %q", s)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	fd2, _ := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	defer unix.Close(fd2)
	addr, n = sa(port)
	r.Connect(fd2, addr, n, 3, false)
	if res := await(t, r, 1); res[3] != errno(unix.ECONNREFUSED) {
		t.Errorf("connect to a closed port: %d, want %d", res[3], errno(unix.ECONNREFUSED))
	}
}

// TestSendNow: a send the socket has room for is done when Submit returns
// (its bytes are there to read, and no completion comes); one it has no
// room for completes at once with -EAGAIN, one it has some room for with
// the length it took, one to a socket shut down with -EPIPE.
func TestSendNow(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPair(t)
	if err := r.SendNow(a, []byte("ping"), 1); err != nil {
		t.Fatal(err)
	}
	if p, s := r.Prepared(), r.Submitted(); p != s+1 {
		t.Errorf("one operation prepared: %d prepared, %d submitted", p, s)
	}
	if err := r.Submit(0); err != nil {
		t.Fatal(err)
	}
	if p, s := r.Prepared(), r.Submitted(); p != s {
		t.Errorf("after Submit: %d prepared, %d submitted", p, s)
	}
	in := make([]byte, 64<<10)
	if n, _, err := unix.Recvfrom(b, in, unix.MSG_DONTWAIT); err != nil || string(in[:n]) != "ping" {
		t.Errorf("read right after Submit: %q, %v; want ping", in[:max(n, 0)], err)
	}
	if cs := r.Reap(nil); len(cs) != 0 {
		t.Errorf("completions of a send that succeeded: %v", cs)
	}
	// Fill the socket, then send: -EAGAIN, there when Submit returns.
	unix.SetsockoptInt(a, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	block := make([]byte, 1024)
	for {
		if _, err := unix.SendmsgN(a, block, nil, nil, unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	r.SendNow(a, []byte("pong"), 2)
	r.Submit(0)
	if cs := r.Reap(nil); len(cs) != 1 || cs[0].UserData != 2 || cs[0].Res != errno(unix.EAGAIN) {
		t.Errorf("completions of a send to a full socket, right after Submit: %v, want one of -EAGAIN", cs)
	}
	// Room for some of it: the length it took.
	for {
		if _, _, err := unix.Recvfrom(b, in, unix.MSG_DONTWAIT); err != nil {
			break
		}
	}
	big := make([]byte, 8<<20)
	r.SendNow(a, big, 3)
	r.Submit(0)
	if cs := r.Reap(nil); len(cs) != 1 || cs[0].UserData != 3 || cs[0].Res <= 0 || cs[0].Res >= int32(len(big)) {
		t.Errorf("completions of a send of 8 MiB to a socket with room for some, right after Submit: %v, want one of its short length", cs)
	}
	unix.Shutdown(a, unix.SHUT_WR)
	r.SendNow(a, []byte("ping"), 4)
	r.Submit(0)
	if cs := r.Reap(nil); len(cs) != 1 || cs[0].Res != errno(unix.EPIPE) {
		t.Errorf("completions of a send after shutdown: %v, want one of %d", cs, errno(unix.EPIPE))
	}
}
