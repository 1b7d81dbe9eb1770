package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// ErrNotAllowed is returned (wrapped) for an address that points inward.
var ErrNotAllowed = errors.New("the address points at this host or a link-local range, which coligo does not connect to for users")

// Guard dials only addresses that are not inward, except for the
// host:ports the operator allowed.
type Guard struct {
	Allow []string // host:port, as given (e.g. --insecure-registry)
	// HostAddrs lists this host's own addresses; nil reads the interfaces
	// at each check.
	HostAddrs func() []netip.Addr
	Resolver  *net.Resolver
}

// Inward reports whether a connection to a would reach this host or the
// link-local range: loopback, unspecified, link-local (unicast and
// multicast, IPv4 and IPv6) or one of host's own addresses.
func Inward(a netip.Addr, host []netip.Addr) bool {
	a = a.Unmap()
	return a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || slices.Contains(host, a)
}

// InterfaceAddrs returns this host's own addresses.
func InterfaceAddrs() []netip.Addr {
	addrs, _ := net.InterfaceAddrs()
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

func (g *Guard) allowed(hostport string) bool {
	return slices.ContainsFunc(g.Allow, func(a string) bool { return strings.EqualFold(a, hostport) })
}

// CheckHost refuses a host:port whose host is a literal inward address or
// "localhost", unless allowed; a name is checked when it is dialled.
func (g *Guard) CheckHost(hostport string) error {
	if g.allowed(hostport) {
		return nil
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return fmt.Errorf("%s: %w", hostport, ErrNotAllowed)
	}
	if a, err := netip.ParseAddr(host); err == nil && Inward(a, g.hostAddrs()) {
		return fmt.Errorf("%s: %w", hostport, ErrNotAllowed)
	}
	return nil
}

// CheckResolved is CheckHost for names too: it resolves hostport's host
// and refuses it when any of its addresses is inward. What connects later
// resolves the name again and may get another answer, so this narrows
// the window DialContext closes, for connections coligo does not make.
func (g *Guard) CheckResolved(ctx context.Context, hostport string) error {
	if err := g.CheckHost(hostport); err != nil || g.allowed(hostport) {
		return err
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return nil // an address: CheckHost judged it
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	own := g.hostAddrs()
	for _, ip := range ips {
		if Inward(ip, own) {
			return fmt.Errorf("%s resolves to %s: %w", hostport, ip, ErrNotAllowed)
		}
	}
	return nil
}

func (g *Guard) hostAddrs() []netip.Addr {
	if g.HostAddrs != nil {
		return g.HostAddrs()
	}
	return InterfaceAddrs()
}

// DialContext resolves addr's host and dials the first of its addresses
// that is not inward (all of them when addr is allowed); it never dials a
// name, so what was checked is what is connected to.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if g.allowed(addr) {
		return d.DialContext(ctx, network, addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(host, "localhost") {
		return nil, fmt.Errorf("%s: %w", addr, ErrNotAllowed)
	}
	var ips []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{a}
	} else {
		r := g.Resolver
		if r == nil {
			r = net.DefaultResolver
		}
		if ips, err = r.LookupNetIP(ctx, "ip", host); err != nil {
			return nil, err
		}
	}
	own := g.hostAddrs()
	var lastErr error = fmt.Errorf("%s: %w", addr, ErrNotAllowed)
	for _, ip := range ips {
		if Inward(ip, own) {
			continue
		}
		c, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// HTTPClient is an HTTP client whose every connection goes through g.
// Proxies named in the environment are used, and reached directly.
func HTTPClient(g *Guard) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = g.DialContext
	return &http.Client{Transport: t}
}
