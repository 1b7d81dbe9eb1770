package runtime

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/engine/enginetest"
	"github.com/coligo/coligo/internal/engine/kube"
	"github.com/coligo/coligo/internal/engine/local"
	"github.com/coligo/coligo/internal/imagebuild"
	"github.com/coligo/coligo/internal/itest"
)

// TestRuntimeImageInContainer: each runtime's image, built from the host's
// files and pushed to the test registry, runs in a real container of each
// engine (the local engine's sandbox, as nobody; a pod of the test
// cluster) and answers the whole contract there; the function's error
// stack is in the instance's logs.
func TestRuntimeImageInContainer(t *testing.T) {
	parts := itest.Need(t)
	engines := []struct {
		name string
		new  func(t *testing.T) engine.Engine
	}{
		{"local", func(t *testing.T) engine.Engine {
			// Its own subnet: packages' tests run at once, and two engines on
			// one subnet would route to each other's instances.
			e, err := local.New(local.Config{
				ContainerdAddress: parts.Containerd, CNIBinDir: parts.CNIBinDir, Subnet: netip.MustParsePrefix("10.212.0.0/17"),
				StateDir: t.TempDir(), InsecureRegistries: []string{parts.Registry}, LoggerBinary: parts.Binary,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		}},
		{"kubernetes", func(t *testing.T) engine.Engine {
			k := itest.NeedKube(t)
			e, err := kube.New(kube.Config{Kubeconfig: k.Engine(t), Gateway: k.Gateway, PodCIDR: k.PodCIDR,
				InsecureRegistries: []string{parts.Registry}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			return e
		}},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) { runtimeInContainer(t, parts, eng.new(t)) })
	}
}

func runtimeInContainer(t *testing.T, parts itest.Parts, e engine.Engine) {
	for _, family := range []string{NodeJS, Python} {
		t.Run(family, func(t *testing.T) {
			r := interpreter(t, family)
			img := builtImage(t, r)
			ref := parts.Registry + "/coligo-test/runtime-" + r.ID + ":test"
			if _, err := imagebuild.Push(context.Background(), ref, img, parts.User, parts.Password, true); err != nil {
				t.Fatal(err)
			}
			project := enginetest.Project(t, e)
			token := "init-token-of-the-test"
			in, err := e.Run(context.Background(), engine.Spec{ID: "fn-" + family, Project: project, Image: ref, Auth: parts.Auth(),
				Env: []string{"PORT=8080", InitTokenEnv(token)}, MilliCPU: 250, MemoryBytes: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			itest.OnThisHost(t, in.IP)
			addr := net.JoinHostPort(in.IP, "8080")
			logs := func() string {
				var b bytes.Buffer
				e.Logs(context.Background(), project, in.ID, &b, engine.LogOptions{})
				return b.String()
			}
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the %s runtime did not listen within 20 s: %s", r.ID, logs())
				}
			}
			p := &proxyProcess{url: "http://" + addr, token: token, logs: logs}
			initContract(t, p, family)
			contract(t, p)
		})
	}
}
