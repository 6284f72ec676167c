#!/usr/bin/env bash
# Coordinated omission, shown: a server that stalls once for 1 s in a 10 s run. gate's open
# model measures from the schedule and reports the stall in p99; a client that waits for the
# server (wrk, or gate's closed model) sends nothing while it waits, records one slow request
# per connection, and hides it.
#
#   benches/stall.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-18585}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q
TMP=$(mktemp -d)
# The sample service, frozen once for 1 s, 5 s after it starts (restarted before each client).
serve() {
  ./target/release/gate serve-demo --addr "127.0.0.1:$PORT" --stall 5s,1s >/dev/null 2>&1 & SRV=$!
  sleep 0.5
}
stop() { kill "$SRV" 2>/dev/null || true; wait "$SRV" 2>/dev/null || true; }
trap 'stop; rm -rf "$TMP"' EXIT

p99() { python3 -c "import json;e=json.load(open('$1'))['run']['endpoints'][0];print(f\"p99 {e['latency']['p99_ms']:.1f} ms, max {e['latency']['max_ms']:.1f} ms, {e['requests']} requests, {e['late_starts']} late starts\")"; }

cat > "$TMP/open.yml" <<YML
name: open
request: { url: /api/v1/products/1 }
load: { rate: 1000/s, duration: 10s, warmup: 0s, max_in_flight: 50 }
YML
cat > "$TMP/closed.yml" <<YML
name: closed
request: { url: /api/v1/products/1 }
load: { users: 50, duration: 10s, warmup: 0s }
YML

serve; ./target/release/gate run --suite "$TMP/open.yml" --target "http://127.0.0.1:$PORT" --no-save --json "$TMP/o.json" >/dev/null 2>&1 || true; stop
echo "gate, open model 1000/s:  $(p99 "$TMP/o.json")"
serve; ./target/release/gate run --suite "$TMP/closed.yml" --target "http://127.0.0.1:$PORT" --no-save --json "$TMP/c.json" >/dev/null 2>&1 || true; stop
echo "gate, closed 50 users:   $(p99 "$TMP/c.json")"
serve; wrk -t2 -c50 -d10s --latency "http://127.0.0.1:$PORT/api/v1/products/1" > "$TMP/w.txt"; stop
echo "wrk, 50 connections:     p99 $(awk '/^ +99%/ {print $2}' "$TMP/w.txt"), $(awk '/requests in/ {print $1}' "$TMP/w.txt") requests"
