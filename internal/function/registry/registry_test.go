package registry

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPublishAndPull: what coligo publishes anyone on the host pulls, by
// digest; nobody else pushes.
func TestPublishAndPull(t *testing.T) {
	r, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := r.Publish(context.Background(), "coligo/runtime-nodejs-20", img)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if !strings.HasPrefix(ref, r.Addr()+"/coligo/runtime-nodejs-20@") || !strings.HasSuffix(ref, want.String()) {
		t.Errorf("reference %s", ref)
	}
	parsed, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(parsed)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pulled.Digest(); got != want {
		t.Errorf("pulled %s, want %s", got, want)
	}
	other, _ := random.Image(512, 1)
	tag, err := name.ParseReference(r.Addr()+"/coligo/runtime-nodejs-20:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	err = remote.Write(tag, other)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a push without coligo's password: %v, want 401", err)
	}
	if again, _ := remote.Image(tag); again != nil {
		if d, _ := again.Digest(); d != want {
			t.Errorf("the tag now points at %s", d)
		}
	}
}
