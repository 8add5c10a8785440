#!/usr/bin/env bash
# bench/proxy.sh — CPU cost per forwarded request: Gatehouse against nginx, both
# in front of the same backend (internal/testapp), loaded by wrk on loopback.
#
#   ./bench/proxy.sh            # 3 rounds of 10 s per front door;
#                               # ROUNDS=5 DURATION=30 CONNS=32 to change
#   BASELINE=/tmp/gatehouse-old ./bench/proxy.sh
#                               # also measure another gatehouse binary (say,
#                               # built from the last commit) in the same run
#
# It prints, for each front door, requests/s and the proxy process's CPU time
# per request (user+system from /proc/<pid>/stat), then the Gatehouse/nginx
# ratio, per round and the median. nginx and Gatehouse take turns, so slow
# drift in the machine affects both. Compare ratios from one run only: the
# machines are noisy.
# Needs wrk and nginx (Debian packages wrk, nginx-light); installs them if
# apt-get is there and they are missing. Loopback only, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-16}
ROUNDS=${ROUNDS:-3}
export PATH="/usr/local/go/bin:$PATH"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/testapp" ./internal/testapp

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
waitport() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
# cpu PID...: user+system clock ticks of the processes.
cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

# measure NAME URL PID...: run wrk, print req/s and CPU µs per request of PIDs.
measure() {
  local name=$1 url=$2; shift 2
  wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null   # warm up pools
  local before; before=$(cpu "$@")
  local out; out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "$url")
  local after; after=$(cpu "$@")
  if echo "$out" | grep -qE 'Non-2xx|Socket errors'; then
    echo "$name: some requests failed; the figures would be meaningless:" >&2
    echo "$out" >&2
    exit 1
  fi
  local reqs; reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps; rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  local us; us=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
  printf '%-10s %10s req/s  %8s µs CPU/request (front process)\n' "$name" "$rps" "$us" >&2
  echo "$us"
}

# The backend for nginx (gatehouse starts its own copy of the same program).
bport=$(freeport)
ASPNETCORE_PORT=$bport "$work/testapp" -no-token-check >/dev/null 2>&1 &
pids+=($!)
waitport "$bport"

nport=$(freeport)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log stderr error;
events { worker_connections 1024; }
http {
  access_log off;
  upstream app { server 127.0.0.1:$bport; keepalive 64; }
  server {
    listen 127.0.0.1:$nport;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr:\$remote_port;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_buffering off;
    }
  }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)
waitport "$nport"
nginx_workers=$(pgrep -P "$(cat "$work/nginx/nginx.pid" 2>/dev/null || echo 0)" || true)
[ -n "$nginx_workers" ] || nginx_workers=$(pgrep -f "nginx: worker" | head -1)

# startgh BIN: start gatehouse BIN in front of its own testapp; sets gport, gpid.
startgh() {
  gport=$(freeport)
  "$1" run --listen "127.0.0.1:$gport" --log-level error -- "$work/testapp" -no-token-check 2>/dev/null &
  gpid=$!
  pids+=($gpid)
  waitport "$gport"
  curl -fsS "http://127.0.0.1:$gport/" >/dev/null   # starts the app
}

startgh "$work/gatehouse"
gurl="http://127.0.0.1:$gport/" gpids=$gpid
if [ -n "${BASELINE:-}" ]; then
  startgh "$BASELINE"
  burl="http://127.0.0.1:$gport/" bpids=$gpid
fi

echo "wrk: $CONNS connections, ${DURATION}s, GET / (small response), $ROUNDS rounds" >&2
measure direct "http://127.0.0.1:$bport/" "${pids[0]}" >/dev/null
gr=() br=()
for r in $(seq "$ROUNDS"); do
  echo "round $r" >&2
  n=$(measure nginx "http://127.0.0.1:$nport/" $nginx_workers)
  g=$(measure gatehouse "$gurl" $gpids)
  gr+=("$(awk -v g="$g" -v n="$n" 'BEGIN {printf "%.2f", g / n}')")
  if [ -n "${BASELINE:-}" ]; then
    b=$(measure baseline "$burl" $bpids)
    br+=("$(awk -v b="$b" -v n="$n" 'BEGIN {printf "%.2f", b / n}')")
  fi
done
# median LABEL RATIO...: print the ratios of every round and their median.
median() {
  local label=$1; shift
  printf '%s\n' "$@" | sort -n | awk -v l="$label" '{v[NR]=$1; all=all sprintf(" %.2fx", $1)}
    END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%s CPU per request: %.2fx median (rounds:%s)\n", l, m, all}'
}
median gatehouse/nginx "${gr[@]}"
[ -z "${BASELINE:-}" ] || median "baseline/nginx " "${br[@]}"
