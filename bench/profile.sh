#!/usr/bin/env bash
# Profiles the Varve engine alone under one varve-bench workload with perf (call graphs), and
# prints the top of the flat profile (self time) and of the call graph (children included).
#
#   bench/profile.sh small --small-keys 2000000        # extra args go to varve-bench
#   ENGINE=varve-pread bench/profile.sh halodb-ltm --ltm-keys 60000 --ltm-memory-mb 128
#
# Environment: BUILD_DIR [build], BENCH_DIR [/tmp/varve-bench-profile], PERF_OUT (perf.data path
# [/tmp/varve-bench-<workload>.perf]), TOP [40] lines of each listing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
workload="${1:?usage: bench/profile.sh WORKLOAD [varve-bench args...]}"
shift
BIN="$ROOT/${BUILD_DIR:-build}/bench/varve-bench"
out="${PERF_OUT:-/tmp/varve-bench-$workload.perf}"
perf record -g -o "$out" -- "$BIN" --engines "${ENGINE:-varve}" --workloads "$workload" \
  --no-fio --dir "${BENCH_DIR:-/tmp/varve-bench-profile}" "$@" >/dev/null
echo "==> self time (perf report --no-children)"
perf report -i "$out" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^#' |
  grep '%' | head -n "${TOP:-40}"
echo "==> with children"
perf report -i "$out" --children --sort symbol --stdio -g none 2>/dev/null | grep -v '^#' |
  grep '%' | head -n "${TOP:-40}"
