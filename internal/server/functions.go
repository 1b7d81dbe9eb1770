package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/controller/function"
	"github.com/coligo/coligo/internal/function/registry"
	"github.com/coligo/coligo/internal/function/runtime"
)

// functionRuntimes are the function runtimes of the host, their images
// served by coligo's own registry to the local engine.
type functionRuntimes struct {
	ctx      context.Context
	runtimes []runtime.Runtime
	reg      *registry.Registry
	log      *slog.Logger

	mu       sync.Mutex
	images   map[string]string // runtime id → pinned reference, once published
	building map[string]bool
	ctrl     *function.Controller // once the engine is connected
}

// startFunctionRuntimes finds the host's interpreters and starts the
// registry; each runtime's image is built and published when it is first
// asked for (a function waits for it meanwhile), so that a server without
// functions builds none. It returns nil when the host has no interpreter.
func startFunctionRuntimes(ctx context.Context, addr string, own []string, log *slog.Logger) (*functionRuntimes, error) {
	var candidates []runtime.Found
	for _, s := range own {
		c, err := runtime.ParseCandidate(s)
		if err != nil {
			return nil, fmt.Errorf("--function-runtime: %w", err)
		}
		candidates = append(candidates, c)
	}
	found := runtime.Catalogue(runtime.Discover(ctx, append(candidates, runtime.Candidates...)), time.Now())
	for _, c := range candidates {
		if !slices.ContainsFunc(found, func(r runtime.Runtime) bool { return r.Interpreter == c.Interpreter }) {
			log.Warn("an interpreter of --function-runtime does not run here, or one found before it has its version", "family", c.Family, "interpreter", c.Interpreter)
		}
	}
	if len(found) == 0 {
		log.Info("no function runtime on this host (no Node.js or Python interpreter): functions are not served")
		return nil, nil
	}
	reg, err := registry.Start(addr)
	if err != nil {
		return nil, err
	}
	return &functionRuntimes{ctx: ctx, runtimes: found, reg: reg, log: log, images: map[string]string{}, building: map[string]bool{}}, nil
}

// image is a runtime's image reference once published; the first call for
// a runtime starts building it.
func (f *functionRuntimes) image(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref, ok := f.images[id]; ok {
		return ref, true
	}
	i := slices.IndexFunc(f.runtimes, func(r runtime.Runtime) bool { return r.ID == id })
	if i >= 0 && !f.building[id] {
		f.building[id] = true
		go f.build(f.runtimes[i])
	}
	return "", false
}

// build builds and publishes a runtime's image; a failure is tried again
// at the next demand.
func (f *functionRuntimes) build(r runtime.Runtime) {
	start := time.Now()
	img, err := runtime.Image(r)
	var ref string
	if err == nil {
		ref, err = f.reg.Publish(f.ctx, "coligo/runtime-"+r.ID, img)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.building[r.ID] = false
	if err != nil {
		f.log.Warn("build the image of a function runtime", "runtime", r.ID, "err", err)
		return
	}
	f.images[r.ID] = ref
	f.log.Info("function runtime ready", "runtime", r.ID, "interpreter", r.Interpreter, "version", r.Version, "took", time.Since(start).Round(time.Millisecond))
}

// family is a runtime's family; false for a runtime the host lacks.
func (f *functionRuntimes) family(id string) (string, bool) {
	for _, r := range f.runtimes {
		if r.ID == id {
			return r.Family, true
		}
	}
	return "", false
}

// api lists the runtimes as GET /v2/function_runtimes does.
func (f *functionRuntimes) api() []api.FunctionRuntime {
	out := make([]api.FunctionRuntime, 0, len(f.runtimes))
	for _, r := range f.runtimes {
		out = append(out, api.FunctionRuntime{ID: r.ID, Name: r.Name, Family: r.Family, Default: r.Default, Deprecated: r.Deprecated, Optimized: r.Optimized})
	}
	return out
}

func (f *functionRuntimes) close() { f.reg.Close() }

// serve records the function controller, once it runs.
func (f *functionRuntimes) serve(c *function.Controller) {
	f.mu.Lock()
	f.ctrl = c
	f.mu.Unlock()
}

func (f *functionRuntimes) controller() *function.Controller {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ctrl
}

// Instances implements apiserver.FunctionObserver: none before the
// controller runs.
func (f *functionRuntimes) Instances(project, name string) []string {
	if c := f.controller(); c != nil {
		return c.Instances(project, name)
	}
	return nil
}

// EndedLogs implements apiserver.FunctionObserver.
func (f *functionRuntimes) EndedLogs(project, name string) []byte {
	if c := f.controller(); c != nil {
		return c.EndedLogs(project, name)
	}
	return nil
}
