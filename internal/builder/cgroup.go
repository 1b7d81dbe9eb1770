package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cgroupRoot is where the host's cgroup hierarchies are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// limit makes the cgroup cg (a path under the hierarchies' root) with
// milliCPU of CPU time and memory bytes, for the steps of one build, which
// buildkitd's runc puts in cg/buildkit/<step>. remove takes it away again
// once the steps are gone.
func limit(cg string, milliCPU, memory int64) (remove func() error, err error) {
	period := uint64(100_000)
	quota := milliCPU * int64(period) / 1000
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}, Memory: &specs.LinuxMemory{Limit: &memory}}
	var del func() error
	if cgroups.Mode() == cgroups.Unified {
		m, err := cgroup2.NewManager(cgroupRoot, cg, cgroup2.ToResources(res))
		if err != nil {
			return nil, fmt.Errorf("the build's cgroup %s: %w", cg, err)
		}
		del = m.Delete
	} else {
		c, err := cgroup1.New(cgroup1.StaticPath(cg), res)
		if err != nil {
			return nil, fmt.Errorf("the build's cgroup %s: %w", cg, err)
		}
		del = c.Delete
	}
	return func() error {
		// runc removes each step's cgroup as the step ends, not the
		// buildkit directory above them.
		steps, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", cg, "buildkit"))
		steps = append(steps, filepath.Join(cgroupRoot, cg, "buildkit"))
		var err error
		for range 50 {
			err = nil
			for _, d := range steps {
				if e := os.Remove(d); e != nil && !os.IsNotExist(e) {
					err = e
				}
			}
			if err == nil {
				if err = del(); err == nil {
					// runc made cg in hierarchies the library does not
					// manage too (a hybrid host's unified one).
					rest, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", cg))
					for _, d := range rest {
						os.Remove(d)
					}
					return nil
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		return fmt.Errorf("remove the build's cgroup %s: %w", cg, err)
	}, nil
}
