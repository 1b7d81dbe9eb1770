// Package builder builds container images from source with a BuildKit
// daemon (buildkitd, --buildkit-address): a Dockerfile in a local
// directory or a Git repository, built with build arguments and build
// secrets (delivered as BuildKit secrets, never as arguments, so they end
// in no layer or history), and pushed to a registry with the project's
// credentials. It reports the pushed image's digest and the build's
// progress as plain lines.
package builder
