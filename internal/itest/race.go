//go:build race

package itest

import "github.com/sasha-s/go-deadlock"

// As in cmd/coligo: a -race build turns go-cni's mutexes into go-deadlock's,
// which exit on go-cni's own recursive read lock (Setup → ready) when
// instances start at once. Every test that runs the local engine imports
// this package; the race detector stays on.
func init() { deadlock.Opts.Disable = true }
