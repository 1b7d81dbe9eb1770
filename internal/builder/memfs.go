package builder

import (
	"bytes"
	"context"
	"io"
	gofs "io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
)

// memFS is a source held in memory (files by slash path) as BuildKit's
// file sync reads a directory: walked depth first, each directory's
// entries by name, directories before what they hold. Nothing of it is
// written to coligo's disk.
type memFS struct {
	files    map[string][]byte
	children map[string][]string // directory ("" the root) → names in it, sorted
}

// newMemFS is the part of files under dir ("" all), rooted there.
func newMemFS(files map[string][]byte, dir string) fsutil.FS {
	dir = strings.Trim(path.Clean("/"+dir), "/")
	m := &memFS{files: map[string][]byte{}, children: map[string][]string{}}
	seen := map[string]bool{}
	for p, b := range files {
		if dir != "" {
			if !strings.HasPrefix(p, dir+"/") {
				continue
			}
			p = strings.TrimPrefix(p, dir+"/")
		}
		m.files[p] = b
		for child := p; child != "."; child = path.Dir(child) {
			parent := path.Dir(child)
			if parent == "." {
				parent = ""
			}
			if !seen[child] {
				seen[child] = true
				m.children[parent] = append(m.children[parent], path.Base(child))
			}
		}
	}
	for _, names := range m.children {
		sort.Strings(names)
	}
	return m
}

func (m *memFS) Walk(ctx context.Context, target string, fn gofs.WalkDirFunc) error {
	var walk func(dir string) error
	walk = func(dir string) error {
		for _, name := range m.children[dir] {
			if err := ctx.Err(); err != nil {
				return err
			}
			p := path.Join(dir, name)
			st := &types.Stat{Path: p, Mode: 0o644}
			b, isFile := m.files[p]
			if isFile {
				st.Size = int64(len(b))
			} else {
				st.Mode = uint32(os.ModeDir | 0o755)
			}
			if target == "" || p == target || strings.HasPrefix(p, target+"/") || strings.HasPrefix(target, p+"/") {
				err := fn(p, &fsutil.DirEntryInfo{Stat: st}, nil)
				if err == gofs.SkipDir {
					continue
				}
				if err != nil {
					return err
				}
			}
			if !isFile {
				if err := walk(p); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk("")
}

func (m *memFS) Open(p string) (io.ReadCloser, error) {
	b, ok := m.files[strings.TrimPrefix(path.Clean("/"+p), "/")]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
