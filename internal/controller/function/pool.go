package function

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/function/runtime"
)

// Labels of runtime instances.
const (
	LabelRuntime = "coligo.function.runtime" // the runtime id
	LabelPool    = "coligo.function.pool"    // "true" until claimed
)

// ErrNoImage is a runtime whose image is not there (yet: it is built when
// first asked for), or that the server does not run.
var ErrNoImage = errors.New("no image of the runtime (yet)")

// ProxyPort is the port a runtime's proxy listens on.
const ProxyPort = 8080

// Key names a pool: one project's pre-warmed instances of one runtime and
// size.
type Key struct {
	Project     string
	Runtime     string
	MilliCPU    int64
	MemoryBytes int64
}

// Warm is a started runtime instance with no code, and the token its proxy
// takes code with.
type Warm struct {
	engine.Instance
	Token string
	Port  int // its proxy's; 0: ProxyPort
}

// Addr is the instance's proxy address.
func (w Warm) Addr() string {
	if w.Port == 0 {
		w.Port = ProxyPort
	}
	return net.JoinHostPort(w.IP, fmt.Sprint(w.Port))
}

// PoolConfig configures a Pool.
type PoolConfig struct {
	Engine engine.Engine
	// Image returns the image reference of a runtime, and false for a
	// runtime this server does not run.
	Image func(runtime string) (string, bool)
	// Depth is how many warm instances each wanted key keeps; 0 keeps
	// none (every cold invocation starts an instance).
	Depth int
	// Listening waits until an instance's proxy takes connections; nil
	// dials its address.
	Listening func(ctx context.Context, w Warm) error
	Logger    *slog.Logger
}

// Pool keeps the warm instances of the keys it is told are wanted.
type Pool struct {
	cfg  PoolConfig
	log  *slog.Logger
	mu   sync.Mutex
	want map[Key]bool
	warm map[Key][]Warm
	// filling counts the instances being started for each key's pool.
	filling map[Key]int
	wg      sync.WaitGroup
	ctx     context.Context
	stop    context.CancelFunc
}

// NewPool returns a pool that wants nothing yet.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.Listening == nil {
		cfg.Listening = dialUntilListening
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Pool{cfg: cfg, log: cfg.Logger.With("component", "function-pool"), want: map[Key]bool{}, warm: map[Key][]Warm{},
		filling: map[Key]int{}, ctx: ctx, stop: stop}
}

// Want sets the keys whose pools are kept full; the warm instances of the
// others are removed.
func (p *Pool) Want(keys []Key) {
	p.mu.Lock()
	want := map[Key]bool{}
	for _, k := range keys {
		want[k] = true
	}
	p.want = want
	var drop []Warm
	for k, ws := range p.warm {
		if !want[k] {
			drop = append(drop, ws...)
			delete(p.warm, k)
		}
	}
	p.mu.Unlock()
	for _, w := range drop {
		p.remove(w)
	}
	for _, k := range keys {
		p.refill(k)
	}
}

// Claim hands out a warm instance of k for one function, or starts one
// when the pool has none; the pool is refilled behind it. The instance is
// the caller's from then on: it is never handed out again.
func (p *Pool) Claim(ctx context.Context, k Key) (Warm, error) {
	p.mu.Lock()
	if ws := p.warm[k]; len(ws) > 0 {
		w := ws[len(ws)-1]
		p.warm[k] = ws[:len(ws)-1]
		p.mu.Unlock()
		p.refill(k)
		return w, nil
	}
	p.mu.Unlock()
	p.refill(k)
	return p.start(ctx, k)
}

// Warm returns how many warm instances k's pool holds.
func (p *Pool) Warm(k Key) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.warm[k])
}

// Close stops filling and removes every warm instance.
func (p *Pool) Close() {
	p.stop()
	p.wg.Wait()
	p.mu.Lock()
	warm := p.warm
	p.warm = map[Key][]Warm{}
	p.mu.Unlock()
	for _, ws := range warm {
		for _, w := range ws {
			p.remove(w)
		}
	}
}

// refill starts, in the background, what k's pool lacks of its depth.
func (p *Pool) refill(k Key) {
	p.mu.Lock()
	n := 0
	if p.want[k] && p.ctx.Err() == nil {
		n = p.cfg.Depth - len(p.warm[k]) - p.filling[k]
	}
	p.filling[k] += max(n, 0)
	p.mu.Unlock()
	for range n {
		p.wg.Go(func() {
			w, err := p.start(p.ctx, k)
			p.mu.Lock()
			p.filling[k]--
			keep := err == nil && p.want[k] && p.ctx.Err() == nil
			if keep {
				p.warm[k] = append(p.warm[k], w)
			}
			p.mu.Unlock()
			switch {
			case errors.Is(err, ErrNoImage):
				p.log.Debug("pre-warm a runtime instance", "runtime", k.Runtime, "err", err)
			case err != nil && p.ctx.Err() == nil:
				p.log.Warn("pre-warm a runtime instance", "runtime", k.Runtime, "err", err)
			case err == nil && !keep:
				p.remove(w)
			}
		})
	}
}

// start starts a runtime instance of k and waits until its proxy listens.
func (p *Pool) start(ctx context.Context, k Key) (Warm, error) {
	image, ok := p.cfg.Image(k.Runtime)
	if !ok {
		return Warm{}, fmt.Errorf("runtime %s: %w", k.Runtime, ErrNoImage)
	}
	id, token := "fn-"+random(6), random(16)
	in, err := p.cfg.Engine.Run(ctx, engine.Spec{ID: id, Project: k.Project, Image: image,
		Env:    []string{fmt.Sprintf("PORT=%d", ProxyPort), runtime.InitTokenEnv(token)},
		Labels: map[string]string{LabelRuntime: k.Runtime, LabelPool: "true"}, MilliCPU: k.MilliCPU, MemoryBytes: k.MemoryBytes})
	if err != nil {
		return Warm{}, fmt.Errorf("start a %s instance: %w", k.Runtime, err)
	}
	w := Warm{Instance: in, Token: token}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.cfg.Listening(lctx, w); err != nil {
		p.remove(w)
		return Warm{}, fmt.Errorf("the %s instance %s does not listen: %w", k.Runtime, id, err)
	}
	return w, nil
}

func (p *Pool) remove(w Warm) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.cfg.Engine.Stop(ctx, w.Project, w.ID, 0)
	if err := p.cfg.Engine.Remove(ctx, w.Project, w.ID); err != nil && !errors.Is(err, context.Canceled) {
		p.log.Warn("remove a runtime instance", "instance", w.ID, "err", err)
	}
}

func dialUntilListening(ctx context.Context, w Warm) error {
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", w.Addr())
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
