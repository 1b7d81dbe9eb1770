package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/config"
	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/kube"
	"github.com/coligo/coligo/internal/engine/local"
)

// serverEngine is an engine the server closes on the way out.
type serverEngine interface {
	engine.Engine
	Close() error
}

// appInstances is what the API asks of the app controller.
type appInstances interface {
	Instances(project, app string) []core.AppInstance
	Synced() <-chan struct{}
}

// errNotConnected answers what needs the engine before it is connected.
var errNotConnected = fmt.Errorf("the engine is not connected yet: %w", core.ErrUnavailable)

// engineLink is the server's connection to its configured engine. It is
// made in the background: the API serves while containerd (or the cluster)
// is not there, the workload controllers start once it is, and what needs
// the engine meanwhile (logs, a project's purge) answers that it is not
// connected and is retried by its caller.
type engineLink struct {
	log     *slog.Logger
	open    func() (serverEngine, error) // openEngine; replaced in tests
	started chan struct{}                // closed when the app controller is set

	mu      sync.Mutex
	eng     serverEngine
	apps    appInstances
	lastErr error
}

func newEngineLink(cfg config.Server, log *slog.Logger) *engineLink {
	l := &engineLink{log: log, started: make(chan struct{}), lastErr: errors.New("connecting")}
	l.open = func() (serverEngine, error) { return openEngine(cfg, log) }
	return l
}

// connect opens the engine, retrying with backoff (up to 30s apart) until
// it is there or ctx ends (nil).
func (l *engineLink) connect(ctx context.Context) serverEngine {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		eng, err := l.open()
		if err == nil {
			l.mu.Lock()
			l.eng, l.lastErr = eng, nil
			l.mu.Unlock()
			if attempt > 1 {
				l.log.Info("engine connected; starting the workload controllers", "attempts", attempt)
			}
			return eng
		}
		l.mu.Lock()
		l.lastErr = err
		l.mu.Unlock()
		if attempt == 1 {
			l.log.Error("engine unavailable; the API serves, workloads wait until it connects", "err", err)
		} else {
			l.log.Debug("engine still unavailable", "err", err, "attempt", attempt)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// setApps makes the app controller's view of instances the API's.
func (l *engineLink) setApps(a appInstances) {
	l.mu.Lock()
	l.apps = a
	l.mu.Unlock()
	close(l.started)
}

// waitSynced waits until the app controller knows the routes, or d passed.
func (l *engineLink) waitSynced(d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	select {
	case <-l.started:
	case <-deadline.C:
		return false
	}
	_, apps := l.current()
	select {
	case <-apps.Synced():
		return true
	case <-deadline.C:
		return false
	}
}

func (l *engineLink) current() (serverEngine, appInstances) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng, l.apps
}

// status is nil when the engine is connected, else why it is not.
func (l *engineLink) status() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.eng != nil {
		return nil
	}
	return l.lastErr
}

// Logs implements apiserver.LogReader.
func (l *engineLink) Logs(ctx context.Context, project, id string, w io.Writer, opts engine.LogOptions) error {
	eng, _ := l.current()
	if eng == nil {
		return errNotConnected
	}
	return eng.Logs(ctx, project, id, w, opts)
}

// Instances implements apiserver.AppObserver: none while not connected.
func (l *engineLink) Instances(project, app string) []core.AppInstance {
	if _, apps := l.current(); apps != nil {
		return apps.Instances(project, app)
	}
	return nil
}

// Purge implements project.Purger: a hard delete waits for the engine.
func (l *engineLink) Purge(ctx context.Context, project string) error {
	eng, _ := l.current()
	if eng == nil {
		return errNotConnected
	}
	return eng.Purge(ctx, project)
}

// ProjectOf tells the router which project a pod address belongs to, on an
// engine whose projects share one pod network (kubernetes).
func (l *engineLink) ProjectOf(a netip.Addr) (string, bool) {
	eng, _ := l.current()
	shared, ok := eng.(interface {
		ProjectOf(netip.Addr) (string, bool)
	})
	if !ok {
		return "", false
	}
	return shared.ProjectOf(a)
}

// close closes the engine, if it was connected.
func (l *engineLink) close() {
	if eng, _ := l.current(); eng != nil {
		if err := eng.Close(); err != nil {
			l.log.Warn("close engine", "err", err)
		}
	}
}

// openEngine connects the configured engine once.
func openEngine(cfg config.Server, log *slog.Logger) (serverEngine, error) {
	if cfg.Engine == "kubernetes" {
		eng, err := kube.New(kube.Config{Kubeconfig: cfg.Kubeconfig, Gateway: netip.MustParseAddr(cfg.KubeGateway),
			PodCIDR: netip.MustParsePrefix(cfg.KubePodCIDR), InsecureRegistries: cfg.InsecureRegistries, Quota: cfg.Quota(), Log: log})
		if err != nil {
			return nil, err
		}
		log.Info("engine: kubernetes", "kubeconfig", cfg.Kubeconfig, "gateway", cfg.KubeGateway)
		return eng, nil
	}
	// Without a socket there is nothing to dial: say so rather than wait
	// out the client's connect timeout.
	if _, err := os.Stat(cfg.ContainerdAddress); err != nil {
		return nil, fmt.Errorf("containerd is not at %s (--containerd-address): %w", cfg.ContainerdAddress, err)
	}
	eng, err := local.New(local.Config{
		ContainerdAddress: cfg.ContainerdAddress, CNIBinDir: cfg.CNIBinDir, Subnet: netip.MustParsePrefix(cfg.CNISubnet),
		StateDir: filepath.Join(cfg.DataDir, "engine"), InsecureRegistries: cfg.InsecureRegistries, Logger: log,
		OCIRuntime: cfg.OCIRuntime, PidsLimit: int64(cfg.PidsLimit), UserNS: cfg.UserNS,
	})
	if err != nil {
		return nil, err
	}
	log.Info("engine: local", "containerd", cfg.ContainerdAddress)
	return eng, nil
}
