// Package console is coligo's web console: its assets, embedded in the
// binary and served under /console/ with a strict Content-Security-Policy,
// and its sessions, which stand for a token in the browser without letting
// a script read it (an HttpOnly cookie) and refuse requests another origin
// makes (a CSRF token and the Origin and Sec-Fetch-Site headers).
//
// The console talks only to the same /v2 API as the CLI; the server
// (internal/apiserver) authenticates a session's requests as the token's.
package console
