package main

import (
	"bytes"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// The floor: proxies in Go that do nothing but what every proxy must —
// read a request, write it to a kept-alive connection to the instance (one
// per client connection), read the response to its Content-Length, write
// it back — with none of the router's work (no routing, no accounting, no
// header rewriting, no deadlines). One has a goroutine per connection, as
// the router's core; one an epoll loop per core, as nginx and haproxy; one
// an io_uring loop per core (uring.go). They show what Go's runtime costs per request on this path, by
// itself: `-floor` adds them to the table. They serve GET requests without
// bodies only; they are measuring instruments, not proxies to use.

// startFloor starts this program again as a floor proxy of kind
// (goroutine, epoll or uring) in front of upstream.
func startFloor(kind, upstream string) (*proxy, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-serve-floor", kind, "-floor-listen", addr, "-floor-up", upstream)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	return startProxy(cmd, addr)
}

// serveFloor serves as a floor proxy until killed.
func serveFloor(kind, listen, upstream string) error {
	if loop := map[string]func(string, string) error{"epoll": floorLoop, "uring": ringLoop}[kind]; loop != nil {
		errc := make(chan error)
		for range runtime.GOMAXPROCS(0) {
			go func() { errc <- loop(listen, upstream) }()
		}
		return <-errc
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go floorConn(c, upstream)
	}
}

// complete returns the length of the request or response at the start of
// b once it is all there, else 0.
func complete(b []byte, response bool) int {
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		return 0
	}
	n := i + 4
	if response {
		if j := bytes.Index(bytes.ToLower(b[:i]), []byte("\r\ncontent-length:")); j >= 0 {
			v := b[j+17:]
			v = v[:bytes.IndexByte(v, '\r')]
			l, _ := strconv.Atoi(string(bytes.TrimSpace(v)))
			n += l
		}
	}
	if len(b) < n {
		return 0
	}
	return n
}

func floorConn(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	req, resp := make([]byte, 16<<10), make([]byte, 16<<10)
	for {
		n := 0
		for complete(req[:n], false) == 0 {
			k, err := c.Read(req[n:])
			if err != nil {
				return
			}
			n += k
		}
		if _, err := u.Write(req[:n]); err != nil {
			return
		}
		m := 0
		for complete(resp[:m], true) == 0 {
			k, err := u.Read(resp[m:])
			if err != nil {
				return
			}
			m += k
		}
		if _, err := c.Write(resp[:m]); err != nil {
			return
		}
	}
}

// floorLoop is one epoll loop on a thread of its own, with a listening
// socket of its own (SO_REUSEPORT) and level-triggered events.
func floorLoop(listen, upstream string) error {
	runtime.LockOSThread()
	lfd, ua, err := loopSockets(listen, upstream, unix.SOCK_NONBLOCK)
	if err != nil {
		return err
	}
	ep, err := unix.EpollCreate1(0)
	if err != nil {
		return err
	}
	add := func(fd int) {
		unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
	}
	add(lfd)
	type pair struct {
		client, up int
		req, resp  []byte
		n, m       int
	}
	pairs := map[int]*pair{}
	drop := func(p *pair) {
		delete(pairs, p.client)
		delete(pairs, p.up)
		unix.Close(p.client)
		unix.Close(p.up)
	}
	events := make([]unix.EpollEvent, 256)
	for {
		k, err := unix.EpollWait(ep, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:k] {
			fd := int(ev.Fd)
			if fd == lfd {
				for {
					cfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK)
					if err != nil {
						break
					}
					ufd, err := connectUp(cfd, ua)
					if err != nil {
						continue
					}
					unix.SetNonblock(ufd, true)
					add(cfd)
					add(ufd)
					p := &pair{client: cfd, up: ufd, req: make([]byte, 16<<10), resp: make([]byte, 16<<10)}
					pairs[cfd], pairs[ufd] = p, p
				}
				continue
			}
			p := pairs[fd]
			if p == nil {
				continue
			}
			if fd == p.client {
				r, err := unix.Read(fd, p.req[p.n:])
				if r <= 0 {
					if err != unix.EAGAIN {
						drop(p)
					}
					continue
				}
				if p.n += r; complete(p.req[:p.n], false) > 0 {
					unix.Write(p.up, p.req[:p.n])
					p.n = 0
				}
				continue
			}
			r, err := unix.Read(fd, p.resp[p.m:])
			if r <= 0 {
				if err != unix.EAGAIN {
					drop(p)
				}
				continue
			}
			if p.m += r; complete(p.resp[:p.m], true) > 0 {
				unix.Write(p.client, p.resp[:p.m])
				p.m = 0
			}
		}
	}
}

// loopSockets parses a loop's addresses and opens its listening socket of
// its own (SO_REUSEPORT), of type flags (SOCK_NONBLOCK or 0).
func loopSockets(listen, upstream string, flags int) (lfd int, ua netip.AddrPort, err error) {
	la, err := netip.ParseAddrPort(listen)
	if err != nil {
		return 0, ua, err
	}
	if ua, err = netip.ParseAddrPort(upstream); err != nil {
		return 0, ua, err
	}
	if lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|flags, 0); err != nil {
		return 0, ua, err
	}
	unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: la.Addr().As4(), Port: int(la.Port())}); err != nil {
		return 0, ua, err
	}
	return lfd, ua, unix.Listen(lfd, 1024)
}

// connectUp opens the connection to the instance for the client
// connection cfd, both with TCP_NODELAY; on failure cfd is closed.
func connectUp(cfd int, ua netip.AddrPort) (int, error) {
	ufd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		unix.Close(cfd)
		return 0, err
	}
	if err := unix.Connect(ufd, &unix.SockaddrInet4{Addr: ua.Addr().As4(), Port: int(ua.Port())}); err != nil {
		unix.Close(cfd)
		unix.Close(ufd)
		return 0, err
	}
	for _, f := range []int{cfd, ufd} {
		unix.SetsockoptInt(f, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	}
	return ufd, nil
}
