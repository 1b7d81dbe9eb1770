package router

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// internalServer serves one project's internal endpoints.
type internalServer struct {
	addr   netip.AddrPort
	subnet netip.Prefix
	srv    *http.Server
}

// ServeProject serves the project's internal endpoints (routes with this
// Project, public or not) on addr, its gateway on the project network, to
// clients with an address in subnet only. The address need not exist yet:
// the network may appear with the project's first instance. Calling it
// again with the same values does nothing.
func (r *Router) ServeProject(project string, addr netip.AddrPort, subnet netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.internal[project]; cur != nil {
		if cur.addr == addr && cur.subnet == subnet {
			return nil
		}
		cur.srv.Close()
		delete(r.internal, project)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr.String())
	if err != nil {
		return fmt.Errorf("listen for project %s on %s: %w", project, addr, err)
	}
	is := &internalServer{addr: addr, subnet: subnet}
	is.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serveInternal(w, req, project, subnet)
	})}
	r.internal[project] = is
	go is.srv.Serve(ln)
	r.log.Info("serving project endpoints", "project", project, "addr", addr)
	return nil
}

// StopProject stops serving a project's internal endpoints.
func (r *Router) StopProject(project string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if is := r.internal[project]; is != nil {
		is.srv.Close()
		delete(r.internal, project)
	}
}

// Close stops every internal listener.
func (r *Router) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, is := range r.internal {
		is.srv.Close()
		delete(r.internal, p)
	}
}

func (r *Router) serveInternal(w http.ResponseWriter, req *http.Request, project string, subnet netip.Prefix) {
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err != nil || !subnet.Contains(ap.Addr().Unmap()) {
		r.requests.WithLabelValues("403").Inc()
		plain(w, http.StatusForbidden, "project endpoints answer only the project's own instances\n")
		return
	}
	host := strings.ToLower(req.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	r.serve(w, req, host, func(rt Route) bool { return rt.Project == project })
}
