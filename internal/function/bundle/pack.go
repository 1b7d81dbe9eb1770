package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	ignore "github.com/sabhiram/go-gitignore"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// IgnoreFile names the files a packed directory leaves out, in
// .gitignore's syntax, as Code Engine's CLI reads it.
const IgnoreFile = ".ceignore"

// Pack makes a bundle's image of a directory: its files (links kept as
// links), less .git and what its .ceignore names, in one layer.
func Pack(dir string, lim Limits) (v1.Image, error) {
	var ign *ignore.GitIgnore
	switch i, err := ignore.CompileIgnoreFile(filepath.Join(dir, IgnoreFile)); {
	case err == nil:
		ign = i
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read %s: %w", IgnoreFile, err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		match := rel
		if d.IsDir() {
			match += "/"
		}
		if d.IsDir() && d.Name() == ".git" || ign != nil && ign.MatchesPath(match) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var link string
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case !d.IsDir() && !d.Type().IsRegular():
			return nil // devices, sockets, pipes
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name, h.Uname, h.Gname, h.Uid, h.Gid = rel, "", "", 0, 0
		if files++; files > lim.Files {
			return fmt.Errorf("%w: %s holds over %d files; name what to leave out in %s", ErrInvalid, dir, lim.Files, IgnoreFile)
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		if int64(buf.Len())+h.Size > lim.Bytes {
			return fmt.Errorf("%w: %s is over %s; name what to leave out in %s", ErrInvalid, dir, lim, IgnoreFile)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, h.Size)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(empty.Image, layer)
}
