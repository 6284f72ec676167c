#!/usr/bin/env bash
# Client CPU per request of a flow (3 steps, a JSONPath capture each, used by the next step's URL)
# against plain requests, on the same local nginx returning a small JSON body.
#
#   benches/flow_cpu.sh [ROUNDS=3] [SECONDS=10] [USERS=16]
#
# Issue 15's bar: a 3-step flow with a capture each costs at most 1.3x the CPU per request of
# plain requests. Both run closed-model at full speed with the same users; gate's user+sys CPU is
# divided by the requests it sent (a flow's requests are its steps'). Release build; traffic stays
# on 127.0.0.1 and every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; SECS=${2:-10}; USERS=${3:-16}; PORT=${PORT:-18283}

command -v nginx >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
cargo build --release -q

# shellcheck source=benches/lib/nginx.sh
. benches/lib/nginx.sh
start_nginx "$PORT" application/json '{"id": 42, "name": "widget", "tags": ["a", "b"]}'
mkdir -p "$WORK/s"

cat > "$WORK/s/plain.yml" <<YML
name: plain
request: { url: /products/42 }
load: { users: $USERS, duration: ${SECS}s, warmup: 0s }
YML
cat > "$WORK/s/flow.yml" <<YML
name: flow
steps:
  - { name: one, url: /products/1, capture: { a: "\$.id" } }
  - { name: two, url: "/products/{{ a }}", capture: { b: "\$.id" } }
  - { name: three, url: "/products/{{ b }}/reviews", capture: { c: "\$.name" } }
load: { users: $USERS, duration: ${SECS}s, warmup: 0s }
YML

TIMEFORMAT='%U %S'
results="$WORK/results.txt"
: > "$results"
for r in $(seq 1 "$ROUNDS"); do
  for kind in plain flow; do
    { time ./target/release/gate run --suite "$WORK/s" --scenario "$kind" --target "http://127.0.0.1:$PORT" \
        --no-save --json "$WORK/$kind.json" >/dev/null 2>&1; } 2> "$WORK/t"
    python3 - "$WORK/$kind.json" "$kind" "$(awk '{print $1+$2}' "$WORK/t")" >> "$results" <<'PY'
import json, sys
eps = json.load(open(sys.argv[1]))["run"]["endpoints"]
kind, cpu = sys.argv[2], float(sys.argv[3])
# A flow's end-to-end row counts walks; its steps' rows count the requests sent.
reqs = sum(e["requests"] for e in eps if kind == "plain" or "/" in e["name"])
errors = sum(e.get("failures", 0) for e in eps)
print(kind, reqs, cpu, errors)
PY
  done
  echo "round $r done" >&2
done
python3 - "$results" <<'PY'
import statistics, sys
by = {}
for kind, reqs, cpu, errors in (l.split() for l in open(sys.argv[1])):
    by.setdefault(kind, []).append((int(reqs), float(cpu), int(errors)))
med = {}
for kind, rows in by.items():
    per = statistics.median(cpu / reqs * 100_000 for reqs, cpu, _ in rows)
    med[kind] = per
    print(f"{kind:<6} CPU s / 100k requests {per:.3f}  requests {[r for r, _, _ in rows]}  errors {[e for _, _, e in rows]}")
print(f"flow/plain CPU per request {med['flow'] / med['plain']:.2f}x")
PY
