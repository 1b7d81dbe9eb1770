// Package netguard decides which addresses coligo itself may connect to on
// a user's behalf (image registries today; git sources and code bundles
// later): never this host's own services through loopback or its own
// addresses, nor the link-local range where cloud metadata services live,
// unless the operator named the host:port. It checks the address that is
// actually dialled, after name resolution, so a name that resolves inward
// (or is rebound to do so) is refused as a literal address is.
package netguard
