#!/usr/bin/env bash
# Build buildkitd from the github.com/moby/buildkit module at a pinned
# version, through the Go module proxy only, and cache it by version.
#
#   scripts/buildkit-build.sh       prints the path of buildkitd
#
# `go install module@version` refuses buildkit (its go.mod has exclude
# directives), so the module is copied and built as the main module.
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
BUILDKIT_VERSION=${BUILDKIT_VERSION:-v0.34.2}
cache=${COLIGO_CACHE:-/var/cache/coligo}/buildkit/$BUILDKIT_VERSION
if [ -x "$cache/bin/buildkitd" ]; then echo "$cache/bin/buildkitd"; exit 0; fi

start=$(date +%s)
dir=$(go mod download -json "github.com/moby/buildkit@$BUILDKIT_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "buildkit-build: go mod download github.com/moby/buildkit@$BUILDKIT_VERSION failed" >&2; exit 1; }
src=$(mktemp -d /tmp/coligo-buildkit-src.XXXXXX)
trap 'chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"' EXIT
cp -r "$dir/." "$src" && chmod -R u+w "$src"
cd "$src"
mkdir -p "$cache/bin.tmp"
GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" \
  -o "$cache/bin.tmp/buildkitd" ./cmd/buildkitd >&2
rm -rf "$cache/bin" && mv "$cache/bin.tmp" "$cache/bin"
echo "buildkit-build: built buildkitd $BUILDKIT_VERSION in $(( $(date +%s) - start ))s" >&2
echo "$cache/bin/buildkitd"
