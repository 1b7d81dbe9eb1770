package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CookieName is the session cookie's name.
const CookieName = "coligo_session"

// CSRFHeader carries a session's CSRF token on every request that changes
// something.
const CSRFHeader = "X-CSRF-Token"

// Caps on what sessions hold: a token logged in again and again drops its
// own oldest sessions, and nobody fills the server's memory with them.
const (
	MaxPerToken = 16
	MaxSessions = 10000
)

// ErrFull is returned when the server holds MaxSessions live sessions.
var ErrFull = errors.New("too many console sessions; log out of some or try again later")

// Session is a console login. It keeps the hash of the token it was made
// from, never the token, so that every request it makes is checked against
// the token as it is then (revoked, expired).
type Session struct {
	TokenHash []byte
	TokenID   string
	CSRF      string
	Created   time.Time
	Expires   time.Time
}

// Sessions holds the console's sessions in memory: a restart logs everyone
// out, and nothing of them is ever at rest.
type Sessions struct {
	life time.Duration
	now  func() time.Time
	mu   sync.Mutex
	byID map[[32]byte]*Session // by the hash of the cookie's value
}

// NewSessions makes a session store whose sessions last life.
func NewSessions(life time.Duration, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{life: life, now: now, byID: map[[32]byte]*Session{}}
}

// Life is how long a session lasts.
func (s *Sessions) Life() time.Duration { return s.life }

// Create starts a session for the token of hash and id; it returns the
// cookie's value and the session.
func (s *Sessions) Create(tokenHash []byte, tokenID string) (string, Session, error) {
	id, csrf := random(), random()
	now := s.now()
	sess := &Session{TokenHash: tokenHash, TokenID: tokenID, CSRF: csrf, Created: now, Expires: now.Add(s.life)}
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest [32]byte
	n := 0
	for k, v := range s.byID {
		switch {
		case !now.Before(v.Expires):
			delete(s.byID, k)
		case v.TokenID == tokenID:
			if n++; n == 1 || v.Created.Before(s.byID[oldest].Created) {
				oldest = k
			}
		}
	}
	if n >= MaxPerToken {
		delete(s.byID, oldest)
	}
	if len(s.byID) >= MaxSessions {
		return "", Session{}, ErrFull
	}
	s.byID[sha256.Sum256([]byte(id))] = sess
	return id, *sess, nil
}

// Get finds the live session of a cookie's value.
func (s *Sessions) Get(id string) (Session, bool) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byID[k]
	if !ok {
		return Session{}, false
	}
	if !s.now().Before(sess.Expires) {
		delete(s.byID, k)
		return Session{}, false
	}
	return *sess, true
}

// Delete ends the session of a cookie's value.
func (s *Sessions) Delete(id string) {
	s.mu.Lock()
	delete(s.byID, sha256.Sum256([]byte(id)))
	s.mu.Unlock()
}

func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Cookie is the session cookie of value; an empty value and a zero expiry
// remove it. Secure when the request came over TLS.
func Cookie(r *http.Request, value string, expires time.Time) *http.Cookie {
	c := &http.Cookie{Name: CookieName, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
	if value == "" {
		c.MaxAge = -1
	} else {
		c.Expires = expires
	}
	return c
}

// CheckSameOrigin refuses a request that changes something unless the
// browser says it comes from the console's own origin and it carries the
// session's CSRF token. Reads pass: another origin cannot read their
// answers, and the cookie (SameSite=Strict) does not go with them anyway.
func CheckSameOrigin(r *http.Request, csrf string) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	if err := CheckOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(csrf)) != 1 {
		return errors.New("a console session's request that changes something needs the session's " + CSRFHeader + " header")
	}
	return nil
}

// CheckOrigin refuses a request a browser says another origin made.
func CheckOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return errors.New("a console session's request must come from the console's own origin (Sec-Fetch-Site is " + clip(site) + ")")
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		scheme := "http://"
		if r.TLS != nil {
			scheme = "https://"
		}
		if !strings.EqualFold(origin, scheme+r.Host) {
			return errors.New("a console session's request must come from the console's own origin, not " + clip(origin))
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
