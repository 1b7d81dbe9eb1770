// Package testcert makes certificates for tests: a leaf for names, valid
// when asked, signed by a throwaway CA whose certificate follows it in the
// chain, as a domain's TLS secret holds them.
package testcert
