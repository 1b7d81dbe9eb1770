package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestInward(t *testing.T) {
	host := []netip.Addr{netip.MustParseAddr("192.0.2.10")}
	tests := map[string]bool{
		"127.0.0.1": true, "127.8.9.10": true, "::1": true, "0.0.0.0": true, "::": true,
		"169.254.169.254": true, "169.254.77.77": true, "fe80::1": true, "::ffff:127.0.0.1": true, "::ffff:169.254.169.254": true,
		"192.0.2.10": true, // this host
		"10.250.0.2": false, "192.168.1.1": false, "8.8.8.8": false, "2001:db8::1": false,
	}
	for a, want := range tests {
		if got := Inward(netip.MustParseAddr(a), host); got != want {
			t.Errorf("Inward(%s) = %v, want %v", a, got, want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	g := &Guard{Allow: []string{"127.0.0.1:5000"}, HostAddrs: func() []netip.Addr { return []netip.Addr{netip.MustParseAddr("192.0.2.10")} }}
	tests := map[string]bool{ // host:port → allowed
		"127.0.0.1:5000": true, "127.0.0.1:7070": false, "localhost:7070": false, "LOCALHOST": false, "reg.localhost:80": false,
		"169.254.169.254:80": false, "[fe80::1]:443": false, "192.0.2.10:443": false, "[::1]:5000": false,
		"registry.example.com": true, "registry.example.com:5000": true, "10.250.0.2:5000": true,
	}
	for hp, want := range tests {
		err := g.CheckHost(hp)
		if (err == nil) != want || err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("CheckHost(%s) = %v, want allowed=%v", hp, err, want)
		}
	}
}

// TestCheckResolved: a name is judged by what it resolves to, here from
// a DNS server of the test's own on loopback that answers every name with
// one address: inward names are refused, others pass.
func TestCheckResolved(t *testing.T) {
	ctx := context.Background()
	for answer, want := range map[string]bool{"127.0.0.1": false, "169.254.169.254": false, "192.0.2.1": true} {
		g := &Guard{Allow: []string{"127.0.0.1:5000"}, Resolver: fakeDNS(t, netip.MustParseAddr(answer))}
		err := g.CheckResolved(ctx, "git.example:22")
		if (err == nil) != want || err != nil && !errors.Is(err, ErrNotAllowed) {
			t.Errorf("a name that resolves to %s: %v, want allowed=%v", answer, err, want)
		}
	}
	g := &Guard{Allow: []string{"127.0.0.1:5000"}, Resolver: fakeDNS(t, netip.MustParseAddr("127.0.0.1"))}
	for hp, want := range map[string]bool{"127.0.0.1:22": false, "127.0.0.1:5000": true, "192.0.2.1:22": true, "[::1]:22": false, "localhost:22": false} {
		if err := g.CheckResolved(ctx, hp); (err == nil) != want {
			t.Errorf("CheckResolved(%s) = %v, want allowed=%v", hp, err, want)
		}
	}
}

// fakeDNS is a resolver asking a DNS server on loopback that answers every
// A question with a (and no other question).
func fakeDNS(t *testing.T, a netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: a.As4()})
			}
			if msg, err := b.Finish(); err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

// TestDialRefusesNamesThatResolveInward: a name is checked by what it
// resolves to, and the resolved address is what is dialled.
func TestDialRefusesNamesThatResolveInward(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	ctx := context.Background()
	g := &Guard{}
	for _, addr := range []string{ln.Addr().String(), "localhost:" + portOf(ln)} {
		if c, err := g.DialContext(ctx, "tcp", addr); err == nil || !errors.Is(err, ErrNotAllowed) {
			if c != nil {
				c.Close()
			}
			t.Errorf("dial %s: %v, want refused", addr, err)
		}
	}
	g.Allow = []string{ln.Addr().String()}
	c, err := g.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("an allowed address: %v", err)
	}
	c.Close()
}

func portOf(ln net.Listener) string {
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5000", "[::1]:80", "localhost", "a.b:1", "[fe80::1%eth0]:80", ""} {
		f.Add(s)
	}
	g := &Guard{HostAddrs: func() []netip.Addr { return nil }}
	f.Fuzz(func(t *testing.T, s string) {
		if g.CheckHost(s) == nil {
			if a, err := netip.ParseAddr(s); err == nil && Inward(a, nil) {
				t.Fatalf("%q is inward but allowed", s)
			}
		}
	})
}
