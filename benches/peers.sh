#!/usr/bin/env bash
# Throughput and client CPU of gate against oha and wrk, on the same local nginx, in alternation.
#
#   benches/peers.sh [ROUNDS=3] [SECONDS=10] [CONNECTIONS=50]
#
# Installs what it needs (nginx and wrk from Debian's packages, oha with cargo), starts nginx on
# loopback with one worker returning a small fixed body, then runs gate, oha and wrk in turn
# (A B C A B C ...) with the same connection count and duration; gate at its default threads and at
# --threads 1, wrk at -t1 and -t2, each compared at its best. Prints per tool the median
# requests/s and client CPU seconds per 100k requests, and the ratios gate/oha and gate/wrk.
# Release build. Traffic stays on 127.0.0.1 and every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; SECS=${2:-10}; CONNS=${3:-50}; PORT=${PORT:-18282}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need nginx || ! need wrk; then apt-get update -qq && apt-get install -y -qq nginx wrk >/dev/null; fi
need oha || cargo install oha --locked
cargo build --release -q

# shellcheck source=benches/lib/nginx.sh
. benches/lib/nginx.sh
start_nginx "$PORT" text/plain 'hello from nginx\n'

cat > "$WORK/peer.yml" <<YML
name: nginx
request: { url: / }
load: { users: $CONNS, duration: ${SECS}s, warmup: 0s }
YML

URL="http://127.0.0.1:$PORT/"
TIMEFORMAT='%U %S'
results="$WORK/results.txt"
: > "$results"
# Each line: tool rps cpu_seconds
# gate at its default threads (one per core) and at --threads 1; wrk at -t1 and -t2 (which is
# best depends on whether the target shares the cores): each tool is judged at its best.
for r in $(seq 1 "$ROUNDS"); do
  for g in "gate:" "gate-t1:--threads 1"; do
    name=${g%%:*}; flags=${g#*:}
    # shellcheck disable=SC2086
    { time ./target/release/gate run --suite "$WORK/peer.yml" --target "http://127.0.0.1:$PORT" --no-save \
        $flags --json "$WORK/g.json" >/dev/null 2>&1; } 2> "$WORK/t"
    rps=$(python3 -c "import json;print(json.load(open('$WORK/g.json'))['run']['endpoints'][0]['throughput_rps'])")
    echo "$name $rps $(awk '{print $1+$2}' "$WORK/t")" >> "$results"
  done

  { time oha -c "$CONNS" -z "${SECS}s" --no-tui --output-format json "$URL" > "$WORK/o.json" 2>/dev/null; } 2> "$WORK/t"
  rps=$(python3 -c "import json;print(json.load(open('$WORK/o.json'))['summary']['requestsPerSec'])")
  echo "oha $rps $(awk '{print $1+$2}' "$WORK/t")" >> "$results"

  for t in 1 2; do
    { time wrk -t$t -c"$CONNS" -d"${SECS}s" "$URL" > "$WORK/w.txt"; } 2> "$WORK/t"
    rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/w.txt")
    echo "wrk-t$t $rps $(awk '{print $1+$2}' "$WORK/t")" >> "$results"
  done
  echo "round $r done" >&2
done

python3 - "$results" "$SECS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
secs = float(sys.argv[2])
by = {}
for tool, rps, cpu in rows:
    by.setdefault(tool, []).append((float(rps), float(cpu)))
med = {}
print(f"{'tool':<6} {'median req/s':>14} {'CPU s / 100k req':>18}   runs")
for tool, vals in by.items():
    rps = statistics.median(v[0] for v in vals)
    cpu = statistics.median(v[1] / (v[0] * secs) * 100_000 for v in vals)
    med[tool] = (rps, cpu)
    print(f"{tool:<6} {rps:>14.0f} {cpu:>18.3f}   " + ", ".join(f"{v[0]:.0f}" for v in vals))
o = med["oha"]
wname = max(("wrk-t1", "wrk-t2"), key=lambda t: med[t][0])
w = med[wname]
for gname in ("gate", "gate-t1"):
    g = med[gname]
    print(f"{gname}/oha throughput {g[0]/o[0]:.2f}x, CPU per request {g[1]/o[1]:.2f}x")
    print(f"{gname}/{wname} (wrk's best) throughput {g[0]/w[0]:.2f}x, CPU per request {g[1]/w[1]:.2f}x")
PY
