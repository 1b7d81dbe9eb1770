#!/usr/bin/env bash
# make bench: the benchmarks recorded in BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
echo "== go test -run '^\$' -bench BenchmarkSealingCost -benchtime 20000x ./internal/store"
go test -run '^$' -bench BenchmarkSealingCost -benchtime 20000x ./internal/store
echo
echo "== go run ./bench/api -bin bin/coligo"
go run ./bench/api -bin bin/coligo
