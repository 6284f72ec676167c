# Sourced by the benchmark scripts: a throwaway nginx on loopback with one worker, no access log
# and unlimited keep-alive, serving one fixed `location /` body.
#
#   start_nginx PORT CONTENT_TYPE BODY     # sets WORK (a temp dir, removed at exit) and NGINX (pid)
start_nginx() {
  local port=$1 type=$2 body=$3
  WORK=$(mktemp -d)
  mkdir -p "$WORK/logs"
  cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/logs/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type $type; return 200 '$body'; }
  }
}
CONF
  nginx -c "$WORK/nginx.conf" -p "$WORK" &
  NGINX=$!
  trap 'kill $NGINX 2>/dev/null || true; rm -rf "$WORK"' EXIT
  sleep 1
}
