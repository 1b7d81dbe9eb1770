// Package engine owns the contract between coligo's controllers and what runs
// containers: run an instance from a spec, stop it, list a project's
// instances, read their logs, report their exits, and purge everything of a
// project. Implementations: local (containerd + CNI) and, later, kube.
// enginetest holds the conformance suite every implementation passes.
package engine
