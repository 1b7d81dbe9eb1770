package builder

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/cli/cli/config/types"
	bk "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/solver/pb"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sys/unix"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/regclient"
)

// Builder builds with one BuildKit daemon.
type Builder struct {
	// Address is buildkitd's, as its client takes it
	// (unix:///run/buildkit/buildkitd.sock, tcp://host:port).
	Address string
	// Insecure lists the registries (host:port) reached over plain HTTP
	// (--insecure-registry).
	Insecure []string
	Logger   *slog.Logger
	// CgroupParent, when set, is a cgroup (a path under the hierarchies'
	// root) under which each build gets one of its own with the build's
	// CPU and memory, its steps' parent (buildkitd runs on this host).
	CgroupParent string
}

// Request is one build.
type Request struct {
	// Dir is a local directory holding the source, or Files the source's
	// files held in memory (by slash path; written to a tmpfs for
	// BuildKit, removed after); neither builds GitURL at
	// GitRevision (a branch, tag or commit; "" the default branch).
	Dir         string
	Files       map[string][]byte
	GitURL      string
	GitRevision string
	GitAuth     *GitAuth // a private repository's; nil for a public one
	// ContextDir is the build context's directory in the source ("" its
	// root); Dockerfile is the Dockerfile's path in it (default
	// Dockerfile).
	ContextDir string
	Dockerfile string
	BuildArgs  map[string]string
	// Secrets are offered to RUN --mount=type=secret,id=NAME.
	Secrets map[string][]byte
	// MilliCPU and MemoryBytes limit the build's steps together, where
	// the Builder has a CgroupParent.
	MilliCPU, MemoryBytes int64
	// Output is the image to push, with Auth (which also pulls the base
	// images of its registry).
	Output string
	Auth   *engine.RegistryAuth
	// Progress receives the build's steps and their output, line by line.
	Progress io.Writer
}

// GitAuth is what a private repository takes: basic auth over HTTP(S), or
// an SSH key (unencrypted) with the host keys to trust (known_hosts
// lines; none: the key the host shows when the build starts).
type GitAuth struct {
	Username, Password string
	SSHKey             []byte
	KnownHosts         string
}

// The names under which a build offers a Git source its credentials:
// build secrets' names are build argument names, so these meet none.
const (
	gitAuthHeader = "coligo.git-auth-header"
	gitAuthToken  = "coligo.git-auth-token"
	gitSSH        = "coligo.git-ssh"
)

// Result is what a build pushed.
type Result struct {
	Digest string     // sha256:…
	Git    *GitCommit // what a Git source was, nil for others
}

// GitCommit is the commit a build built.
type GitCommit struct {
	SHA    string
	Author string    // the author's name
	Branch string    // the branch the revision named; "" for a tag or a commit
	Time   time.Time // when it was committed
}

// Build builds and pushes; a failed step's error carries the step's name.
func (b *Builder) Build(ctx context.Context, req Request) (Result, error) {
	if req.Files != nil {
		dir, err := writeInMemory(req.Files)
		if err != nil {
			return Result{}, err
		}
		defer os.RemoveAll(dir)
		req.Dir, req.Files = dir, nil
	}
	c, err := bk.New(ctx, b.Address)
	if err != nil {
		return Result{}, fmt.Errorf("connect to buildkitd at %s: %w", b.Address, err)
	}
	defer c.Close()
	if err := onOwnNetwork(ctx, c); err != nil {
		return Result{}, err
	}
	opt, err := b.solveOpt(req)
	if err != nil {
		return Result{}, err
	}
	if b.CgroupParent != "" && req.MemoryBytes > 0 {
		cg := path.Join("/", b.CgroupParent, "build-"+identity.NewID())
		remove, err := limit(cg, req.MilliCPU, req.MemoryBytes)
		if err != nil {
			return Result{}, err
		}
		defer func() {
			if err := remove(); err != nil && b.Logger != nil {
				b.Logger.Warn("a build's cgroup stays", "err", err)
			}
		}()
		opt.FrontendAttrs["cgroup-parent"] = cg
	}
	status := make(chan *bk.SolveStatus)
	done := make(chan struct{})
	go func() {
		defer close(done)
		writeProgress(req.Progress, status)
	}()
	var res Result
	var resp *bk.SolveResponse
	if src, ok := opt.FrontendInputs[gitInput]; ok {
		opt.FrontendInputs = nil
		resp, err = c.Build(ctx, opt, "coligo", func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
			commit, pinned, err := resolveGit(ctx, gw, src)
			if err != nil {
				return nil, err
			}
			res.Git = commit
			def, err := pinned.Marshal(ctx)
			if err != nil {
				return nil, err
			}
			return gw.Solve(ctx, gateway.SolveRequest{Frontend: opt.Frontend, FrontendOpt: opt.FrontendAttrs,
				FrontendInputs: map[string]*pb.Definition{"context": def.ToPB(), "dockerfile": def.ToPB()}})
		}, status)
	} else {
		resp, err = c.Solve(ctx, nil, opt, status)
	}
	<-done
	b.prune(c)
	if err != nil {
		return Result{}, fmt.Errorf("build %s: %w", req.Output, err)
	}
	if res.Digest = resp.ExporterResponse["containerimage.digest"]; res.Digest == "" {
		return Result{}, errors.New("buildkitd reported no digest of the pushed image")
	}
	return res, nil
}

// gitInput marks a Git source in a SolveOpt's FrontendInputs, for Build.
const gitInput = "coligo.git"

// resolveGit asks buildkitd which commit the Git source src names (with
// the build's credentials), and returns it with src pinned to it, so that
// the build builds the commit it reports.
func resolveGit(ctx context.Context, gw gateway.Client, src llb.State) (*GitCommit, llb.State, error) {
	def, err := src.Marshal(ctx)
	if err != nil {
		return nil, src, err
	}
	var op *pb.SourceOp
	for _, d := range def.Def {
		var o pb.Op
		if err := o.Unmarshal(d); err == nil && o.GetSource() != nil {
			op = o.GetSource()
		}
	}
	if op == nil {
		return nil, src, errors.New("the Git source has no source operation")
	}
	md, err := gw.ResolveSourceMetadata(ctx, op, sourceresolver.Opt{GitOpt: &sourceresolver.ResolveGitOpt{ReturnObject: true}})
	if err != nil {
		return nil, src, err
	}
	if md.Git == nil {
		return nil, src, nil
	}
	c := parseCommit(md.Git.CommitObject)
	c.SHA = cmp.Or(md.Git.CommitChecksum, md.Git.Checksum)
	c.Branch, _ = strings.CutPrefix(md.Git.Ref, "refs/heads/")
	if c.Branch == md.Git.Ref && strings.HasPrefix(c.Branch, "refs/") {
		c.Branch = "" // a tag
	}
	if len(c.Branch) == 40 && c.Branch == c.SHA {
		c.Branch = "" // a commit
	}
	attrs := maps.Clone(op.Attrs)
	attrs[pb.AttrGitChecksum] = c.SHA
	return &c, llb.NewState(llb.NewSource(op.Identifier, attrs, llb.Constraints{}).Output()), nil
}

// parseCommit reads the author's name and the commit time of a raw Git
// commit object ("author NAME <EMAIL> SECONDS ZONE", "committer …").
func parseCommit(obj []byte) GitCommit {
	var c GitCommit
	header, _, _ := strings.Cut(string(obj), "\n\n")
	for _, line := range strings.Split(header, "\n") {
		kind, rest, _ := strings.Cut(line, " ")
		if kind != "author" && kind != "committer" {
			continue
		}
		name, tail, ok := strings.Cut(rest, " <")
		if !ok {
			continue
		}
		if kind == "author" {
			c.Author = name
		}
		if _, when, ok := strings.Cut(tail, "> "); ok && kind == "committer" {
			secs, _, _ := strings.Cut(when, " ")
			if n, err := strconv.ParseInt(secs, 10, 64); err == nil {
				c.Time = time.Unix(n, 0).UTC()
			}
		}
	}
	return c
}

// onOwnNetwork refuses a buildkitd whose workers run build steps in this
// host's network namespace, where a project's step would reach the host's
// own services on loopback, past any fence; bridge or CNI it must be.
func onOwnNetwork(ctx context.Context, c *bk.Client) error {
	workers, err := c.ListWorkers(ctx)
	if err != nil {
		return fmt.Errorf("list buildkitd's workers: %w", err)
	}
	for _, w := range workers {
		if n := w.Labels["org.mobyproject.buildkit.worker.network"]; n != "cni" {
			return fmt.Errorf("buildkitd runs build steps on the %q network, not a bridge of their own: a build would reach this host's services; set its worker's networkMode = \"bridge\"", n)
		}
	}
	return nil
}

// prune removes what buildkitd keeps of ended builds (their layers,
// sources and base images) as soon as a build ends, so that no project's
// data outlives its build there; what builds at the time stays.
func (b *Builder) prune(c *bk.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Prune(ctx, nil, bk.PruneAll); err != nil && b.Logger != nil {
		b.Logger.Warn("prune buildkitd's cache", "err", err)
	}
}

// solveOpt is a request as BuildKit's Dockerfile frontend takes it.
func (b *Builder) solveOpt(req Request) (bk.SolveOpt, error) {
	dockerfile := req.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	// Tenants share buildkitd, so nothing of one build serves another:
	// no step is taken from the cache (a RUN step's cache key leaves out
	// its secrets, so a cached layer may hold another project's data), and
	// every base image is resolved at its registry with this build's
	// credentials, never from what buildkitd holds of another's pull.
	// An empty cmdline keeps the Dockerfile frontend built into buildkitd
	// (a "# syntax=" line would hand the build to a frontend image of the
	// Dockerfile's choice, free to leave out the build's cgroup).
	attrs := map[string]string{"filename": dockerfile, "no-cache": "", "image-resolve-mode": "pull", "cmdline": ""}
	for k, v := range req.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	// A key of its own per build: BuildKit keeps a copy of each local
	// source under its shared key and syncs the next build's against it,
	// so a shared one would mix one build's files (another project's)
	// into the next's.
	opt := bk.SolveOpt{Frontend: "dockerfile.v0", FrontendAttrs: attrs, SharedKey: identity.NewID()}
	switch {
	case req.Dir != "":
		ctxDir, err := within(req.Dir, req.ContextDir)
		if err != nil {
			return opt, err
		}
		dfDir, err := within(ctxDir, path.Dir(dockerfile))
		if err != nil {
			return opt, err
		}
		attrs["filename"] = path.Base(dockerfile)
		ctxFS, err := fsutil.NewFS(ctxDir)
		if err != nil {
			return opt, fmt.Errorf("the build context: %w", err)
		}
		dfFS, err := fsutil.NewFS(dfDir)
		if err != nil {
			return opt, fmt.Errorf("the Dockerfile's directory: %w", err)
		}
		opt.LocalMounts = map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS}
	default:
		gopts := []llb.GitOption{llb.AuthHeaderSecret(gitAuthHeader), llb.AuthTokenSecret(gitAuthToken), llb.MountSSHSock(gitSSH)}
		if req.GitRevision != "" {
			gopts = append(gopts, llb.GitRef(req.GitRevision))
		}
		if dir := strings.Trim(path.Clean("/"+req.ContextDir), "/"); dir != "" {
			gopts = append(gopts, llb.GitSubDir(dir))
		}
		if a := req.GitAuth; a != nil && a.KnownHosts != "" {
			gopts = append(gopts, llb.KnownSSHHosts(a.KnownHosts))
		}
		// Build resolves the commit and hands the source, pinned to it,
		// to the frontend as its context.
		opt.FrontendInputs = map[string]llb.State{gitInput: llb.Git(req.GitURL, "", gopts...)}
	}
	reg := ""
	if r, err := (&regclient.Client{Insecure: b.Insecure}).Parse(req.Output, "docker.io"); err == nil {
		reg = r.Context().RegistryStr()
	}
	exp := map[string]string{"name": req.Output, "push": "true"}
	if slices.Contains(b.Insecure, reg) {
		exp["registry.insecure"] = "true"
	}
	opt.Exports = []bk.ExportEntry{{Type: bk.ExporterImage, Attrs: exp}}
	auth := req.Auth
	opt.Session = []session.Attachable{
		authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
			AuthConfigProvider: func(_ context.Context, host string, _ []string, _ authprovider.ExpireCachedAuthCheck) (types.AuthConfig, error) {
				if auth == nil || !regclient.HostMatches(auth.Server, host) {
					return types.AuthConfig{}, nil
				}
				return types.AuthConfig{Username: auth.Username, Password: auth.Password}, nil
			}}),
	}
	secrets := req.Secrets
	if a := req.GitAuth; a != nil && a.Username != "" {
		secrets = maps.Clone(secrets)
		if secrets == nil {
			secrets = map[string][]byte{}
		}
		secrets[gitAuthHeader] = []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	}
	opt.Session = append(opt.Session, secretsprovider.FromMap(secrets))
	if a := req.GitAuth; a != nil && len(a.SSHKey) > 0 {
		agent, err := sshAgent(a.SSHKey)
		if err != nil {
			return opt, err
		}
		opt.Session = append(opt.Session, agent)
	}
	return opt, nil
}

// ErrSSHKey is a GitAuth.SSHKey that is not an unencrypted private key.
var ErrSSHKey = errors.New("the source secret's ssh_key is not an unencrypted private key")

// sshAgent offers key to the build's Git source as an SSH agent. BuildKit's
// agent reads keys from files: the key is written to a tmpfs and removed
// as soon as it is read.
func sshAgent(key []byte) (session.Attachable, error) {
	dir, err := writeInMemory(map[string][]byte{"key": key})
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	agent, err := sshprovider.NewSSHAgentProvider([]sshprovider.AgentConfig{{ID: gitSSH, Paths: []string{filepath.Join(dir, "key")}}})
	if err != nil {
		return nil, ErrSSHKey
	}
	return agent, nil
}

// MemoryDir is where a source held in memory is written for BuildKit's
// file sync, which reads directories: a tmpfs, so that nothing of it is
// on a disk.
var MemoryDir = "/dev/shm"

// writeInMemory writes files into a new directory of MemoryDir (0700),
// refusing a MemoryDir that is not a tmpfs.
func writeInMemory(files map[string][]byte) (string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(MemoryDir, &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		return "", fmt.Errorf("a local source is held in memory, and %s is not a tmpfs here", MemoryDir)
	}
	dir, err := os.MkdirTemp(MemoryDir, "coligo-build-")
	if err != nil {
		return "", err
	}
	for p, b := range files {
		full, err := within(dir, p)
		if err == nil {
			err = os.MkdirAll(filepath.Dir(full), 0o700)
		}
		if err == nil {
			err = os.WriteFile(full, b, 0o600)
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("write the source in memory: %w", err)
		}
	}
	return dir, nil
}

// within joins dir and rel, refusing a rel that leads out of dir.
func within(dir, rel string) (string, error) {
	clean := path.Clean("/" + filepath.ToSlash(rel))
	if strings.Contains("/"+strings.TrimPrefix(rel, "/")+"/", "/../") {
		return "", fmt.Errorf("%q leads out of the source", rel)
	}
	return filepath.Join(dir, filepath.FromSlash(clean)), nil
}

// writeProgress writes each step as it starts and ends, and its output,
// as plain lines.
func writeProgress(w io.Writer, status <-chan *bk.SolveStatus) {
	if w == nil {
		w = io.Discard
	}
	names := map[string]string{}
	started := map[string]bool{}
	for s := range status {
		for _, v := range s.Vertexes {
			names[v.Digest.String()] = v.Name
			switch {
			case v.Error != "":
				fmt.Fprintf(w, "ERROR %s: %s\n", v.Name, v.Error)
			case v.Completed != nil && v.Started != nil:
				if v.Cached {
					fmt.Fprintf(w, "CACHED %s\n", v.Name)
				} else {
					fmt.Fprintf(w, "DONE %s (%s)\n", v.Name, v.Completed.Sub(*v.Started).Round(time.Millisecond))
				}
			case v.Started != nil && !started[v.Digest.String()]:
				started[v.Digest.String()] = true
				fmt.Fprintf(w, "STEP %s\n", v.Name)
			}
		}
		for _, l := range s.Logs {
			for _, line := range strings.SplitAfter(string(l.Data), "\n") {
				if line != "" {
					fmt.Fprintf(w, "  %s", line)
					if !strings.HasSuffix(line, "\n") {
						fmt.Fprintln(w)
					}
				}
			}
		}
	}
}
