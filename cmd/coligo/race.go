//go:build race

package main

import "github.com/sasha-s/go-deadlock"

// A build with the race detector (make test runs the e2e server so) also
// turns go-cni's mutexes into go-deadlock's, which report go-cni's own
// recursive read lock in Setup (Setup → ready) as a potential deadlock and
// exit the process. That is go-cni's to fix, not a race of coligo's: the
// race detector stays on, the lock-order checker is off.
func init() { deadlock.Opts.Disable = true }
