#!/usr/bin/env bash
# bench/flood.sh — fair share between connections: the median latency of
# small requests (GET /) on one connection, alone and while another
# connection echoes large messages through the app as fast as it can, for
# each way Gatehouse relays an upgraded connection: a WebSocket on a
# hijacked HTTP/1.1 connection (ws) and a full-duplex HTTP/2 stream (h2),
# relayed as a WebSocket over HTTP/2 (extended CONNECT) is. Phases
# alternate within each round; the ratio flooded/alone is taken per round
# and its median printed. The case "direct" floods and probes the app
# itself, without Gatehouse: the share of the slowdown that is the machine's
# (client, app and front door on the same cores), not the front door's.
# Loopback only, bounded in time (~1.5 minutes with the defaults); not part
# of go test.
#
#   bench/flood.sh
#   ROUNDS=7 DUR=3s MSG=16384 bench/flood.sh
#   BASELINE=/tmp/gatehouse-old bench/flood.sh   # also another gatehouse binary
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ROUNDS=${ROUNDS:-5}
DUR=${DUR:-2s}
MSG=${MSG:-65536}
CASES=${CASES:-"ws/h1 ws/h2 h2/h1 h2/h2"}   # flood/probe
PROXY_PROCS=${PROXY_PROCS:-$(nproc)}          # GOMAXPROCS of gatehouse

work=$(mktemp -d /tmp/gatehouse-flood.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/testapp" ./internal/testapp
go build -o "$work/benchtool" ./bench/benchtool

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
waitport() {
  for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 never opened" >&2; exit 1
}
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/app"
cat >"$work/app/web.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="$work/testapp" arguments="-no-token-check" />
    <!-- The h2 flood is one request body: more than the 30 MB default. -->
    <security><requestFiltering><requestLimits maxAllowedContentLength="4294967295" /></requestFiltering></security>
  </system.webServer>
</configuration>
XML

# run NAME BIN: start gatehouse BIN, measure every case, stop it.
run() {
  local name=$1 bin=$2 p=$(freeport) sp=$(freeport)
  cat >"$work/$name.yaml" <<YAML
sites:
  - name: flood
    bindings:
      - {scheme: http, address: 127.0.0.1, port: $p}
      - {scheme: https, address: 127.0.0.1, port: $sp, certificateFile: $work/cert.pem, keyFile: $work/key.pem}
    applications:
      - {path: /, dir: $work/app}
YAML
  local root=()
  [ "$(id -u)" != 0 ] || root=(--allow-root)
  GOMAXPROCS=$PROXY_PROCS "$bin" serve --log-level error "${root[@]}" \
    --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  local pid=$!; pids+=($pid)
  waitport "$p"; waitport "$sp"
  curl -fsS -o /dev/null "http://127.0.0.1:$p/"   # starts the app
  if [ "$name" = gatehouse ]; then
    local app
    app=$(ss -ltnpH | awk -v p="pid=$(pgrep -P "$pid" -x testapp)," 'index($0, p) {split($4, a, ":"); print a[2]; exit}')
    echo "== direct (the app alone) flood ws probe h1"
    "$work/benchtool" flood -http "http://127.0.0.1:$app" -flood ws -probe h1 -rounds "$ROUNDS" -dur "$DUR" -msg "$MSG"
  fi
  local c
  for c in $CASES; do
    echo "== $name flood ${c%/*} probe ${c#*/}"
    "$work/benchtool" flood -http "http://127.0.0.1:$p" -https "https://127.0.0.1:$sp" -ca "$work/cert.pem" \
      -flood "${c%/*}" -probe "${c#*/}" -rounds "$ROUNDS" -dur "$DUR" -msg "$MSG"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run gatehouse "$work/gatehouse"
[ -z "${BASELINE:-}" ] || run baseline "$BASELINE"
