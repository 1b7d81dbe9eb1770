// Package server wires coligo's parts from a configuration and runs them: the
// data dir, root key, sealer, store, admin token, API, controllers and the
// HTTP listener, with a graceful shutdown. It is the only package that knows
// the concrete store and key provider.
package server
