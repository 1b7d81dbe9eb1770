package local

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/services/tasks/v1"
	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/local/bundle"
	"github.com/coligo/coligo/internal/initproc"
	"github.com/coligo/coligo/internal/logfmt"
	"github.com/coligo/coligo/internal/netguard"
	"github.com/coligo/coligo/internal/regclient"
)

// Labels the engine sets on containers.
const (
	labelProject  = "coligo.project"
	labelOOM      = "coligo.oom"
	labelIP       = "coligo.ip"
	labelDisk     = "coligo.ephemeral-limit" // bytes the writable layer may hold
	labelEvicted  = "coligo.evicted"
	labelPrepared = "coligo.prepared"
)

// Config configures the local engine.
type Config struct {
	ContainerdAddress  string
	CNIBinDir          string       // default /usr/lib/cni, else /opt/cni/bin
	Subnet             netip.Prefix // default 10.89.0.0/16
	StateDir           string
	RunDir             string   // mounted files; default under /run (tmpfs), by StateDir
	InsecureRegistries []string // host:port served over plain HTTP
	LoggerBinary       string   // the coligo binary; the shim runs it to write logs
	InitBinary         string   // static coligo-init, PID 1 of every instance; default beside LoggerBinary
	PidsLimit          int64    // processes (and threads) an instance may hold; default 1024
	S3FS               string   // the s3fs binary that mounts persistent data stores; default s3fs on the PATH
	// UserNS runs instances in user namespaces: root in an instance is an
	// unprivileged user of the host, from a range of its own per project.
	UserNS         bool
	LogMaxBytes    int64         // per instance; default 1 MiB
	OCIRuntime     string        // the runc shim's OCI runtime binary, e.g. crun; default runc
	DiskCheckEvery time.Duration // how often writable layers are measured against their limit; default 2s
	Logger         *slog.Logger
}

// Engine is the local engine. It is safe for concurrent use.
type Engine struct {
	cfg    Config
	client *containerd.Client
	nets   *networks
	log    *slog.Logger

	mu  sync.Mutex
	oom map[string]bool // namespace/id of instances that hit their memory limit
	// remap serializes the first creates of an image in a project with user
	// namespaces, which would each try to make the image's remapped
	// snapshot; once one has made it, creates run side by side.
	remap map[string]*remapState

	hostsMu sync.Mutex // project hosts files
	filesMu sync.Mutex // UpdateFile's remounts

	// registryClient reaches registries, never inward addresses but those
	// of --insecure-registry (netguard).
	registryClient *http.Client

	stopOOM context.CancelFunc
}

var _ engine.Engine = (*Engine)(nil)

// New connects to containerd and prepares the state dir.
func New(cfg Config) (*Engine, error) {
	if cfg.CNIBinDir == "" {
		cfg.CNIBinDir = "/usr/lib/cni"
		if _, err := os.Stat(filepath.Join(cfg.CNIBinDir, "bridge")); err != nil {
			cfg.CNIBinDir = "/opt/cni/bin"
		}
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix("10.89.0.0/16")
	}
	if cfg.RunDir == "" {
		sum := sha256.Sum256([]byte(cfg.StateDir))
		cfg.RunDir = filepath.Join("/run/coligo", hex.EncodeToString(sum[:6]))
	}
	if cfg.DiskCheckEvery <= 0 {
		cfg.DiskCheckEvery = 2 * time.Second
	}
	if cfg.LogMaxBytes <= 0 {
		cfg.LogMaxBytes = 1 << 20
	}
	if cfg.LoggerBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the coligo binary for logging: %w", err)
		}
		cfg.LoggerBinary = exe
	}
	if cfg.PidsLimit <= 0 {
		cfg.PidsLimit = 1024
	}
	if cfg.InitBinary == "" {
		cfg.InitBinary = filepath.Join(filepath.Dir(cfg.LoggerBinary), "coligo-init")
	}
	if fi, err := os.Stat(cfg.InitBinary); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("the instance init %s is missing or not executable (make build puts coligo-init beside coligo): %v", cfg.InitBinary, err)
	}
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "logs"), filepath.Join(cfg.StateDir, "ipam"), cfg.RunDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create engine state dir: %w", err)
		}
	}
	if err := ensureTmpfs(cfg.RunDir); err != nil {
		return nil, err
	}
	client, err := containerd.New(cfg.ContainerdAddress, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.ContainerdAddress, err)
	}
	nets, err := newNetworks(cfg.CNIBinDir, cfg.Subnet, cfg.StateDir)
	if err != nil {
		client.Close()
		return nil, err
	}
	e := &Engine{cfg: cfg, client: client, nets: nets, log: cfg.Logger.With("component", "engine-local"), oom: map[string]bool{}, remap: map[string]*remapState{},
		registryClient: netguard.HTTPClient(&netguard.Guard{Allow: cfg.InsecureRegistries})}
	ctx, cancel := context.WithCancel(context.Background())
	e.stopOOM = cancel
	go e.watchOOM(ctx)
	go e.watchDisk(ctx)
	return e, nil
}

// Close closes the containerd connection; instances keep running.
func (e *Engine) Close() error {
	e.stopOOM()
	if entries, err := os.ReadDir(e.cfg.RunDir); err == nil && len(entries) == 0 {
		unix.Unmount(e.cfg.RunDir, unix.MNT_DETACH)
	}
	return e.client.Close()
}

// ensureTmpfs mounts a memory-backed file system at dir unless it is one
// already, so that mounted secrets never reach a disk.
func ensureTmpfs(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("run dir %s: %w", dir, err)
	}
	if st.Type == unix.TMPFS_MAGIC {
		return nil
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=64m"); err != nil {
		return fmt.Errorf("mount tmpfs at %s for mounted secrets: %w", dir, err)
	}
	return nil
}

// watchOOM records every instance that hits its memory limit, whether or
// not anyone is reading Events.
func (e *Engine) watchOOM(ctx context.Context) {
	for ctx.Err() == nil {
		envelopes, errs := e.client.Subscribe(ctx, `topic=="/tasks/oom"`)
	loop:
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				break loop
			case env := <-envelopes:
				if _, ok := projectOf(env.Namespace); !ok || env.Event == nil {
					continue
				}
				if ev, err := typeurl.UnmarshalAny(env.Event); err == nil {
					if oom, ok := ev.(*apievents.TaskOOM); ok {
						e.markOOM(ctx, env.Namespace, oom.ContainerID)
					}
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // containerd restarting; subscribe again
		}
	}
}

// oomKilled reports whether an instance hit its memory limit. The OOM event
// may trail the exit event by a moment, so a SIGKILL exit waits for it briefly.
func (e *Engine) oomKilled(ns, id string, exitCode int) bool {
	deadline := time.Now().Add(500 * time.Millisecond)
	for {
		e.mu.Lock()
		oom := e.oom[ns+"/"+id]
		e.mu.Unlock()
		if oom || exitCode != 137 || time.Now().After(deadline) {
			return oom
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type remapState struct {
	mu   sync.Mutex
	made bool
}

// remapFirst waits, while the remapped snapshot of key (project/image) may
// not exist yet, for the create that makes it; done tells whether this
// create made it.
func (e *Engine) remapFirst(key string) (done func(ok bool)) {
	e.mu.Lock()
	st := e.remap[key]
	if st == nil {
		st = &remapState{}
		e.remap[key] = st
	}
	e.mu.Unlock()
	st.mu.Lock()
	if st.made {
		st.mu.Unlock()
		return func(bool) {}
	}
	return func(ok bool) {
		st.made = ok
		st.mu.Unlock()
	}
}

// forgetRemaps forgets which remapped snapshots of a project exist, after
// its images may have been removed.
func (e *Engine) forgetRemaps(project string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for key := range e.remap {
		if strings.HasPrefix(key, project+"/") {
			delete(e.remap, key)
		}
	}
}

// Namespace is the containerd namespace of a project.
func Namespace(project string) string { return "coligo-" + project }

func projectOf(ns string) (string, bool) { return strings.CutPrefix(ns, "coligo-") }

func (e *Engine) nsctx(ctx context.Context, project string) context.Context {
	return namespaces.WithNamespace(ctx, Namespace(project))
}

func (e *Engine) logPath(project, id string) string {
	return filepath.Join(e.cfg.StateDir, "logs", project, id+".log")
}

// Run implements engine.Engine.
func (e *Engine) Run(ctx context.Context, spec engine.Spec) (engine.Instance, error) {
	return e.create(ctx, spec, true)
}

// Prepare implements engine.Engine.
func (e *Engine) Prepare(ctx context.Context, spec engine.Spec) (engine.Instance, error) {
	return e.create(ctx, spec, false)
}

// create makes an instance up to its created task, connected to the
// project's network, and starts its process when start is set.
func (e *Engine) create(ctx context.Context, spec engine.Spec, start bool) (engine.Instance, error) {
	ctx = e.nsctx(ctx, spec.Project)
	if c, err := e.client.LoadContainer(ctx, spec.ID); err == nil {
		return e.resume(ctx, spec.Project, c, start)
	}
	image, err := e.fetch(ctx, spec.Image, spec.Auth, false)
	if err != nil {
		return engine.Instance{}, err
	}
	// A crash between creating the snapshot and the container leaves the
	// snapshot alone; with no container of this name it is nobody's.
	if err := e.client.SnapshotService(defaults.DefaultSnapshotter).Remove(ctx, spec.ID); err != nil && !errdefs.IsNotFound(err) {
		return engine.Instance{}, fmt.Errorf("remove orphaned snapshot %s: %w", spec.ID, err)
	}
	// The spec holds the image's own variables only: the instance's values
	// reach its process through the init and its tmpfs (writeMounts).
	opts := []oci.SpecOpts{oci.WithImageConfig(image), oci.WithHostname(spec.ID)}
	switch {
	case len(spec.Command) > 0:
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, spec.Command...), spec.Args...)...))
	case len(spec.Args) > 0:
		opts = append(opts, oci.WithImageConfigArgs(image, spec.Args))
	}
	opts = append(opts, withInit)
	opts = append(opts, sandbox(e.cfg.PidsLimit)...)
	snapshot := containerd.WithNewSnapshot(spec.ID, image)
	if e.cfg.UserNS {
		base, err := e.nets.idBase(spec.Project)
		if err != nil {
			return engine.Instance{}, err
		}
		ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: base, Size: idRange}}
		opts = append(opts, oci.WithUserNamespace(ids, ids))
		// The image's files, owned by the range (made once per image and
		// project, then shared by its instances' snapshots).
		snapshot = containerd.WithRemappedSnapshot(spec.ID, image, base, base)
	}
	if spec.UID > 0 {
		opts = append(opts, oci.WithUIDGID(uint32(spec.UID), uint32(spec.UID)))
	}
	if spec.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryBytes)))
	}
	if spec.MilliCPU > 0 {
		const period = 100000
		opts = append(opts, oci.WithCPUCFS(spec.MilliCPU*period/1000, period))
	}
	buckets, err := e.mountBuckets(ctx, spec.Project, spec.ID, spec.Buckets)
	if err != nil {
		return engine.Instance{}, err
	}
	mounts, err := e.writeMounts(spec.Project, spec.ID, spec.Env, spec.Mounts)
	if err != nil {
		e.unmountBuckets(spec.Project, spec.ID)
		return engine.Instance{}, err
	}
	opts = append(opts, oci.WithMounts(append(mounts, buckets...)))
	labels := map[string]string{labelProject: spec.Project}
	if spec.EphemeralBytes > 0 {
		labels[labelDisk] = strconv.FormatInt(spec.EphemeralBytes, 10)
	}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	var done func(ok bool)
	if e.cfg.UserNS {
		done = e.remapFirst(spec.Project + "/" + image.Target().Digest.String())
	}
	c, err := e.client.NewContainer(ctx, spec.ID,
		containerd.WithImage(image),
		snapshot,
		containerd.WithNewSpec(opts...),
		containerd.WithContainerLabels(labels),
		e.runtime(),
	)
	if done != nil {
		done(err == nil)
	}
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			if c, err := e.client.LoadContainer(ctx, spec.ID); err == nil {
				return e.inspect(ctx, spec.Project, c)
			}
		}
		e.removeMounts(spec.Project, spec.ID)
		return engine.Instance{}, fmt.Errorf("create container %s: %w", spec.ID, err)
	}
	ip, err := e.start(ctx, spec.Project, c, start)
	if err != nil {
		e.remove(ctx, spec.Project, c)
		return engine.Instance{}, err
	}
	in, err := e.inspect(ctx, spec.Project, c)
	in.IP = ip
	return in, err
}

// runtime is the runc shim with the configured OCI runtime binary.
func (e *Engine) runtime() containerd.NewContainerOpts {
	if e.cfg.OCIRuntime == "" || e.cfg.OCIRuntime == "runc" {
		return containerd.WithRuntime("io.containerd.runc.v2", nil)
	}
	return containerd.WithRuntime("io.containerd.runc.v2", &runcoptions.Options{BinaryName: e.cfg.OCIRuntime})
}

// writeMounts gives the instance a tmpfs of its own, sized to what it holds:
// the init's env file (the values of env) and report FIFO, and the files of
// its mounts. It is made read-only once written, and bound into the
// instance at initproc.Dir, with the init binary and each mount's
// directory; the project's hosts file is bound at /etc/hosts.
func (e *Engine) writeMounts(project, id string, env []string, ms []engine.Mount) (_ []specs.Mount, err error) {
	base := e.mountDir(project, id)
	unix.Unmount(base, unix.MNT_DETACH) // a crash may have left one
	if err := os.RemoveAll(base); err != nil {
		return nil, fmt.Errorf("mounts of %s: %w", id, err)
	}
	hosts, err := e.hostsFile(project, nil, false)
	if err != nil {
		return nil, fmt.Errorf("hosts file of %s: %w", id, err)
	}
	envFile := initproc.EncodeEnv(env)
	defer clear(envFile)
	pages, inodes := pagesOf(len(envFile))+1, 8
	for _, m := range ms {
		inodes++
		for name, data := range m.Files {
			if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
				return nil, fmt.Errorf("mounts of %s: %q is not a file name", id, name)
			}
			pages, inodes = pages+pagesOf(len(data)), inodes+1
		}
	}
	pages, inodes = pages+2, inodes+2 // room to replace a small file (UpdateFile)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("mounts of %s: %w", id, err)
	}
	opts := fmt.Sprintf("mode=0755,size=%d,nr_inodes=%d", pages*pageSize, inodes)
	if err := unix.Mount("tmpfs", base, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return nil, fmt.Errorf("mount the tmpfs of %s: %w", id, err)
	}
	defer func() {
		if err != nil {
			e.removeMounts(project, id)
		}
	}()
	write := func(name string, data []byte, mode os.FileMode) error {
		if err := os.WriteFile(filepath.Join(base, name), data, mode); err != nil {
			return fmt.Errorf("mounts of %s: %w", id, err)
		}
		return os.Chmod(filepath.Join(base, name), mode) // past the umask
	}
	if err := write("env", envFile, 0o444); err != nil {
		return nil, err
	}
	if err := write("init", nil, 0o444); err != nil { // where the init binary is bound
		return nil, err
	}
	if err := unix.Mkfifo(filepath.Join(base, "ready"), 0o622); err != nil {
		return nil, fmt.Errorf("report fifo of %s: %w", id, err)
	}
	os.Chmod(filepath.Join(base, "ready"), 0o622)
	// What comes from the run dir's tmpfs keeps its noexec: in a user
	// namespace a bind may not drop a flag of its source.
	ro, data := []string{"rbind", "ro", "nosuid", "nodev"}, []string{"rbind", "ro", "nosuid", "nodev", "noexec"}
	out := []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: hosts, Options: data},
		{Destination: initproc.Dir, Type: "bind", Source: base, Options: data},
		{Destination: initproc.Binary, Type: "bind", Source: e.cfg.InitBinary, Options: ro},
	}
	for _, m := range ms {
		dir := mountSub(m.Dir)
		if err := os.MkdirAll(filepath.Join(base, dir), 0o755); err != nil {
			return nil, fmt.Errorf("mounts of %s: %w", id, err)
		}
		for name, data := range m.Files {
			if err := write(filepath.Join(dir, name), data, 0o644); err != nil {
				return nil, err
			}
		}
		out = append(out, specs.Mount{Destination: m.Dir, Type: "bind", Source: filepath.Join(base, dir), Options: data})
	}
	if err := unix.Mount("", base, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("make the tmpfs of %s read-only: %w", id, err)
	}
	return out, nil
}

// mountSub is where a mount's files are in an instance's tmpfs: named
// by the directory they are mounted at, so that UpdateFile finds them.
func mountSub(dir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(dir)))
	return filepath.Join("m", hex.EncodeToString(sum[:8]))
}

// UpdateFile implements engine.FileUpdater: it replaces a file of one of
// an instance's mounts, atomically (a rename in the mount's directory, which
// the instance sees at once), and leaves the tmpfs read-only again.
func (e *Engine) UpdateFile(ctx context.Context, project, id, dir, name string, data []byte) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("update file of %s: %q is not a file name", id, name)
	}
	base := e.mountDir(project, id)
	sub := filepath.Join(base, mountSub(dir))
	if _, err := os.Stat(filepath.Join(sub, name)); err != nil {
		return fmt.Errorf("update file of %s: %w", id, err)
	}
	e.filesMu.Lock()
	defer e.filesMu.Unlock()
	const flags = unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if err := unix.Mount("", base, "", flags, ""); err != nil {
		return fmt.Errorf("update file of %s: make its tmpfs writable: %w", id, err)
	}
	tmp := filepath.Join(sub, "."+name+".new")
	err := os.WriteFile(tmp, data, 0o644)
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(sub, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	if rerr := unix.Mount("", base, "", flags|unix.MS_RDONLY, ""); rerr != nil && err == nil {
		err = fmt.Errorf("make its tmpfs read-only again: %w", rerr)
	}
	if err != nil {
		return fmt.Errorf("update file of %s: %w", id, err)
	}
	return nil
}

const pageSize = 4096

func pagesOf(n int) int { return (n + pageSize - 1) / pageSize }

// removeMounts unmounts and removes an instance's tmpfs and buckets.
func (e *Engine) removeMounts(project, id string) {
	e.unmountBuckets(project, id)
	base := e.mountDir(project, id)
	unix.Unmount(base, unix.MNT_DETACH)
	os.RemoveAll(base)
}

// sandbox confines an instance as the most careful container platforms do:
// Docker's default capabilities less NET_RAW (raw sockets, spoofing on the
// bridge) and MKNOD, no new privileges, a pids limit (a fork bomb stays in
// its instance), and containerd's default seccomp profile (which follows
// the capabilities, so must come after them) without io_uring, whose
// syscalls bypass seccomp's view of what an instance does. The default
// spec's masked and read-only paths stay.
func sandbox(pidsLimit int64) []oci.SpecOpts {
	return []oci.SpecOpts{
		oci.WithDroppedCapabilities([]string{"CAP_NET_RAW", "CAP_MKNOD"}),
		oci.WithNoNewPrivileges,
		oci.WithPidsLimit(pidsLimit),
		func(ctx context.Context, c oci.Client, ctr *containers.Container, s *oci.Spec) error {
			p := seccomp.DefaultProfile(s)
			for i := range p.Syscalls {
				p.Syscalls[i].Names = slices.DeleteFunc(p.Syscalls[i].Names, func(n string) bool { return strings.HasPrefix(n, "io_uring") })
			}
			p.Syscalls = slices.DeleteFunc(p.Syscalls, func(sc specs.LinuxSyscall) bool { return len(sc.Names) == 0 })
			s.Linux.Seccomp = p
			return nil
		},
	}
}

// withInit makes the init PID 1, with the command as its arguments.
func withInit(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	s.Process.Args = append([]string{initproc.Binary}, s.Process.Args...)
	return nil
}

// startTask starts a created task and waits for its init to report whether
// the command could be executed: a command missing from the image is
// ErrNoCommand, as an error of the start.
func (e *Engine) startTask(ctx context.Context, project string, task containerd.Task, id string) error {
	// Opened read-write, the FIFO always has a writer, so a read waits for
	// the init's line instead of seeing end of file before it opens.
	fifo, err := os.OpenFile(filepath.Join(e.mountDir(project, id), "ready"), os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		e.log.Warn("no start report of the instance's init", "instance", id, "err", err)
		return task.Start(ctx)
	}
	defer fifo.Close()
	if err := task.Start(ctx); err != nil {
		return err
	}
	deadline := time.Now().Add(initReportTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	fifo.SetReadDeadline(deadline)
	line, err := bufio.NewReader(fifo).ReadString('\n')
	if err != nil {
		e.log.Warn("the instance's init did not report its start", "instance", id, "err", err)
		return nil
	}
	word, reason, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch word {
	case initproc.ReportOK:
		return nil
	case initproc.ReportNoCommand:
		return fmt.Errorf("start %s: %w: %s", id, engine.ErrNoCommand, reason)
	}
	return fmt.Errorf("start %s: the command could not be executed: %s", id, reason)
}

// initReportTimeout bounds the wait for the init's report; an init that
// does not report in time is taken as started.
const initReportTimeout = 10 * time.Second

// mountDir is an instance's tmpfs, apart from the project's hosts file (an
// instance may be named "hosts").
func (e *Engine) mountDir(project, id string) string {
	return filepath.Join(e.cfg.RunDir, project, "instances", id)
}

// hostsFile writes the project's /etc/hosts, shared by its instances: the
// loopback names and, on the gateway, the given names. Without replace it
// only makes sure the file exists. It is rewritten in place, so running
// instances see new names at once.
func (e *Engine) hostsFile(project string, names []string, replace bool) (string, error) {
	e.hostsMu.Lock()
	defer e.hostsMu.Unlock()
	path := filepath.Join(e.cfg.RunDir, project, "hosts")
	if _, err := os.Stat(path); err == nil && !replace {
		return path, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if len(names) > 0 {
		gw, _, err := e.nets.addresses(project)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s\t%s\n", gw, strings.Join(names, " "))
	}
	if cur, err := os.ReadFile(path); err == nil && string(cur) == b.String() {
		return path, nil
	}
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// SetEgress sets the outbound destinations the project's instances may
// reach, at once: CIDRs, where 0.0.0.0/0 is allow-all (which never opens
// the private ranges: only a CIDR inside them does), and none means no
// egress at all. Until it is called a project has allow-all.
func (e *Engine) SetEgress(ctx context.Context, project string, allowed []netip.Prefix) error {
	return e.nets.setEgress(project, allowed)
}

// ProjectNetwork implements engine.Engine.
func (e *Engine) ProjectNetwork(ctx context.Context, project string, names []string) (netip.Addr, netip.Prefix, error) {
	gw, sub, err := e.nets.addresses(project)
	if err != nil {
		return gw, sub, err
	}
	if _, err := e.hostsFile(project, names, true); err != nil {
		return gw, sub, fmt.Errorf("hosts file of project %s: %w", project, err)
	}
	return gw, sub, nil
}

// resume finishes the start of an instance that a crash interrupted: its
// container exists but its task was never created or never started.
func (e *Engine) resume(ctx context.Context, project string, c containerd.Container, start bool) (engine.Instance, error) {
	in, err := e.inspect(ctx, project, c)
	if err != nil || in.State != engine.StateCreated {
		return in, err
	}
	t, err := c.Task(ctx, nil)
	if err == nil && in.Labels[labelPrepared] == "true" && in.IP != "" {
		// Prepared: everything is in place but the process.
		if !start {
			return in, nil
		}
		// A prepared instance is a warm spare of a revision whose command
		// has run already: the start does not wait for the init's report
		// (a cold start pays nothing for it). Were the command gone, the
		// init exits 127 and the instance is seen to exit.
		if err := t.Start(ctx); err != nil {
			return in, fmt.Errorf("start prepared task %s: %w", c.ID(), err)
		}
		in.State = engine.StateRunning
		return in, nil
	}
	if err == nil {
		// Created but not started: its network may be half set up; begin again.
		if nw, err := e.nets.get(project); err == nil {
			nw.Remove(ctx, c.ID(), fmt.Sprintf("/proc/%d/ns/net", t.Pid()))
		}
		if _, err := t.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return in, fmt.Errorf("delete unstarted task %s: %w", c.ID(), err)
		}
	}
	if err := e.forgetTask(ctx, c.ID()); err != nil {
		return in, err
	}
	ip, err := e.start(ctx, project, c, start)
	if err != nil {
		return in, err
	}
	in, err = e.inspect(ctx, project, c)
	in.IP = ip
	return in, err
}

// forgetTask deletes what containerd still holds of an instance's task
// when no process backs it: a task whose creation containerd did not see
// through (it stopped meanwhile) is in its runtime's list, but the task's
// own Delete finds nothing to delete, and a new task of the instance would
// be refused as one that "already exists".
func (e *Engine) forgetTask(ctx context.Context, id string) error {
	if _, err := e.client.TaskService().Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id}); err != nil {
		if err = errgrpc.ToNative(err); !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete the half-created task of %s: %w", id, err)
		}
	}
	return nil
}

// start creates the task with its logger, connects it to the project's
// network inside the task's network namespace, then starts it.
func (e *Engine) start(ctx context.Context, project string, c containerd.Container, run bool) (string, error) {
	logFile := e.logPath(project, c.ID())
	if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err != nil {
		return "", err
	}
	newTask := func() (containerd.Task, error) {
		return c.NewTask(ctx, cio.BinaryIO(e.cfg.LoggerBinary, map[string]string{
			LoggerArg: logFile, "--coligo-log-max": strconv.FormatInt(e.cfg.LogMaxBytes, 10),
		}))
	}
	task, err := newTask()
	if errdefs.IsAlreadyExists(err) {
		if err := e.forgetTask(ctx, c.ID()); err != nil {
			return "", err
		}
		task, err = newTask()
	}
	if dir, stale := bundle.Stale(err, Namespace(project), c.ID()); stale {
		if rerr := bundle.Remove(dir); rerr != nil {
			e.log.Warn("a stale task bundle is in the way of an instance", "instance", c.ID(), "err", rerr)
		} else {
			e.log.Info("removed the task bundle a stopped containerd left behind", "instance", c.ID())
			task, err = newTask()
		}
	}
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "executable file not found") || strings.Contains(msg, "exec format error") ||
			(strings.Contains(msg, "exec: ") && strings.Contains(msg, "no such file or directory")) {
			return "", fmt.Errorf("create task %s: %w: %v", c.ID(), engine.ErrNoCommand, err)
		}
		return "", fmt.Errorf("create task %s: %w", c.ID(), err)
	}
	nw, err := e.nets.get(project)
	if err != nil {
		task.Delete(ctx, containerd.WithProcessKill)
		return "", err
	}
	res, err := nw.Setup(ctx, c.ID(), fmt.Sprintf("/proc/%d/ns/net", task.Pid()))
	if err != nil {
		task.Delete(ctx, containerd.WithProcessKill)
		return "", fmt.Errorf("connect %s to the project network: %w", c.ID(), err)
	}
	ip := ""
	for name, iface := range res.Interfaces {
		if name == "lo" || len(iface.IPConfigs) == 0 {
			continue
		}
		ip = iface.IPConfigs[0].IP.String()
	}
	labels := map[string]string{labelIP: ip}
	if !run {
		labels[labelPrepared] = "true"
	}
	if _, err := c.SetLabels(ctx, labels); err != nil {
		task.Delete(ctx, containerd.WithProcessKill)
		return "", fmt.Errorf("record the address of %s: %w", c.ID(), err)
	}
	if !run {
		return ip, nil
	}
	if err := e.startTask(ctx, project, task, c.ID()); err != nil {
		task.Delete(ctx, containerd.WithProcessKill)
		if errors.Is(err, engine.ErrNoCommand) {
			return "", err
		}
		return "", fmt.Errorf("start task %s: %w", c.ID(), err)
	}
	return ip, nil
}

// Pull implements engine.Engine.
func (e *Engine) Pull(ctx context.Context, project, image string, auth *engine.RegistryAuth) (string, error) {
	ctx = e.nsctx(ctx, project)
	img, err := e.fetch(ctx, image, auth, true)
	if err != nil {
		return "", err
	}
	ref, _ := normalize(image)
	pinned := repository(ref) + "@" + img.Target().Digest.String()
	if _, err := e.client.ImageService().Create(ctx, images.Image{Name: pinned, Target: img.Target()}); err != nil && !errdefs.IsAlreadyExists(err) {
		return "", fmt.Errorf("record pinned image %s: %w", pinned, err)
	}
	return pinned, nil
}

// repository strips the tag or digest of a normalized reference.
func repository(ref string) string {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

// fetch returns the image, pulling it with auth when the project does not
// have it unpacked yet, or always when fresh (to see what a tag points to now).
func (e *Engine) fetch(ctx context.Context, image string, auth *engine.RegistryAuth, fresh bool) (containerd.Image, error) {
	ref, err := normalize(image)
	if err != nil {
		return nil, &engine.PullError{Image: image, Reason: engine.PullFailed, Err: err}
	}
	if !fresh {
		if img, err := e.client.GetImage(ctx, ref); err == nil {
			if ok, _ := img.IsUnpacked(ctx, defaults.DefaultSnapshotter); ok {
				return img, nil
			}
		}
	}
	creds := func(host string) (string, string, error) {
		if auth != nil && regclient.HostMatches(auth.Server, host) {
			return auth.Username, auth.Password, nil
		}
		return "", "", nil
	}
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(
		docker.WithClient(e.registryClient),
		docker.WithAuthorizer(docker.NewDockerAuthorizer(docker.WithAuthCreds(creds), docker.WithAuthClient(e.registryClient))),
		docker.WithPlainHTTP(func(host string) (bool, error) {
			for _, h := range e.cfg.InsecureRegistries {
				if h == host {
					return true, nil
				}
			}
			return false, nil
		}),
	)})
	img, err := e.client.Pull(ctx, ref, containerd.WithPullUnpack, containerd.WithResolver(resolver))
	if err != nil {
		if e.down(ctx, err) {
			return nil, fmt.Errorf("pull %s: %w: %w", image, engine.ErrUnavailable, err)
		}
		return nil, &engine.PullError{Image: image, Reason: pullReason(err, auth != nil), Err: err}
	}
	return img, nil
}

// normalize completes a reference the way Code Engine does: registry
// docker.io and tag latest by default.
func normalize(ref string) (string, error) {
	if ref == "" {
		return "", errors.New("empty image reference")
	}
	name := ref
	first, _, hasSlash := strings.Cut(ref, "/")
	if !hasSlash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !hasSlash {
			name = "docker.io/library/" + ref
		} else {
			name = "docker.io/" + ref
		}
	}
	last := name[strings.LastIndex(name, "/")+1:]
	if !strings.Contains(last, ":") && !strings.Contains(last, "@") {
		name += ":latest"
	}
	return name, nil
}

// authStatus finds an HTTP 401 or 403 in an error, not the digits of a port
// such as 127.0.0.1:40123.
var authStatus = regexp.MustCompile(`(^|[^:0-9])40[13]([^0-9]|$)`)

// pullReason maps a pull error to the reason users see.
// down reports whether err came from containerd itself not answering (it
// restarts, or its connection is being made again), not from the registry.
func (e *Engine) down(ctx context.Context, err error) bool {
	msg := err.Error()
	if errdefs.IsUnavailable(err) || strings.Contains(msg, "error reading from server") || strings.Contains(msg, "transport is closing") ||
		strings.Contains(msg, "connection error: desc") {
		return true
	}
	serving, serr := e.client.IsServing(ctx)
	return serr != nil || !serving
}

func pullReason(err error, haveAuth bool) string {
	msg := strings.ToLower(err.Error())
	var ne net.Error
	switch {
	case errors.Is(err, netguard.ErrNotAllowed) || strings.Contains(err.Error(), netguard.ErrNotAllowed.Error()):
		return engine.PullNotAllowed
	case authStatus.MatchString(msg) || strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authorization") || strings.Contains(msg, "forbidden"):
		if haveAuth {
			return engine.PullUnauthorized
		}
		return engine.PullMissingAuth
	case errdefs.IsNotFound(err) || strings.Contains(msg, "not found"):
		return engine.PullNotFound
	case errors.As(err, &ne) || strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such host") || strings.Contains(msg, "i/o timeout"):
		return engine.PullUnreachable
	}
	return engine.PullFailed
}

// inspect reads an instance's observed state.
func (e *Engine) inspect(ctx context.Context, project string, c containerd.Container) (engine.Instance, error) {
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return engine.Instance{}, fmt.Errorf("inspect %s: %w", c.ID(), err)
	}
	in := e.instance(project, c.ID(), info.Labels, info.CreatedAt)
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return in, nil
	}
	if err != nil {
		return in, fmt.Errorf("task of %s: %w", c.ID(), err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return in, fmt.Errorf("status of %s: %w", c.ID(), err)
	}
	switch st.Status {
	case containerd.Running, containerd.Paused, containerd.Pausing:
		in.State = engine.StateRunning
	case containerd.Stopped:
		in.State, in.ExitCode, in.FinishedAt = engine.StateExited, int(st.ExitStatus), st.ExitTime
	}
	return in, nil
}

// List implements engine.Engine. It costs two calls to containerd whatever
// the number of instances: one for the containers, one for all their tasks.
func (e *Engine) List(ctx context.Context, project string, match map[string]string) ([]engine.Instance, error) {
	ctx = e.nsctx(ctx, project)
	var filters []string
	for k, v := range match {
		filters = append(filters, fmt.Sprintf("labels.%q==%q", k, v))
	}
	cs, err := e.client.Containers(ctx, strings.Join(filters, ","))
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	if len(cs) == 0 {
		return nil, nil
	}
	resp, err := e.client.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	procs := map[string]*task.Process{}
	for _, p := range resp.Tasks {
		procs[p.ID] = p // containerd names a task's init process after its container
	}
	out := make([]engine.Instance, 0, len(cs))
	for _, c := range cs {
		info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
		if err != nil {
			continue
		}
		in := e.instance(project, c.ID(), info.Labels, info.CreatedAt)
		if p, ok := procs[c.ID()]; ok {
			switch p.Status {
			case task.Status_RUNNING, task.Status_PAUSED, task.Status_PAUSING:
				in.State = engine.StateRunning
			case task.Status_STOPPED:
				in.State, in.ExitCode = engine.StateExited, int(p.ExitStatus)
				if p.ExitedAt != nil {
					in.FinishedAt = p.ExitedAt.AsTime()
				}
			}
		}
		out = append(out, in)
	}
	return out, nil
}

func (e *Engine) instance(project, id string, labels map[string]string, created time.Time) engine.Instance {
	e.mu.Lock()
	oom := e.oom[Namespace(project)+"/"+id] || labels[labelOOM] == "true"
	e.mu.Unlock()
	return engine.Instance{ID: id, Project: project, Labels: labels, State: engine.StateCreated,
		CreatedAt: created, IP: labels[labelIP], OOMKilled: oom, Evicted: labels[labelEvicted]}
}

// Stop implements engine.Engine.
func (e *Engine) Stop(ctx context.Context, project, id string, grace time.Duration) error {
	ctx = e.nsctx(ctx, project)
	c, err := e.client.LoadContainer(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
		}
		return err
	}
	return stopTask(ctx, c, grace)
}

func stopTask(ctx context.Context, c containerd.Container, grace time.Duration) error {
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := task.Status(ctx)
	if err != nil || st.Status == containerd.Stopped {
		return err
	}
	exited, err := task.Wait(ctx)
	if err != nil {
		return err
	}
	if grace > 0 {
		if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("signal %s: %w", c.ID(), err)
		}
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("kill %s: %w", c.ID(), err)
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Remove implements engine.Engine.
func (e *Engine) Remove(ctx context.Context, project, id string) error {
	ctx = e.nsctx(ctx, project)
	c, err := e.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		e.removeLogs(project, id)
		return nil
	}
	if err != nil {
		return err
	}
	return e.remove(ctx, project, c)
}

func (e *Engine) remove(ctx context.Context, project string, c containerd.Container) error {
	if task, err := c.Task(ctx, nil); err == nil {
		if nw, err := e.nets.get(project); err == nil {
			if err := nw.Remove(ctx, c.ID(), fmt.Sprintf("/proc/%d/ns/net", task.Pid())); err != nil {
				e.log.Warn("release instance address", "instance", c.ID(), "err", err)
			}
		}
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete task %s: %w", c.ID(), err)
		}
	}
	if err := e.forgetTask(ctx, c.ID()); err != nil {
		return err
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", c.ID(), err)
	}
	e.mu.Lock()
	delete(e.oom, Namespace(project)+"/"+c.ID())
	e.mu.Unlock()
	e.removeLogs(project, c.ID())
	e.removeMounts(project, c.ID())
	return nil
}

func (e *Engine) removeLogs(project, id string) {
	p := e.logPath(project, id)
	os.Remove(p)
	os.Remove(p + ".1")
}

// Logs implements engine.Engine.
func (e *Engine) Logs(ctx context.Context, project, id string, w io.Writer, opts engine.LogOptions) error {
	p := e.logPath(project, id)
	if _, err := os.Stat(p); err != nil {
		if _, err := e.client.LoadContainer(e.nsctx(ctx, project), id); err != nil {
			return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
		}
	}
	// What is there now (the rotated file, then the current one) is read
	// whole, for a tail to be taken of it; a follow goes on in the current.
	var lines []logfmt.Line
	readAll := func(d *logfmt.Decoder) error {
		for {
			l, err := d.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			lines = append(lines, l)
		}
	}
	if old, err := os.Open(p + ".1"); err == nil {
		err = readAll(logfmt.NewDecoder(old))
		old.Close()
		if err != nil {
			return err
		}
	}
	out := logfmt.NewPrinter(w, logfmt.Options{Since: opts.Since, Timestamps: opts.Timestamps})
	f, err := os.Open(p)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var cur *logfmt.Decoder
	if f != nil {
		defer f.Close()
		cur = logfmt.NewDecoder(f)
		if err := readAll(cur); err != nil {
			return err
		}
	}
	for _, l := range logfmt.Tail(lines, opts.Tail) {
		if err := out.Print(l); err != nil {
			return err
		}
	}
	if cur == nil || !opts.Follow {
		return nil
	}
	for {
		l, err := cur.Next()
		if err == nil {
			if err := out.Print(l); err != nil {
				return err
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		// The instance may be removed while it is followed: its logs end.
		nctx := e.nsctx(ctx, project)
		c, err := e.client.LoadContainer(nctx, id)
		if err == nil {
			var in engine.Instance
			in, err = e.inspect(nctx, project, c)
			if err == nil && in.State != engine.StateExited {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
		}
		// Ended: what it wrote last, then no more.
		for {
			l, err := cur.Next()
			if err != nil {
				return nil
			}
			if err := out.Print(l); err != nil {
				return err
			}
		}
	}
}

// Events implements engine.Engine: exits of every coligo project's instances.
func (e *Engine) Events(ctx context.Context) (<-chan engine.Event, error) {
	envelopes, errs := e.client.Subscribe(ctx, `topic=="/tasks/exit"`)
	out := make(chan engine.Event, 256)
	go func() {
		// An exit by SIGKILL may be an OOM kill whose event comes just
		// after it: those wait (up to 500 ms) off this loop, so that other
		// exits are not held up behind them.
		var late sync.WaitGroup
		defer close(out)
		defer late.Wait()
		send := func(ev engine.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				if err != nil && ctx.Err() == nil {
					e.log.Debug("containerd event stream ended", "err", err) // its watcher (engine.Watch) says so
				}
				return
			case env := <-envelopes:
				project, ok := projectOf(env.Namespace)
				if !ok || env.Event == nil {
					continue
				}
				msg, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				exit, ok := msg.(*apievents.TaskExit)
				if !ok || exit.ID != exit.ContainerID {
					continue // not the instance's own process
				}
				ev := engine.Event{Project: project, ID: exit.ContainerID, ExitCode: int(exit.ExitStatus), At: exit.ExitedAt.AsTime()}
				if ev.ExitCode == 137 {
					ns := env.Namespace
					late.Go(func() {
						ev.OOMKilled = e.oomKilled(ns, ev.ID, ev.ExitCode)
						send(ev)
					})
					continue
				}
				if !send(ev) {
					return
				}
			}
		}
	}()
	return out, nil
}

// watchDisk measures, every DiskCheckEvery, the writable layer of each
// running instance that has an ephemeral storage limit, and kills the ones
// over it, labelled as evicted, as the kubelet evicts such pods.
func (e *Engine) watchDisk(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.cfg.DiskCheckEvery):
		}
		nss, err := e.client.NamespaceService().List(ctx)
		if err != nil {
			continue
		}
		for _, ns := range nss {
			if _, ok := projectOf(ns); ok {
				e.checkDisk(namespaces.WithNamespace(ctx, ns))
			}
		}
	}
}

func (e *Engine) checkDisk(ctx context.Context) {
	cs, err := e.client.Containers(ctx, fmt.Sprintf("labels.%q", labelDisk))
	if err != nil {
		return
	}
	sn := e.client.SnapshotService(defaults.DefaultSnapshotter)
	for _, c := range cs {
		labels, err := c.Labels(ctx)
		if err != nil || labels[labelEvicted] != "" {
			continue
		}
		limit, err := strconv.ParseInt(labels[labelDisk], 10, 64)
		if err != nil || limit <= 0 {
			continue
		}
		task, err := c.Task(ctx, nil)
		if err != nil {
			continue
		}
		if st, err := task.Status(ctx); err != nil || st.Status != containerd.Running {
			continue
		}
		usage, err := sn.Usage(ctx, c.ID())
		if err != nil || usage.Size <= limit {
			continue
		}
		e.log.Warn("instance wrote more than its ephemeral storage limit; killing it", "instance", c.ID(), "bytes", usage.Size, "limit", limit)
		if _, err := c.SetLabels(ctx, map[string]string{labelEvicted: engine.EvictedEphemeralStorage}); err != nil {
			continue
		}
		task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll)
	}
}

// markOOM remembers that an instance hit its memory limit, in memory and as
// a label so that it survives a restart of coligo.
func (e *Engine) markOOM(ctx context.Context, ns, id string) {
	e.mu.Lock()
	e.oom[ns+"/"+id] = true
	e.mu.Unlock()
	ctx = namespaces.WithNamespace(ctx, ns)
	if c, err := e.client.LoadContainer(ctx, id); err == nil {
		c.SetLabels(ctx, map[string]string{labelOOM: "true"})
	}
}

// PruneImages implements engine.Engine.
func (e *Engine) PruneImages(ctx context.Context, project string, keep []string) ([]string, error) {
	defer e.forgetRemaps(project)
	ctx = e.nsctx(ctx, project)
	wanted := map[string]bool{}
	for _, k := range keep {
		if ref, err := normalize(k); err == nil {
			wanted[ref] = true
		}
	}
	cs, err := e.client.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune images: %w", err)
	}
	for _, c := range cs {
		if info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata); err == nil {
			wanted[info.Image] = true
		}
	}
	is := e.client.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune images: %w", err)
	}
	var removed []string
	for _, img := range imgs {
		if wanted[img.Name] {
			continue
		}
		if err := is.Delete(ctx, img.Name, images.SynchronousDelete()); err != nil && !errdefs.IsNotFound(err) {
			return removed, fmt.Errorf("prune image %s: %w", img.Name, err)
		}
		removed = append(removed, img.Name)
	}
	return removed, nil
}

// purgeLeftovers removes what an interrupted create or pull can leave in a
// namespace without a container or image referring to it: leases,
// snapshots (children before parents) and content.
func (e *Engine) purgeLeftovers(ctx context.Context) error {
	ls := e.client.LeasesService()
	all, err := ls.List(ctx)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	for _, l := range all {
		if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete lease %s: %w", l.ID, err)
		}
	}
	sn := e.client.SnapshotService(defaults.DefaultSnapshotter)
	for {
		var keys []string
		if err := sn.Walk(ctx, func(_ context.Context, info snapshots.Info) error {
			keys = append(keys, info.Name)
			return nil
		}); err != nil {
			return fmt.Errorf("list snapshots: %w", err)
		}
		if len(keys) == 0 {
			break
		}
		removed := 0
		for _, k := range keys {
			if err := sn.Remove(ctx, k); err == nil || errdefs.IsNotFound(err) {
				removed++
			}
		}
		if removed == 0 {
			return fmt.Errorf("%d snapshots cannot be removed", len(keys))
		}
	}
	cs := e.client.ContentStore()
	var digests []digest.Digest
	if err := cs.Walk(ctx, func(info content.Info) error {
		digests = append(digests, info.Digest)
		return nil
	}); err != nil {
		return fmt.Errorf("list content: %w", err)
	}
	for _, d := range digests {
		if err := cs.Delete(ctx, d); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("delete content %s: %w", d, err)
		}
	}
	return nil
}

// Purge implements engine.Engine.
func (e *Engine) Purge(ctx context.Context, project string) error {
	defer e.forgetRemaps(project)
	ctx = e.nsctx(ctx, project)
	cs, err := e.client.Containers(ctx)
	if err != nil {
		return fmt.Errorf("purge: list containers: %w", err)
	}
	for _, c := range cs {
		if err := stopTask(ctx, c, 0); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("purge: %w", err)
		}
		if err := e.remove(ctx, project, c); err != nil {
			return fmt.Errorf("purge: %w", err)
		}
	}
	is := e.client.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		return fmt.Errorf("purge: list images: %w", err)
	}
	for i, img := range imgs {
		var opts []images.DeleteOpt
		if i == len(imgs)-1 {
			opts = append(opts, images.SynchronousDelete()) // collect garbage once, at the end
		}
		if err := is.Delete(ctx, img.Name, opts...); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("purge: delete image %s: %w", img.Name, err)
		}
	}
	if err := e.purgeLeftovers(ctx); err != nil {
		return fmt.Errorf("purge: %w", err)
	}
	if err := e.nets.remove(project); err != nil {
		return fmt.Errorf("purge: network: %w", err)
	}
	os.RemoveAll(filepath.Join(e.cfg.StateDir, "logs", project))
	for _, dir := range []string{"instances", "buckets"} {
		if entries, err := os.ReadDir(filepath.Join(e.cfg.RunDir, project, dir)); err == nil {
			for _, en := range entries {
				e.removeMounts(project, en.Name()) // tmpfs and buckets of instances a crash left
			}
		}
	}
	os.RemoveAll(filepath.Join(e.cfg.RunDir, project))
	if err := e.client.NamespaceService().Delete(ctx, Namespace(project)); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("purge: delete namespace: %w", err)
	}
	removeCgroups(Namespace(project))
	return nil
}

// cgroupRoot is where the host's cgroup hierarchies are mounted.
var cgroupRoot = "/sys/fs/cgroup"

// removeCgroups removes the cgroup runc made for a namespace's containers
// (/<namespace>/<id>) in each hierarchy (cgroup v1 has one per
// controller, v2 one): runc removes each container's cgroup, never their
// parent, which would stay for every project there ever was. Only an
// empty cgroup goes (rmdir).
func removeCgroups(ns string) {
	dirs, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", ns))
	for _, d := range append(dirs, filepath.Join(cgroupRoot, ns)) {
		os.Remove(d)
	}
}
