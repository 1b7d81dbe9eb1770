// Package engine owns the contract between coligo's controllers and what runs
// containers: pull and pin an image, run (or prepare) an instance from a
// spec, stop it, list a project's instances, read their logs, report their
// exits (Watch follows them across the ends of the stream), set up a
// project's network, prune its images and purge everything of it; Arrays is
// the extra contract of an engine that runs a job run's instances itself.
// Implementations: local (containerd + CNI), kube (a Kubernetes cluster) and
// fake (in memory, for the controllers' unit tests). enginetest holds the
// conformance suite every implementation passes (fake: its image-free part).
package engine
