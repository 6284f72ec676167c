#!/usr/bin/env bash
# `gate init --from-access-log` on a 1 GB nginx combined log (with $request_time), on one core:
# wall time and peak RSS. Target: under 30 s, memory bounded (it must not grow with the file).
# The log is generated into a scratch directory (perl: 15 routes with Zipf weights, numeric ids,
# UUIDs, hashes, JWTs in query strings, emails in paths) and deleted afterwards.
#
#   benches/init.sh [SIZE_MB=1024]
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MB=${1:-1024}
cargo build --release -q
GATE=$PWD/target/release/gate
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "generating a ${SIZE_MB} MB combined log in $TMP ..." >&2
perl benches/init-log.pl "$SIZE_MB" > "$TMP/access.log"
ls -l "$TMP/access.log" >&2
wc -l < "$TMP/access.log" | sed 's/^/lines: /' >&2

cd "$TMP"
/usr/bin/time -v taskset -c 0 "$GATE" init --from-access-log access.log --out scenarios \
  2> time.txt | tee gate.txt
grep -E "^(read|skipped|note)" time.txt || true
echo "--- one core (taskset -c 0), release build"
grep -E "Elapsed \(wall clock\)|Maximum resident set size|User time|System time" time.txt
