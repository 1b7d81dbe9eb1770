package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
)

// Engine is an engine.Engine in memory. Its zero value is not usable; use
// New.
type Engine struct {
	mu        sync.Mutex
	images    map[string]image                // by reference, tag and pinned alike
	pulled    map[string]map[string]string    // project → references it pulled → their pinned form
	instances map[string]map[string]*instance // project → id → instance
	networks  map[string]netip.Prefix         // project → subnet
	nets      int                             // subnets handed out
	names     map[string][]string             // project → ProjectNetwork names
	subs      map[chan engine.Event]struct{}
	starts    int
	failRun   func(engine.Spec) error
	down      bool
}

// SetDown makes the engine unavailable (Pull answers ErrUnavailable), as
// containerd is while it restarts, or available again.
func (e *Engine) SetDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

type image struct {
	pinned string
	auth   *engine.RegistryAuth
}

type instance struct {
	engine.Instance
	spec  engine.Spec
	timer *time.Timer // ends a "sleep S"
}

// New returns an empty engine.
func New() *Engine {
	return &Engine{images: map[string]image{}, pulled: map[string]map[string]string{}, instances: map[string]map[string]*instance{},
		networks: map[string]netip.Prefix{}, names: map[string][]string{}, subs: map[chan engine.Event]struct{}{}}
}

// AddImage registers an image reference that pulls with auth (nil: with
// none) and returns it pinned to its digest.
func (e *Engine) AddImage(ref string, auth *engine.RegistryAuth) string {
	sum := sha256.Sum256([]byte(ref))
	name := ref
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name = ref[:i]
	}
	pinned := name + "@sha256:" + hex.EncodeToString(sum[:])
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images[ref] = image{pinned, auth}
	e.images[pinned] = image{pinned, auth}
	return pinned
}

// FailRun makes Run fail with what f returns for a spec (nil: no failure).
func (e *Engine) FailRun(f func(engine.Spec) error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failRun = f
}

// Starts is how many instance processes Run has started.
func (e *Engine) Starts() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.starts
}

// Exit ends a running instance with code, as its process would.
func (e *Engine) Exit(project, id string, code int, oomKilled bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.instances[project][id]
	if in == nil {
		return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
	}
	e.exitLocked(in, code, oomKilled)
	return nil
}

// Restart ends every event subscription, as a restart of the runtime
// would; instances keep running.
func (e *Engine) Restart() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		close(ch)
		delete(e.subs, ch)
	}
}

func (e *Engine) pull(project, ref string, auth *engine.RegistryAuth) (string, error) {
	if e.down {
		return "", fmt.Errorf("pull %s: %w", ref, engine.ErrUnavailable)
	}
	img, ok := e.images[ref]
	switch {
	case !ok:
		return "", &engine.PullError{Image: ref, Reason: engine.PullNotFound, Err: errors.New("manifest unknown")}
	case img.auth != nil && auth == nil:
		return "", &engine.PullError{Image: ref, Reason: engine.PullMissingAuth, Err: errors.New("authentication required")}
	case img.auth != nil && (auth.Username != img.auth.Username || auth.Password != img.auth.Password):
		return "", &engine.PullError{Image: ref, Reason: engine.PullUnauthorized, Err: errors.New("unauthorized")}
	}
	if e.pulled[project] == nil {
		e.pulled[project] = map[string]string{}
	}
	e.pulled[project][ref] = img.pinned
	return img.pinned, nil
}

// Pull implements engine.Engine.
func (e *Engine) Pull(_ context.Context, project, ref string, auth *engine.RegistryAuth) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pull(project, ref, auth)
}

// Run implements engine.Engine.
func (e *Engine) Run(ctx context.Context, spec engine.Spec) (engine.Instance, error) {
	return e.create(spec, true)
}

// Prepare implements engine.Engine.
func (e *Engine) Prepare(ctx context.Context, spec engine.Spec) (engine.Instance, error) {
	return e.create(spec, false)
}

func (e *Engine) create(spec engine.Spec, start bool) (engine.Instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if in := e.instances[spec.Project][spec.ID]; in != nil {
		if start && in.State == engine.StateCreated {
			e.startLocked(in)
		}
		return in.Instance, nil
	}
	if spec.Image == "" {
		return engine.Instance{}, fmt.Errorf("instance %s: %w", spec.ID, core.ErrNotFound)
	}
	if f := e.failRun; f != nil {
		if err := f(spec); err != nil {
			return engine.Instance{}, err
		}
	}
	held := false
	for _, pinned := range e.pulled[spec.Project] {
		held = held || pinned == e.images[spec.Image].pinned
	}
	if !held {
		if _, err := e.pull(spec.Project, spec.Image, spec.Auth); err != nil {
			return engine.Instance{}, err
		}
	}
	if len(spec.Command) > 0 && spec.Command[0] == "no-such-command" {
		return engine.Instance{}, fmt.Errorf("instance %s: %w", spec.ID, engine.ErrNoCommand)
	}
	if e.instances[spec.Project] == nil {
		e.instances[spec.Project] = map[string]*instance{}
	}
	n := len(e.instances[spec.Project]) + 2
	ip := e.subnetLocked(spec.Project).Addr().As4()
	ip[3] = byte(n)
	in := &instance{spec: spec, Instance: engine.Instance{ID: spec.ID, Project: spec.Project, Labels: maps.Clone(spec.Labels),
		State: engine.StateCreated, IP: netip.AddrFrom4(ip).String(), CreatedAt: time.Now()}}
	e.instances[spec.Project][spec.ID] = in
	if start {
		e.startLocked(in)
	}
	return in.Instance, nil
}

// startLocked starts an instance's "process" per the vocabulary.
func (e *Engine) startLocked(in *instance) {
	e.starts++
	in.State = engine.StateRunning
	code, after, ends := behaviour(in.spec.Command, in.spec.Args)
	if !ends {
		return
	}
	in.timer = time.AfterFunc(after, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if in.State == engine.StateRunning {
			e.exitLocked(in, code, false)
		}
	})
}

// behaviour reads a command: its exit code, after how long, and whether it
// ends by itself at all.
func behaviour(cmd, args []string) (code int, after time.Duration, ends bool) {
	argv := append(slices.Clone(cmd), args...)
	if len(argv) == 3 && argv[0] == "sh" && argv[1] == "-c" {
		argv = strings.Fields(argv[2])
	}
	if len(argv) == 0 {
		return 0, 0, false
	}
	switch argv[0] {
	case "true":
		return 0, 0, true
	case "false":
		return 1, 0, true
	case "exit":
		if len(argv) == 2 {
			if n, err := strconv.Atoi(argv[1]); err == nil {
				return n, 0, true
			}
		}
	case "sleep":
		if len(argv) == 2 {
			if s, err := strconv.ParseFloat(argv[1], 64); err == nil {
				return 0, time.Duration(s * float64(time.Second)), true
			}
		}
	}
	return 0, 0, false
}

func (e *Engine) exitLocked(in *instance, code int, oom bool) {
	if in.timer != nil {
		in.timer.Stop()
	}
	in.State, in.ExitCode, in.OOMKilled, in.FinishedAt = engine.StateExited, code, oom, time.Now()
	ev := engine.Event{Project: in.Project, ID: in.ID, ExitCode: code, OOMKilled: oom, At: in.FinishedAt}
	for ch := range e.subs {
		select {
		case ch <- ev:
		default: // a subscriber that does not read loses events, as with containerd
		}
	}
}

func (e *Engine) subnetLocked(project string) netip.Prefix {
	if p, ok := e.networks[project]; ok {
		return p
	}
	n := e.nets
	e.nets++
	p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + n/256), byte(n), 0}), 24)
	e.networks[project] = p
	return p
}

// Stop implements engine.Engine: the process ends at once, with 143 after
// SIGTERM (grace > 0), else 137.
func (e *Engine) Stop(_ context.Context, project, id string, grace time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.instances[project][id]
	if in == nil {
		return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
	}
	if in.State == engine.StateRunning {
		code := 137
		if grace > 0 {
			code = 143
		}
		e.exitLocked(in, code, false)
	}
	return nil
}

// Remove implements engine.Engine.
func (e *Engine) Remove(_ context.Context, project, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if in := e.instances[project][id]; in != nil {
		if in.timer != nil {
			in.timer.Stop()
		}
		delete(e.instances[project], id)
	}
	return nil
}

// List implements engine.Engine.
func (e *Engine) List(_ context.Context, project string, match map[string]string) ([]engine.Instance, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []engine.Instance
	for _, in := range e.instances[project] {
		ok := true
		for k, v := range match {
			ok = ok && in.Labels[k] == v
		}
		if ok {
			c := in.Instance
			c.Labels = maps.Clone(in.Labels)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b engine.Instance) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Logs implements engine.Engine: an instance's log is its command line;
// following ends when the instance exits or is removed.
func (e *Engine) Logs(ctx context.Context, project, id string, w io.Writer, opts engine.LogOptions) error {
	e.mu.Lock()
	in := e.instances[project][id]
	e.mu.Unlock()
	if in == nil {
		return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
	}
	line := strings.Join(append(slices.Clone(in.spec.Command), in.spec.Args...), " ")
	if opts.Timestamps {
		line = in.CreatedAt.UTC().Format(time.RFC3339Nano) + " " + line
	}
	if !opts.Since.IsZero() && in.CreatedAt.Before(opts.Since) {
		line = ""
	} else {
		line += "\n"
	}
	if _, err := io.WriteString(w, line); err != nil || !opts.Follow {
		return err
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		e.mu.Lock()
		over := e.instances[project][id] != in || in.State == engine.StateExited
		e.mu.Unlock()
		if over {
			return nil
		}
	}
}

// Events implements engine.Engine.
func (e *Engine) Events(ctx context.Context) (<-chan engine.Event, error) {
	ch := make(chan engine.Event, 1024)
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, ok := e.subs[ch]; ok {
			close(ch)
			delete(e.subs, ch)
		}
	}()
	return ch, nil
}

// PruneImages implements engine.Engine.
func (e *Engine) PruneImages(_ context.Context, project string, keep []string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	used := map[string]bool{}
	for _, in := range e.instances[project] {
		used[in.spec.Image] = true
		used[e.images[in.spec.Image].pinned] = true
	}
	for _, k := range keep {
		used[k] = true
		used[e.images[k].pinned] = true
	}
	var removed []string
	for ref, pinned := range e.pulled[project] {
		if !used[ref] && !used[pinned] {
			delete(e.pulled[project], ref)
			removed = append(removed, ref)
		}
	}
	slices.Sort(removed)
	return removed, nil
}

// ProjectNetwork implements engine.Engine.
func (e *Engine) ProjectNetwork(_ context.Context, project string, names []string) (netip.Addr, netip.Prefix, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	subnet := e.subnetLocked(project)
	e.names[project] = slices.Clone(names)
	return subnet.Addr().Next(), subnet, nil
}

// Purge implements engine.Engine.
func (e *Engine) Purge(_ context.Context, project string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, in := range e.instances[project] {
		if in.timer != nil {
			in.timer.Stop()
		}
	}
	delete(e.instances, project)
	delete(e.pulled, project)
	delete(e.names, project)
	delete(e.networks, project)
	return nil
}

// UpdateFile implements engine.FileUpdater: the file must be one of the
// instance's mounts.
func (e *Engine) UpdateFile(_ context.Context, project, id, dir, name string, data []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.instances[project][id]
	if in == nil {
		return fmt.Errorf("instance %s: %w", id, core.ErrNotFound)
	}
	for i, m := range in.spec.Mounts {
		if _, ok := m.Files[name]; ok && m.Dir == dir {
			files := maps.Clone(m.Files)
			files[name] = slices.Clone(data)
			in.spec.Mounts = slices.Clone(in.spec.Mounts)
			in.spec.Mounts[i].Files = files
			return nil
		}
	}
	return fmt.Errorf("instance %s has no file %s in %s: %w", id, name, dir, core.ErrNotFound)
}

// File is the content of a file of an instance's mounts, as last written.
func (e *Engine) File(project, id, dir, name string) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.instances[project][id]
	if in == nil {
		return nil, false
	}
	for _, m := range in.spec.Mounts {
		if b, ok := m.Files[name]; ok && m.Dir == dir {
			return b, true
		}
	}
	return nil, false
}
