// Package auth owns API access tokens and authorization decisions: it mints
// 256-bit random tokens, stores only their SHA-256, resolves a bearer token to
// a principal, and decides what a principal may do in a project.
package auth
