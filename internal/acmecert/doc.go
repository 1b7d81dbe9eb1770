// Package acmecert obtains certificates for domain names from an ACME
// server (RFC 8555; Let's Encrypt, or a private one), answering its HTTP-01
// challenges through the router. It holds the server's ACME account key
// (a 0600 file) and nothing else: what it obtains, its caller keeps.
package acmecert
