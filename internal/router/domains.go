package router

import (
	"crypto/tls"
	"io"
	"net/http"
	"strings"
)

// SetDomains replaces the custom domains: each name serves as the host it
// maps to (an app's or a function's), publicly and on plain HTTP, with its
// certificate by SNI (a name without one is served on plain HTTP only). A
// name that is the host of an app or a function is not taken over.
func (r *Router) SetDomains(aliases map[string]string, certs map[string]*tls.Certificate) {
	own := make(map[string]*tls.Certificate, len(certs))
	for h, c := range certs {
		own[strings.ToLower(h)] = c
	}
	r.certs.Store(&own)
	r.ownedMu.Lock()
	r.aliases = make(map[string]string, len(aliases))
	for h, target := range aliases {
		r.aliases[strings.ToLower(h)] = strings.ToLower(target)
	}
	r.publish()
}

// Certificate is the certificate of a custom domain the router serves, or
// nil.
func (r *Router) Certificate(host string) *tls.Certificate {
	certs := r.certs.Load()
	if certs == nil {
		return nil
	}
	c := (*certs)[host]
	if c == nil {
		return nil
	}
	if _, ok := r.lookup(host, func(rt Route) bool { return rt.Public }); !ok {
		return nil
	}
	return c
}

// ChallengePath is where an ACME server asks for an HTTP-01 challenge's
// answer, by its token.
const ChallengePath = "/.well-known/acme-challenge/"

// SetChallenge has the router answer an ACME HTTP-01 challenge, for every
// host, on plain HTTP, until RemoveChallenge. Tokens are the ACME
// server's, random and single-use.
func (r *Router) SetChallenge(token, keyAuth string) {
	r.chMu.Lock()
	defer r.chMu.Unlock()
	if r.challenges == nil {
		r.challenges = map[string]string{}
	}
	r.challenges[token] = keyAuth
	r.nChallenges.Store(int32(len(r.challenges)))
}

// RemoveChallenge stops answering a challenge.
func (r *Router) RemoveChallenge(token string) {
	r.chMu.Lock()
	defer r.chMu.Unlock()
	delete(r.challenges, token)
	r.nChallenges.Store(int32(len(r.challenges)))
}

// isChallenge reports whether a request target may be a challenge's: only
// while one is set does the router look.
func (r *Router) isChallenge(target []byte) bool {
	return r.nChallenges.Load() > 0 && strings.HasPrefix(string(target), ChallengePath)
}

// answerChallenge answers a challenge request, if it is one.
func (r *Router) answerChallenge(w http.ResponseWriter, req *http.Request) bool {
	if req.TLS != nil || !r.isChallenge([]byte(req.URL.Path)) {
		return false
	}
	r.chMu.Lock()
	keyAuth, ok := r.challenges[strings.TrimPrefix(req.URL.Path, ChallengePath)]
	r.chMu.Unlock()
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, keyAuth)
	return true
}
