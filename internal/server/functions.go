package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/function/registry"
	"github.com/coligo/coligo/internal/function/runtime"
)

// functionRuntimes are the function runtimes of the host, their images
// served by coligo's own registry to the local engine.
type functionRuntimes struct {
	runtimes []runtime.Runtime
	reg      *registry.Registry
	log      *slog.Logger

	mu     sync.Mutex
	images map[string]string // runtime id → pinned reference, once published
}

// startFunctionRuntimes finds the host's interpreters, starts the registry
// and builds and publishes each runtime's image in the background (a
// function waits for its runtime's image meanwhile). It returns nil when
// the host has no interpreter.
func startFunctionRuntimes(ctx context.Context, log *slog.Logger) (*functionRuntimes, error) {
	found := runtime.Catalogue(runtime.Discover(ctx, runtime.Candidates), time.Now())
	if len(found) == 0 {
		log.Info("no function runtime on this host (no Node.js or Python interpreter): functions are not served")
		return nil, nil
	}
	reg, err := registry.Start()
	if err != nil {
		return nil, err
	}
	f := &functionRuntimes{runtimes: found, reg: reg, log: log, images: map[string]string{}}
	go func() {
		for _, r := range found {
			start := time.Now()
			img, err := runtime.Image(r)
			if err == nil {
				var ref string
				if ref, err = reg.Publish(ctx, "coligo/runtime-"+r.ID, img); err == nil {
					f.mu.Lock()
					f.images[r.ID] = ref
					f.mu.Unlock()
					log.Info("function runtime ready", "runtime", r.ID, "interpreter", r.Interpreter, "version", r.Version, "took", time.Since(start).Round(time.Millisecond))
					continue
				}
			}
			log.Warn("build the image of a function runtime", "runtime", r.ID, "err", err)
		}
	}()
	return f, nil
}

// image is a runtime's image reference, once published.
func (f *functionRuntimes) image(id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref, ok := f.images[id]
	return ref, ok
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
