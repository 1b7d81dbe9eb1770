package function

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/core"
	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/function/bundle"
	"github.com/coligo/coligo/internal/function/bundle/bundletest"
	"github.com/coligo/coligo/internal/regclient"
)

// TestCodeBundles: a function from a code bundle gets the bundle's files,
// pinned to the digest first fetched; a bundle the registry lacks, or one
// refused for its credentials, fails the function with the reason; one
// whose registry is down for a while is fetched when it is back.
func TestCodeBundles(t *testing.T) {
	reg := bundletest.Start(t)
	client := regclient.New([]string{reg.Host})
	h := newHarness(t, func(h *harness) {
		h.fetch = func(ctx context.Context, ref string, auth *engine.RegistryAuth) (bundle.Fetched, error) {
			return bundle.Fetch(ctx, client, ref, auth, bundle.Bundle)
		}
	})
	ctx := context.Background()
	for name, pass := range map[string]string{"reg": bundletest.Password, "wrong": "nope"} {
		if _, err := h.db.Create(ctx, core.Ref{Project: "p", Kind: core.KindSecret, Name: name}, mustJSON(core.Secret{Name: name, Format: core.FormatRegistry,
			Data: map[string]string{"server": reg.Host, "username": bundletest.User, "password": pass}}), 0); err != nil {
			t.Fatal(err)
		}
	}
	reg.Push(t, "ns/fn:1", map[string]string{"index.js": "exports.main = () => ({body: 'v1'})"})
	fromBundle := func(ref, secret string) func(*core.FunctionSpec) {
		return func(s *core.FunctionSpec) { s.CodeReference, s.CodeBinary, s.CodeSecret = ref, true, secret }
	}

	h.put("bundled", 1, fromBundle(reg.Host+"/ns/fn:1", "reg"))
	waitFor(t, "ready", func() bool { return h.function("bundled").Status == core.FunctionReady })
	f := h.function("bundled")
	if !strings.HasPrefix(f.CodePinned, reg.Host+"/ns/fn@sha256:") {
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
	reg.Push(t, "ns/fn:1", map[string]string{"index.js": "exports.main = () => ({body: 'v2'})"})
	h2 := newHarness(t, func(h2 *harness) { h2.fetch = h.fetch })
	if _, err := h2.db.Create(ctx, core.Ref{Project: "p", Kind: core.KindSecret, Name: "reg"}, mustJSON(core.Secret{Name: "reg", Format: core.FormatRegistry,
		Data: map[string]string{"server": reg.Host, "username": bundletest.User, "password": bundletest.Password}}), 0); err != nil {
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
		{"missing", reg.Host + "/ns/none:1", "reg", core.ReasonNoCodeBundle},
		{"wrongcreds", reg.Host + "/ns/fn:1", "wrong", engine.PullUnauthorized},
		{"nocreds", reg.Host + "/ns/fn:1", "", engine.PullMissingAuth},
		{"nosecret", reg.Host + "/ns/fn:1", "absent", "fetch_image_failed_missing_pull_secret"},
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

	reg.Down.Store(true)
	h.put("later", 1, fromBundle(reg.Host+"/ns/fn:1", "reg"))
	// go-containerregistry tries a 503 again, over some seconds.
	waitForWithin(t, 30*time.Second, "failed while the registry is down", func() bool {
		f := h.function("later")
		return f.Status == core.FunctionFailed && (f.Reason == engine.PullUnreachable || f.Reason == engine.PullFailed)
	})
	reg.Down.Store(false)
	waitForWithin(t, 30*time.Second, "ready once it is back", func() bool { return h.function("later").Status == core.FunctionReady })
}
