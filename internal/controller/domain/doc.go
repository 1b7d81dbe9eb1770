// Package domain serves each project's custom domain mappings: it checks
// a mapping's target and its TLS secret's certificate, hands the router
// the names to serve as their targets' hosts with their certificates (held
// only in memory; the secret stays sealed in the store), and writes each
// mapping's status — failed with the reason when the target is gone or the
// certificate does not fit, has expired or is not its key's.
package domain
