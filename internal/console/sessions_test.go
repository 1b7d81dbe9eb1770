package console

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	s := NewSessions(time.Hour, func() time.Time { return now })
	id, sess, err := s.Create([]byte("hash"), "tok1")
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Get(id); !ok || string(got.TokenHash) != "hash" || got.CSRF != sess.CSRF || got.CSRF == "" || got.CSRF == id {
		t.Fatalf("Get: %+v %v", got, ok)
	}
	if _, ok := s.Get(id + "x"); ok {
		t.Error("another value finds the session")
	}
	now = now.Add(time.Hour)
	if _, ok := s.Get(id); ok {
		t.Error("a session outlives its life")
	}

	// A token logged in again and again keeps its newest MaxPerToken.
	var ids []string
	for range MaxPerToken + 3 {
		now = now.Add(time.Second)
		id, _, err := s.Create([]byte("hash"), "tok2")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for i, id := range ids {
		if _, ok := s.Get(id); ok != (i >= 3) {
			t.Errorf("session %d of %d: live %v", i, len(ids), ok)
		}
	}
	s.Delete(ids[len(ids)-1])
	if _, ok := s.Get(ids[len(ids)-1]); ok {
		t.Error("a deleted session is found")
	}
}

func TestSessionsFull(t *testing.T) {
	now := time.Now()
	s := NewSessions(time.Minute, func() time.Time { return now })
	for i := range MaxSessions {
		if _, _, err := s.Create(nil, string(rune(i))+"-tok"); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if _, _, err := s.Create(nil, "one-more"); err != ErrFull {
		t.Fatalf("past MaxSessions: %v, want ErrFull", err)
	}
	now = now.Add(time.Minute) // all expired: room again
	if _, _, err := s.Create(nil, "one-more"); err != nil {
		t.Fatalf("after the sessions expired: %v", err)
	}
}

func TestCheckSameOrigin(t *testing.T) {
	const csrf = "the-csrf-token"
	tests := []struct {
		name, method, host, origin, site, token string
		tls                                     bool
		ok                                      bool
	}{
		{"a read needs nothing", "GET", "127.0.0.1:7070", "", "", "", false, true},
		{"the console's own write", "POST", "127.0.0.1:7070", "http://127.0.0.1:7070", "same-origin", csrf, false, true},
		{"no Origin (an old browser), with the token", "DELETE", "127.0.0.1:7070", "", "", csrf, false, true},
		{"no CSRF token", "POST", "127.0.0.1:7070", "http://127.0.0.1:7070", "same-origin", "", false, false},
		{"a wrong CSRF token", "PATCH", "127.0.0.1:7070", "http://127.0.0.1:7070", "same-origin", "guess", false, false},
		{"another port is another origin", "POST", "127.0.0.1:7070", "http://127.0.0.1:8000", "", csrf, false, false},
		{"same site is not enough", "POST", "127.0.0.1:7070", "", "same-site", csrf, false, false},
		{"cross site", "POST", "127.0.0.1:7070", "https://evil.example", "cross-site", csrf, false, false},
		{"a page that was opened directly", "POST", "127.0.0.1:7070", "", "none", csrf, false, false},
		{"http origin on a TLS listener", "POST", "coligo.example:443", "http://coligo.example:443", "", csrf, true, false},
		{"https on TLS", "POST", "coligo.example", "https://coligo.example", "same-origin", csrf, true, true},
		{"null origin", "POST", "127.0.0.1:7070", "null", "", csrf, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://"+tt.host+"/v2/projects", nil)
			r.Host = tt.host
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for k, v := range map[string]string{"Origin": tt.origin, "Sec-Fetch-Site": tt.site, CSRFHeader: tt.token} {
				if v != "" {
					r.Header.Set(k, v)
				}
			}
			if err := CheckSameOrigin(r, csrf); (err == nil) != tt.ok {
				t.Errorf("CheckSameOrigin: %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestCookie(t *testing.T) {
	r := httptest.NewRequest("POST", "/console/session", nil)
	c := Cookie(r, "v", time.Now().Add(time.Hour))
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure || c.Path != "/" {
		t.Errorf("plain HTTP cookie: %+v", c)
	}
	r.TLS = &tls.ConnectionState{}
	if c := Cookie(r, "v", time.Now()); !c.Secure {
		t.Error("a cookie set over TLS is not Secure")
	}
	if c := Cookie(r, "", time.Time{}); c.MaxAge >= 0 {
		t.Errorf("removing cookie: %+v", c)
	}
}

func FuzzCheckSameOrigin(f *testing.F) {
	f.Add("POST", "127.0.0.1:7070", "http://127.0.0.1:7070", "same-origin", "tok")
	f.Add("DELETE", "h", "null", "cross-site", "")
	f.Fuzz(func(t *testing.T, method, host, origin, site, token string) {
		r, err := http.NewRequest("GET", "http://x/", nil)
		if err != nil {
			t.Skip()
		}
		r.Method, r.Host = method, host
		r.Header.Set("Origin", origin)
		r.Header.Set("Sec-Fetch-Site", site)
		r.Header.Set(CSRFHeader, token)
		err = CheckSameOrigin(r, "the-csrf-token")
		if err == nil && method != "GET" && method != "HEAD" && token != "the-csrf-token" {
			t.Fatalf("a %s without the CSRF token passed", method)
		}
		if err != nil && len(err.Error()) > 300 {
			t.Fatalf("an error echoes the headers whole: %d bytes", len(err.Error()))
		}
	})
}
