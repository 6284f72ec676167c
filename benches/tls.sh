#!/usr/bin/env bash
# HTTPS throughput and client CPU of gate against oha, on the same local nginx (ssl, http2), in
# alternation, for HTTP/1.1 keep-alive, HTTP/2, and cold connections (a handshake per request).
#
#   benches/tls.sh [ROUNDS=3] [SECONDS=10] [CONNECTIONS=50]
#
# Installs what it needs (nginx from Debian's packages, oha with cargo), mints a self-signed
# certificate with openssl, starts nginx on loopback with one worker returning a small fixed
# body over TLS (h2 and http/1.1 by ALPN), then runs gate and oha in turn (A B A B ...) with the
# same connection count and duration. Peers get their best settings: oha `--insecure`, `--http2`
# for h2 (oha's default of 1 stream per connection, like gate), `--disable-keepalive` for cold
# connections; gate `--insecure` (the same verification cost: none) and its default threads.
# Prints per mode and tool the median requests/s and client CPU seconds per 100k requests, and
# the ratio gate/oha. Release build. Traffic stays on 127.0.0.1 and every run stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}; SECS=${2:-10}; CONNS=${3:-50}; PORT=${PORT:-18443}

need() { command -v "$1" >/dev/null 2>&1; }
need nginx || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
need oha || cargo install oha --locked
cargo build --release -q

WORK=$(mktemp -d)
mkdir -p "$WORK/logs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  server {
    listen 127.0.0.1:$PORT ssl;
    http2 on;
    ssl_certificate $WORK/cert.pem;
    ssl_certificate_key $WORK/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type text/plain; return 200 "hello from nginx\n"; }
  }
}
CONF
# nginx before 1.25.1 has no `http2 on;`: fall back to `listen ... ssl http2;`.
if ! nginx -t -c "$WORK/nginx.conf" -p "$WORK" >/dev/null 2>&1; then
  sed -i "s|listen 127.0.0.1:$PORT ssl;|listen 127.0.0.1:$PORT ssl http2;|; /http2 on;/d; /http2_max_requests/d" "$WORK/nginx.conf"
fi
nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX=$!
trap 'kill $NGINX 2>/dev/null || true; rm -rf "$WORK"' EXIT
sleep 1

URL="https://127.0.0.1:$PORT/"
TIMEFORMAT='%U %S'
results="$WORK/results.txt"
: > "$results"

gate_run() { # mode, extra yaml load keys, extra flags
  cat > "$WORK/peer.yml" <<YML
name: nginx
request: { url: / }
load: { users: $CONNS, duration: ${SECS}s, warmup: 0s$2 }
YML
  { time ./target/release/gate run --suite "$WORK/peer.yml" --target "https://127.0.0.1:$PORT" \
      --insecure --no-save --json "$WORK/g.json" ${3:-} >/dev/null 2>&1; } 2> "$WORK/t" || true
  python3 - "$WORK/g.json" "$1" "$(awk '{print $1+$2}' "$WORK/t")" >> "$results" <<'PY'
import json, sys
e = json.load(open(sys.argv[1]))["run"]["endpoints"][0]
print(sys.argv[2], "gate", e["throughput_rps"], sys.argv[3], e["transport"]["protocol"])
PY
}

oha_run() { # mode, oha flags
  # shellcheck disable=SC2086
  { time oha -c "$CONNS" -z "${SECS}s" --no-tui --insecure --output-format json $2 "$URL" \
      > "$WORK/o.json" 2>/dev/null; } 2> "$WORK/t"
  rps=$(python3 -c "import json;print(json.load(open('$WORK/o.json'))['summary']['requestsPerSec'])")
  echo "$1 oha $rps $(awk '{print $1+$2}' "$WORK/t") -" >> "$results"
}

for r in $(seq 1 "$ROUNDS"); do
  # gate negotiates h2 by ALPN with nginx unless --http1.1.
  gate_run h1 "" --http1.1
  oha_run h1 "--http-version 1.1"
  oha_run h2 "--http2"
  gate_run h2 ""
  gate_run cold ", new_connection_per_request: true" --http1.1
  oha_run cold "--disable-keepalive"
  echo "round $r done" >&2
done

python3 - "$results" "$SECS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
secs = float(sys.argv[2])
by = {}
for mode, tool, rps, cpu, proto in rows:
    by.setdefault((mode, tool), []).append((float(rps), float(cpu), proto))
med = {}
print(f"{'mode':<5} {'tool':<5} {'median req/s':>13} {'CPU s / 100k req':>17}  protocol  runs")
for (mode, tool), vals in sorted(by.items()):
    rps = statistics.median(v[0] for v in vals)
    cpu = statistics.median(v[1] / max(v[0] * secs, 1) * 100_000 for v in vals)
    med[(mode, tool)] = (rps, cpu)
    print(f"{mode:<5} {tool:<5} {rps:>13.0f} {cpu:>17.3f}  {vals[0][2]:<8}  " + ", ".join(f"{v[0]:.0f}" for v in vals))
for mode in ("h1", "h2", "cold"):
    g, o = med.get((mode, "gate")), med.get((mode, "oha"))
    if g and o:
        print(f"{mode}: gate/oha throughput {g[0]/o[0]:.2f}x, CPU per request {g[1]/o[1]:.2f}x")
PY
