#!/usr/bin/env bash
# Build Pebble, Let's Encrypt's ACME test server, and its DNS companion
# pebble-challtestsrv from the github.com/letsencrypt/pebble module at a
# pinned version, through the Go module proxy only, and cache them by
# version with Pebble's test certificate (for its directory's HTTPS) and
# the CA that signed it.
#
#   scripts/pebble-build.sh       prints the directory that holds them
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
PEBBLE_VERSION=${PEBBLE_VERSION:-v2.10.3}
cache=${COLIGO_CACHE:-/var/cache/coligo}/pebble/$PEBBLE_VERSION
if [ -x "$cache/pebble" ] && [ -x "$cache/pebble-challtestsrv" ] && [ -f "$cache/ca.pem" ]; then echo "$cache"; exit 0; fi

mod=github.com/letsencrypt/pebble/v2
tmp="$cache.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
GOBIN="$tmp" GOFLAGS=-mod=mod go install -trimpath "$mod/cmd/pebble@$PEBBLE_VERSION" "$mod/cmd/pebble-challtestsrv@$PEBBLE_VERSION" >&2
dir=$(go mod download -json "$mod@$PEBBLE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
cp "$dir/test/certs/localhost/cert.pem" "$tmp/cert.pem"
cp "$dir/test/certs/localhost/key.pem" "$tmp/key.pem"
cp "$dir/test/certs/pebble.minica.pem" "$tmp/ca.pem"
rm -rf "$cache" && mv "$tmp" "$cache"
echo "pebble-build: built pebble $PEBBLE_VERSION" >&2
echo "$cache"
