package core

import (
	"net/netip"
	"regexp"
	"time"
)

// KindEgress is the record kind of an allowed outbound destination.
const KindEgress = "allowed_outbound_destination"

// Types of allowed outbound destination.
const (
	EgressCIDR        = "cidr_block"
	EgressPrivatePath = "private_path_service_gateway" // IBM Cloud only: refused here
)

// Statuses of an allowed outbound destination.
const (
	EgressDeploying = "deploying"
	EgressReady     = "ready"
)

// AllowAll is the rule every project starts with, as in Code Engine.
const AllowAll = "allow-all"

// MaxEgressRules caps the allowed outbound destinations of a project.
const MaxEgressRules = 100

// Egress is an allowed outbound destination: a CIDR block the project's
// instances may reach. Status tells whether the engine applies it yet.
type Egress struct {
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	CIDRBlock string    `json:"cidr_block"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
}

var egressName = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)

// ValidateEgressName checks a destination's name: 1–63 characters of
// a-z, 0-9 and '-', starting with a letter and ending with a letter or digit.
func ValidateEgressName(name string) error {
	if len(name) == 0 || len(name) > 63 || !egressName.MatchString(name) {
		return Invalid("name", "must be 1 to 63 characters of a-z, 0-9 and '-', start with a letter and end with a letter or digit")
	}
	return nil
}

// ParseEgressCIDR reads a cidr_block: an IPv4 CIDR in canonical form
// (no bits set past the prefix), as Code Engine's pattern allows.
func ParseEgressCIDR(s string) (netip.Prefix, error) {
	if len(s) > 18 {
		return netip.Prefix{}, Invalid("cidr_block", "must be an IPv4 CIDR such as 10.0.0.0/8 (at most 18 characters)")
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, Invalid("cidr_block", "must be an IPv4 CIDR such as 10.0.0.0/8")
	}
	if p.Masked() != p {
		return netip.Prefix{}, Invalid("cidr_block", "has bits set past its prefix length; did you mean %s?", p.Masked())
	}
	return p, nil
}

// PrivateRanges are the networks of a host's LAN, a cloud VPC or a carrier
// NAT. Instances reach them only through a destination inside them: an
// allow-all rule (or any wider rule) never opens them.
var PrivateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
}

// LinkLocal is where cloud metadata services answer; it never opens.
var LinkLocal = netip.MustParsePrefix("169.254.0.0/16")

// Within reports whether p lies within r.
func Within(p, r netip.Prefix) bool { return r.Bits() <= p.Bits() && r.Contains(p.Addr()) }

// InsidePrivate reports whether p lies within one of the private ranges.
func InsidePrivate(p netip.Prefix) bool {
	for _, r := range PrivateRanges {
		if Within(p, r) {
			return true
		}
	}
	return false
}

// Opens reports whether rule lets instances reach all of p: it contains p,
// and, when p is private, is itself inside a private range.
func Opens(rule, p netip.Prefix) bool {
	if !Within(p, rule) {
		return false
	}
	return !InsidePrivate(p) || InsidePrivate(rule)
}

// RedundantWith returns the name of an existing rule that already opens p
// ("" when none does); Code Engine refuses a redundant rule.
func RedundantWith(existing map[string]netip.Prefix, p netip.Prefix) string {
	for name, rule := range existing {
		if Opens(rule, p) {
			return name
		}
	}
	return ""
}
