#!/usr/bin/env bash
# server_bench.sh: varved against redis-server and memcached, side by side in one run on
# 127.0.0.1 (free ports picked at start). Prints one Markdown table per part with ops/s, the
# ratio varved/peer and whether the target is met.
#
#   bench/server_bench.sh                  # ~2 minutes: installs, builds Release, runs
#   REDIS_N=2000000 REDIS_N16=8000000 MC_SECONDS=20 ROUNDS=3 bench/server_bench.sh  # longer
#
# Part 1, Redis protocol: redis-benchmark -t set,get -c 50 -d 100 -r KEYS, with -P 1 -n REDIS_N
# and -P 16 -n REDIS_N16, against redis-server (--appendonly yes --appendfsync everysec
# --save '') and varved (--durability interval --sync-interval-ms 1000).
# Targets: SET and GET >= 1.0x redis-server.
# Part 2, memcached protocol: mc-load (bench/mc_load.cc) in modes set, get, ms, mg with MC_CONNS
# connections and pipelines of MC_PIPELINE, against memcached (-U 0 -m 1024 -t 2) and varved.
# Target: >= 0.8x memcached.
#
# Environment (defaults in brackets):
#   REDIS_N [500000]      requests per redis-benchmark test without pipelining (-P 1)
#   REDIS_N16 [2000000]   requests per redis-benchmark test with -P 16
#   KEYS [100000]         key space (redis-benchmark -r, mc-load --keys); 100-byte values
#   MC_SECONDS [5]        duration of each mc-load run
#   MC_CONNS [50]         mc-load connections;  MC_PIPELINE [16] requests per batch
#   MC_THREADS [1]        mc-load client threads (one event loop, like redis-benchmark)
#   ROUNDS [1]            repeat both parts; each round prints its own tables
#   VARVED_THREADS [0]    varved --threads (0: one per CPU)
#   BUILD_DIR [build]     build directory (relative to the repository)
#   SKIP_BUILD [0]        1: use the binaries already in BUILD_DIR, install nothing
#   PERF_DIR []           if set: perf record -g on varved during each of its runs, into this dir
#   OUT []                if set: also write the tables to this file
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # (scripts/common.sh: ensure_packages, build)
source "$ROOT/scripts/common.sh"

REDIS_N="${REDIS_N:-500000}"
REDIS_N16="${REDIS_N16:-2000000}"
KEYS="${KEYS:-100000}"
VALUE_BYTES=100
MC_SECONDS="${MC_SECONDS:-5}"
MC_CONNS="${MC_CONNS:-50}"
MC_PIPELINE="${MC_PIPELINE:-16}"
MC_THREADS="${MC_THREADS:-1}"
ROUNDS="${ROUNDS:-1}"
VARVED_THREADS="${VARVED_THREADS:-0}"
BUILD_DIR="${BUILD_DIR:-build}"
SKIP_BUILD="${SKIP_BUILD:-0}"
PERF_DIR="${PERF_DIR:-}"
OUT="${OUT:-}"

if [[ "$SKIP_BUILD" != 1 ]]; then
  ensure_packages redis-server redis-tools memcached
  build "$BUILD_DIR" Release -- varved mc-load
fi
VARVED="$ROOT/$BUILD_DIR/tools/varved"
MC_LOAD="$ROOT/$BUILD_DIR/bench/mc-load"
for b in "$VARVED" "$MC_LOAD" redis-server redis-benchmark memcached; do
  command -v "$b" >/dev/null || { echo "server_bench: $b not found" >&2; exit 1; }
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/varve-server-bench.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on 127.0.0.1, not handed out before in this run.
USED_PORTS=" "
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 40000))
    [[ "$USED_PORTS" == *" $port "* ]] && continue
    if ! ss -Htan "( sport = :$port )" | grep -q .; then
      USED_PORTS+="$port "
      echo "$port"
      return
    fi
  done
}

# wait_port NAME PID PORT: until PORT accepts a connection (or the process dies / 20 s pass).
wait_port() {
  local name="$1" pid="$2" port="$3"
  for _ in $(seq 200); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "server_bench: $name exited at start; its log:" >&2
      cat "$TMP/$name.log" >&2 || true
      exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "server_bench: $name did not listen on port $port" >&2
  exit 1
}

REDIS_PORT="$(free_port)"
MEMCACHED_PORT="$(free_port)"
VARVED_REDIS_PORT="$(free_port)"
VARVED_MC_PORT="$(free_port)"
mkdir -p "$TMP/redis" "$TMP/varved"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode no --daemonize no \
  --appendonly yes --appendfsync everysec --save '' --dir "$TMP/redis" \
  --logfile "$TMP/redis-server.log" &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
mc_user=()
if [[ $(id -u) -eq 0 ]]; then mc_user=(-u root); fi
memcached -p "$MEMCACHED_PORT" -l 127.0.0.1 -U 0 -m 1024 -t 2 "${mc_user[@]}" \
  >"$TMP/memcached.log" 2>&1 &
MEMCACHED_PID=$!
PIDS+=("$MEMCACHED_PID")
"$VARVED" --data-dir "$TMP/varved" --bind 127.0.0.1 --redis-port "$VARVED_REDIS_PORT" \
  --memcached-port "$VARVED_MC_PORT" --http-port 0 --threads "$VARVED_THREADS" \
  --durability interval --sync-interval-ms 1000 >"$TMP/varved.log" 2>&1 &
VARVED_PID=$!
PIDS+=("$VARVED_PID")
wait_port redis-server "$REDIS_PID" "$REDIS_PORT"
wait_port memcached "$MEMCACHED_PID" "$MEMCACHED_PORT"
wait_port varved "$VARVED_PID" "$VARVED_REDIS_PORT"
wait_port varved "$VARVED_PID" "$VARVED_MC_PORT"

FAILED=0
REPORT=""
emit() { # prints a line and keeps it for OUT
  echo "$1"
  REPORT+="$1"$'\n'
}

# with_perf NAME CMD...: runs CMD; with PERF_DIR set, records varved's stacks meanwhile.
with_perf() {
  local name="$1" perf_pid="" rc=0
  shift
  if [[ -n "$PERF_DIR" ]]; then
    mkdir -p "$PERF_DIR"
    perf record -g -q -p "$VARVED_PID" -o "$PERF_DIR/$name.data" >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.3
  fi
  "$@" || rc=$?
  if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
  fi
  return "$rc"
}

# redis_run PORT P SERVER: redis-benchmark SET and GET; sets RB[SERVER,P,SET|GET] = "rps p50 p99".
declare -A RB
redis_run() {
  local port="$1" p="$2" server="$3" out line test rps p50 p99 n="$REDIS_N"
  ((p > 1)) && n="$REDIS_N16"
  # shellcheck disable=SC2054  # (set,get is one argument)
  local cmd=(redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -P "$p" -c 50 -d "$VALUE_BYTES"
    -n "$n" -r "$KEYS" -q --csv)
  if [[ "$server" == varved ]]; then
    out="$(with_perf "redis-P$p" "${cmd[@]}" 2>&1)" || true
  else
    out="$("${cmd[@]}" 2>&1)" || true
  fi
  RB["$server,$p,SET"]="ERR - -"
  RB["$server,$p,GET"]="ERR - -"
  while IFS= read -r line; do
    # "SET","363636.34","2.081","0.216","1.879","4.783","5.679","7.863"
    IFS=, read -r test rps _ _ p50 _ p99 _ <<<"${line//\"/}"
    if [[ "$test" == SET || "$test" == GET ]]; then
      RB["$server,$p,$test"]="$rps $p50 $p99"
    fi
  done <<<"$out"
  if [[ "${RB[$server,$p,SET]}" == ERR* || "${RB[$server,$p,GET]}" == ERR* ]]; then
    echo "server_bench: redis-benchmark against $server -P $p failed:" >&2
    echo "$out" >&2
    FAILED=1
  fi
}

# mc_run PORT MODE SERVER: sets MC[SERVER,MODE] = "ops p50_us p99_us errors misses".
declare -A MC
mc_run() {
  local port="$1" mode="$2" server="$3" out rc=0 row
  local cmd=("$MC_LOAD" --port "$port" --mode "$mode" -c "$MC_CONNS" -P "$MC_PIPELINE"
    -t "$MC_THREADS" --keys "$KEYS" --value-bytes "$VALUE_BYTES" --seconds "$MC_SECONDS" --csv)
  if [[ "$server" == varved ]]; then
    out="$(with_perf "mc-$mode" "${cmd[@]}" 2>"$TMP/mc-load.err")" || rc=$?
  else
    out="$("${cmd[@]}" 2>"$TMP/mc-load.err")" || rc=$?
  fi
  row="$(tail -n 1 <<<"$out")"
  if [[ "$row" == "$mode,"* ]]; then
    # mode,ops_per_sec,requests,seconds,p50_us,p99_us,errors,misses
    IFS=, read -r _ ops _ _ p50 p99 errors misses <<<"$row"
    MC["$server,$mode"]="$ops $p50 $p99 $errors $misses"
  else
    MC["$server,$mode"]="ERR - - - -"
  fi
  if ((rc != 0)); then
    echo "server_bench: mc-load $mode against $server exited $rc:" >&2
    cat "$TMP/mc-load.err" >&2
    FAILED=1
  fi
}

fmt_int() { # 123456.7 -> 123,457
  if [[ "$1" =~ ^[0-9.]+$ ]]; then
    printf "%.0f" "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'
  else
    echo "$1"
  fi
}

us_to_ms() { # 1234 -> 1.23
  if [[ "$1" =~ ^[0-9]+$ ]]; then awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; else echo "$1"; fi
}

# verdict VARVED PEER TARGET: prints "| ratio | >= target x | yes/no |".
verdict() {
  local v="$1" peer="$2" target="$3"
  if [[ "$v" == ERR || "$peer" == ERR ]]; then
    echo "| - | >= ${target}x | error |"
    return
  fi
  awk -v v="$v" -v p="$peer" -v t="$target" 'BEGIN {
    r = v / p; printf "| %.2fx | >= %.1fx | %s |\n", r, t, (r >= t ? "**yes**" : "no") }'
}

machine_notes() {
  local rev
  rev="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  git -C "$ROOT" diff --quiet HEAD 2>/dev/null || rev+=" + uncommitted changes"
  emit "Run $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) CPUs; load average before: $(
    cut -d' ' -f1-3 /proc/loadavg). varved $rev (--threads $VARVED_THREADS, 0 = one per CPU);"
  emit "$(redis-server --version | cut -d' ' -f1-3); $(memcached --version); keys $KEYS, values $VALUE_BYTES B."
  emit ""
}

machine_notes
for ((round = 1; round <= ROUNDS; round++)); do
  # Alternate which server goes first in each pair, so neither always runs on a warmer machine.
  if ((round % 2 == 1)); then order=(peer varved); else order=(varved peer); fi

  for p in 1 16; do
    for who in "${order[@]}"; do
      if [[ "$who" == peer ]]; then
        redis_run "$REDIS_PORT" "$p" redis-server
      else
        redis_run "$VARVED_REDIS_PORT" "$p" varved
      fi
    done
  done
  for mode in set get ms mg; do
    for who in "${order[@]}"; do
      if [[ "$who" == peer ]]; then
        mc_run "$MEMCACHED_PORT" "$mode" memcached
      else
        mc_run "$VARVED_MC_PORT" "$mode" varved
      fi
    done
  done

  suffix=""
  ((ROUNDS > 1)) && suffix=" (round $round of $ROUNDS)"
  emit "#### Redis protocol$suffix"
  emit ""
  emit "redis-benchmark -t set,get -c 50 -d $VALUE_BYTES -r $KEYS, -n $REDIS_N (-P 1) / $REDIS_N16 (-P 16);\
 latency per request."
  emit ""
  emit "| test | server | ops/s | p50 ms | p99 ms | varved/peer | target | met |"
  emit "|---|---|---:|---:|---:|---:|---|---|"
  for p in 1 16; do
    for t in SET GET; do
      read -r prps pp50 pp99 <<<"${RB[redis-server,$p,$t]}"
      read -r vrps vp50 vp99 <<<"${RB[varved,$p,$t]}"
      emit "| $t -P $p | redis-server (AOF everysec) | $(fmt_int "$prps") | $pp50 | $pp99 | | | |"
      emit "| $t -P $p | varved (interval 1 s) | $(fmt_int "$vrps") | $vp50 | $vp99 $(
        verdict "$vrps" "$prps" 1.0)"
    done
  done
  emit ""
  emit "#### memcached protocol$suffix"
  emit ""
  emit "mc-load -c $MC_CONNS -P $MC_PIPELINE -t $MC_THREADS --keys $KEYS --value-bytes $VALUE_BYTES \
--seconds $MC_SECONDS (get/mg preload every key first); latency per batch of $MC_PIPELINE."
  emit ""
  emit "| mode | server | ops/s | p50 ms | p99 ms | errors | varved/peer | target | met |"
  emit "|---|---|---:|---:|---:|---:|---:|---|---|"
  for mode in set get ms mg; do
    read -r pops pp50 pp99 perr _ <<<"${MC[memcached,$mode]}"
    read -r vops vp50 vp99 verr _ <<<"${MC[varved,$mode]}"
    emit "| $mode | memcached -t 2 | $(fmt_int "$pops") | $(us_to_ms "$pp50") | $(us_to_ms "$pp99") | $perr | | | |"
    emit "| $mode | varved | $(fmt_int "$vops") | $(us_to_ms "$vp50") | $(us_to_ms "$vp99") | $verr $(
      verdict "$vops" "$pops" 0.8)"
  done
  emit ""
done

if [[ -n "$OUT" ]]; then printf '%s' "$REPORT" >"$OUT"; fi
if ((FAILED)); then
  echo "server_bench: some runs failed (see above)" >&2
  exit 1
fi
