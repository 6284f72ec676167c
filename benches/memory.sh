#!/usr/bin/env bash
# Memory must not grow with run length: peak RSS of a 120 s open-model run vs a 10 s run at the
# same rate, against the sample service on loopback. Release build.
#
#   benches/memory.sh [RATE=2000/s] [LONG=120s]
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-2000/s}; LONG=${2:-120s}; PORT=${PORT:-18484}
cargo build --release -q
./target/release/gate serve-demo --addr 127.0.0.1:$PORT >/dev/null 2>&1 &
SVC=$!; trap 'kill $SVC 2>/dev/null || true' EXIT; sleep 1
TMP=$(mktemp -d)

peak_rss() { # run gate with the given duration; print its peak RSS in kB (VmHWM, polled)
  cat > "$TMP/m.yml" <<YML
name: memory
request: { url: "/api/v1/products/{{ random_int(1, 2000) }}" }
load: { rate: $RATE, duration: $1, warmup: 0s, max_in_flight: 64 }
YML
  ./target/release/gate run --suite "$TMP/m.yml" --target http://127.0.0.1:$PORT --no-save >/dev/null 2>&1 &
  local pid=$! peak=0 v
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
    sleep 0.2
  done
  wait "$pid" || true
  echo "$peak"
}

short=$(peak_rss 10s)
long=$(peak_rss "$LONG")
echo "peak RSS at $RATE: 10s run ${short} kB, $LONG run ${long} kB, ratio $(python3 -c "print(f'{$long/$short:.3f}')")"
