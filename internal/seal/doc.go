// Package seal owns envelope encryption: it creates each project's data
// encryption key (DEK), has a root key wrap it, keeps unwrapped DEKs only in a
// bounded in-memory cache, and seals and opens records with AES-256-GCM under
// the record's location as additional authenticated data.
//
// A sealed record is
//
//	version (1 byte, 1) | len(dek id) (1 byte) | dek id | nonce (12 bytes) | ciphertext+tag
//
// and a wrapped DEK is the JSON of WrappedDEK. Destroying the wrapped DEK (and
// forgetting the cached one) makes every record sealed under it unreadable:
// that is the crypto-shred a hard delete relies on.
package seal
