package kube

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEgressRules: the NetworkPolicy egress of allowed destinations cuts out
// what never opens; private ranges open only for a destination inside them.
func TestEgressRules(t *testing.T) {
	pod, gw := netip.MustParsePrefix("10.244.0.0/16"), netip.MustParseAddr("10.244.0.1")
	p := func(ss ...string) []netip.Prefix {
		out := []netip.Prefix{}
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name    string
		allowed []netip.Prefix
		want    []string // the destination rules after the project's own pods, the gateway and DNS
	}{
		{"allow-all", p("0.0.0.0/0"), []string{"0.0.0.0/0 except 10.244.0.0/16,169.254.0.0/16,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10"}},
		{"none: no egress", p(), nil},
		{"a LAN inside 10/8 opens, without the pod network", p("10.0.0.0/8"), []string{"10.0.0.0/8 except 10.244.0.0/16"}},
		{"a LAN outside the pods", p("10.250.0.0/24"), []string{"10.250.0.0/24 except "}},
		{"inside the pod network: never", p("10.244.3.0/24"), nil},
		{"link-local: never", p("169.254.169.254/32"), nil},
		{"a public block", p("203.0.113.0/24"), []string{"203.0.113.0/24 except "}},
	}
	for _, tt := range tests {
		rules := egressRules(tt.allowed, pod, gw)
		if len(rules) < 3 || rules[0].To[0].PodSelector == nil || rules[1].To[0].IPBlock.CIDR != "10.244.0.1/32" || rules[1].Ports[0].Port.IntValue() != 80 ||
			len(rules[2].To) != 0 || rules[2].Ports[0].Port.IntValue() != 53 {
			t.Fatalf("%s: the own pods, gateway and DNS rules: %+v", tt.name, rules)
		}
		var got []string
		for _, r := range rules[3:] {
			got = append(got, r.To[0].IPBlock.CIDR+" except "+strings.Join(r.To[0].IPBlock.Except, ","))
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}
