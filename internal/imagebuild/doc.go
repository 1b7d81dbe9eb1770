// Package imagebuild makes small OCI images without Docker: one layer of
// files (a static Go program, Debian's busybox-static) packed with
// go-containerregistry and pushed to a registry. The tests and `make demo`
// use it to get the images they run.
package imagebuild
