#!/usr/bin/env bash
# make test: install what the tests need, start the real parts they use, run
# every test. Safe to run on a fresh Debian machine as root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

need_go="1.26"
if ! command -v go >/dev/null; then
  echo "go $need_go or newer is required (the machine image ships it in /usr/local/go)" >&2
  exit 1
fi

# Integration tests must not skip here: a missing part fails them.
export COLIGO_REQUIRE_INTEGRATION=1

# The real parts: containerd + runc, CNI plugins, a registry with basic auth,
# buildkitd, and a single-node Kubernetes cluster (buildkitd's and the
# cluster's binaries built once and cached).
source scripts/parts.sh
source scripts/kube.sh
parts_install
kube_install
trap parts_stop EXIT
parts_start
buildkit_start
kube_start

echo "== go vet ($SECONDS s)"
go vet ./...

echo "== build ($SECONDS s)"
version=$(git describe --always --dirty 2>/dev/null || echo dev)
CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/coligo/coligo/internal/version.Version=$version" -o bin/coligo ./cmd/coligo
go build -o bin/coligo-kms-pkcs11 ./cmd/coligo-kms-pkcs11
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/coligo-init ./cmd/coligo-init # PID 1 of instances, beside coligo
# The server the integration and e2e tests run is built with the race
# detector: a race it finds fails the test that saw it (the harness scans
# the server's log), and is a bug to fix.
go build -race -ldflags "-X github.com/coligo/coligo/internal/version.Version=$version" -o bin/coligo-race ./cmd/coligo
export COLIGO_BIN=$PWD/bin/coligo-race COLIGO_KMS_BIN=$PWD/bin/coligo-kms-pkcs11
# The static build, for coligo's own image (run in the test cluster).
export COLIGO_STATIC_BIN=$PWD/bin/coligo

echo "== unit and integration tests ($SECONDS s)"
# Tests keep what they make for people to look at (the console's
# screenshots at 1280 and 390 px) under bin/test-output/_artifacts.
rm -rf bin/test-output && mkdir -p bin/test-output
go test -count=1 -race -timeout 45m -artifacts -outputdir "$PWD/bin/test-output" ./...
# The router's tests ran on its io_uring loops, as coligo serves; once more
# on a goroutine per connection, as where io_uring is refused.
echo "== the router on a goroutine per connection ($SECONDS s)"
COLIGO_ROUTER_RINGS=0 go test -count=1 -race ./internal/router

# Every test removes what it made: no fence rule, bridge or test network
# namespace of coligo may be left on the machine.
echo "== nothing of coligo left on the machine ($SECONDS s)"
left=$( { iptables-save; ip6tables-save; } 2>/dev/null | grep -E 'coligo project network|CLG[IO]-' || true)
bridges=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | grep -E '^clg' || true)
netns=$(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^coligo-t-' || true)
if [ -n "$left$bridges$netns" ]; then
  echo "left behind by the tests:" >&2
  printf '%s\n' "$left" "$bridges" "$netns" >&2
  exit 1
fi

echo "== fuzz targets (short runs; make fuzz runs longer) ($SECONDS s)"
FUZZTIME=${FUZZTIME:-3s} ./scripts/fuzz.sh
echo "== done ($SECONDS s)"
