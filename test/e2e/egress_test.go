package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/itest"
)

// TestAllowedOutboundDestinations: a new project has allow-all; bad or
// redundant destinations are refused and change nothing; a destination for
// a private CIDR opens that "LAN" (a namespace of the test's own) to the
// project's job runs within seconds, and its deletion closes it again; a
// token of another project sees none of it.
func TestAllowedOutboundDestinations(t *testing.T) {
	s := startServer(t)
	c := s.adminClient()
	ctx := context.Background()
	p, _, image := jobProject(t, s, "egress")
	nb := itest.NewNeighbour(t, "egress", 2)

	var list *api.AllowedOutboundDestinationList
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l, err := c.ListAllowedOutboundDestinations(ctx, p.ID, api.ListOptions{})
		if err == nil && len(l.AllowedOutboundDestinations) == 1 && l.AllowedOutboundDestinations[0].Status == "ready" {
			list = l
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new project's destinations: %+v %v, want allow-all, ready", l, err)
		}
	}
	if d := list.AllowedOutboundDestinations[0]; d.Name != "allow-all" || d.CIDRBlock != "0.0.0.0/0" || d.Type != "cidr_block" || d.ProjectID != p.ID {
		t.Errorf("default destination %+v", d)
	}

	for _, bad := range []struct {
		in      api.AllowedOutboundDestinationPrototype
		mention string
	}{
		{api.AllowedOutboundDestinationPrototype{Name: "Bad", Type: "cidr_block", CIDRBlock: "10.0.0.0/8"}, "name"},
		{api.AllowedOutboundDestinationPrototype{Name: "x", Type: "cidr_block", CIDRBlock: "10.0.0.1/8"}, "did you mean 10.0.0.0/8"},
		{api.AllowedOutboundDestinationPrototype{Name: "x", Type: "cidr_block", CIDRBlock: "2001:db8::/32"}, "IPv4"},
		{api.AllowedOutboundDestinationPrototype{Name: "x", Type: "private_path_service_gateway"}, "not supported"},
		{api.AllowedOutboundDestinationPrototype{Name: "x", CIDRBlock: "10.0.0.0/8"}, "type"},
		{api.AllowedOutboundDestinationPrototype{Name: "x", Type: "cidr_block", CIDRBlock: "203.0.113.0/24"}, "redundant"},
		{api.AllowedOutboundDestinationPrototype{Name: "allow-all", Type: "cidr_block", CIDRBlock: "10.1.0.0/16"}, "exists"},
	} {
		_, err := c.CreateAllowedOutboundDestination(ctx, p.ID, bad.in)
		if ae, ok := err.(*api.Error); !ok || ae.StatusCode/100 != 4 || !strings.Contains(ae.Message, bad.mention) {
			t.Errorf("%+v: %v, want a 4xx mentioning %q", bad.in, err, bad.mention)
		}
	}

	n := 0
	reaches := func() bool {
		n++
		name := fmt.Sprintf("probe-%d", n)
		if _, err := c.CreateJobRun(ctx, p.ID, api.JobRunPrototype{Name: name, RunSpec: api.RunSpec{ImageReference: image, ImageSecret: "regcred",
			RunCommands: []string{"/bin/testprog", "fetch", fmt.Sprintf("http://%s:%d/", nb.LAN, nb.Port)}, ScaleRetryLimit: intp(0)}}); err != nil {
			t.Fatal(err)
		}
		return waitRun(t, c, p.ID, name, 60*time.Second, finished).Status == "completed"
	}
	if reaches() {
		t.Fatal("the LAN is reachable under allow-all")
	}
	lan, err := c.CreateAllowedOutboundDestination(ctx, p.ID, api.AllowedOutboundDestinationPrototype{Name: "lan", Type: "cidr_block", CIDRBlock: nb.LANNet.String()})
	if err != nil {
		t.Fatal(err)
	}
	if lan.Status != "deploying" && lan.Status != "ready" {
		t.Errorf("created destination: %+v", lan)
	}
	if !reaches() {
		t.Error("the LAN is not reachable with a destination for it")
	}
	// Another project's token sees nothing of it.
	other := activeProject(t, c, "egress-other")
	tok, err := c.CreateToken(ctx, api.TokenPrototype{Name: "o", ProjectID: other.ID, Role: "manager"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.client(tok.Token).GetAllowedOutboundDestination(ctx, p.ID, "lan")
	wantStatus(t, err, 404, "another project's destination")
	err = s.client(tok.Token).DeleteAllowedOutboundDestination(ctx, p.ID, "lan")
	wantStatus(t, err, 404, "delete another project's destination")

	out := s.cli(t, filepath.Join(t.TempDir(), "c.yaml"), "", []string{"COLIGO_TOKEN=" + s.admin, "COLIGO_PROJECT=" + p.ID}, "connectivity", "outbound", "list")
	if out.code != 0 || !strings.Contains(out.stdout, "allow-all") || !strings.Contains(out.stdout, nb.LANNet.String()) {
		t.Errorf("connectivity outbound list: %d %q %q", out.code, out.stdout, out.stderr)
	}
	if err := c.DeleteAllowedOutboundDestination(ctx, p.ID, "lan"); err != nil {
		t.Fatal(err)
	}
	if reaches() {
		t.Error("the LAN is still reachable after its destination was deleted")
	}
	ips, err := c.GetEgressIPs(ctx, p.ID)
	if err != nil || len(ips.Private)+len(ips.Public) == 0 {
		t.Errorf("egress IPs: %+v %v", ips, err)
	}
	if sd := s.get(t, "/v2/projects/"+p.ID+"/status_details"); !strings.Contains(sd, `"project":"enabled"`) ||
		!strings.Contains(sd, `"data_plane":{"enforcement":"none","inbound_public":"allowed","inbound_private":"allowed"}`) {
		t.Errorf("status details: %s", sd)
	}
}
