#!/usr/bin/env bash
# Varve against RocksDB, LevelDB, LMDB, tkrzw and Kyoto Cabinet, side by side in one run, with
# fio's device limits: builds varve-bench (Release) and runs it. See bench/README.md.
#
#   OUT=report.md bench/engines.sh                 # full scale (about 40 minutes)
#   SMALL_KEYS=2000000 RECOVERY_KEYS=2000000 bench/engines.sh   # scaled down
#
# Environment (defaults in brackets):
#   SKIP_BUILD=1      reuse the build in BUILD_DIR [build]
#   BENCH_DIR         data directory, emptied; on the disk under test [/tmp/varve-bench]
#   WORKLOADS         comma list [small,halodb,halodb-ltm,scan,recovery,sync]
#   ENGINES           comma list [varve,varve-ordered,varve-pread,rocksdb,leveldb,lmdb,
#                     tkrzw-hash,tkrzw-tree,kyoto-hash]
#   SMALL_KEYS [10000000]  HALODB_KEYS [200000]  LTM_KEYS [600000]  LTM_MEMORY_MB [1024]
#   SCAN_KEYS [2000000]  RECOVERY_KEYS [10000000]  SYNC_SECONDS [5]  MIXED_SECONDS [10]
#   LTM_SECONDS [20]  FIO_SECONDS [10]
#   EXTRA_ARGS        more varve-bench flags (build/bench/varve-bench --help)
#   OUT               also write the Markdown report to this file
# Needs root for the memory cgroup (larger-than-memory run) and for dropping the page cache;
# without root those parts say so in the report.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/common.sh"

# Benchmark-only packages (not needed by the build or ./scripts/test).
BENCH_PACKAGES=(librocksdb-dev libleveldb-dev liblmdb-dev libtkrzw-dev libkyotocabinet-dev fio
  linux-perf)
BUILD_DIR="${BUILD_DIR:-build}"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  ensure_packages "${BENCH_PACKAGES[@]}"
  build "$BUILD_DIR" Release -- varve-bench
fi
BIN="$ROOT/$BUILD_DIR/bench/varve-bench"
if [[ ! -x "$BIN" ]]; then
  echo "engines.sh: $BIN missing (are all peer libraries installed? see cmake's output)" >&2
  exit 1
fi

args=(
  --dir "${BENCH_DIR:-/tmp/varve-bench}"
  --workloads "${WORKLOADS:-small,halodb,halodb-ltm,scan,recovery,sync}"
  --engines "${ENGINES:-varve,varve-ordered,varve-pread,rocksdb,leveldb,lmdb,tkrzw-hash,tkrzw-tree,kyoto-hash}"
  --small-keys "${SMALL_KEYS:-10000000}"
  --halodb-keys "${HALODB_KEYS:-200000}"
  --ltm-keys "${LTM_KEYS:-600000}"
  --ltm-memory-mb "${LTM_MEMORY_MB:-1024}"
  --ltm-seconds "${LTM_SECONDS:-20}"
  --scan-keys "${SCAN_KEYS:-2000000}"
  --recovery-keys "${RECOVERY_KEYS:-10000000}"
  --sync-seconds "${SYNC_SECONDS:-5}"
  --mixed-seconds "${MIXED_SECONDS:-10}"
  --fio-seconds "${FIO_SECONDS:-10}"
)
if [[ -n "${OUT:-}" ]]; then args+=(--out "$OUT"); fi
# shellcheck disable=SC2206
extra=(${EXTRA_ARGS:-})
exec "$BIN" "${args[@]}" "${extra[@]}"
