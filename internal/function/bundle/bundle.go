package bundle

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/coligo/coligo/internal/engine"
	"github.com/coligo/coligo/internal/regclient"
)

// Limits bound what is read or packed: a code bundle (Bundle), what an
// instance is given in one request and holds in memory; or the source of
// a build (Source).
type Limits struct {
	Bytes int64 // its files together
	Files int
}

// The limits of code bundles and of build sources.
var (
	Bundle = Limits{Bytes: 32 << 20, Files: 10_000}
	Source = Limits{Bytes: 128 << 20, Files: 100_000}
)

const (
	maxPath  = 1024
	maxLinks = 40 // links followed to find one file
)

func (l Limits) String() string { return fmt.Sprintf("%d MiB, %d files", l.Bytes>>20, l.Files) }

// DefaultRegistry completes a code bundle's reference without a registry,
// as Code Engine does (CE-FUNCTIONS.md §5).
const DefaultRegistry = "icr.io"

// ErrInvalid is a bundle that cannot be given to a runtime (too large,
// too many files, a malformed archive).
var ErrInvalid = errors.New("invalid code bundle")

// Fetched is a fetched bundle.
type Fetched struct {
	// Pinned is the bundle's reference pinned to its digest.
	Pinned string
	// Files holds its regular files by path relative to its root.
	Files map[string][]byte
}

// Fetch pulls a bundle with auth (nil: anonymous). A registry's refusal is
// an *engine.PullError with the reason users see; a bundle past the
// limits wraps ErrInvalid.
func Fetch(ctx context.Context, c *regclient.Client, ref string, auth *engine.RegistryAuth, lim Limits) (Fetched, error) {
	r, err := c.Parse(ref, DefaultRegistry)
	if err != nil {
		return Fetched{}, &engine.PullError{Image: ref, Reason: engine.PullFailed, Err: err}
	}
	// Credentials for another registry are none.
	have := auth != nil && regclient.HostMatches(auth.Server, r.Context().RegistryStr())
	img, err := remote.Image(r, c.Options(ctx, r, auth)...)
	if err != nil {
		return Fetched{}, &engine.PullError{Image: ref, Reason: regclient.Reason(err, have), Err: err}
	}
	digest, err := img.Digest()
	if err != nil {
		return Fetched{}, &engine.PullError{Image: ref, Reason: regclient.Reason(err, have), Err: err}
	}
	if err := checkSize(img, lim); err != nil {
		return Fetched{}, err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	files, err := Read(rc, lim)
	if err != nil {
		var pe *engine.PullError
		if errors.Is(err, ErrInvalid) || errors.As(err, &pe) {
			return Fetched{}, err
		}
		return Fetched{}, &engine.PullError{Image: ref, Reason: regclient.Reason(err, have), Err: err}
	}
	return Fetched{Pinned: r.Context().Name() + "@" + digest.String(), Files: files}, nil
}

// checkSize refuses an image whose layers alone, compressed, are past the
// limit, before any is downloaded.
func checkSize(img v1.Image, lim Limits) error {
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("read the bundle's manifest: %w", err)
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	if n > lim.Bytes {
		return fmt.Errorf("%w: its layers are %d bytes; the limit is %s", ErrInvalid, n, lim)
	}
	return nil
}

// Read reads a bundle's files from the tar stream of its filesystem:
// regular files, and links to regular files in it as copies of them;
// directories, devices and links that lead out of it or nowhere are left
// out. It stops at the limits.
func Read(r io.Reader, lim Limits) (map[string][]byte, error) {
	files := map[string][]byte{}
	links := map[string]string{} // path → the path its link names
	var total int64
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: its archive: %v", ErrInvalid, err)
		}
		name, ok := clean(h.Name)
		if !ok {
			continue
		}
		switch h.Typeflag {
		case tar.TypeReg:
			if h.Size > lim.Bytes-total {
				return nil, fmt.Errorf("%w: its files are over the limit, %s", ErrInvalid, lim)
			}
			b, err := io.ReadAll(io.LimitReader(tr, h.Size))
			if err != nil {
				return nil, fmt.Errorf("read %s of the bundle: %w", name, err)
			}
			total += int64(len(b))
			files[name] = b
			delete(links, name)
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir("/"+name), target)
			}
			if t, ok := clean(target); ok {
				links[name] = t
			}
			delete(files, name)
		case tar.TypeLink:
			if t, ok := clean(h.Linkname); ok {
				links[name] = t
			}
			delete(files, name)
		}
		if len(files)+len(links) > lim.Files {
			return nil, fmt.Errorf("%w: it holds over %d files", ErrInvalid, lim.Files)
		}
	}
	for name := range links {
		t, ok := follow(files, links, name)
		if !ok {
			continue
		}
		if int64(len(files[t])) > lim.Bytes-total {
			return nil, fmt.Errorf("%w: its files are over the limit, %s", ErrInvalid, lim)
		}
		total += int64(len(files[t]))
		files[name] = files[t]
	}
	return files, nil
}

// follow finds the regular file a link leads to, if any.
func follow(files map[string][]byte, links map[string]string, name string) (string, bool) {
	for range maxLinks {
		t, ok := links[name]
		if !ok {
			_, ok := files[name]
			return name, ok
		}
		name = t
	}
	return "", false
}

// clean is a path of the archive relative to the bundle's root, false for
// none (the root itself, or a name past the limit or holding NUL). What
// leads above the root stays at it, as it does in a container.
func clean(name string) (string, bool) {
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	return p, p != "" && len(p) <= maxPath && !strings.ContainsRune(p, 0)
}
