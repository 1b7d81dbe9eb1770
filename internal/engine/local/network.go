package local

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	gocni "github.com/containerd/go-cni"
)

// networks gives each project a bridge and a /24 of the configured subnet.
type networks struct {
	mu       sync.Mutex
	binDir   string
	subnet   netip.Prefix // e.g. 10.89.0.0/16
	stateDir string
	index    map[string]int // project → /24 index, persisted
	cni      map[string]gocni.CNI
	fw       *firewall
	// allowed holds each project's allowed outbound destinations, as the
	// engine was last told (SetEgress); a project it was never told of has
	// Code Engine's default, allow-all.
	allowed map[string][]netip.Prefix
	// purged are the projects whose network was removed: a late call for
	// one (a controller that has not heard of the purge yet) must not make
	// its network, fence and bridge again.
	purged map[string]bool
}

func newNetworks(binDir string, subnet netip.Prefix, stateDir string) (*networks, error) {
	if subnet.Bits() > 23 || !subnet.Addr().Is4() {
		return nil, fmt.Errorf("--cni-subnet %s must be an IPv4 prefix of /23 or larger", subnet)
	}
	fw, err := newFirewall()
	if err != nil {
		return nil, err
	}
	n := &networks{binDir: binDir, subnet: subnet.Masked(), stateDir: stateDir, index: map[string]int{}, cni: map[string]gocni.CNI{},
		fw: fw, allowed: map[string][]netip.Prefix{}, purged: map[string]bool{}}
	for path, v := range map[string]any{n.file(): &n.index, n.egressFile(): &n.allowed} {
		b, err := os.ReadFile(path)
		if err == nil {
			if err := json.Unmarshal(b, v); err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
		} else if !os.IsNotExist(err) {
			return nil, err
		}
	}
	return n, nil
}

// egressFile keeps each project's allowed outbound destinations, so that a
// restarted engine fences a project as it was told, not allow-all, before
// anyone tells it again.
func (n *networks) egressFile() string { return filepath.Join(n.stateDir, "egress.json") }

func (n *networks) file() string { return filepath.Join(n.stateDir, "networks.json") }

func bridgeName(project string) string {
	s := sha256.Sum256([]byte(project))
	return "clg" + hex.EncodeToString(s[:5]) // 13 characters; Linux allows 15
}

// subnetOf returns the /24 of index i within the configured subnet.
func (n *networks) subnetOf(i int) netip.Prefix {
	a := n.subnet.Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8
	v := base + uint32(i)<<8
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), 0}), 24)
}

// get returns the project's network, allocating and setting it up on first use.
func (n *networks) get(project string) (gocni.CNI, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c, ok := n.cni[project]; ok {
		return c, nil
	}
	if n.purged[project] {
		return nil, fmt.Errorf("the network of project %s was removed with the project", project)
	}
	i, ok := n.index[project]
	if !ok {
		used := map[int]bool{}
		for _, v := range n.index {
			used[v] = true
		}
		max := 1 << (24 - n.subnet.Bits())
		for i = 1; i < max && used[i]; i++ {
		}
		if i >= max {
			return nil, fmt.Errorf("the CNI subnet %s has no free /24 for another project", n.subnet)
		}
		n.index[project] = i
		if err := n.save(); err != nil {
			delete(n.index, project)
			return nil, err
		}
	}
	br := bridgeName(project)
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "coligo-" + br,
		"plugins": []any{map[string]any{
			// ipMasq is one rule per project (see isolate), not one per instance.
			"type": "bridge", "bridge": br, "isGateway": true, "ipMasq": false, "hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]map[string]string{{{"subnet": n.subnetOf(i).String()}}},
				"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
				"dataDir": filepath.Join(n.stateDir, "ipam"),
			},
		}},
	}
	b, _ := json.Marshal(conf)
	c, err := gocni.New(gocni.WithPluginDir([]string{n.binDir}), gocni.WithMinNetworkCount(2), gocni.WithLoNetwork, gocni.WithConfListBytes(b))
	if err != nil {
		return nil, fmt.Errorf("cni config of project %s: %w", project, err)
	}
	if err := n.fw.apply(n.fence(project, i)); err != nil {
		return nil, fmt.Errorf("fence of project %s: %w", project, err)
	}
	n.cni[project] = c
	return c, nil
}

// addresses returns the gateway and subnet of a project's network,
// allocating it if needed.
func (n *networks) addresses(project string) (netip.Addr, netip.Prefix, error) {
	if _, err := n.get(project); err != nil {
		return netip.Addr{}, netip.Prefix{}, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	sub := n.subnetOf(n.index[project])
	return sub.Addr().Next(), sub, nil // host-local gives the bridge the first address
}

// remove forgets a project's network: its isolation rule, bridge, IPAM
// allocations and subnet. Instances must be gone. It is idempotent.
func (n *networks) remove(project string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	br := bridgeName(project)
	if i, ok := n.index[project]; ok {
		if err := n.fw.remove(n.fence(project, i)); err != nil {
			return fmt.Errorf("fence of project %s: %w", project, err)
		}
	}
	exec.Command("ip", "link", "del", br).Run()
	// host-local keeps the network's allocations in a folder named after it.
	os.RemoveAll(filepath.Join(n.stateDir, "ipam", "coligo-"+br))
	delete(n.cni, project)
	delete(n.index, project)
	delete(n.allowed, project)
	n.purged[project] = true
	return n.save()
}

func (n *networks) save() error {
	if err := writeSynced(n.file(), n.index); err != nil {
		return err
	}
	return writeSynced(n.egressFile(), n.allowed)
}

// writeSynced replaces path with v as JSON, synced, by rename.
func writeSynced(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	return os.Rename(tmp, path)
}

// fence is the fence of the project with /24 index i. Called with n.mu held.
func (n *networks) fence(project string, i int) fence {
	sub := n.subnetOf(i)
	f := fence{bridge: bridgeName(project), all: n.subnet, own: sub, gateway: sub.Addr().Next(), world: true}
	if allowed, ok := n.allowed[project]; ok {
		f.allowed, f.world = allowed, false
		for _, p := range allowed {
			f.world = f.world || p.Bits() == 0
		}
	}
	return f
}

// setEgress sets a project's allowed outbound destinations and, when its
// network exists, its fence at once.
func (n *networks) setEgress(project string, allowed []netip.Prefix) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.purged[project] {
		return nil
	}
	n.allowed[project] = allowed
	if err := writeSynced(n.egressFile(), n.allowed); err != nil {
		return fmt.Errorf("record the egress of project %s: %w", project, err)
	}
	i, ok := n.index[project]
	if _, live := n.cni[project]; !ok || !live {
		return nil
	}
	return n.fw.apply(n.fence(project, i))
}

// idRange is how many user and group ids a project's user namespace maps.
const idRange = 65536

// idBase is the first host uid (and gid) of the project's user namespace:
// a range of its own, above the host's ordinary users, by the project's
// network index (allocated with the network).
func (n *networks) idBase(project string) (uint32, error) {
	if _, err := n.get(project); err != nil {
		return 0, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return 1<<24 + uint32(n.index[project])*idRange, nil
}
