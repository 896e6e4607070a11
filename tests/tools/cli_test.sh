#!/usr/bin/env bash
# Black-box test of the varve CLI: drives the binary as a user would and checks outputs (byte for
# byte where it matters) and exit codes. Prints PASS/FAIL per check; exits 1 if any failed.
# Usage: cli_test.sh PATH_TO_VARVE
# Conditions are passed to check in single quotes and evaluated late; out_is takes a format.
# shellcheck disable=SC2016,SC2059
set -u

VARVE=${1:?usage: cli_test.sh PATH_TO_VARVE}
if [[ ! -x $VARVE ]]; then
  echo "FAIL varve binary not executable: $VARVE"
  exit 1
fi
export LC_ALL=C  # byte order for sort, byte semantics for grep

TMP=$(mktemp -d)
holder_pid=""
cleanup() {
  if [[ -n $holder_pid ]]; then
    kill "$holder_pid" 2>/dev/null
    wait "$holder_pid" 2>/dev/null
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

failures=0
pass() { echo "PASS $1"; }
fail() {
  echo "FAIL $1${2:+: $2}"
  failures=$((failures + 1))
}

# Runs varve; stdout goes to $TMP/out (exact bytes), stderr to $TMP/err, status to $rc.
run() {
  "$VARVE" "$@" >"$TMP/out" 2>"$TMP/err"
  rc=$?
}

# check NAME CONDITION...: PASS if the command succeeds, else FAIL with varve's output.
check() {
  local name=$1
  shift
  if "$@"; then
    pass "$name"
  else
    fail "$name" "rc=$rc stdout=$(head -c 300 "$TMP/out" | tr '\n' '|') stderr=$(head -c 300 "$TMP/err" | tr '\n' '|')"
  fi
}
# True if stdout is exactly the given bytes (printf format and arguments).
out_is() { cmp -s "$TMP/out" <(printf "$@"); }
out_empty() { [[ ! -s $TMP/out ]]; }
err_has() { grep -qF -- "$1" "$TMP/err"; }
out_has() { grep -qF -- "$1" "$TMP/out"; }
out_lines() { [[ $(wc -l <"$TMP/out") -eq $1 ]]; }
rc_is() { [[ $rc -eq $1 ]]; }

DB=$TMP/db

# --- help and usage -------------------------------------------------------------------------
run --help
check "help exits 0 and lists subcommands" eval 'rc_is 0 && out_has "Usage" && out_has "check"'
run -d "$DB" load --help
check "subcommand help describes its format" eval 'rc_is 0 && out_has "jsonl"'
run -d "$DB" frobnicate
check "unknown subcommand is a usage error" rc_is 2
run put k v
check "missing --data-dir is a usage error" eval 'rc_is 2 && err_has "data-dir"'
run -d "$TMP/nonexistent" get k
check "get on a missing store fails without creating it" \
  eval '[[ $rc -ne 0 && ! -e $TMP/nonexistent ]] && err_has "nonexistent"'

# --- put / get / del ------------------------------------------------------------------------
run -d "$DB" put k1 v1
check "put exits 0 silently" eval 'rc_is 0 && out_empty'
run -d "$DB" get k1
check "get prints the value and a newline" eval 'rc_is 0 && out_is "v1\n"'
run -d "$DB" put k1 'v2 with spaces'
run -d "$DB" get k1
check "put overwrites" eval 'rc_is 0 && out_is "v2 with spaces\n"'
run --data-dir "$DB" del k1
check "del exits 0" eval 'rc_is 0 && out_empty'
run -d "$DB" get k1
check "get after del: exit 1, empty stdout, stderr names the key" \
  eval 'rc_is 1 && out_empty && err_has "k1"'
run -d "$DB" get no-such-key
check "get of a missing key: exit 1, empty stdout, stderr names the key" \
  eval 'rc_is 1 && out_empty && err_has "no-such-key"'
run -d "$DB" del no-such-key
check "del of a missing key is not an error" rc_is 0
run get k1 -d "$DB"
check "global options may follow the subcommand" rc_is 1

run -d "$DB" put raw $'line1\nline2\ttab  '
run -d "$DB" get --raw raw
check "get --raw prints the exact bytes" eval 'rc_is 0 && out_is "line1\nline2\ttab  "'
run -d "$DB" get raw
check "get without --raw appends one newline" eval 'rc_is 0 && out_is "line1\nline2\ttab  \n"'
run -d "$DB" put -- -dash -5
run -d "$DB" get -- -dash
check "keys and values starting with '-' after --" eval 'rc_is 0 && out_is -- "-5\n"'
run -d "$DB" put 'ключ ☃' 'значение 日本'
run -d "$DB" get 'ключ ☃'
check "unicode key and value" eval 'rc_is 0 && out_is "значение 日本\n"'

# --- ttl --------------------------------------------------------------------------------------
run -d "$DB" put short-lived v --ttl 1
run -d "$DB" get short-lived
check "ttl key readable before it expires" eval 'rc_is 0 && out_is "v\n"'
sleep 1.5
run -d "$DB" get short-lived
check "ttl key gone after it expires" eval 'rc_is 1 && out_empty'
run -d "$DB" put k v --ttl -3
check "negative ttl is a usage error" rc_is 2

# --- load tsv / jsonl -------------------------------------------------------------------------
{
  for i in $(seq 0 49); do printf 'p:%d\tvalue %d\n' "$i" "$i"; done
  for i in $(seq 0 19); do printf 'q:%d\tq%d\n' "$i" "$i"; done
  printf 'tab\tA\tB\tC\n'
  printf 'uni\tnaïve ☃ 日本\n'
} >"$TMP/data.tsv"
run -d "$DB" load "$TMP/data.tsv"
check "load tsv exits 0 with a summary on stderr" eval 'rc_is 0 && out_empty && err_has "72 records"'
run -d "$DB" get --raw tab
check "tsv value keeps the tabs after the first" eval 'rc_is 0 && out_is "A\tB\tC"'
run -d "$DB" get uni
check "tsv unicode value" eval 'rc_is 0 && out_is "naïve ☃ 日本\n"'

printf 'm:1\tone\nm:2\ttwo\nthis line has no tab\nm:4\tfour\n' >"$TMP/bad.tsv"
run -d "$DB" load "$TMP/bad.tsv"
check "malformed tsv line: non-zero exit naming file and line" \
  eval '[[ $rc -ne 0 ]] && err_has "bad.tsv" && err_has "line 3"'
run -d "$DB" get m:2
check "records before the malformed line are loaded" eval 'rc_is 0 && out_is "two\n"'
run -d "$DB" get m:4
check "records after the malformed line are not" rc_is 1

cat >"$TMP/data.jsonl" <<'EOF'
{"key": "j:1", "value": "x\ty"}
{"key": "j:2", "value": "snow \u2603", "ttl": 3600}

{"key": "j:\u00e9", "value": "日本"}
EOF
run -d "$DB" load "$TMP/data.jsonl" --format jsonl
check "load jsonl exits 0" eval 'rc_is 0 && err_has "3 records"'
run -d "$DB" get --raw j:1
check "jsonl value with an escaped tab" eval 'rc_is 0 && out_is "x\ty"'
run -d "$DB" get j:2
check "jsonl value with a unicode escape and a ttl" eval 'rc_is 0 && out_is "snow ☃\n"'
run -d "$DB" get 'j:é'
check "jsonl unicode key" eval 'rc_is 0 && out_is "日本\n"'
printf '{"key": "jb:1", "value": "v"}\n{"key": "jb:2", "value": \n' >"$TMP/bad.jsonl"
run -d "$DB" load --format jsonl "$TMP/bad.jsonl"
check "malformed jsonl line: non-zero exit naming file and line" \
  eval '[[ $rc -ne 0 ]] && err_has "bad.jsonl" && err_has "line 2"'
printf '{"key": "jb:3", "value": 7}\n' >"$TMP/bad2.jsonl"
run -d "$DB" load --format jsonl "$TMP/bad2.jsonl"
check "jsonl non-string value is rejected" eval '[[ $rc -ne 0 ]] && err_has "line 1"'
printf 's:1\tfrom stdin\n' | "$VARVE" -d "$DB" load - >"$TMP/out" 2>"$TMP/err"
rc=$?
run -d "$DB" get s:1
check "load - reads stdin" eval 'rc_is 0 && out_is "from stdin\n"'

# --- scan ---------------------------------------------------------------------------------------
run -d "$DB" scan --prefix p:
check "scan --prefix returns every match" eval 'rc_is 0 && out_lines 50'
run -d "$DB" scan --prefix p: --limit 7
check "scan --limit" eval 'rc_is 0 && out_lines 7'
run -d "$DB" scan --prefix p:7
check "scan line is key<TAB>value" eval 'rc_is 0 && out_is "p:7\tvalue 7\n"'
run -d "$DB" --index ordered scan --prefix q:
check "ordered scan is in key order" \
  eval 'rc_is 0 && out_lines 20 && cmp -s "$TMP/out" <(sort "$TMP/out")'
run -d "$DB" --index ordered scan --start q:10 --end q:2
cp "$TMP/out" "$TMP/ordered_range"
check "ordered scan --start/--end" \
  eval 'rc_is 0 && out_lines 10 && head -1 "$TMP/out" | cmp -s - <(printf "q:10\tq10\n")'
run -d "$DB" scan --start q:10 --end q:2
check "hash scan --start/--end returns the same keys" \
  eval 'rc_is 0 && out_lines 10 && cmp -s <(sort "$TMP/out") "$TMP/ordered_range"'

# --- stats ------------------------------------------------------------------------------------
SDB=$TMP/stats
"$VARVE" -d "$SDB" put a 1 && "$VARVE" -d "$SDB" put b 2 && "$VARVE" -d "$SDB" put c 3 &&
  "$VARVE" -d "$SDB" del b
run -d "$SDB" stats
check "stats is a JSON object with keys == 2" eval 'rc_is 0 && /usr/bin/python3 -c "
import json, sys
d = json.load(sys.stdin)
assert d[\"keys\"] == 2, d
for f in (\"live_bytes\", \"dead_bytes\", \"segments\", \"disk_bytes\", \"write_amplification\"):
    assert f in d, f
" <"$TMP/out"'

# --- compact ----------------------------------------------------------------------------------
CDB=$TMP/compact
for round in 1 2 3; do
  awk -v r="$round" 'BEGIN { v = sprintf("%900s", ""); gsub(/ /, "x", v);
    for (i = 0; i < 1500; i++) printf "c:%d\t%s%d\n", i, v, r }' >"$TMP/c.tsv"
  "$VARVE" -d "$CDB" --segment-size-mb 1 load "$TMP/c.tsv" 2>/dev/null || fail "compact: load $round"
done
# Background compaction may already have reclaimed the rounds above. A key written twice in one
# batch leaves dead bytes in the active segment, where only an explicit compact reclaims them.
big=$(head -c 100000 /dev/zero | tr '\0' z)
printf 'dup\t%s\ndup\t%s\n' "$big" "$big" | "$VARVE" -d "$CDB" --segment-size-mb 1 load - 2>/dev/null
run -d "$CDB" --segment-size-mb 1 compact
check "compact exits 0 and reports segments and disk bytes" \
  eval 'rc_is 0 && out_has "segments: " && out_has "disk_bytes: "'
read -r disk_before disk_after < <(awk '$1 == "disk_bytes:" { print $2, $4 }' "$TMP/out")
dead_after=$(awk '$1 == "dead_bytes:" { print $4 }' "$TMP/out")
check "compact reclaims space (disk bytes $disk_before -> $disk_after, dead bytes -> $dead_after)" \
  eval '[[ -n $disk_after && $disk_after -lt $disk_before && $dead_after == 0 ]]'
run -d "$CDB" scan --prefix c:
check "all keys survive compaction" eval 'rc_is 0 && out_lines 1500'
run -d "$CDB" get --raw c:1234
check "compacted key has its latest value" eval 'rc_is 0 && grep -q "x3$" "$TMP/out"'

# --- check ------------------------------------------------------------------------------------
run -d "$CDB" check
check "check on a clean store exits 0" eval 'rc_is 0 && out_has "no damage"'
run -d "$DB" check
check "check on a clean store with deletes and ttls exits 0" eval 'rc_is 0 && out_has "no damage"'
run -d "$TMP/nonexistent" check
check "check of a missing directory is an error" eval '[[ $rc -ne 0 && $rc -ne 1 ]]'

XDB=$TMP/damaged
# The first record of the first segment starts right after the 32-byte header.
"$VARVE" -d "$XDB" put big "$(printf 'x%.0s' $(seq 2000))"
awk 'BEGIN { for (i = 0; i < 500; i++) printf "d:%d\tsome value %d\n", i, i }' |
  "$VARVE" -d "$XDB" load - 2>/dev/null
seg=$XDB/0000000001.vlog
if [[ -f $seg ]]; then
  printf 'y' | dd of="$seg" bs=1 seek=1032 conv=notrunc status=none
  run -d "$XDB" check
  check "check after a flipped byte exits 1 naming file and offset" \
    eval 'rc_is 1 && out_has "0000000001.vlog offset 32:" && out_has "checksum"'
else
  fail "check after a flipped byte" "no segment file $seg"
fi

# --- a store held by another process ------------------------------------------------------------
LDB=$TMP/locked
"$VARVE" -d "$LDB" put held yes
mkfifo "$TMP/fifo"
exec 3<>"$TMP/fifo"  # keeps a writer open, so the holder's read blocks instead of seeing EOF
"$VARVE" -d "$LDB" load - <"$TMP/fifo" 2>/dev/null &
holder_pid=$!
for _ in $(seq 100); do  # wait until the holder has the lock (it writes its pid into LOCK)
  [[ $(cat "$LDB/LOCK" 2>/dev/null) == "$holder_pid" ]] && break
  sleep 0.05
done
run -d "$LDB" get held
check "second process gets a Busy error naming the holder's pid" \
  eval '[[ $rc -ne 0 ]] && out_empty && err_has "locked" && err_has "$holder_pid"'
run -d "$LDB" check
check "check works while another process holds the store" eval 'rc_is 0 && out_has "no damage"'
kill "$holder_pid" 2>/dev/null
wait "$holder_pid" 2>/dev/null
holder_pid=""
exec 3>&-
run -d "$LDB" get held
check "store opens again once the holder is gone" eval 'rc_is 0 && out_is "yes\n"'

# --- table ------------------------------------------------------------------------------------
T=$TMP/tables
mkdir -p "$T"
printf 'b\t2\na\t1\nc\t3\na\t9\n' >"$T/in.tsv"
run table build "$T/in.tsv" "$T/t1"
check "table build from unsorted tsv (last line wins)" eval 'rc_is 0 && [[ -f $T/t1 ]]'
run table scan "$T/t1"
check "table scan prints key order" eval 'rc_is 0 && out_is "a\t9\nb\t2\nc\t3\n"'
run table get "$T/t1" b
check "table get" eval 'rc_is 0 && out_is "2\n"'
run table get "$T/t1" zz
check "table get of a missing key exits 1" eval 'rc_is 1 && out_empty && err_has "not found"'
run table build --sorted "$T/in.tsv" "$T/bad"
check "table build --sorted refuses out-of-order input, naming the line" \
  eval 'rc_is 2 && err_has "line 2" && err_has "out of order" && [[ ! -e $T/bad ]]'
printf '{"key":"a","delete":true}\n{"key":"d","value":"4"}\n' >"$T/in.jsonl"
run table build --format jsonl --compression zstd "$T/in.jsonl" "$T/t2"
check "table build from JSON lines with a tombstone" eval 'rc_is 0'
run table merge "$T/t1" "$T/t2" -o "$T/m"
run table scan "$T/m"
check "table merge: later input wins, tombstones dropped" eval 'rc_is 0 && out_is "b\t2\nc\t3\nd\t4\n"'
run table merge "$T/t1" "$T/t2" -o "$T/mk" --keep-tombstones
run table scan --tombstones "$T/mk"
check "table merge --keep-tombstones" eval 'rc_is 0 && out_is "a\t(deleted)\nb\t2\nc\t3\nd\t4\n"'
awk 'BEGIN { for (i = 0; i < 30000; i++) printf "k%06d\tvalue%d\n", (i * 7919) % 30000, i }' >"$T/big.tsv"
run table build --memory-mb 1 "$T/big.tsv" "$T/big"
check "table build sorts input larger than its memory budget in spilled runs" \
  eval 'rc_is 0 && [[ $(ls "$T") != *run* ]]'
run table check "$T/big"
check "table check of a good table" eval 'rc_is 0 && out_has "ok, 30000 records"'
run table scan "$T/big" --prefix k00012
check "table scan --prefix" eval 'rc_is 0 && out_lines 10 && [[ $(head -c 7 "$TMP/out") == k000120 ]]'
run table inspect "$T/big"
check "table inspect" eval 'rc_is 0 && out_has "\"entries\": 30000" && out_has index_bytes_per_key'
cp "$T/big" "$T/cut"
truncate -s -100 "$T/cut"
run table get "$T/cut" k000001
check "a truncated table is refused, naming file and offset" \
  eval 'rc_is 2 && err_has "$T/cut" && err_has offset'
cp "$T/big" "$T/flip"
printf '\xff\xff\xff\xff' | dd of="$T/flip" bs=1 seek=2000 conv=notrunc status=none
run table check "$T/flip"
check "table check finds a damaged block (exit 1)" eval 'rc_is 1 && out_has "checksum mismatch at offset"'

TDB=$TMP/tdb
run -d "$TDB" put live 1
run -d "$TDB" attach "$T/t1"
check "attach a table" eval 'rc_is 0 && err_has "as table t1"'
run -d "$TDB" get b
check "get falls through to the attached table" eval 'rc_is 0 && out_is "2\n"'
run -d "$TDB" del b
run -d "$TDB" get b
check "a delete hides a table's key" eval 'rc_is 1'
run -d "$TDB" stats
check "stats count attached tables" eval 'rc_is 0 && out_has "\"tables\": 1"'
run -d "$TDB" attach "$T/cut"
check "attaching a damaged table is refused" eval 'rc_is 2 && err_has "offset"'
run -d "$TDB" detach t1
run -d "$TDB" get a
check "detach removes the layer" eval 'rc_is 1'

if [[ $failures -gt 0 ]]; then
  echo "$failures check(s) FAILED"
  exit 1
fi
echo "all checks passed"
