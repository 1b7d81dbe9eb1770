package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	h := Handler()
	tests := []struct {
		path, ctype, has string
	}{
		{"/console/", "text/html; charset=utf-8", "<title>coligo console</title>"},
		{"/console/js/main.js", "text/javascript; charset=utf-8", "import"},
		{"/console/style.css", "text/css; charset=utf-8", ":root"},
		{"/console/no/such/page", "text/html; charset=utf-8", "<title>coligo console</title>"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", tt.path, nil))
		if w.Code != 200 || w.Header().Get("Content-Type") != tt.ctype || !strings.Contains(w.Body.String(), tt.has) {
			t.Errorf("%s: %d %s", tt.path, w.Code, w.Header().Get("Content-Type"))
		}
		for k, want := range map[string]string{"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("%s: %s is %q", tt.path, k, got)
			}
		}
		etag := w.Header().Get("ETag")
		r := httptest.NewRequest("GET", tt.path, nil)
		r.Header.Set("If-None-Match", etag)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d", tt.path, w.Code)
		}
	}
	if !strings.Contains(CSP, "script-src 'self'") || strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP allows more than the console's own scripts: %s", CSP)
	}
}

// TestAssetsMakeNoMarkup: the console builds its pages from elements and
// text only. Nothing in it parses a string as HTML or code, so no value
// from the API can become markup or script; the CSP forbids inline script
// and eval as a second wall.
func TestAssetsMakeNoMarkup(t *testing.T) {
	banned := regexp.MustCompile(`innerHTML|outerHTML\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function|setTimeout\(\s*['"\x60]|srcdoc|DOMParser|createContextualFragment`)
	inline := regexp.MustCompile(`<script>|<script [^>]*>[^<]|\son[a-z]+=|style=`)
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := assets.ReadFile(p)
		if strings.HasSuffix(p, ".js") {
			if m := banned.Find(b); m != nil {
				t.Errorf("%s uses %s", p, m)
			}
		}
		if strings.HasSuffix(p, ".html") {
			if m := inline.Find(b); m != nil {
				t.Errorf("%s has inline script or style: %s", p, m)
			}
		}
		return nil
	})
	if Size() == 0 || Size() > 512<<10 {
		t.Errorf("embedded assets: %d bytes", Size())
	}
}
