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
//
// When projects share one network (Config.ProjectOf is set), one listener
// on addr serves every project, each caller the project its address
// belongs to.
func (r *Router) ServeProject(project string, addr netip.AddrPort, subnet netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.ProjectOf != nil {
		r.members[project] = true
		if r.shared[addr] != nil {
			return nil
		}
		srv, err := r.listen(addr, func(w http.ResponseWriter, req *http.Request) {
			caller, ok := r.cfg.ProjectOf(remoteAddr(req))
			r.mu.RLock()
			ok = ok && r.members[caller]
			r.mu.RUnlock()
			if !ok {
				r.log.Debug("project endpoint refused", "caller", remoteAddr(req), "project", caller)
				r.requests.WithLabelValues("403").Inc()
				plain(w, http.StatusForbidden, "project endpoints answer only the project's own instances\n")
				return
			}
			r.serveInternal(w, req, caller, subnet)
		})
		if err != nil {
			return fmt.Errorf("listen for projects on %s: %w", addr, err)
		}
		r.shared[addr] = &internalServer{addr: addr, subnet: subnet, srv: srv}
		r.log.Info("serving project endpoints", "addr", addr, "shared", true)
		return nil
	}
	if cur := r.internal[project]; cur != nil {
		if cur.addr == addr && cur.subnet == subnet {
			return nil
		}
		cur.srv.Close()
		delete(r.internal, project)
	}
	srv, err := r.listen(addr, func(w http.ResponseWriter, req *http.Request) {
		r.serveInternal(w, req, project, subnet)
	})
	if err != nil {
		return fmt.Errorf("listen for project %s on %s: %w", project, addr, err)
	}
	r.internal[project] = &internalServer{addr: addr, subnet: subnet, srv: srv}
	r.log.Info("serving project endpoints", "project", project, "addr", addr)
	return nil
}

// listen serves handler on addr, which need not exist yet (IP_FREEBIND).
func (r *Router) listen(addr netip.AddrPort, handler http.HandlerFunc) (*http.Server, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
		})
		return errors.Join(err, serr)
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr.String())
	if err != nil {
		return nil, err
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 90 * time.Second, MaxHeaderBytes: 64 << 10, Handler: handler}
	go srv.Serve(ln)
	return srv, nil
}

func remoteAddr(req *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(req.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// StopProject stops serving a project's internal endpoints.
func (r *Router) StopProject(project string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, project)
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
	for a, is := range r.shared {
		is.srv.Close()
		delete(r.shared, a)
	}
}

func (r *Router) serveInternal(w http.ResponseWriter, req *http.Request, project string, subnet netip.Prefix) {
	if !subnet.Contains(remoteAddr(req)) {
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
