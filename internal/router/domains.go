package router

import (
	"crypto/tls"
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
