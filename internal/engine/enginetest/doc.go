// Package enginetest is the conformance suite that every engine passes:
// Run(t, harness) exercises an engine against real images in a real registry.
package enginetest
