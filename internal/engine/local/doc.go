// Package local is the embedded engine: every instance is a containerd task
// run by runc, in a containerd namespace per project ("coligo-<project id>"),
// attached through go-cni to a bridge network of its own project, with
// iptables rules that drop traffic between projects' bridges. Images are
// pulled with the instance's registry credentials. Each instance's stdout and
// stderr go to a size-bounded log written by `coligo` itself, started by the
// containerd shim as its logging binary, so that logs keep flowing and
// instances keep running when the coligo server stops.
//
// State outside containerd lives under Config.StateDir:
//
//	<state>/networks.json          project id → subnet index (fsynced)
//	<state>/ipam/                  host-local IPAM allocations
//	<state>/logs/<project>/<id>.log (+ .log.1, the previous half)
package local
