// Package bundle recognises and removes a containerd task bundle that a
// containerd stopped mid-create left behind, which would refuse every later
// create of that instance.
package bundle
