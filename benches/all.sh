#!/usr/bin/env bash
# The whole performance benchmark in one command: throughput and CPU against oha and wrk,
# latency accuracy against wrk at 1, 10 and 50 ms, coordinated omission, memory over run length;
# then each figure checked against its target. Installs what it needs (nginx, wrk, oha), builds
# in release, sends traffic only to 127.0.0.1, and every run stops by itself (about 12 minutes).
#
#   benches/all.sh [ROUNDS=3] [SECONDS=10]
#
# Run it on a quiet machine: a compiler or a test suite on the same cores moves every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; SECS=${2:-10}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

echo "== throughput and CPU: gate vs oha vs wrk (benches/peers.sh $ROUNDS $SECS 50)"
benches/peers.sh "$ROUNDS" "$SECS" 50 | tee "$OUT/peers.txt"
for d in 1ms 10ms 50ms; do
  echo "== accuracy at $d: gate vs wrk (benches/accuracy.sh $d $ROUNDS $SECS)"
  benches/accuracy.sh "$d" "$ROUNDS" "$SECS" | tee "$OUT/accuracy-$d.txt"
done
echo "== coordinated omission (benches/stall.sh)"
benches/stall.sh | tee "$OUT/stall.txt"
echo "== memory: 120 s vs 10 s (benches/memory.sh 2000/s 120s)"
benches/memory.sh 2000/s 120s | tee "$OUT/memory.txt"

python3 - "$OUT" <<'PY'
import re, statistics, sys, os
out = sys.argv[1]
read = lambda n: open(os.path.join(out, n)).read()
rows = []
def check(name, ok, detail):
    rows.append((name, ok, detail))

p = read("peers.txt")
(oha_rps, oha_cpu) = map(float, re.search(r"gate/oha throughput ([\d.]+)x, CPU per request ([\d.]+)x", p).groups())
(wrk_rps, wrk_cpu) = map(float, re.search(r"gate/wrk throughput ([\d.]+)x, CPU per request ([\d.]+)x", p).groups())
check("throughput >= 1.0x oha", oha_rps >= 1.0, f"{oha_rps:.2f}x")
check("throughput >= 0.9x wrk", wrk_rps >= 0.9, f"{wrk_rps:.2f}x")
check("CPU per request <= oha's", oha_cpu <= 1.0, f"{oha_cpu:.2f}x")

for d in ("1ms", "10ms", "50ms"):
    t = read(f"accuracy-{d}.txt")
    vals = {"gate": ([], []), "wrk": ([], [])}
    for m in re.finditer(r"^\d+\s+(gate|wrk)\s+([\d.]+)\s+([\d.]+)\s*$", t, re.M):
        vals[m.group(1)][0].append(float(m.group(2)))
        vals[m.group(1)][1].append(float(m.group(3)))
    for i, q in ((0, "p50"), (1, "p99")):
        g, w = statistics.median(vals["gate"][i]), statistics.median(vals["wrk"][i])
        allowed = max(0.02 * w, 0.2)
        check(f"accuracy {d} {q} within max(2%, 200us) of wrk", abs(g - w) <= allowed,
              f"gate {g:.3f} ms vs wrk {w:.3f} ms (allowed ±{allowed:.3f})")

s = read("stall.txt")
open_p99 = float(re.search(r"gate, open model 1000/s:\s+p99 ([\d.]+) ms", s).group(1))
closed_p99 = float(re.search(r"gate, closed 50 users:\s+p99 ([\d.]+) ms", s).group(1))
check("stall visible in the open model's p99 (>= 500 ms)", open_p99 >= 500, f"open {open_p99:.0f} ms, closed {closed_p99:.1f} ms")

m = read("memory.txt")
ratio = float(re.search(r"ratio ([\d.]+)", m).group(1))
check("peak RSS of 120 s within 10% of 10 s", ratio <= 1.10, f"ratio {ratio:.3f}")

print("\n== targets")
for name, ok, detail in rows:
    print(f"{'PASS' if ok else 'MISS'}  {name}: {detail}")
missed = sum(1 for r in rows if not r[1])
print(f"{len(rows) - missed} of {len(rows)} targets met")
PY
