package imagebuild

import (
	"archive/tar"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// TestColigoIsReproducible: the same binaries give the same image, byte for
// byte; other binaries another; and the image runs coligo as its user.
func TestColigoIsReproducible(t *testing.T) {
	build := func(bin string) string {
		img, err := Coligo([]byte(bin), []byte("init"), []byte("certs"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	if a, b := build("coligo v1"), build("coligo v1"); a != b {
		t.Errorf("two builds of the same binaries: %s and %s", a, b)
	}
	if a, b := build("coligo v1"), build("coligo v2"); a == b {
		t.Error("other binaries gave the same image")
	}
	img, err := Coligo([]byte("bin"), []byte("init"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/coligo" || cf.Created.Unix() > 0 {
		t.Errorf("config: user %q entrypoint %v created %v", cf.Config.User, cf.Config.Entrypoint, cf.Created)
	}
	tr := tar.NewReader(mutate.Extract(img))
	seen := map[string]int64{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.IsZero() && h.ModTime.Unix() != 0 {
			t.Errorf("%s has a time, %v", h.Name, h.ModTime)
		}
		seen[h.Name] = h.Mode
	}
	if seen["coligo"] != 0o755 || seen["coligo-init"] != 0o755 || seen["etc/passwd"] != 0o644 {
		t.Errorf("files: %v", seen)
	}
}
