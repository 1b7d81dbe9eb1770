package e2e

import (
	"context"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
)

// TestImagePullsCannotBeAimedInward: an image_reference once made the
// server connect to itself or to the link-local (metadata) range, and the
// pull's error text came back in the revision message. A literal inward
// registry is refused with 400; a name that resolves inward (this host's
// own name) is refused where the engine dials it, with a reason and a fixed
// message, and the listener there sees no connection.
func TestImagePullsCannotBeAimedInward(t *testing.T) {
	s := appServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, _ := jobProject(t, s, "inward")

	// A listener on loopback that counts connections: it stands for the
	// host's own services (the API, a database, the container runtime).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var hits atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			conn.Write([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 22\r\n\r\nsecret-internal-detail"))
			conn.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	_, apiPort, _ := net.SplitHostPort(s.addr)
	for _, ref := range []string{
		"127.0.0.1:" + port + "/x/y:1", "localhost:" + apiPort + "/v2/projects:1", "[::1]:" + port + "/x:1",
		"169.254.169.254/latest/meta-data:1", "169.254.77.77:5000/x:1", "[fe80::1]:5000/x:1",
	} {
		_, err := c.CreateApp(ctx, p.ID, api.AppPrototype{Name: "in", AppSpec: api.AppSpec{ImageReference: ref}})
		if ae, ok := err.(*api.Error); !ok || ae.StatusCode != 400 || ae.Code != "invalid_image_reference" {
			t.Errorf("app of %s: %v, want 400 invalid_image_reference", ref, err)
		}
		_, err = c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: "in", RunSpec: api.RunSpec{ImageReference: ref}})
		if ae, ok := err.(*api.Error); !ok || ae.StatusCode != 400 {
			t.Errorf("job run of %s: %v, want 400", ref, err)
		}
	}

	// This host's own name resolves to loopback (Debian's /etc/hosts): the
	// API takes the name, the engine refuses the address it resolves to.
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 || !addrs[0].IsLoopback() {
		t.Fatalf("this test needs the host's name (%s) to resolve to loopback, as Debian's /etc/hosts makes it: %v %v", host, addrs, err)
	}
	if _, err := c.CreateApp(ctx, p.ID, api.AppPrototype{Name: "byname", AppSpec: api.AppSpec{ImageReference: host + ":" + port + "/x/y:1"}}); err != nil {
		t.Fatal(err)
	}
	a := waitApp(t, c, p.ID, "byname", 30*time.Second, func(a *api.App) bool { return a.Status == "failed" })
	revs, err := c.ListAppRevisions(ctx, p.ID, "byname", api.ListOptions{})
	if err != nil || len(revs.Revisions) == 0 {
		t.Fatalf("revisions: %+v %v", revs, err)
	}
	d := revs.Revisions[0].StatusDetails
	if d.Reason != "fetch_image_failed_registry_not_allowed" || strings.Contains(d.Message, "secret-internal-detail") || strings.Contains(d.Message, "127.0.0.1") {
		t.Errorf("app %s, revision %+v: want the not-allowed reason and a fixed message", a.Status, d)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server connected %d times to the loopback listener", n)
	}
}
