package runtime

import (
	"archive/tar"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// built holds each runtime's image, built once for the package's tests.
var built sync.Map // runtime id → func() (v1.Image, error)

func builtImage(t testing.TB, r Runtime) v1.Image {
	t.Helper()
	f, _ := built.LoadOrStore(r.ID, sync.OnceValues(func() (v1.Image, error) { return Image(r) }))
	img, err := f.(func() (v1.Image, error))()
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestParseLDD(t *testing.T) {
	out := []byte(`	linux-vdso.so.1 (0x00007ffc)
	libstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f4f)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f4f)
	libmissing.so => not found
	/lib64/ld-linux-x86-64.so.2 (0x00007f4f)
`)
	want := []string{"/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if got := parseLDD(out); !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestImage: a runtime's image holds its interpreter, the libraries it
// loads, (for Python) its standard library, and the proxy it runs as
// nobody.
func TestImage(t *testing.T) {
	for _, family := range []string{NodeJS, Python} {
		t.Run(family, func(t *testing.T) {
			r := interpreter(t, family)
			img := builtImage(t, r)
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			name, _, _ := Proxy(family)
			if want := []string{r.Interpreter, ProxyDir + "/" + name}; !slices.Equal(cf.Config.Entrypoint, want) || cf.Config.User != "65534:65534" {
				t.Errorf("entrypoint %q user %q, want %q as nobody", cf.Config.Entrypoint, cf.Config.User, want)
			}
			files := map[string]bool{}
			tr := tar.NewReader(mutate.Extract(img))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				files["/"+h.Name] = true
			}
			want := []string{r.Interpreter, "/lib64/ld-linux-x86-64.so.2", ProxyDir + "/" + name}
			lib := "/usr/lib/" + filepath.Base(r.Interpreter)
			if family == Python {
				want = append(want, lib+"/os.py", lib+"/encodings/utf_8.py", lib+"/http/server.py")
			}
			for _, f := range want {
				if !files[f] {
					t.Errorf("the image lacks %s", f)
				}
			}
			if files[lib+"/test/__init__.py"] || files[lib+"/idlelib/idle.py"] {
				t.Error("the image holds Python's tests or IDLE")
			}
		})
	}
}
