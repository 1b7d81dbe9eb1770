#!/usr/bin/env bash
# Install axe-core, the accessibility checker the console's browser test
# runs in the page, from the npm registry with the lockfile of
# test/console, and cache it by the lockfile's hash.
#
#   scripts/axe-fetch.sh       prints the path of axe.min.js
set -euo pipefail
cd "$(dirname "$0")/.."
sum=$(sha256sum test/console/package-lock.json | cut -c1-16)
cache=${COLIGO_CACHE:-/var/cache/coligo}/axe/$sum
if [ -f "$cache/node_modules/axe-core/axe.min.js" ]; then echo "$cache/node_modules/axe-core/axe.min.js"; exit 0; fi
tmp="$cache.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
cp test/console/package.json test/console/package-lock.json "$tmp/"
(cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund >&2)
rm -rf "$cache" && mv "$tmp" "$cache"
echo "axe-fetch: installed axe-core from test/console/package-lock.json" >&2
echo "$cache/node_modules/axe-core/axe.min.js"
