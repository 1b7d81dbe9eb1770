// Package version says which build of coligo this is: a version set at
// build time, else what the Go toolchain recorded (the module's version, or
// the VCS revision the binary was built from).
package version
