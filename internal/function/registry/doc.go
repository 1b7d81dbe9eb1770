// Package registry serves the function runtime images coligo builds to the
// local engine that runs them: an OCI registry (go-containerregistry's)
// held in memory on a loopback port of its own, which anyone on the host
// may pull from (an instance cannot: its fence drops the host's loopback)
// and only coligo, with a password it made at start, may push to.
package registry
