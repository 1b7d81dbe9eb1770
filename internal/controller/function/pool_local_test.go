package function

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/engine/enginetest"
	"github.com/coligo/coligo/internal/engine/local"
	"github.com/coligo/coligo/internal/function/registry"
	"github.com/coligo/coligo/internal/function/runtime"
	"github.com/coligo/coligo/internal/itest"
)

// TestPoolOnTheLocalEngine: runtime images served by coligo's own registry,
// pre-warmed by the pool in real containers of two projects; a claimed
// instance takes a function's code and answers, with the environment it
// was given; code that does not load is refused; and a claim takes no
// container start (measured: claim, code and first answer).
func TestPoolOnTheLocalEngine(t *testing.T) {
	parts := itest.Need(t)
	reg, err := registry.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	// Its own subnet: packages' tests run at once, and two engines on one
	// subnet would route to each other's instances.
	eng, err := local.New(local.Config{
		ContainerdAddress: parts.Containerd, CNIBinDir: parts.CNIBinDir, Subnet: netip.MustParsePrefix("10.212.128.0/17"),
		StateDir: t.TempDir(), InsecureRegistries: []string{reg.Addr()}, LoggerBinary: parts.Binary,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last first: the pool empties, the projects are purged,
	// then the engine closes.
	t.Cleanup(func() { eng.Close() })
	runtimes := runtime.Catalogue(runtime.Discover(context.Background(), runtime.Candidates), time.Now())
	images := map[string]string{}
	for _, family := range []string{runtime.NodeJS, runtime.Python} {
		i := slices.IndexFunc(runtimes, func(r runtime.Runtime) bool { return r.Family == family })
		if i < 0 {
			itest.Missing(t, "no "+family+" interpreter: run through 'make test', which installs one")
		}
		img, err := runtime.Image(runtimes[i])
		if err != nil {
			t.Fatal(err)
		}
		if images[runtimes[i].ID], err = reg.Publish(context.Background(), "coligo/runtime-"+runtimes[i].ID, img); err != nil {
			t.Fatal(err)
		}
	}
	pool := NewPool(PoolConfig{Engine: eng, Depth: 1, Logger: slog.New(slog.DiscardHandler),
		Image: func(rt string) (string, bool) { ref, ok := images[rt]; return ref, ok }})
	a, b := enginetest.Project(t, eng), enginetest.Project(t, eng)
	t.Cleanup(pool.Close)
	var keys []Key
	for rt := range images {
		for _, p := range []string{a, b} {
			keys = append(keys, Key{Project: p, Runtime: rt, MilliCPU: 250, MemoryBytes: 1e9})
		}
	}
	pool.Want(keys)
	for _, k := range keys {
		waitForWithin(t, 60*time.Second, "the pool of "+k.Runtime+" filled", func() bool { return pool.Warm(k) == 1 })
	}
	code := map[string]string{
		"nodejs": "function main(a) { return {body: process.env.GREETING + ' from ' + a.__ce_path} }",
		"python": "import os\ndef main(a):\n    return {'body': os.environ['GREETING'] + ' from ' + a['__ce_path']}\n",
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, k := range keys {
		t.Run(k.Runtime+"/"+k.Project[:4], func(t *testing.T) {
			start := time.Now()
			w, err := pool.Claim(context.Background(), k)
			if err != nil {
				t.Fatal(err)
			}
			if w.Project != k.Project {
				t.Fatalf("a claim for %s got an instance of %s", k.Project, w.Project)
			}
			itest.OnThisHost(t, w.IP)
			family := k.Runtime[:6]
			if err := Inject(context.Background(), client, w, Code{Source: []byte(code[family]), Main: "main", Env: map[string]string{"GREETING": "hello"}}); err != nil {
				t.Fatal(err)
			}
			resp, err := client.Get("http://" + w.Addr() + "/greet")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			took := time.Since(start)
			if string(b) != "hello from /greet" {
				t.Errorf("%d %q", resp.StatusCode, b)
			}
			t.Logf("claim, code and first answer: %s", took)
			if err := Inject(context.Background(), client, w, Code{Source: []byte("x"), Main: "main"}); err == nil || !strings.Contains(err.Error(), "runs a function already") {
				t.Errorf("code given twice: %v", err)
			}
		})
	}
	w, err := pool.Claim(context.Background(), keys[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := Inject(context.Background(), client, w, Code{Source: []byte("this is not code ("), Main: "main"}); !errors.Is(err, ErrCodeInvalid) {
		t.Errorf("code that does not load: %v, want ErrCodeInvalid", err)
	}
}

func waitForWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}
