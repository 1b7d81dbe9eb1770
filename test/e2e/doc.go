// Package e2e drives the built coligo binary, as a real server process on a
// free loopback port with a temporary data dir, through the Go client in api/
// and through the CLI.
package e2e
