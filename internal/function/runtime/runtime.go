package runtime

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed proxy.js proxy.py
var proxies embed.FS

// Families of runtimes.
const (
	NodeJS = "nodejs"
	Python = "python"
)

// Runtime is a function runtime the host can run: a FunctionRuntime of the
// API, and where its interpreter is.
type Runtime struct {
	ID          string `json:"id"` // <family>-<version>: nodejs-20, python-3.11
	Name        string `json:"name"`
	Family      string `json:"family"`
	Default     bool   `json:"default"` // the default of its family
	Deprecated  bool   `json:"deprecated"`
	Optimized   bool   `json:"optimized"` // pre-warmed
	Interpreter string `json:"-"`         // its path on the host
	Version     string `json:"-"`         // the interpreter's full version
	Stdlib      string `json:"-"`         // Python's standard library on the host
}

// Proxy returns the source of the runtime proxy of a family and the file
// name it runs as.
func Proxy(family string) (name string, source []byte, err error) {
	switch family {
	case NodeJS:
		name = "proxy.js"
	case Python:
		name = "proxy.py"
	default:
		return "", nil, fmt.Errorf("no runtime proxy for family %q", family)
	}
	source, err = proxies.ReadFile(name)
	return name, source, err
}

// Command is how an interpreter runs a proxy file.
func (r Runtime) Command(proxyPath string) []string {
	return []string{r.Interpreter, proxyPath}
}

// lifecycle is Code Engine's published deprecation date of a runtime id
// (CE-FUNCTIONS.md §4); a runtime it does not list is not deprecated.
var lifecycle = map[string]string{
	"nodejs-18": "2025-04-30", "nodejs-20": "2025-11-01", "nodejs-22": "2026-10-20", "nodejs-24": "2027-10-20",
	"python-3.11": "2025-10-31", "python-3.13": "2026-10-01",
}

// Found is an interpreter found on the host.
type Found struct {
	Family, Version, Interpreter string
	Stdlib                       string // Python's standard library, as the interpreter tells
}

// ParseCandidate reads an operator's runtime, FAMILY=PATH
// (--function-runtime python=/opt/python3.13/bin/python3.13).
func ParseCandidate(s string) (Found, error) {
	family, path, ok := strings.Cut(s, "=")
	switch {
	case !ok || family != NodeJS && family != Python:
		return Found{}, fmt.Errorf("%q is not FAMILY=PATH with FAMILY nodejs or python", s)
	case !filepath.IsAbs(path) || filepath.Clean(path) != path:
		return Found{}, fmt.Errorf("%q: the interpreter's path must be absolute and clean", s)
	}
	return Found{Family: family, Interpreter: path}, nil
}

// Catalogue turns the interpreters found into runtimes as of now: one per
// id (the first found wins), deprecated from Code Engine's lifecycle, and
// in each family the newest runtime not deprecated the default, or the
// newest of all when every one is. Runtimes are sorted by family, newest
// first.
func Catalogue(found []Found, now time.Time) []Runtime {
	var out []Runtime
	for _, f := range found {
		id := f.Family + "-" + shortVersion(f.Family, f.Version)
		if slices.ContainsFunc(out, func(r Runtime) bool { return r.ID == id }) {
			continue
		}
		r := Runtime{ID: id, Family: f.Family, Optimized: true, Interpreter: f.Interpreter, Version: f.Version, Stdlib: f.Stdlib}
		r.Name = map[string]string{NodeJS: "Node.js ", Python: "Python "}[f.Family] + shortVersion(f.Family, f.Version)
		if d, ok := lifecycle[id]; ok {
			t, _ := time.Parse(time.DateOnly, d)
			r.Deprecated = !now.Before(t)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Runtime) int {
		if c := strings.Compare(a.Family, b.Family); c != 0 {
			return c
		}
		return compareVersions(b.ID, a.ID)
	})
	for i := range out {
		first := i == 0 || out[i-1].Family != out[i].Family
		if !first {
			continue
		}
		def := i
		for j := i; j < len(out) && out[j].Family == out[i].Family; j++ {
			if !out[j].Deprecated {
				def = j
				break
			}
		}
		out[def].Default = true
	}
	return out
}

// shortVersion is the part of a version a runtime id names: the major
// version for Node.js, major.minor for Python.
func shortVersion(family, v string) string {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if family == Python && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// compareVersions compares the versions of two ids of one family.
func compareVersions(a, b string) int {
	va := strings.Split(a[strings.LastIndexByte(a, '-')+1:], ".")
	vb := strings.Split(b[strings.LastIndexByte(b, '-')+1:], ".")
	for i := 0; i < max(len(va), len(vb)); i++ {
		var x, y int
		if i < len(va) {
			x, _ = strconv.Atoi(va[i])
		}
		if i < len(vb) {
			y, _ = strconv.Atoi(vb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// Candidates are the interpreters Discover looks for. Debian's Python
// interpreters are named by version; python3 on the PATH may be a shim.
var Candidates = []Found{
	{Family: NodeJS, Interpreter: "/usr/bin/node"},
	{Family: NodeJS, Interpreter: "/usr/bin/nodejs"},
	{Family: Python, Interpreter: "/usr/bin/python3.13"},
	{Family: Python, Interpreter: "/usr/bin/python3.12"},
	{Family: Python, Interpreter: "/usr/bin/python3.11"},
}

var versionOut = regexp.MustCompile(`v?([0-9]+\.[0-9]+(\.[0-9]+)?)`)

// Discover asks each candidate interpreter for its version and returns
// those that answer.
func Discover(ctx context.Context, candidates []Found) []Found {
	var out []Found
	for _, c := range candidates {
		if found, ok := discover(ctx, c); ok {
			out = append(out, found)
		}
	}
	return out
}

// discover asks one interpreter for its version (and Python for its
// standard library), within 5 s.
func discover(ctx context.Context, c Found) (Found, bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	b, err := exec.CommandContext(ctx, c.Interpreter, "--version").CombinedOutput()
	if err != nil {
		return c, false
	}
	m := versionOut.FindStringSubmatch(string(b))
	if m == nil {
		return c, false
	}
	c.Version = m[1]
	if c.Family == Python {
		b, err := exec.CommandContext(ctx, c.Interpreter, "-I", "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))").Output()
		if c.Stdlib = strings.TrimSpace(string(b)); err != nil || !filepath.IsAbs(c.Stdlib) {
			return c, false
		}
	}
	return c, true
}

// InitTokenEnv is the environment variable that gives a runtime instance
// its init token: as its SHA-256, so that the instance's spec, kept by the
// engine, holds nothing that gives code to it.
func InitTokenEnv(token string) string {
	h := sha256.Sum256([]byte(token))
	return "COLIGO_INIT_TOKEN_SHA256=" + hex.EncodeToString(h[:])
}
