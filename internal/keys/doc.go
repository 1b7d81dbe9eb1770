// Package keys owns the root keys that wrap projects' data keys. The local
// provider keeps a 32-byte root key in a file (mode 0600) that is created on
// first start unless the operator supplies one.
package keys
