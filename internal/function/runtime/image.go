package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/coligo/coligo/internal/imagebuild"
)

// ProxyDir is where a runtime image holds its proxy.
const ProxyDir = "/coligo"

// UID is the user a runtime image runs as: nobody.
const UID = "65534"

// skipPython are the parts of Python's standard library a function does
// not run: tests, IDLE, Tk, pip's bootstrap, 2to3, and the static library
// of its config directory.
var skipPython = map[string]bool{
	"test": true, "idlelib": true, "tkinter": true, "turtledemo": true, "ensurepip": true, "lib2to3": true,
	"config-3.11-x86_64-linux-gnu": true, "config-3.12-x86_64-linux-gnu": true, "config-3.13-x86_64-linux-gnu": true,
}

// Image builds the runtime's image from the host's files, without Docker
// or the internet: its interpreter and the shared libraries it loads, for
// Python its standard library and the libraries of its extension modules,
// the host's CA bundle, and the runtime proxy in ProxyDir, run as nobody.
func Image(r Runtime) (v1.Image, error) {
	files := map[string]imagebuild.File{}
	add := func(path string, mode int64) error {
		rel := strings.TrimPrefix(path, "/")
		if _, ok := files[rel]; ok {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("runtime %s: %w", r.ID, err)
		}
		files[rel] = imagebuild.File{Path: rel, Data: b, Mode: mode}
		return nil
	}
	if err := add(r.Interpreter, 0o755); err != nil {
		return nil, err
	}
	binaries := []string{r.Interpreter}
	if r.Family == Python {
		lib := r.Stdlib
		if lib == "" {
			lib = filepath.Join("/usr/lib", filepath.Base(r.Interpreter))
		}
		err := filepath.WalkDir(lib, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && skipPython[d.Name()] {
				return filepath.SkipDir
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(path)
				if err != nil {
					return err
				}
				rel := strings.TrimPrefix(path, "/")
				files[rel] = imagebuild.File{Path: rel, Link: target}
			case d.Type().IsRegular():
				if strings.HasSuffix(path, ".so") {
					binaries = append(binaries, path)
				}
				return add(path, 0o644)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("runtime %s: standard library: %w", r.ID, err)
		}
	}
	for _, bin := range binaries {
		libs, err := sharedLibraries(bin)
		if err != nil {
			return nil, fmt.Errorf("runtime %s: %w", r.ID, err)
		}
		for _, l := range libs {
			if err := add(l, 0o755); err != nil {
				return nil, err
			}
		}
	}
	if b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		files["etc/ssl/certs/ca-certificates.crt"] = imagebuild.File{Path: "etc/ssl/certs/ca-certificates.crt", Data: b, Mode: 0o644}
	}
	name, src, err := Proxy(r.Family)
	if err != nil {
		return nil, err
	}
	proxy := filepath.Join(ProxyDir, name)
	files[strings.TrimPrefix(proxy, "/")] = imagebuild.File{Path: strings.TrimPrefix(proxy, "/"), Data: src, Mode: 0o644}
	files["tmp/.keep"] = imagebuild.File{Path: "tmp/.keep", Mode: 0o644}
	list := make([]imagebuild.File, 0, len(files))
	for _, f := range files {
		list = append(list, f)
	}
	return imagebuild.Build(list, func(c *v1.Config) {
		c.Entrypoint = r.Command(proxy)
		c.User = UID + ":" + UID
		c.WorkingDir = "/"
		c.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LC_CTYPE=C.UTF-8", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}
		if r.Family == Python {
			c.Env = append(c.Env, "PYTHONIOENCODING=UTF-8", "PYTHONDONTWRITEBYTECODE=1", "PYTHONNOUSERSITE=1")
		}
		c.Labels = map[string]string{"org.opencontainers.image.title": "coligo runtime " + r.ID, "dev.coligo.runtime": r.ID, "dev.coligo.runtime.version": r.Version}
	})
}

// sharedLibraries lists the shared libraries a binary loads, by the paths
// ldd gives (the dynamic loader's included).
func sharedLibraries(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	return parseLDD(out), nil
}

// parseLDD reads ldd's output: "name => /path (0x...)" and "/path (0x...)".
func parseLDD(out []byte) []string {
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if _, after, ok := strings.Cut(line, "=> "); ok {
			line = after
		}
		if path, _, _ := strings.Cut(line, " ("); strings.HasPrefix(path, "/") {
			libs = append(libs, path)
		}
	}
	return libs
}
