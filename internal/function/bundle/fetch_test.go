package bundle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/function/bundle"
	"github.com/coligo/coligo/internal/function/bundle/bundletest"
	"github.com/coligo/coligo/internal/regclient"
)

// TestFetch pulls bundles from a registry with basic auth on loopback.
func TestFetch(t *testing.T) {
	reg := bundletest.Start(t)
	host := reg.Host
	img := reg.Push(t, "ns/fn:1", map[string]string{"__main__.py": "def main(a): return {}"})
	good := &engine.RegistryAuth{Server: host, Username: bundletest.User, Password: bundletest.Password}
	allowed := regclient.New([]string{host})
	ctx := context.Background()

	b, err := bundle.Fetch(ctx, allowed, host+"/ns/fn:1", good, bundle.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	if b.Pinned != host+"/ns/fn@"+digest.String() || string(b.Files["__main__.py"]) != "def main(a): return {}" {
		t.Fatalf("Fetch = %s %v", b.Pinned, len(b.Files))
	}
	if _, err := bundle.Fetch(ctx, allowed, b.Pinned, good, bundle.Bundle); err != nil {
		t.Fatalf("Fetch pinned: %v", err)
	}
	refused := []struct {
		name   string
		c      *regclient.Client
		ref    string
		auth   *engine.RegistryAuth
		reason string
	}{
		{"wrong password", allowed, host + "/ns/fn:1", &engine.RegistryAuth{Server: host, Username: bundletest.User, Password: "wrong"}, engine.PullUnauthorized},
		{"no credentials", allowed, host + "/ns/fn:1", nil, engine.PullMissingAuth},
		{"credentials for another registry", allowed, host + "/ns/fn:1", &engine.RegistryAuth{Server: "icr.io", Username: bundletest.User, Password: bundletest.Password}, engine.PullMissingAuth},
		{"missing tag", allowed, host + "/ns/fn:2", good, engine.PullNotFound},
		{"a loopback registry the operator did not allow", regclient.New(nil), host + "/ns/fn:1", good, engine.PullNotAllowed},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := bundle.Fetch(ctx, tt.c, tt.ref, tt.auth, bundle.Bundle)
			var pe *engine.PullError
			if !errors.As(err, &pe) || pe.Reason != tt.reason {
				t.Fatalf("Fetch = %v, want reason %s", err, tt.reason)
			}
			if strings.Contains(err.Error(), bundletest.Password) {
				t.Fatalf("the error %q shows the password", err)
			}
		})
	}
}
