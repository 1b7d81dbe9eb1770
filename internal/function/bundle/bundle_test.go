package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

type entry struct {
	name, link string
	flag       byte
	body       string
	size       int64 // when not len(body)
}

func archive(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.flag, Mode: 0o644, Size: int64(len(e.body))}
		if e.flag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if e.size > 0 {
			h.Size = e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func TestRead(t *testing.T) {
	big := strings.Repeat("x", int(Bundle.Bytes)/2+1)
	tests := []struct {
		name    string
		entries []entry
		want    map[string]string
		invalid bool
	}{
		{name: "files and directories", entries: []entry{{name: "lib/", flag: tar.TypeDir}, {name: "index.js", body: "a"}, {name: "lib/x.js", body: "b"}},
			want: map[string]string{"index.js": "a", "lib/x.js": "b"}},
		{name: "names above the root stay in it", entries: []entry{{name: "../../etc/passwd", body: "p"}, {name: "/abs.js", body: "q"}, {name: "./a/../b.js", body: "r"}},
			want: map[string]string{"etc/passwd": "p", "abs.js": "q", "b.js": "r"}},
		{name: "links to files are copies", entries: []entry{{name: "a/real.js", body: "r"}, {name: "a/rel.js", flag: tar.TypeSymlink, link: "real.js"},
			{name: "abs.js", flag: tar.TypeSymlink, link: "/a/real.js"}, {name: "hard.js", flag: tar.TypeLink, link: "a/real.js"},
			{name: "chain.js", flag: tar.TypeSymlink, link: "hard.js"}},
			want: map[string]string{"a/real.js": "r", "a/rel.js": "r", "abs.js": "r", "hard.js": "r", "chain.js": "r"}},
		{name: "links out or nowhere or in a loop are left out", entries: []entry{{name: "out.js", flag: tar.TypeSymlink, link: "../../../etc/shadow"},
			{name: "none.js", flag: tar.TypeSymlink, link: "missing.js"}, {name: "l1", flag: tar.TypeSymlink, link: "l2"}, {name: "l2", flag: tar.TypeSymlink, link: "l1"},
			{name: "dev", flag: tar.TypeChar}},
			want: map[string]string{}},
		{name: "a later entry replaces an earlier", entries: []entry{{name: "a.js", body: "1"}, {name: "a.js", body: "2"}},
			want: map[string]string{"a.js": "2"}},
		{name: "over the byte limit", entries: []entry{{name: "a", body: big}, {name: "b", body: big}}, invalid: true},
		{name: "over the byte limit by links", entries: []entry{{name: "a", body: big}, {name: "b", flag: tar.TypeSymlink, link: "a"}}, invalid: true},
		{name: "a size claimed past the limit", entries: []entry{{name: "a", size: Bundle.Bytes + 1}}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(bytes.NewReader(archive(t, tt.entries...)), Bundle)
			if tt.invalid {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Read = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("files %v, want %v", keys(got), tt.want)
			}
			for k, v := range tt.want {
				if string(got[k]) != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	t.Run("too many files", func(t *testing.T) {
		var es []entry
		for i := range Bundle.Files + 1 {
			es = append(es, entry{name: "f" + strconv.Itoa(i)})
		}
		if _, err := Read(bytes.NewReader(archive(t, es...)), Bundle); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Read = %v, want ErrInvalid", err)
		}
	})
	t.Run("not an archive", func(t *testing.T) {
		if _, err := Read(strings.NewReader(strings.Repeat("junk", 200)), Bundle); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Read = %v, want ErrInvalid", err)
		}
	})
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func FuzzRead(f *testing.F) {
	f.Add(archive(f, entry{name: "a.js", body: "x"}, entry{name: "b", flag: tar.TypeSymlink, link: "a.js"}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		files, err := Read(bytes.NewReader(b), Bundle)
		if err != nil {
			return
		}
		var total int
		for name, body := range files {
			if name == "" || strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") || strings.Contains("/"+name+"/", "/./") {
				t.Fatalf("name %q is not clean", name)
			}
			total += len(body)
		}
		if total > int(Bundle.Bytes) || len(files) > Bundle.Files {
			t.Fatalf("%d files, %d bytes: past the limits", len(files), total)
		}
	})
}

func TestPack(t *testing.T) {
	dir := t.TempDir()
	write := func(p, body string) {
		t.Helper()
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package.json", `{"main":"lib/main.js"}`)
	write("lib/main.js", "module.exports.main = () => ({})")
	write("node_modules/dep/index.js", "dep")
	write("secrets.env", "TOKEN=x")
	write("docs/readme.md", "r")
	write(".git/config", "git")
	write(IgnoreFile, "*.env\ndocs/\n")
	if err := os.Symlink("lib/main.js", filepath.Join(dir, "main.js")); err != nil {
		t.Fatal(err)
	}
	img, err := Pack(dir, Bundle)
	if err != nil {
		t.Fatal(err)
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	files, err := Read(rc, Bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"package.json", "lib/main.js", "node_modules/dep/index.js", IgnoreFile, "main.js"} {
		if _, ok := files[want]; !ok {
			t.Errorf("%s is not in the bundle: %v", want, keys(files))
		}
	}
	for _, left := range []string{"secrets.env", "docs/readme.md", ".git/config"} {
		if _, ok := files[left]; ok {
			t.Errorf("%s is in the bundle; it should be left out", left)
		}
	}
	if string(files["main.js"]) != string(files["lib/main.js"]) {
		t.Errorf("the link main.js holds %q", files["main.js"])
	}

	t.Run("over the limit", func(t *testing.T) {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "big"), bytes.Repeat([]byte{1}, int(Bundle.Bytes)+1), 0o644)
		if _, err := Pack(d, Bundle); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Pack = %v, want ErrInvalid", err)
		}
	})
}
