package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coligo/coligo/api"
	"github.com/coligo/coligo/internal/auth"
	"github.com/coligo/coligo/internal/computetoken"
	"github.com/coligo/coligo/internal/console"
	"github.com/coligo/coligo/internal/core"
)

// consoleLoginRoute exchanges a token for a console session; like the IAM
// exchange it authenticates by its body and records its own event.
const consoleLoginRoute = "POST /console/session"

// authenticate finds who makes a request: the bearer token of its
// Authorization header, else its console session, whose requests that
// change something must come from the console's origin with the session's
// CSRF token.
func (a *API) authenticate(r *http.Request) (auth.Principal, error) {
	h := r.Header.Get("Authorization")
	if h != "" || a.cfg.Console == nil {
		return auth.Authenticate(r.Context(), a.tokens(), h)
	}
	c, err := r.Cookie(console.CookieName)
	if err != nil {
		return auth.Authenticate(r.Context(), a.tokens(), h) // says what is missing
	}
	s, ok := a.cfg.Console.Get(c.Value)
	if !ok {
		return auth.Principal{}, fmt.Errorf("the console session has ended; log in again: %w", core.ErrUnauthenticated)
	}
	if err := console.CheckSameOrigin(r, s.CSRF); err != nil {
		return auth.Principal{}, fmt.Errorf("%w: %w", err, core.ErrForbidden)
	}
	return auth.AuthenticateHash(r.Context(), a.cfg.Store, s.TokenHash)
}

// consoleLogin makes a session of the token in the body: the answer sets
// it as an HttpOnly cookie, and carries the CSRF token the console sends
// back on every request that changes something.
func (a *API) consoleLogin(w http.ResponseWriter, r *http.Request) error {
	if err := console.CheckOrigin(r); err != nil {
		return fmt.Errorf("%w: %w", err, core.ErrForbidden)
	}
	var body struct {
		Token string `json:"token"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096) // a token is 50 bytes
	if err := decode(r, &body); err != nil {
		return err
	}
	body.Token = strings.TrimSpace(body.Token)
	if strings.HasPrefix(body.Token, computetoken.Prefix) {
		return fmt.Errorf("an instance's compute resource token cannot log in to the console: %w", core.ErrUnauthenticated)
	}
	hash := auth.Hash(body.Token)
	p, err := auth.AuthenticateHash(r.Context(), a.cfg.Store, hash)
	if err != nil {
		return err
	}
	value, s, err := a.cfg.Console.Create(hash, p.TokenID)
	if errors.Is(err, console.ErrFull) {
		return &apiError{status: http.StatusServiceUnavailable, code: "service_unavailable", msg: err.Error()}
	}
	if err != nil {
		return err
	}
	if err := a.audit(r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), core.AuditConsoleLogin, "session", p.ProjectID, ""); err != nil {
		a.cfg.Console.Delete(value)
		return err
	}
	http.SetCookie(w, console.Cookie(r, value, s.Expires))
	writeJSON(w, http.StatusOK, sessionView(p, s))
	return nil
}

// consoleSession tells the console whose session it is, and its CSRF
// token (after a reload, which keeps the cookie but not the page's memory).
func (a *API) consoleSession(w http.ResponseWriter, r *http.Request) error {
	s, err := a.session(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sessionView(principal(r), s))
	return nil
}

// consoleLogout ends the session and removes its cookie.
func (a *API) consoleLogout(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.session(r); err != nil {
		return err
	}
	c, _ := r.Cookie(console.CookieName)
	a.cfg.Console.Delete(c.Value)
	note(r, func(n *auditNote) { n.project = principal(r).ProjectID })
	http.SetCookie(w, console.Cookie(r, "", time.Time{}))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// session is the console session a request was authenticated by.
func (a *API) session(r *http.Request) (console.Session, error) {
	if r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(console.CookieName); err == nil {
			if s, ok := a.cfg.Console.Get(c.Value); ok {
				return s, nil
			}
		}
	}
	return console.Session{}, core.Invalid("session", "this request was not made with a console session")
}

func sessionView(p auth.Principal, s console.Session) api.ConsoleSession {
	return api.ConsoleSession{CSRFToken: s.CSRF, Role: string(p.Role), ProjectID: p.ProjectID, TokenID: p.TokenID,
		ExpiresAt: s.Expires.UTC().Format(time.RFC3339)}
}
