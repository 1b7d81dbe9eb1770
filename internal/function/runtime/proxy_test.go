package runtime

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coligo/coligo/internal/itest"
)

// proxyProcess is a runtime proxy run by a real interpreter: on loopback,
// or in a container.
type proxyProcess struct {
	url, token string
	logs       func() string // what the proxy wrote to stderr
	stop       func()        // ends the process (proxies on loopback)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// interpreters are the runtimes the host has, one per family; a family
// missing skips its tests, or fails them in CI.
func interpreter(t testing.TB, family string) Runtime {
	t.Helper()
	for _, r := range Catalogue(Discover(context.Background(), Candidates), time.Now()) {
		if r.Family == family {
			return r
		}
	}
	itest.Missing(t, "no "+family+" interpreter: run through 'make test', which installs one")
	return Runtime{}
}

// startProxy starts the proxy of r with no code.
func startProxy(t testing.TB, r Runtime) *proxyProcess {
	t.Helper()
	name, src, err := Proxy(r.Family)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	stderr := &syncBuffer{}
	p := &proxyProcess{url: fmt.Sprintf("http://127.0.0.1:%d", port), token: "init-token-of-the-test", logs: stderr.String}
	argv := r.Command(path)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{fmt.Sprintf("PORT=%d", port), InitTokenEnv(p.token), "PATH=/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE=1"}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.stop = sync.OnceFunc(func() { cmd.Process.Kill(); cmd.Wait() })
	t.Cleanup(p.stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s proxy did not listen within 10 s: %s", r.ID, p.logs())
		}
	}
}

func (p *proxyProcess) do(t testing.TB, method, path, contentType string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, p.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (p *proxyProcess) init(t testing.TB, code []byte, main string, env map[string]string) (int, string) {
	t.Helper()
	return p.initSpec(t, map[string]any{"code": base64.StdEncoding.EncodeToString(code), "main": main, "env": env})
}

// initBundle gives the proxy a code bundle's files.
func (p *proxyProcess) initBundle(t testing.TB, files map[string]string, main string) (int, string) {
	t.Helper()
	enc := map[string][]byte{}
	for k, v := range files {
		enc[k] = []byte(v)
	}
	return p.initSpec(t, map[string]any{"files": enc, "main": main})
}

func (p *proxyProcess) initSpec(t testing.TB, s map[string]any) (int, string) {
	t.Helper()
	spec, _ := json.Marshal(s)
	resp, b := p.do(t, "POST", "/.coligo/init", "application/json", spec, map[string]string{"X-Coligo-Init-Token": p.token})
	if (resp.StatusCode == 200) != (resp.Header.Get("X-Coligo-Initialized") == "true") {
		t.Errorf("init answered %d with X-Coligo-Initialized %q", resp.StatusCode, resp.Header.Get("X-Coligo-Initialized"))
	}
	return resp.StatusCode, string(b)
}

// TestProxyContract: each rule of Code Engine's internal request and
// response interfaces, the same on every runtime.
func TestProxyContract(t *testing.T) {
	for _, family := range []string{NodeJS, Python} {
		t.Run(family, func(t *testing.T) {
			r := interpreter(t, family)
			p := startProxy(t, r)
			initContract(t, p, family)
			contract(t, p)
		})
	}
}

// initContract checks that the proxy takes code only once and only with
// its token, and gives it the contract's function.
func initContract(t *testing.T, p *proxyProcess, family string) {
	t.Helper()
	code, err := os.ReadFile(map[string]string{NodeJS: "testdata/contract.js", Python: "testdata/contract.py"}[family])
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := p.do(t, "GET", "/echo", "", nil, nil); resp.StatusCode != 503 {
		t.Errorf("before init: %d, want 503", resp.StatusCode)
	}
	if resp, _ := p.do(t, "POST", "/.coligo/init", "application/json", []byte(`{}`), map[string]string{"X-Coligo-Init-Token": "wrong-token-of-same-len"}); resp.StatusCode != 403 {
		t.Errorf("init with a wrong token: %d, want 403", resp.StatusCode)
	}
	atRest := strings.TrimPrefix(InitTokenEnv(p.token), "COLIGO_INIT_TOKEN_SHA256=")
	if resp, _ := p.do(t, "POST", "/.coligo/init", "application/json", []byte(`{}`), map[string]string{"X-Coligo-Init-Token": atRest}); resp.StatusCode != 403 {
		t.Errorf("init with the token's hash, as the instance's spec holds it: %d, want 403", resp.StatusCode)
	}
	if code, b := p.init(t, code, "main", map[string]string{"CONTRACT_SECRET": "s3cret", "CE_FUNCTION": "contract"}); code != 200 {
		t.Fatalf("init: %d %s %s", code, b, p.logs())
	}
}

func contract(t *testing.T, p *proxyProcess) {
	echo := func(t *testing.T, resp *http.Response, b []byte) map[string]any {
		t.Helper()
		var args map[string]any
		if err := json.Unmarshal(b, &args); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %s %q: %v", resp.StatusCode, resp.Header.Get("Content-Type"), b, err)
		}
		return args
	}
	want := func(t *testing.T, args map[string]any, key string, value any) {
		t.Helper()
		if got, ok := args[key]; value == nil && ok || value != nil && fmt.Sprint(got) != fmt.Sprint(value) {
			t.Errorf("args[%q] = %v, want %v (args %v)", key, got, value, args)
		}
	}
	tests := []struct {
		name, method, path, contentType, body string
		check                                 func(t *testing.T, resp *http.Response, b []byte)
	}{
		{"query parameters", "GET", "/echo?planet=Mars&x=a%20b", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			a := echo(t, resp, b)
			want(t, a, "planet", "Mars")
			want(t, a, "x", "a b")
			want(t, a, "__ce_method", "GET")
			want(t, a, "__ce_path", "/echo")
			want(t, a, "__ce_query", "planet=Mars&x=a%20b")
			want(t, a, "__ce_body", nil)
			if h, _ := a["__ce_headers"].(map[string]any); h["User-Agent"] == nil || h["X-Custom-Header"] != "v" {
				t.Errorf("__ce_headers %v, want canonical names", a["__ce_headers"])
			}
		}},
		{"JSON body over query", "POST", "/echo?planet2=Venus&planet3=Uranus", "application/json", `{"planet1":"Mars","planet2":"Jupiter"}`, func(t *testing.T, resp *http.Response, b []byte) {
			a := echo(t, resp, b)
			want(t, a, "planet1", "Mars")
			want(t, a, "planet2", "Jupiter")
			want(t, a, "planet3", "Uranus")
			want(t, a, "__ce_body", base64.StdEncoding.EncodeToString([]byte(`{"planet1":"Mars","planet2":"Jupiter"}`)))
		}},
		{"no content type is JSON", "POST", "/echo", "", `{"k":1}`, func(t *testing.T, resp *http.Response, b []byte) {
			want(t, echo(t, resp, b), "k", 1)
		}},
		{"text", "POST", "/echo", "text/plain; charset=utf-8", "hello\n\"world\"", func(t *testing.T, resp *http.Response, b []byte) {
			a := echo(t, resp, b)
			want(t, a, "__ce_body", "hello\n\"world\"")
			want(t, a, "hello", nil)
		}},
		{"form", "POST", "/echo", "application/x-www-form-urlencoded", "a=1&b=x%20y", func(t *testing.T, resp *http.Response, b []byte) {
			a := echo(t, resp, b)
			want(t, a, "__ce_body", "a=1&b=x%20y")
			want(t, a, "a", nil)
		}},
		{"binary", "POST", "/echo", "application/octet-stream", "\x00\x01\xfe\xff", func(t *testing.T, resp *http.Response, b []byte) {
			want(t, echo(t, resp, b), "__ce_body", base64.StdEncoding.EncodeToString([]byte("\x00\x01\xfe\xff")))
		}},
		{"__ce_ in the query", "GET", "/echo?__ce_method=PUT", "", "", status(400)},
		{"__ce_ in JSON", "POST", "/echo", "application/json", `{"__ce_path":"/admin"}`, status(400)},
		{"__ce_ in a form", "POST", "/echo", "application/x-www-form-urlencoded", "__ce_body=x", status(400)},
		{"malformed JSON", "POST", "/echo", "application/json", `{"a":`, status(400)},
		{"multipart", "POST", "/echo", "multipart/form-data; boundary=x", "--x--", status(400)},
		{"a thrown error", "GET", "/throw", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if resp.StatusCode != 500 || strings.Contains(string(b), "contract-stack-marker") {
				t.Errorf("%d %q, want 500 without the error's text", resp.StatusCode, b)
			}
			// The log comes through a pipe: it may arrive after the answer.
			for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.logs(), "contract-stack-marker") && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.Contains(p.logs(), "contract-stack-marker") {
				t.Errorf("the stack is not in the function's log: %q", p.logs())
			}
		}},
		{"statusCode", "GET", "/status?code=201", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if resp.StatusCode != 201 || resp.Header.Get("X-Faas-Actionstatus") != "201" || string(b) != "status" {
				t.Errorf("%d %v %q", resp.StatusCode, resp.Header, b)
			}
		}},
		{"statusCode out of range", "GET", "/status?code=700", "", "", status(422)},
		{"statusCode not a number", "GET", "/status?code=abc", "", "", status(422)},
		{"binary response", "GET", "/png", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(b, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("%v %q", resp.Header, b)
			}
		}},
		{"binary response not base64", "GET", "/not-base64", "", "", status(400)},
		{"a string result", "GET", "/text", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" || string(b) != "plain string" {
				t.Errorf("%v %q", resp.Header, b)
			}
		}},
		{"headers", "GET", "/headers", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if v := resp.Header.Values("X-Multi"); len(v) != 2 || resp.Header.Get("X-Num") != "5" || string(b) != "h" || resp.Header.Get("X-Faas-Activation-Id") == "" {
				t.Errorf("%v %q", resp.Header, b)
			}
		}},
		{"a header name with a blank", "GET", "/bad-header", "", "", status(400)},
		{"no result", "GET", "/nothing", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if resp.StatusCode != 200 || len(b) != 0 {
				t.Errorf("%d %q", resp.StatusCode, b)
			}
		}},
		{"JSON text", "GET", "/json-text", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if resp.Header.Get("Content-Type") != "application/json" || string(b) != `{"a":1}` {
				t.Errorf("%v %q", resp.Header, b)
			}
		}},
		{"env", "GET", "/env", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if string(b) != `{"secret":"s3cret","fn":"contract"}` {
				t.Errorf("%q", b)
			}
		}},
		{"a promise", "GET", "/async", "", "", func(t *testing.T, resp *http.Response, b []byte) {
			if string(b) != "later" {
				t.Errorf("%q", b)
			}
		}},
		{"the init path after init is the function's", "POST", "/.coligo/init", "application/json", `{}`, func(t *testing.T, resp *http.Response, b []byte) {
			if resp.StatusCode != 404 || resp.Header.Get("X-Coligo-Initialized") != "" {
				t.Errorf("%d %v: the function's own answer must not look like an init's", resp.StatusCode, resp.Header)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := p.do(t, tt.method, tt.path, tt.contentType, []byte(tt.body), map[string]string{"x-custom-header": "v"})
			tt.check(t, resp, b)
		})
	}
	t.Run("a body over 5 MB", func(t *testing.T) {
		if resp, _ := p.do(t, "POST", "/echo", "application/octet-stream", make([]byte, 5<<20+1), nil); resp.StatusCode != 413 {
			t.Errorf("%d, want 413", resp.StatusCode)
		}
	})
}

func status(code int) func(t *testing.T, resp *http.Response, b []byte) {
	return func(t *testing.T, resp *http.Response, b []byte) {
		t.Helper()
		if resp.StatusCode != code {
			t.Errorf("%d %q, want %d", resp.StatusCode, b, code)
		}
	}
}

// TestProxyInitErrors: code that does not load, or lacks its main, is
// refused at init with 422, and the runtime takes code again.
func TestProxyInitErrors(t *testing.T) {
	for _, tt := range []struct{ family, broken, nomain, good string }{
		{NodeJS, "function main( {", "exports.other = () => 1", "function go(a) { return {body: 'ok'} }"},
		{Python, "def main(:", "def other(a): return 1", "def go(a):\n    return {'body': 'ok'}\n"},
	} {
		t.Run(tt.family, func(t *testing.T) {
			p := startProxy(t, interpreter(t, tt.family))
			if code, b := p.init(t, []byte(tt.broken), "main", nil); code != 422 {
				t.Errorf("code that does not compile: %d %s", code, b)
			}
			if code, b := p.init(t, []byte(tt.nomain), "main", nil); code != 422 || !strings.Contains(b, "main") {
				t.Errorf("code without main: %d %s", code, b)
			}
			if code, b := p.init(t, []byte(tt.good), "go", nil); code != 200 {
				t.Fatalf("code with main go: %d %s %s", code, b, p.logs())
			}
			if resp, b := p.do(t, "GET", "/", "", nil, nil); resp.StatusCode != 200 || string(b) != "ok" {
				t.Errorf("%d %q", resp.StatusCode, b)
			}
		})
	}
}

// TestProxyBundle: a code bundle's modules load from its files in
// memory, found as the language finds them on disk.
func TestProxyBundle(t *testing.T) {
	big := strings.Repeat("x", 20<<20) // past a request body's 5 MB, within a bundle's 32 MiB
	for _, tt := range []struct {
		family  string
		files   map[string]string
		noEntry map[string]string
	}{
		{NodeJS, map[string]string{
			"package.json": `{"name":"fn","main":"lib/entry.js"}`,
			"lib/entry.js": `const util = require('./util'); const dep = require('dep'); const data = require('../data.json');
const crypto = require('node:crypto');
exports.main = (a) => ({ body: util.hello(a.name) + ' ' + dep.name + ' ' + data.n + ' ' + crypto.createHash('sha256').update('x').digest('hex').slice(0, 4) + ' ' + require('./big').length });`,
			"lib/util.js":                   `exports.hello = (n) => 'hello ' + n;`,
			"lib/big.js":                    `module.exports = '` + big + `';`,
			"data.json":                     `{"n": 42}`,
			"node_modules/dep/package.json": `{"main":"./src"}`,
			"node_modules/dep/src/index.js": `exports.name = 'dep-' + require('inner').v;`,
			"node_modules/dep/node_modules/inner/index.js": `exports.v = 'inner';`,
		}, map[string]string{"lib/util.js": "exports.x = 1"}},
		{Python, map[string]string{
			"__main__.py": "import hashlib\nfrom helpers import hello\nfrom helpers.fmt import wrap\nimport ns.mod\nimport big\n" +
				"def main(a):\n    return {'body': wrap(hello(a['name'])) + ' ' + ns.mod.NAME + ' ' + hashlib.sha256(b'x').hexdigest()[:4] + ' ' + str(len(big.DATA))}\n",
			"helpers/__init__.py": "def hello(n):\n    return 'hello ' + n\n",
			"helpers/fmt.py":      "def wrap(s):\n    return '[' + s + ']'\n",
			"ns/mod.py":           "NAME = 'ns'\n",
			"big.py":              "DATA = '" + big + "'\n",
		}, map[string]string{"helpers/__init__.py": "x = 1\n"}},
	} {
		t.Run(tt.family, func(t *testing.T) {
			p := startProxy(t, interpreter(t, tt.family))
			if code, b := p.initBundle(t, tt.noEntry, "main"); code != 422 {
				t.Errorf("a bundle without its entry file: %d %s", code, b)
			}
			if code, b := p.initBundle(t, tt.files, "main"); code != 200 {
				t.Fatalf("init: %d %s %s", code, b, p.logs())
			}
			want := map[string]string{NodeJS: "hello ada dep-inner 42 2d71 20971520", Python: "[hello ada] ns 2d71 20971520"}[tt.family]
			if resp, b := p.do(t, "GET", "/?name=ada", "", nil, nil); resp.StatusCode != 200 || string(b) != want {
				t.Errorf("%d %q, want %q %s", resp.StatusCode, b, want, p.logs())
			}
		})
	}
}
