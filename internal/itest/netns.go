package itest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Neighbour is a host of the test's own: a network namespace joined to this
// machine by a veth pair, standing for the machine's LAN (a private
// address) and for a cloud metadata service (a link-local address), with an
// HTTP server on Port of both. Probes of the network fence aim only at it,
// never at a real LAN or metadata address: were the fence to fail, the
// packet would still not leave the machine.
type Neighbour struct {
	NS       string
	LAN      netip.Addr   // in the namespace, 10.250.<net>.2/24
	LANNet   netip.Prefix // 10.250.<net>.0/24
	Metadata netip.Addr   // in the namespace, 169.254.77.<net>/32, routed to it
	HostSide netip.Addr   // this machine's end of the veth, 10.250.<net>.1
	// Public is in the namespace too, 198.51.100.<net>/32 (TEST-NET-2),
	// routed to it: an address of the world, as a fence sees it.
	Public netip.Addr
	Port   int
}

// NewNeighbour makes the namespace, its veth and routes and starts its
// server; all of it is removed when the test ends. Tests that run at the
// same time (in other packages) take different nets.
func NewNeighbour(t testing.TB, name string, net int) *Neighbour {
	t.Helper()
	n := &Neighbour{NS: "coligo-t-" + name, LAN: netip.MustParseAddr(fmt.Sprintf("10.250.%d.2", net)),
		LANNet: netip.MustParsePrefix(fmt.Sprintf("10.250.%d.0/24", net)), Metadata: netip.MustParseAddr(fmt.Sprintf("169.254.77.%d", net)),
		HostSide: netip.MustParseAddr(fmt.Sprintf("10.250.%d.1", net)), Public: netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", net)), Port: 8000}
	host, peer := "ctn-"+name+"-h", "ctn-"+name+"-n"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	cleanup := func() {
		exec.Command("ip", "link", "del", host).Run() // takes the peer and the routes with it
		exec.Command("ip", "netns", "del", n.NS).Run()
	}
	cleanup() // what an interrupted run left
	t.Cleanup(cleanup)
	run("ip", "netns", "add", n.NS)
	run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	run("ip", "link", "set", peer, "netns", n.NS)
	run("ip", "addr", "add", n.HostSide.String()+"/24", "dev", host)
	run("ip", "link", "set", host, "up")
	run("ip", "route", "add", n.Metadata.String()+"/32", "dev", host)
	run("ip", "route", "add", n.Public.String()+"/32", "dev", host)
	in := func(args ...string) { run(append([]string{"ip", "netns", "exec", n.NS}, args...)...) }
	in("ip", "addr", "add", n.LAN.String()+"/24", "dev", peer)
	in("ip", "addr", "add", n.Metadata.String()+"/32", "dev", peer)
	in("ip", "addr", "add", n.Public.String()+"/32", "dev", peer)
	in("ip", "link", "set", peer, "up")
	in("ip", "link", "set", "lo", "up")
	in("ip", "route", "add", "default", "via", n.HostSide.String())
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("neighbour-"+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", "netns", "exec", n.NS, "/bin/busybox", "httpd", "-f", "-p", fmt.Sprint(n.Port), "-h", dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	return n
}

// Exec runs a command inside the neighbour's namespace.
func (n *Neighbour) Exec(args ...string) ([]byte, error) {
	return exec.Command("ip", append([]string{"netns", "exec", n.NS}, args...)...).CombinedOutput()
}
