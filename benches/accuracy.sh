#!/usr/bin/env bash
# Accuracy check: gate's p50/p99 vs wrk's against the same sample service with a known upstream
# latency (closed model, same connection count), rounds in alternation. Release build.
# Usage: benches/accuracy.sh [LATENCY=20ms] [ROUNDS=3] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
LAT=${1:-20ms}; ROUNDS=${2:-3}; SECS=${3:-10}; CONNS=10; PORT=${PORT:-18181}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
./target/release/gate serve-demo --addr 127.0.0.1:$PORT --latency "$LAT" >/dev/null 2>&1 &
SVC=$!; trap 'kill $SVC 2>/dev/null || true' EXIT; sleep 1
TMP=$(mktemp -d)
cat > "$TMP/acc.yml" <<YML
name: accuracy
request: { url: /api/v1/products/7 }
load: { users: $CONNS, duration: ${SECS}s, warmup: 1s }
YML
printf "%-6s %-5s %10s %10s\n" round tool p50_ms p99_ms
for r in $(seq 1 "$ROUNDS"); do
  ./target/release/gate run --suite "$TMP/acc.yml" --target http://127.0.0.1:$PORT --json "$TMP/g.json" >/dev/null 2>&1 || true
  python3 - "$TMP/g.json" "$r" <<'PY'
import json,sys
e=json.load(open(sys.argv[1]))["run"]["endpoints"][0]["latency"]
print(f"{sys.argv[2]:<6} {'gate':<5} {e['p50_ms']:10.3f} {e['p99_ms']:10.3f}")
PY
  wrk -t2 -c$CONNS -d${SECS}s --latency http://127.0.0.1:$PORT/api/v1/products/7 > "$TMP/w.txt"
  python3 - "$TMP/w.txt" "$r" <<'PY'
import re,sys
t=open(sys.argv[1]).read()
def ms(p):
    v,u=re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$",t,re.M).groups()
    return float(v)*{"us":1e-3,"ms":1,"s":1e3}[u]
print(f"{sys.argv[2]:<6} {'wrk':<5} {ms(50):10.3f} {ms(99):10.3f}")
PY
done
