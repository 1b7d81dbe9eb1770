package function

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/function/bundle"
	"github.com/coligo/coligo/internal/regclient"
)

// bundleRegistry is a registry with basic auth on loopback (go-containerregistry's,
// speaking the distribution protocol) that answers 503 while down is set.
type bundleRegistry struct {
	host string
	down atomic.Bool
}

func startBundleRegistry(t *testing.T) *bundleRegistry {
	t.Helper()
	r := &bundleRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if u, p, ok := req.BasicAuth(); !ok || u != "user" || p != "pass" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push packs files as a bundle and pushes it as repo:tag.
func (r *bundleRegistry) push(t *testing.T, repoTag string, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for p, body := range files {
		os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644)
	}
	img, err := bundle.Pack(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(r.host + "/" + repoTag)
	if err := remote.Write(ref, img, remote.WithAuth(authn.FromConfig(authn.AuthConfig{Username: "user", Password: "pass"}))); err != nil {
		t.Fatal(err)
	}
}

// TestCodeBundles: a function from a code bundle gets the bundle's files,
// pinned to the digest first fetched; a bundle the registry lacks, or one
// refused for its credentials, fails the function with the reason; one
// whose registry is down for a while is fetched when it is back.
func TestCodeBundles(t *testing.T) {
	reg := startBundleRegistry(t)
	client := regclient.New([]string{reg.host})
	h := newHarness(t, func(h *harness) {
		h.fetch = func(ctx context.Context, ref string, auth *engine.RegistryAuth) (bundle.Bundle, error) {
			return bundle.Fetch(ctx, client, ref, auth)
		}
	})
	ctx := context.Background()
	for name, pass := range map[string]string{"reg": "pass", "wrong": "nope"} {
		if _, err := h.db.Create(ctx, core.Ref{Project: "p", Kind: core.KindSecret, Name: name}, mustJSON(core.Secret{Name: name, Format: core.FormatRegistry,
			Data: map[string]string{"server": reg.host, "username": "user", "password": pass}}), 0); err != nil {
			t.Fatal(err)
		}
	}
	reg.push(t, "ns/fn:1", map[string]string{"index.js": "exports.main = () => ({body: 'v1'})"})
	fromBundle := func(ref, secret string) func(*core.FunctionSpec) {
		return func(s *core.FunctionSpec) { s.CodeReference, s.CodeBinary, s.CodeSecret = ref, true, secret }
	}

	h.put("bundled", 1, fromBundle(reg.host+"/ns/fn:1", "reg"))
	waitFor(t, "ready", func() bool { return h.function("bundled").Status == core.FunctionReady })
	f := h.function("bundled")
	if !strings.HasPrefix(f.CodePinned, reg.host+"/ns/fn@sha256:") {
		t.Fatalf("code_pinned %q", f.CodePinned)
	}
	given := func() []Code {
		h.mu.Lock()
		defer h.mu.Unlock()
		var out []Code
		for _, c := range h.given {
			out = append(out, c)
		}
		return out
	}
	if g := given(); len(g) != 1 || string(g[0].Files["index.js"]) != "exports.main = () => ({body: 'v1'})" || g[0].Source != nil {
		t.Fatalf("given %+v", g)
	}

	// The tag moves; the generation keeps what it was deployed with, also
	// on a server that starts with the record (code_pinned is read).
	reg.push(t, "ns/fn:1", map[string]string{"index.js": "exports.main = () => ({body: 'v2'})"})
	h2 := newHarness(t, func(h2 *harness) { h2.fetch = h.fetch })
	if _, err := h2.db.Create(ctx, core.Ref{Project: "p", Kind: core.KindSecret, Name: "reg"}, mustJSON(core.Secret{Name: "reg", Format: core.FormatRegistry,
		Data: map[string]string{"server": reg.host, "username": "user", "password": "pass"}}), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.db.Create(ctx, core.Ref{Project: "p", Kind: core.KindFunction, Name: "bundled"}, mustJSON(f), 0); err != nil {
		t.Fatal(err)
	}
	h2.ctrl.Wake(revisionKey("p", "bundled", f.Generation))
	waitFor(t, "an instance on the second server", func() bool { return len(h2.instances()) == 1 })
	h2.mu.Lock()
	for _, c := range h2.given {
		if string(c.Files["index.js"]) != "exports.main = () => ({body: 'v1'})" {
			t.Errorf("after the tag moved, an instance got %q", c.Files["index.js"])
		}
	}
	h2.mu.Unlock()

	failures := []struct{ name, ref, secret, reason string }{
		{"missing", reg.host + "/ns/none:1", "reg", core.ReasonNoCodeBundle},
		{"wrongcreds", reg.host + "/ns/fn:1", "wrong", engine.PullUnauthorized},
		{"nocreds", reg.host + "/ns/fn:1", "", engine.PullMissingAuth},
		{"nosecret", reg.host + "/ns/fn:1", "absent", "fetch_image_failed_missing_pull_secret"},
	}
	for _, tt := range failures {
		h.put(tt.name, 1, fromBundle(tt.ref, tt.secret))
	}
	for _, tt := range failures {
		waitFor(t, tt.name+" failed", func() bool {
			f := h.function(tt.name)
			return f.Status == core.FunctionFailed && f.Reason == tt.reason
		})
	}

	reg.down.Store(true)
	h.put("later", 1, fromBundle(reg.host+"/ns/fn:1", "reg"))
	// go-containerregistry tries a 503 again, over some seconds.
	waitForWithin(t, 30*time.Second, "failed while the registry is down", func() bool {
		f := h.function("later")
		return f.Status == core.FunctionFailed && (f.Reason == engine.PullUnreachable || f.Reason == engine.PullFailed)
	})
	reg.down.Store(false)
	waitForWithin(t, 30*time.Second, "ready once it is back", func() bool { return h.function("later").Status == core.FunctionReady })
}
