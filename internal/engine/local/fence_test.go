package local

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFenceEgress: the order of the egress chain is the policy. Private
// ranges open only for a rule inside them, never for allow-all or a wider
// rule; link-local and other projects never open.
func TestFenceEgress(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	base := fence{bridge: "clg0123456789", all: netip.MustParsePrefix("10.89.0.0/16"), own: netip.MustParsePrefix("10.89.1.0/24"),
		gateway: netip.MustParseAddr("10.89.1.1")}
	always := []string{"-o clg0123456789 ACCEPT", "-d 10.89.0.0/16 DROP", "-d 169.254.0.0/16 DROP"}
	private := []string{"-d 10.0.0.0/8 DROP", "-d 172.16.0.0/12 DROP", "-d 192.168.0.0/16 DROP", "-d 100.64.0.0/10 DROP"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name    string
		allowed []netip.Prefix
		world   bool
		want    []string
	}{
		{"allow-all", pfx("0.0.0.0/0"), true, cat(always, private, []string{"ACCEPT"})},
		{"no rule: no egress", nil, false, cat(always, private, []string{"DROP"})},
		{"a LAN CIDR with allow-all", pfx("0.0.0.0/0", "10.250.0.0/24"), true, cat(always, []string{"-d 10.250.0.0/24 ACCEPT"}, private, []string{"ACCEPT"})},
		{"a public CIDR only", pfx("203.0.113.0/24"), false, cat(always, private, []string{"-d 203.0.113.0/24 ACCEPT", "DROP"})},
		{"a wide rule does not open private ranges", pfx("0.0.0.0/1"), false, cat(always, private, []string{"-d 0.0.0.0/1 ACCEPT", "DROP"})},
		{"link-local never opens", pfx("169.254.0.0/16"), false, cat(always, private, []string{"-d 169.254.0.0/16 ACCEPT", "DROP"})},
	}
	for _, tt := range tests {
		f := base
		f.allowed, f.world = tt.allowed, tt.world
		var got []string
		for _, r := range f.egress() {
			// match and target, without the comment (the last four words)
			got = append(got, strings.Replace(strings.Join(r[:len(r)-4], " "), "-j ", "", 1))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// TestFenceBuild: the build network's chains — no other build on the
// bridge, no host, no private range or link-local address; the world.
func TestFenceBuild(t *testing.T) {
	f := fence{bridge: "coligobk0", build: true, world: true}
	var egress, ingress []string
	for _, r := range f.egress() {
		egress = append(egress, strings.Replace(strings.Join(r[:len(r)-4], " "), "-j ", "", 1))
	}
	for _, r := range f.ingress() {
		ingress = append(ingress, strings.Replace(strings.Join(r[:len(r)-4], " "), "-j ", "", 1))
	}
	want := []string{"-o coligobk0 DROP", "-d 169.254.0.0/16 DROP", "-d 10.0.0.0/8 DROP", "-d 172.16.0.0/12 DROP", "-d 192.168.0.0/16 DROP", "-d 100.64.0.0/10 DROP", "ACCEPT"}
	if diff := cmp.Diff(want, egress); diff != "" {
		t.Errorf("egress (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"-m conntrack --ctstate ESTABLISHED,RELATED ACCEPT", "DROP"}, ingress); diff != "" {
		t.Errorf("ingress (-want +got):\n%s", diff)
	}
	var chains []string
	for _, j := range f.jumps() {
		chains = append(chains, j.table+"/"+j.chain)
	}
	if diff := cmp.Diff([]string{"filter/INPUT", "filter/FORWARD", "filter/FORWARD", "filter/FORWARD", "filter/CNI-ADMIN"}, chains); diff != "" {
		t.Errorf("jumps (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "a-bridge-name-too-long", "br;rm", "br 0", ".."} {
		if FenceBuildNetwork(bad) == nil {
			t.Errorf("FenceBuildNetwork(%q) took it", bad)
		}
	}
}

// TestEgressSurvivesRestart: a project's allowed destinations are kept in
// the engine's state dir, so that a restarted engine fences the project as
// it was told, not with the default allow-all, before anyone tells it again.
func TestEgressSurvivesRestart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("iptables needs root") // make test runs as root
	}
	dir := t.TempDir()
	subnet := netip.MustParsePrefix("10.219.0.0/16")
	n, err := newNetworks("/usr/lib/cni", subnet, dir)
	if err != nil {
		t.Fatal(err)
	}
	lan := []netip.Prefix{netip.MustParsePrefix("10.250.9.0/24")}
	if err := n.setEgress("p1", lan); err != nil {
		t.Fatal(err)
	}
	if err := n.setEgress("p2", []netip.Prefix{}); err != nil {
		t.Fatal(err)
	}
	again, err := newNetworks("/usr/lib/cni", subnet, dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]netip.Prefix{"p1": lan, "p2": {}}, again.allowed, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("allowed destinations after a restart (-want +got):\n%s", diff)
	}
	if f := again.fence("p2", 1); f.world || len(f.allowed) != 0 {
		t.Errorf("a project told to have no egress has %+v after a restart", f)
	}
}
