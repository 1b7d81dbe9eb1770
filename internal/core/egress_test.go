package core

import (
	"net/netip"
	"testing"
)

func TestParseEgressCIDR(t *testing.T) {
	tests := map[string]bool{
		"0.0.0.0/0": true, "10.0.0.0/8": true, "203.0.113.7/32": true, "192.168.1.0/24": true,
		"10.0.0.1/8": false, "10.0.0.0": false, "::/0": false, "2001:db8::/32": false, "10.0.0.0/33": false,
		"010.0.0.0/8": false, "": false, "10.0.0.0/8 ": false, "1.2.3.4/32/1": false,
	}
	for s, ok := range tests {
		if _, err := ParseEgressCIDR(s); (err == nil) != ok {
			t.Errorf("ParseEgressCIDR(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}

func TestRedundantWith(t *testing.T) {
	p := netip.MustParsePrefix
	existing := map[string]netip.Prefix{"allow-all": p("0.0.0.0/0"), "lan": p("10.250.0.0/16")}
	tests := []struct {
		cidr string
		want string
	}{
		{"203.0.113.0/24", "allow-all"}, // public: allow-all opens it already
		{"10.250.0.0/24", "lan"},        // inside the LAN rule
		{"10.250.0.0/16", "lan"},        // the same
		{"10.251.0.0/24", ""},           // private: allow-all does not open it
		{"192.168.0.0/16", ""},
		{"0.0.0.0/0", "allow-all"},
	}
	for _, tt := range tests {
		if got := RedundantWith(existing, p(tt.cidr)); got != tt.want {
			t.Errorf("RedundantWith(%s) = %q, want %q", tt.cidr, got, tt.want)
		}
	}
}

func TestValidateEgressName(t *testing.T) {
	for name, ok := range map[string]bool{"allow-all": true, "a": true, "lan-1": true, "1a": false, "a-": false, "A": false, "": false} {
		if err := ValidateEgressName(name); (err == nil) != ok {
			t.Errorf("%q: %v, want ok=%v", name, err, ok)
		}
	}
}

func FuzzParseEgressCIDR(f *testing.F) {
	for _, s := range []string{"0.0.0.0/0", "10.0.0.0/8", "10.0.0.1/8", "::/0", "1.2.3.4/32"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseEgressCIDR(s)
		if err == nil && (p.String() != s || !p.Addr().Is4() || p.Masked() != p) {
			t.Fatalf("%q accepted as %s", s, p)
		}
	})
}
