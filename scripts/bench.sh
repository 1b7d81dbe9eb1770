#!/usr/bin/env bash
# make bench: the benchmarks recorded in BENCHMARKS.md. Starts the real parts
# (containerd, registry, the single-node Kubernetes cluster) as make test does.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
source scripts/parts.sh
source scripts/kube.sh
parts_install
kube_install
# The proxies bench/router compares the router with, its load generator,
# and perf, which counts their system calls; installed without starting
# their services (the bench starts its own).
missing=()
for tool in wrk nginx haproxy; do command -v "$tool" >/dev/null || missing+=("$tool"); done
command -v perf >/dev/null || missing+=(linux-perf)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
fi
trap parts_stop EXIT
parts_start
kube_start
echo "== go test -run '^\$' -bench BenchmarkSealingCost -benchtime 20000x ./internal/store"
go test -run '^$' -bench BenchmarkSealingCost -benchtime 20000x ./internal/store
echo
echo "== go run ./bench/api -bin bin/coligo"
go run ./bench/api -bin bin/coligo
echo
echo "== go run ./bench/jobrun -bin bin/coligo"
go run ./bench/jobrun -bin bin/coligo 2>&1 | grep -v 'level=info'
echo
echo "== go run ./bench/app -bin bin/coligo"
go run ./bench/app -bin bin/coligo 2>&1 | grep -v 'level='
echo
echo "== go run ./bench/router -bin bin/coligo -d 4s -rounds 3"
go run ./bench/router -bin bin/coligo -d 4s -rounds 3 2>&1 | grep -v 'level='
echo
echo "== go test -run '^\$' -bench Proxy -benchtime 3s ./internal/router"
go test -run '^$' -bench Proxy -benchtime 3s ./internal/router
echo
echo "== go run ./bench/console -bin bin/coligo"
go run ./bench/console -bin bin/coligo -chromium "$COLIGO_TEST_CHROMIUM"
echo
echo "== go run ./bench/keys -bin bin/coligo -kms bin/coligo-kms-pkcs11"
go run ./bench/keys -bin bin/coligo -kms bin/coligo-kms-pkcs11
echo
echo "== go test -run '^\$' -bench BenchmarkDEKRotation -benchtime 5x ./internal/store"
go test -run '^$' -bench BenchmarkDEKRotation -benchtime 5x ./internal/store
