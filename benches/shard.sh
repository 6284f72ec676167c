#!/usr/bin/env bash
# Sharded load adds up: one shard of N alone, then all N shards at once (separate processes, as N
# runners would be), merged with `gate merge`; the merged throughput should be N × the lone
# shard's, within 5%, where the target is not the bottleneck. Release build; load only to
# 127.0.0.1; every run stops by itself.
#
# Two scenarios: an open model (rate split N ways: the merged rate must be the suite's rate)
# and a closed model (users split N ways: throughput scales only while the target keeps up).
# On one machine the N shards and the target share the cores, so the closed model measures the
# machine as much as gate: read its figure with the core count in mind.
#
# Usage: benches/shard.sh [N=4] [SECONDS=10] [RATE=400] [USERS=8] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-4}; SECS=${2:-10}; RATE=${3:-400}; USERS=${4:-8}; ROUNDS=${5:-3}; PORT=${PORT:-18261}
G=${GATE_BIN:-./target/release/gate}   # GATE_BIN=target/debug/gate for a quick look (slower)
[ -x "$G" ] || cargo build --release --locked -q
$G serve-demo --addr 127.0.0.1:$PORT --latency 2ms >/dev/null 2>&1 &
SVC=$!; trap 'kill $SVC 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fs http://127.0.0.1:$PORT/health >/dev/null 2>&1 && break; sleep 0.1; done
TMP=$(mktemp -d)
mkdir -p "$TMP/s"
cat > "$TMP/s/open.yml" <<YML
name: open
request: { url: /api/v1/products/7 }
load: { rate: $RATE/s, duration: ${SECS}s, warmup: 1s, max_in_flight: 64 }
YML
cat > "$TMP/s/closed.yml" <<YML
name: closed
request: { url: /api/v1/products/7 }
load: { users: $USERS, duration: ${SECS}s, warmup: 1s }
YML
rps() { jq -r --arg n "$2" '.run.endpoints[] | select(.name == $n) | .throughput_rps' "$1"; }
shard() { $G run --suite "$TMP/s" --target http://127.0.0.1:$PORT --no-progress --threads 1 \
  --shard "$1/$N" --json "$2" >/dev/null 2>&1; }
printf "%-6s %-7s %12s %14s %12s %8s\n" round model "1 shard/s" "${N}x 1 shard/s" "merged/s" ratio
for r in $(seq 1 "$ROUNDS"); do
  shard 1 "$TMP/one.json"
  pids=()
  for i in $(seq 1 "$N"); do shard "$i" "$TMP/shard-$i.json" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p"; done
  $G merge "$TMP"/shard-*.json --suite "$TMP/s" --json "$TMP/merged.json" >/dev/null 2>&1 || true
  for m in open closed; do
    one=$(rps "$TMP/one.json" $m); all=$(rps "$TMP/merged.json" $m)
    python3 - "$r" "$m" "$one" "$all" "$N" <<'PY'
import sys
r, m, one, merged, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ratio = merged / (n * one)
verdict = "ok" if abs(ratio - 1) <= 0.05 else "OUTSIDE 5%"
print(f"{r:<6} {m:<7} {one:12.1f} {n*one:14.1f} {merged:12.1f} {ratio:8.3f}  {verdict}")
PY
  done
done
echo "cores: $(nproc); load: uptime $(cut -d' ' -f1-3 /proc/loadavg)"
