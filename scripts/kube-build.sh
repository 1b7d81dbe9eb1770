#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager, kube-scheduler and kubelet
# from the k8s.io/kubernetes module at a pinned version, through the Go
# module proxy only, and cache them by version (about 5 minutes on 2 cores).
#
#   scripts/kube-build.sh           prints the directory of the binaries
#
# The module's go.mod replaces k8s.io/* with ./staging/..., which the module
# zip lacks: those replaces are rewritten to the published k8s.io/<name>
# v0.<minor>.<patch> of the same release, and vendor/ and go.work dropped.
set -euo pipefail
export PATH=$PATH:/usr/local/go/bin
KUBE_VERSION=${KUBE_VERSION:-v1.36.3}
cache=${COLIGO_CACHE:-/var/cache/coligo}/kubernetes/$KUBE_VERSION
bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)

have=1
for b in "${bins[@]}"; do [ -x "$cache/bin/$b" ] || have=0; done
if [ $have = 1 ]; then echo "$cache/bin"; exit 0; fi

start=$(date +%s)
staging=v0.${KUBE_VERSION#v1.}
dir=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { echo "kube-build: go mod download k8s.io/kubernetes@$KUBE_VERSION failed" >&2; exit 1; }
src=$(mktemp -d /tmp/coligo-kube-src.XXXXXX)
trap 'chmod -R u+w "$src" 2>/dev/null; rm -rf "$src"' EXIT
cp -r "$dir/." "$src" && chmod -R u+w "$src"
cd "$src"
rm -rf vendor go.work go.work.sum
sed -i -E "s#(k8s.io/[a-z0-9-]+) => \./staging/src/k8s.io/[a-z0-9-]+#\1 => \1 $staging#" go.mod
GOFLAGS=-mod=mod go mod tidy >&2
minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ld="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
mkdir -p "$cache/bin.tmp"
GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" -o "$cache/bin.tmp/" $(printf './cmd/%s ' "${bins[@]}") >&2
rm -rf "$cache/bin" && mv "$cache/bin.tmp" "$cache/bin"
echo "kube-build: built ${bins[*]} $KUBE_VERSION in $(( $(date +%s) - start ))s" >&2
echo "$cache/bin"
