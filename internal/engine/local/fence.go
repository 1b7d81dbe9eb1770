package local

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/coreos/go-iptables/iptables"

	"github.com/coligo/coligo/internal/core"
)

// fence is what one project's network may reach, as iptables rules: the
// project's own instances, the project endpoints coligo serves on its
// gateway (port 80), and the outside world as its allowed outbound
// destinations say; never another project, any other address or port of
// the host, the link-local range, or a private range no destination names.
// Nothing from outside the host reaches an instance (the router on the
// host does, as the host's own traffic).
type fence struct {
	bridge  string
	all     netip.Prefix // every project's networks (--cni-subnet)
	own     netip.Prefix // this project's /24
	gateway netip.Addr
	// allowed are the project's allowed outbound destinations; world is
	// whether one of them is allow-all (0.0.0.0/0).
	allowed []netip.Prefix
	world   bool
	// build marks the network of build steps (buildkitd's bridge), which
	// projects share: its members never reach one another, it has no
	// endpoints on the host, and buildkitd's CNI masquerades it.
	build bool
}

// rule is one iptables rule: its table, chain and match with target.
type rule struct {
	table, chain string
	spec         []string
}

func (f fence) comment() []string {
	if f.build {
		return []string{"-m", "comment", "--comment", "coligo build network " + f.bridge}
	}
	return []string{"-m", "comment", "--comment", "coligo project network " + f.bridge}
}

// chains are the project's own filter chains: what its instances send out
// through the host, and what they send to the host itself.
func (f fence) chains() (out, in string) {
	if f.build {
		return "CLGBO-" + f.bridge, "CLGBI-" + f.bridge
	}
	suffix := strings.TrimPrefix(f.bridge, "clg")
	return "CLGO-" + suffix, "CLGI-" + suffix
}

// jumps are the rules in the built-in chains, in the order they must
// appear at the top of their chains.
func (f fence) jumps() []rule {
	out, in := f.chains()
	c := f.comment()
	rules := []rule{
		{"filter", "INPUT", append([]string{"-i", f.bridge, "-j", in}, c...)},
		{"filter", "FORWARD", append([]string{"-i", f.bridge, "-j", out}, c...)},
		{"filter", "FORWARD", append([]string{"-o", f.bridge, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"}, c...)},
		{"filter", "FORWARD", append([]string{"-o", f.bridge, "-j", "DROP"}, c...)},
	}
	if f.build {
		// buildkitd's CNI firewall plugin puts its own chain first in
		// FORWARD, accepting what its members send; it asks first the
		// CNI-ADMIN chain, where the fence decides instead.
		return append(rules, rule{"filter", cniAdmin, append([]string{"-i", f.bridge, "-j", out}, c...)})
	}
	return append(rules, rule{"nat", "POSTROUTING", append([]string{"-s", f.own.String(), "!", "-d", f.all.String(), "-j", "MASQUERADE"}, c...)})
}

// cniAdmin is the chain of the CNI firewall plugin that administrators
// fill, which the plugin consults before its own rules.
const cniAdmin = "CNI-ADMIN"

// egress is the chain of what instances send through the host, in order:
// what never opens; the allowed destinations inside a private range (only
// a rule inside one opens it); the private ranges; every other allowed
// destination; then all else as allow-all says.
func (f fence) egress() [][]string {
	c := f.comment()
	r := func(args ...string) []string { return append(args, c...) }
	rules := [][]string{
		r("-o", f.bridge, "-j", "ACCEPT"), // the project's own instances (bridged traffic seen by iptables)
		r("-d", f.all.String(), "-j", "DROP"),
	}
	if f.build {
		rules = [][]string{r("-o", f.bridge, "-j", "DROP")} // another project's build
	}
	rules = append(rules, r("-d", core.LinkLocal.String(), "-j", "DROP"))
	var public [][]string
	for _, p := range f.allowed {
		switch {
		case p.Bits() == 0:
		case core.InsidePrivate(p):
			rules = append(rules, r("-d", p.String(), "-j", "ACCEPT"))
		default:
			public = append(public, r("-d", p.String(), "-j", "ACCEPT"))
		}
	}
	for _, p := range core.PrivateRanges {
		rules = append(rules, r("-d", p.String(), "-j", "DROP"))
	}
	rules = append(rules, public...)
	if f.world {
		return append(rules, r("-j", "ACCEPT"))
	}
	return append(rules, r("-j", "DROP"))
}

// ingress is the chain of what instances send to the host itself.
func (f fence) ingress() [][]string {
	c := f.comment()
	rules := [][]string{append([]string{"-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"}, c...)}
	if !f.build {
		rules = append(rules, append([]string{"-d", f.gateway.String(), "-p", "tcp", "--dport", "80", "-j", "ACCEPT"}, c...))
	}
	return append(rules, append([]string{"-j", "DROP"}, c...))
}

// ip6 are the IPv6 rules: the bridge carries no IPv6 but its link-local
// addresses, and none of it may reach the host or leave.
func (f fence) ip6() []rule {
	c := f.comment()
	return []rule{
		{"filter", "INPUT", append([]string{"-i", f.bridge, "-j", "DROP"}, c...)},
		{"filter", "FORWARD", append([]string{"-i", f.bridge, "-j", "DROP"}, c...)},
		{"filter", "FORWARD", append([]string{"-o", f.bridge, "-j", "DROP"}, c...)},
	}
}

// firewall applies fences with iptables (go-iptables waits for the xtables
// lock and uses the host's iptables, nft or legacy).
type firewall struct {
	v4, v6 *iptables.IPTables
}

func newFirewall() (*firewall, error) {
	v4, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv4), iptables.Timeout(10))
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	v6, err := iptables.New(iptables.IPFamily(iptables.ProtocolIPv6), iptables.Timeout(10))
	if err != nil {
		return nil, fmt.Errorf("ip6tables: %w", err)
	}
	return &firewall{v4: v4, v6: v6}, nil
}

// apply makes the host's rules those of f; it is idempotent, and a change
// of the allowed destinations takes effect at once (the project's chains
// are refilled; the jumps to them stay). The chains are filled before the
// jumps to them exist.
func (fw *firewall) apply(f fence) error {
	out, in := f.chains()
	if err := fw.fill(out, f.egress()); err != nil {
		return err
	}
	if err := fw.fill(in, f.ingress()); err != nil {
		return err
	}
	if f.build {
		if ok, err := fw.v4.ChainExists("filter", cniAdmin); err == nil && !ok {
			if err := fw.v4.NewChain("filter", cniAdmin); err != nil {
				return fmt.Errorf("iptables chain %s: %w", cniAdmin, err)
			}
		}
	}
	if err := ensureTop(fw.v4, f.jumps()); err != nil {
		return err
	}
	return ensureTop(fw.v6, f.ip6())
}

// fill gives chain exactly rules. A chain that holds others gets the new
// rules on top first, then loses the old ones: its last rule decides every
// packet (ACCEPT or DROP), so at no moment does a packet fall through a
// half-built chain.
func (fw *firewall) fill(chain string, rules [][]string) error {
	exists, err := fw.v4.ChainExists("filter", chain)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	if !exists {
		if err := fw.v4.NewChain("filter", chain); err != nil {
			return fmt.Errorf("iptables chain %s: %w", chain, err)
		}
	}
	cur, err := fw.v4.List("filter", chain)
	if err != nil {
		return fmt.Errorf("iptables: %w", err)
	}
	if sameRules(cur, chain, rules) {
		return nil
	}
	old := 0
	for _, l := range cur {
		if strings.HasPrefix(l, "-A ") {
			old++
		}
	}
	for i, r := range rules {
		if err := fw.v4.Insert("filter", chain, i+1, r...); err != nil {
			return fmt.Errorf("iptables rule in %s: %w", chain, err)
		}
	}
	for range old {
		if err := fw.v4.DeleteById("filter", chain, len(rules)+1); err != nil {
			return fmt.Errorf("iptables: drop an old rule of %s: %w", chain, err)
		}
	}
	return nil
}

// sameRules reports whether the listing of chain holds exactly rules.
func sameRules(listed []string, chain string, rules [][]string) bool {
	var got []string
	for _, l := range listed {
		if strings.HasPrefix(l, "-A "+chain+" ") {
			got = append(got, l)
		}
	}
	if len(got) != len(rules) {
		return false
	}
	for i, r := range rules {
		if !sameRule(got[i], r) {
			return false
		}
	}
	return true
}

// sameRule compares a listed rule with a spec by their words, ignoring
// order and quoting, which iptables normalises.
func sameRule(listed string, spec []string) bool {
	words := map[string]int{}
	for _, w := range strings.Fields(strings.ReplaceAll(listed, `"`, "")) {
		words[w]++
	}
	for _, s := range spec {
		for _, w := range strings.Fields(s) {
			if words[w] == 0 {
				return false
			}
			words[w]--
		}
	}
	return true
}

// ensureTop makes rules the first of their chains, in order, unless they
// are there already.
func ensureTop(ipt *iptables.IPTables, rules []rule) error {
	have := true
	for _, r := range rules {
		ok, err := ipt.Exists(r.table, r.chain, r.spec...)
		if err != nil {
			return fmt.Errorf("iptables: %w", err)
		}
		have = have && ok
	}
	if have {
		return nil
	}
	for _, r := range rules {
		ipt.DeleteIfExists(r.table, r.chain, r.spec...)
	}
	pos := map[string]int{}
	for _, r := range rules {
		key := r.table + "/" + r.chain
		pos[key]++
		if err := ipt.Insert(r.table, r.chain, pos[key], r.spec...); err != nil {
			return fmt.Errorf("iptables rule in %s: %w", r.chain, err)
		}
	}
	return nil
}

// remove takes every rule and chain of f off the host; it is idempotent.
func (fw *firewall) remove(f fence) error {
	var errs []error
	for _, r := range f.jumps() {
		if err := fw.v4.DeleteIfExists(r.table, r.chain, r.spec...); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range f.ip6() {
		if err := fw.v6.DeleteIfExists(r.table, r.chain, r.spec...); err != nil {
			errs = append(errs, err)
		}
	}
	out, in := f.chains()
	for _, chain := range []string{out, in} {
		if ok, _ := fw.v4.ChainExists("filter", chain); ok {
			if err := fw.v4.ClearAndDeleteChain("filter", chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// FenceBuildNetwork fences bridge, where buildkitd puts build steps (its
// OCI worker's networkConfig bridgeName, in bridge mode): a step reaches
// the world, as Code Engine's builds do, but not this host, no private
// range or link-local address, and no other build on the bridge. The rules
// stay after the server stops (the build network stays too); applying
// them again changes nothing.
func FenceBuildNetwork(bridge string) error {
	if !validBridge(bridge) {
		return fmt.Errorf("%q is not a network interface name (1 to 15 letters, digits, '-', '_' or '.')", bridge)
	}
	fw, err := newFirewall()
	if err != nil {
		return err
	}
	if err := fw.apply(fence{bridge: bridge, build: true, world: true}); err != nil {
		return fmt.Errorf("fence the build network %s: %w", bridge, err)
	}
	return nil
}

// validBridge reports whether name can name a Linux network interface.
func validBridge(name string) bool {
	if name == "" || len(name) > 15 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return name != "." && name != ".."
}
