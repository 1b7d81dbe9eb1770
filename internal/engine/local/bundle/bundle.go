package bundle

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// staleErr is containerd's refusal to create a task whose bundle
// directory is there already: one a containerd that stopped while creating
// the task left behind. containerd 1.6 tries to clean it up when it starts
// again, fails for want of the bundle's runtime file, and from then on
// every create of that instance fails with "mkdir <bundle>: file exists".
var staleErr = regexp.MustCompile(`failed to start shim: mkdir (/\S+/io\.containerd\.runtime\.v2\.task/([^/\s]+)/([^/\s:]+)): file exists`)

// Stale returns the bundle directory err names, when it is the one
// of instance id in containerd namespace ns.
func Stale(err error, ns, id string) (string, bool) {
	if err == nil {
		return "", false
	}
	m := staleErr.FindStringSubmatch(err.Error())
	if m == nil || m[2] != ns || m[3] != id || filepath.Clean(m[1]) != m[1] {
		return "", false
	}
	return m[1], true
}

// Remove removes a bundle directory that no shim serves and in
// which nothing is mounted (so that only the bundle's own files go).
func Remove(dir string) error {
	if b, err := os.ReadFile(filepath.Join(dir, "shim.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && unix.Kill(pid, 0) == nil {
			return fmt.Errorf("bundle %s: its shim (pid %d) runs", dir, pid)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for line := range strings.SplitSeq(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			return fmt.Errorf("bundle %s: %s is mounted", dir, f[4])
		}
	}
	return os.RemoveAll(dir)
}
