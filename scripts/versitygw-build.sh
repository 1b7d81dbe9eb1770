#!/usr/bin/env bash
# Build the Versity S3 Gateway (an S3-compatible server over a directory,
# Apache-2.0) from the github.com/versity/versitygw module at a pinned
# version, through the Go module proxy only, and cache it by version. The
# tests run it as the object store of persistent data stores.
#
#   scripts/versitygw-build.sh       prints the path of versitygw
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
cache=${COLIGO_CACHE:-/var/cache/coligo}/versitygw/$VERSITYGW_VERSION
if [ -x "$cache/versitygw" ]; then echo "$cache/versitygw"; exit 0; fi
start=$(date +%s)
rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
GOBIN="$cache.tmp" GOFLAGS=-mod=mod go install -trimpath "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" >&2
rm -rf "$cache" && mv "$cache.tmp" "$cache"
echo "versitygw-build: built versitygw $VERSITYGW_VERSION in $(( $(date +%s) - start ))s" >&2
echo "$cache/versitygw"
