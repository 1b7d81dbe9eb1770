// Package kube is the engine that runs coligo's instances on a Kubernetes
// cluster through client-go. A project is a namespace (coligo-<project id>,
// labelled with the id) with a NetworkPolicy that admits traffic only from
// the same project and from coligo's router; an instance is a pod; the
// registry credentials an instance pulls with are kubernetes.io/dockerconfigjson
// Secrets of its namespace, used as imagePullSecrets; the files mounted into
// an instance are a Secret of its own; a job run is one Indexed Job (see
// RunArray). Kubernetes objects and errors do not leave this package.
//
// The differences from the local engine are those of Kubernetes itself: a
// pod cannot be created without being started (Prepare is not supported),
// /etc/hosts is fixed when a pod starts, node images are the kubelet's to
// collect, and isolation between projects holds where the cluster's network
// plugin enforces NetworkPolicy.
package kube
