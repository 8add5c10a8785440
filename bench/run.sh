#!/usr/bin/env bash
# bench/run.sh — Gatehouse against nginx, HAProxy and Caddy, all in front of
# the same Go backend (internal/testapp), which is also measured alone as the
# limit. One command, bounded in time (~12 minutes with the defaults), on
# loopback only; not part of go test. See bench/NOTES.md for what the numbers
# mean and README.md ("Performance") for the latest ratios.
#
#   bench/run.sh                      # everything, 3 rounds of 5 s per target
#   ROUNDS=5 DURATION=10 bench/run.sh
#   WORKLOADS="tiny 64k" TARGETS="nginx gatehouse" MEMORY=0 COLDSTART=0 bench/run.sh
#   WORKLOADS=none PROFILE=0 GOBENCH=0 MEMORY=0 bench/run.sh   # start-up and cold start only
#   BASELINE=/tmp/gatehouse-old bench/run.sh   # also a second gatehouse binary
#   WORKLOADS="h3 tls" TARGETS="nginx haproxy caddy gatehouse" MEMORY=0 PROFILE=0 GOBENCH=0 COLDSTART=0 STARTUP=0 bench/run.sh
#   KEY=rsa bench/run.sh              # RSA 2048 certificate instead of ECDSA P-256
#
# Workloads (wrk -t1 unless said): tiny (GET /, ~30 bytes), 64k and 1m
# (GET /big?n=…), upload (POST of 1 MiB to /discard), close (tiny with
# "Connection: close": a new client connection per request), h2 (h2load over
# HTTPS + HTTP/2 at the front, HTTP/1.1 to the app), h3 (benchtool h3: HTTP/3
# over QUIC at the front, Caddy and Gatehouse only; HTTP/3 is switched on for
# them only when h3 is among the workloads), tls (benchtool tls: new TLS
# connections per second, each with one GET /, full handshakes and then
# resumed ones with session tickets, against every HTTPS front door). Then RSS (idle; per idle
# keep-alive connection; peak while streaming 1 GiB) and, for Gatehouse, the
# cold start and the restart after kill -9 beyond the app's own start time,
# and (PROFILE=1, with perf) where nginx's and Gatehouse's CPU time goes.
# Start-up (STARTUP=1) is measured as an outside launcher sees it: exec, then
# connect every 100 µs until the port accepts, then GET / on that connection,
# for the app alone and each front door (Gatehouse's first answer includes
# starting the app).
#
# Fairness: one worker per front door (nginx worker_processes 1, HAProxy
# nbthread 1, GOMAXPROCS=$PROXY_PROCS for Caddy and Gatehouse); the backends
# get GOMAXPROCS=$(nproc). Targets take turns within each round, in an order
# that rotates per round, and every ratio is taken within a round, then the
# median over rounds is reported. CPU per request is user+system time of the
# front door's processes from /proc/PID/stat over the run, divided by the
# requests wrk/h2load completed.
#
# The report goes to bench/reports/<UTC time>-<commit>.md, and bench/REPORT.md
# is rebuilt from all reports there, newest first (SAVE=0: print only).
# Peers come from Debian packages and are installed with apt-get if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}              # seconds per measurement (after 1 s warm-up)
CONNS=${CONNS:-50}                   # wrk connections: tiny, 64k, close
CONNS_BIG=${CONNS_BIG:-16}           # wrk connections: 1m, upload
H2_CLIENTS=${H2_CLIENTS:-10}         # h2load connections, each with
H2_STREAMS=${H2_STREAMS:-10}         # this many concurrent streams
IDLE_CONNS=${IDLE_CONNS:-1000}       # idle keep-alive connections for RSS
IDLE_SETTLE=${IDLE_SETTLE:-2s}       # wait after opening them before reading RSS
STREAM_BYTES=${STREAM_BYTES:-1073741824}
COLD_N=${COLD_N:-60}                 # cold starts, each with 3 restarts (medians of 15 moved ~1 ms run to run)
COLD_SLOW=${COLD_SLOW:-200ms}        # and of an app that sleeps this long before it listens
PROXY_PROCS=${PROXY_PROCS:-1}        # GOMAXPROCS of Caddy and Gatehouse
WORKLOADS=${WORKLOADS:-"tiny 64k 1m upload close h2 h3 tls"}
H3_CLIENTS=${H3_CLIENTS:-10}         # benchtool h3 QUIC connections, each with
H3_STREAMS=${H3_STREAMS:-10}         # this many requests in flight
TLS_WORKERS=${TLS_WORKERS:-8}        # benchtool tls: connections opened at once
TLS_VERSION=${TLS_VERSION:-1.3}      # benchtool tls: 1.2 or 1.3
TLS_CURVE=${TLS_CURVE:-x25519}       # benchtool tls: x25519, or default (Go's, post-quantum hybrid first)
KEY=${KEY:-ec}                       # the certificate's key: ec (P-256) or rsa (2048)
TARGETS=${TARGETS:-"direct nginx haproxy caddy gatehouse"}
MEMORY=${MEMORY:-1}
PROFILE=${PROFILE:-1}                # perf record of nginx and Gatehouse on the tiny workload
GOBENCH=${GOBENCH:-1}                # go test -bench of internal/proxy and internal/frontend
COLDSTART=${COLDSTART:-1}
STARTUP=${STARTUP:-1}                # exec to listening and to the first answer, each front door
STARTUP_N=${STARTUP_N:-15}
SAVE=${SAVE:-1}
NOTE=${NOTE:-}                       # a line for the report (say, who else used the machine)
[ -z "${BASELINE:-}" ] || TARGETS="$TARGETS baseline"

# --- peers -------------------------------------------------------------
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx)
[ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || need+=(haproxy)
command -v caddy >/dev/null || need+=(caddy)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  # policy-rc.d keeps the packages' services from starting (Docker images have it).
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ "$(getconf CLK_TCK)" = 100 ] || { echo "CLK_TCK is not 100; the CPU figures assume it" >&2; exit 1; }

work=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building into $work" >&2
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/testapp" ./internal/testapp
go build -o "$work/benchtool" ./bench/benchtool

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
waitport() {
  for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 never opened" >&2; exit 1
}
# ticks PID...: user+system clock ticks of the processes (all threads).
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12+$13}'))); done; echo "$t"; }
# pss PID...: summed proportional set size in KiB (pages shared between the
# processes, like a binary's text in Gatehouse and its keeper, split, not doubled).
pss() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup"))); done; echo "$t"; }
# rss PID...: summed VmRSS in KiB.
rss() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
csv() { local IFS=,; echo "$*"; }

case $KEY in
  ec) keyargs=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
  rsa) keyargs=(-newkey rsa:2048) ;;
  *) echo "KEY is ec or rsa" >&2; exit 2 ;;
esac
# HTTP/3 at Caddy and Gatehouse only when it is measured (it adds Alt-Svc and a UDP socket).
h3=0
case " $WORKLOADS " in *" h3 "*) h3=1 ;; esac
openssl req -x509 "${keyargs[@]}" -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/both.pem"
ncpu=$(nproc)

# --- the backend alone --------------------------------------------------
bport=$(freeport)
GOMAXPROCS=$ncpu ASPNETCORE_PORT=$bport "$work/testapp" -no-token-check >/dev/null 2>&1 &
bpid=$!; pids+=($bpid)
waitport "$bport"
declare -A HTTP HTTPS PIDS
HTTP[direct]=$bport; HTTPS[direct]=; PIDS[direct]=$bpid

# --- nginx --------------------------------------------------------------
start_nginx() {
  local p=$(freeport) sp=$(freeport) d=$work/nginx
  mkdir -p "$d"
  cat >"$d/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
pid $d/nginx.pid;
error_log stderr error;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_max_body_size 0;
  upstream app { server 127.0.0.1:$bport; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$p;
    listen 127.0.0.1:$sp ssl http2;
    ssl_certificate $work/cert.pem;
    ssl_certificate_key $work/key.pem;
    # nginx 1.22 (Debian 12) offers only TLS 1.2 by default; the others offer 1.3 too.
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      # Stream both ways, as the others do, in 64 KiB pieces (the defaults,
      # one page, cost nginx several times the CPU on 1 MiB bodies).
      proxy_buffering off;
      proxy_buffer_size 64k;
      proxy_buffers 8 64k;
      proxy_busy_buffers_size 128k;
      proxy_request_buffering off;
      client_body_buffer_size 64k;
    }
  }
}
EOF
  "$NGINX" -p "$d" -c "$d/nginx.conf" &
  local master=$!; pids+=($master)
  waitport "$p"; waitport "$sp"
  local workers=
  for _ in $(seq 100); do workers=$(pgrep -P $master || true); [ -z "$workers" ] || break; sleep 0.05; done
  HTTP[nginx]=$p; HTTPS[nginx]=$sp
  PIDS[nginx]=$(csv $master $workers)
}

# --- HAProxy ------------------------------------------------------------
start_haproxy() {
  local p=$(freeport) sp=$(freeport)
  cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:$p
  bind 127.0.0.1:$sp ssl crt $work/both.pem alpn h2,http/1.1
  http-request set-header X-Forwarded-Proto https if { ssl_fc }
  http-request set-header X-Forwarded-Proto http if !{ ssl_fc }
  default_backend app
backend app
  server app 127.0.0.1:$bport
EOF
  "$HAPROXY" -db -f "$work/haproxy.cfg" >/dev/null 2>&1 &
  local pid=$!; pids+=($pid)
  waitport "$p"; waitport "$sp"
  HTTP[haproxy]=$p; HTTPS[haproxy]=$sp; PIDS[haproxy]=$pid
}

# --- Caddy --------------------------------------------------------------
start_caddy() {
  local p=$(freeport) sp=$(freeport)
  mkdir -p "$work/caddy"
  cat >"$work/caddy/Caddyfile" <<EOF
{
  admin off
  auto_https off
  servers {
    protocols h1 h2$([ "$h3" = 0 ] || echo " h3")
  }
}
http://127.0.0.1:$p {
  reverse_proxy 127.0.0.1:$bport
}
https://127.0.0.1:$sp {
  tls $work/cert.pem $work/key.pem
  reverse_proxy 127.0.0.1:$bport
}
EOF
  XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy GOMAXPROCS=$PROXY_PROCS \
    caddy run --config "$work/caddy/Caddyfile" --adapter caddyfile >"$work/caddy/log" 2>&1 &
  local pid=$!; pids+=($pid)
  waitport "$p"; waitport "$sp"
  HTTP[caddy]=$p; HTTPS[caddy]=$sp; PIDS[caddy]=$pid
}

# --- Gatehouse ----------------------------------------------------------
# webconfig DIR SOCKETACTIVATION [ARGS]: the app folder Gatehouse serves.
webconfig() {
  mkdir -p "$1"
  cat >"$1/web.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="$work/testapp" arguments="-no-token-check${3:+ $3}" rapidFailsPerMinute="100">
      <environmentVariables>
        <environmentVariable name="GOMAXPROCS" value="$ncpu" />
      </environmentVariables>
      <handlerSettings>
        <handlerSetting name="socketActivation" value="$2" />
      </handlerSettings>
    </aspNetCore>
  </system.webServer>
</configuration>
EOF
}
webconfig "$work/app" false
webconfig "$work/app-sa" true
webconfig "$work/app-slow" false "-startup-delay $COLD_SLOW"

# start_gatehouse NAME BIN: gatehouse BIN serving the app over http and https.
start_gatehouse() {
  local name=$1 bin=$2 p=$(freeport) sp=$(freeport)
  cat >"$work/$name.yaml" <<EOF
protocols: {http3: $([ "$h3" = 1 ] && echo true || echo false)}
sites:
  - name: bench
    bindings:
      - {scheme: http, address: 127.0.0.1, port: $p}
      - {scheme: https, address: 127.0.0.1, port: $sp, certificateFile: $work/cert.pem, keyFile: $work/key.pem}
    applications:
      - {path: /, dir: $work/app}
EOF
  # As root, a Gatehouse that refuses root apps by default needs --allow-root (older builds lack it).
  # grep reads the whole help (no -q): an early exit would kill the writer with SIGPIPE, and
  # pipefail would then take the flag for missing.
  local root=()
  if [ "$(id -u)" = 0 ] && "$bin" serve --help 2>&1 | grep -- allow-root >/dev/null; then root=(--allow-root); fi
  GOMAXPROCS=$PROXY_PROCS "$bin" serve --log-level error "${root[@]}" --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  local pid=$!; pids+=($pid)
  waitport "$p"; waitport "$sp"
  curl -fsS -o /dev/null "http://127.0.0.1:$p/"   # starts the app
  # Gatehouse's processes: itself and its keeper (the app is not counted).
  local all=$pid c
  # The keeper is the gatehouse binary re-executed, or a shell named gatehouse-keeper.
  for c in $(pgrep -P $pid); do
    if [ "$(readlink /proc/$c/exe)" = "$(readlink -f "$bin")" ] ||
       [ "$(tr '\0' '\n' </proc/$c/cmdline | head -n1)" = gatehouse-keeper ]; then
      all="$all $c"
    fi
  done
  HTTP[$name]=$p; HTTPS[$name]=$sp; PIDS[$name]=$(csv $all)
}

for t in $TARGETS; do
  case $t in
    direct) ;;
    nginx) start_nginx ;;
    haproxy) start_haproxy ;;
    caddy) start_caddy ;;
    gatehouse) start_gatehouse gatehouse "$work/gatehouse" ;;
    baseline) start_gatehouse baseline "$BASELINE" ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

results=$work/results.tsv
printf 'round\tworkload\ttarget\trps\trequests\tcpu_us\tp50_ms\tp99_ms\terrors\n' >"$results"
memory=$work/memory.tsv
printf 'target\tkey\tvalue\n' >"$memory"
mem() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$memory"; }

# Idle RSS, before any load: started, one request served, settled.
sleep 2
for t in $TARGETS; do
  mem "$t" rss_idle_kib "$(rss ${PIDS[$t]//,/ })"
  mem "$t" pss_idle_kib "$(pss ${PIDS[$t]//,/ })"
done

printf 'wrk.method = "POST"\nwrk.body = string.rep("a", 1048576)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' >"$work/upload.lua"

# tomillis VALUE: wrk's "1.23ms" / "456.00us" / "1.02s" in ms.
tomillis() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

# measure ROUND WORKLOAD TARGET: one run; appends a line to $results.
measure() {
  local r=$1 w=$2 t=$3 port=${HTTP[$3]} pl=${PIDS[$3]//,/ } url args=() out
  url="http://127.0.0.1:$port"
  case $w in
    tiny) args=(-c"$CONNS" "$url/") ;;
    64k) args=(-c"$CONNS" "$url/big?n=65536") ;;
    1m) args=(-c"$CONNS_BIG" "$url/big?n=1048576") ;;
    upload) args=(-c"$CONNS_BIG" -s "$work/upload.lua" "$url/discard") ;;
    close) args=(-c"$CONNS" -H "Connection: close" "$url/") ;;
    h2)
      [ -n "${HTTPS[$t]}" ] || return 0
      local before after
      before=$(ticks $pl)
      out=$(timeout $((DURATION + 30)) h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" --warm-up-time=1 -D "$DURATION" \
        "https://127.0.0.1:${HTTPS[$t]}/" 2>&1) || true
      after=$(ticks $pl)
      # h2load: "requests: N total, N started, N done, S succeeded, F failed, E errored, T timeout"
      local done_=$(echo "$out" | awk '/^requests:/ {print $8}') failed=$(echo "$out" | awk '/^requests:/ {print $10+$12+$14}')
      local rps=$(echo "$out" | awk '/^finished in/ {print $4}')
      local mean=$(echo "$out" | awk '/^time for request:/ {print $6}')
      [ -n "$done_" ] && [ "$done_" -gt 0 ] || { echo "h2 $t: no requests: $out" >&2; done_=0; }
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$t" "$rps" "$done_" \
        "$(awk -v d=$((after - before)) -v n="$done_" 'BEGIN {if (n) printf "%.1f", d * 10000 / n}')" \
        "$(tomillis "$mean")" "" "$failed" >>"$results"
      return 0 ;;
    h3)
      case $t in caddy|gatehouse|baseline) ;; *) return 0 ;; esac
      out=$(timeout $((DURATION + 60)) "$work/benchtool" h3 -url "https://127.0.0.1:${HTTPS[$t]}/" -ca "$work/cert.pem" \
        -c "$H3_CLIENTS" -m "$H3_STREAMS" -warm 1s -d "${DURATION}s" -pids "${PIDS[$t]}" 2>"$work/benchtool.err") ||
        { echo "h3 $t: $out $(cat "$work/benchtool.err")" >&2; return 0; }
      sed "s/^/h3 $t: /" "$work/benchtool.err" >&2
      bt() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$t" "$(bt h3_per_s)" "$(bt h3_done)" "$(bt h3_cpu_us)" \
        "$(bt h3_p50_ms)" "$(bt h3_p99_ms)" "$(bt h3_failed)" >>"$results"
      return 0 ;;
    tls)
      [ -n "${HTTPS[$t]}" ] || return 0
      out=$(timeout $((2 * DURATION + 60)) "$work/benchtool" tls -addr "127.0.0.1:${HTTPS[$t]}" -ca "$work/cert.pem" \
        -w "$TLS_WORKERS" -version "$TLS_VERSION" -curve "$TLS_CURVE" -warm 1s -d "${DURATION}s" -pids "${PIDS[$t]}" 2>"$work/benchtool.err") ||
        { echo "tls $t: $out $(cat "$work/benchtool.err")" >&2; return 0; }
      sed "s/^/tls $t: /" "$work/benchtool.err" >&2
      bt() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }
      # Two rows: full handshakes (tls) and resumed ones (tls_resumed); the
      # share of handshakes that resumed goes with the memory figures.
      local m
      for m in full resumed; do
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "tls$([ $m = full ] || echo _resumed)" "$t" "$(bt tls_${m}_per_s)" \
          "$(bt tls_${m}_done)" "$(bt tls_${m}_cpu_us)" "$(bt tls_${m}_p50_ms)" "$(bt tls_${m}_p99_ms)" "$(bt tls_${m}_failed)" >>"$results"
        mem "$t" "tls_${m}_resumed_share" "$(bt tls_${m}_resumed_share)"
      done
      return 0 ;;
  esac
  timeout 10 wrk -t1 -d1s "${args[@]}" >/dev/null 2>&1 || true    # warm-up: pools, caches
  local before after
  before=$(ticks $pl)
  out=$(timeout $((DURATION + 30)) wrk -t1 -d"${DURATION}s" --latency "${args[@]}" 2>&1) || true
  after=$(ticks $pl)
  local reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  local p50=$(echo "$out" | awk '$1 == "50%" {print $2}') p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  local errs=$(echo "$out" | awk '/Non-2xx/ {n += $NF} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}')
  [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { echo "$w $t: no requests: $out" >&2; reqs=0; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$t" "$rps" "$reqs" \
    "$(awk -v d=$((after - before)) -v n="$reqs" 'BEGIN {if (n) printf "%.1f", d * 10000 / n}')" \
    "$(tomillis "$p50")" "$(tomillis "$p99")" "$errs" >>"$results"
}

loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%s)
read -ra tlist <<<"$TARGETS"
for r in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    [ "$w" != none ] || continue
    # Rotate the order each round so no target always follows the same one.
    n=${#tlist[@]}; order=()
    for i in $(seq 0 $((n - 1))); do order+=("${tlist[$(((i + r - 1) % n))]}"); done
    for t in "${order[@]}"; do
      lines=$(wc -l <"$results")
      measure "$r" "$w" "$t"
      [ "$(wc -l <"$results")" -gt "$lines" ] || continue
      tail -n +$((lines + 1)) "$results" | awk -F'\t' '{printf "round %s %-7s %-10s %10s req/s %8s µs CPU/req p99 %s ms errors %s\n", $1, $2, $3, $4, $6, $8, $9}' >&2
    done
  done
done

if [ "$MEMORY" = 1 ]; then
  for t in $TARGETS; do
    out=$("$work/benchtool" idle -addr "127.0.0.1:${HTTP[$t]}" -n "$IDLE_CONNS" -settle "$IDLE_SETTLE" -pids "${PIDS[$t]}")
    echo "$out" | while read -r k v; do mem "$t" "$k" "$v"; done
    out=$("$work/benchtool" stream -url "http://127.0.0.1:${HTTP[$t]}/big?n=$STREAM_BYTES" -pids "${PIDS[$t]}")
    echo "$out" | while read -r k v; do mem "$t" "$k" "$v"; done
    echo "memory $t: $(grep -P "^$t\t" "$memory" | cut -f2,3 | tr '\t\n' '= ')" >&2
  done
fi

# A CPU profile of the tiny workload (perf, if the kernel lets us): where
# each front door's time goes, kernel against user space.
profile=$work/profile.txt
: >"$profile"
if [ "$PROFILE" = 1 ] && command -v perf >/dev/null; then
  for t in $TARGETS; do
    case $t in nginx|gatehouse) ;; *) continue ;; esac
    pl=${PIDS[$t]//,/ }
    pid=${pl##* }   # nginx: the worker; gatehouse: the last is the keeper, so take the first
    [ "$t" = nginx ] || pid=${pl%% *}
    timeout $((DURATION + 30)) wrk -t1 -c"$CONNS" -d"$((DURATION + 2))s" "http://127.0.0.1:${HTTP[$t]}/" >/dev/null 2>&1 &
    wpid=$!
    sleep 1
    if timeout $((DURATION + 10)) perf record -q -F 999 -p "$pid" -o "$work/perf-$t.data" -- sleep "$DURATION" >/dev/null 2>&1; then
      {
        echo "== $t (pid $pid), tiny workload, perf record -F 999: share of samples by binary"
        perf report -i "$work/perf-$t.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -5 || true
        echo "-- top symbols"
        perf report -i "$work/perf-$t.data" --no-children --sort sym --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -25 || true
      } >>"$profile"
    fi
    wait "$wpid" || true
  done
fi

# The Go benchmarks of the hot path (allocations per request; client, proxy
# and app share one process there, so their CPU figures are whole-process).
gobench=$work/gobench.txt
: >"$gobench"
if [ "$GOBENCH" = 1 ]; then
  timeout 600 go test -run '^$' -bench 'Direct$|Proxy$|Naive$|Workload|FrontDoor' -benchmem -benchtime=1s \
    ./internal/proxy/ ./internal/frontend/ 2>&1 | grep -E '^(Benchmark|goos|goarch|cpu|ok|FAIL)' >"$gobench" || true
fi

cold=$work/coldstart.txt
: >"$cold"
if [ "$COLDSTART" = 1 ]; then
  gates=(-gatehouse "gatehouse=$work/gatehouse=$work/app" -gatehouse "gatehouse_socket_activation=$work/gatehouse=$work/app-sa")
  [ -z "${BASELINE:-}" ] || gates+=(-gatehouse "baseline=$BASELINE=$work/app")
  GOMAXPROCS=$ncpu "$work/benchtool" coldstart -app "$work/testapp -no-token-check" -n "$COLD_N" "${gates[@]}" | tee "$cold" >&2
  # An app that takes COLD_SLOW to listen: what the probe's back-off costs.
  GOMAXPROCS=$ncpu "$work/benchtool" coldstart -prefix slow_ -app "$work/testapp -no-token-check -startup-delay $COLD_SLOW" \
    -n "$COLD_N" -gatehouse "gatehouse=$work/gatehouse=$work/app-slow" | tee -a "$cold" >&2
fi

# Start-up as an outside launcher sees it: each server on ports of its own,
# started STARTUP_N times, the order rotating per round.
if [ "$STARTUP" = 1 ]; then
  sa=$(freeport); sn=$(freeport); snt=$(freeport); sh_=$(freeport); sht=$(freeport); sc=$(freeport); sct=$(freeport); sg=$(freeport); sgt=$(freeport); sb=$(freeport); sbt=$(freeport)
  st=(-target "direct=127.0.0.1:$sa=GOMAXPROCS=$ncpu ASPNETCORE_PORT=$sa $work/testapp -no-token-check")
  for t in $TARGETS; do
    case $t in
      nginx)
        mkdir -p "$work/startup-nginx"
        sed -e "s|$work/nginx/nginx.pid|$work/startup-nginx/nginx.pid|" -e "s|listen 127.0.0.1:${HTTP[nginx]};|listen 127.0.0.1:$sn;|" \
          -e "s|listen 127.0.0.1:${HTTPS[nginx]} ssl|listen 127.0.0.1:$snt ssl|" "$work/nginx/nginx.conf" >"$work/startup-nginx/nginx.conf"
        st+=(-target "nginx=127.0.0.1:$sn=$NGINX -p $work/startup-nginx -c $work/startup-nginx/nginx.conf") ;;
      haproxy)
        sed -e "s|bind 127.0.0.1:${HTTP[haproxy]}$|bind 127.0.0.1:$sh_|" -e "s|bind 127.0.0.1:${HTTPS[haproxy]} |bind 127.0.0.1:$sht |" \
          "$work/haproxy.cfg" >"$work/startup-haproxy.cfg"
        st+=(-target "haproxy=127.0.0.1:$sh_=$HAPROXY -db -f $work/startup-haproxy.cfg") ;;
      caddy)
        mkdir -p "$work/startup-caddy"
        sed -e "s|http://127.0.0.1:${HTTP[caddy]} |http://127.0.0.1:$sc |" -e "s|https://127.0.0.1:${HTTPS[caddy]} |https://127.0.0.1:$sct |" \
          "$work/caddy/Caddyfile" >"$work/startup-caddy/Caddyfile"
        st+=(-target "caddy=127.0.0.1:$sc=XDG_DATA_HOME=$work/startup-caddy XDG_CONFIG_HOME=$work/startup-caddy GOMAXPROCS=$PROXY_PROCS caddy run --config $work/startup-caddy/Caddyfile --adapter caddyfile") ;;
      gatehouse|baseline)
        # Ports of their own for each: the two may run in one round.
        if [ "$t" = gatehouse ]; then p1=$sg p2=$sgt bin=$work/gatehouse; else p1=$sb p2=$sbt bin=$BASELINE; fi
        sed -e "s|port: ${HTTP[$t]}}|port: $p1}|" -e "s|port: ${HTTPS[$t]},|port: $p2,|" "$work/$t.yaml" >"$work/startup-$t.yaml"
        root=""
        [ "$(id -u)" != 0 ] || root=--allow-root
        st+=(-target "$t=127.0.0.1:$p1=GOMAXPROCS=$PROXY_PROCS $bin serve --log-level error $root --config $work/startup-$t.yaml") ;;
    esac
  done
  # The servers' own output (Caddy logs every start) goes to a file, shown if the run fails.
  "$work/benchtool" startup -n "$STARTUP_N" "${st[@]}" 2>"$work/startup.log" | tee -a "$cold" >&2 ||
    { cat "$work/startup.log" >&2; exit 1; }
fi
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report -------------------------------------------------------------
facts=$work/facts.txt
{
  echo "date: $(date -u +'%Y-%m-%d %H:%M UTC')"
  echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with local changes)') $(git log -1 --format=%s)"
  [ -z "${BASELINE:-}" ] || echo "baseline: $BASELINE"
  echo "duration: $(( $(date -u +%s) - started )) s of measuring"
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $ncpu cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r), Debian $(cat /etc/debian_version)"
  echo "load average: $loadavg_start at the start, $loadavg_end at the end"
  echo "go: $(go version | cut -d' ' -f3)"
  echo "nginx: $("$NGINX" -v 2>&1 | cut -d/ -f2)"
  echo "haproxy: $("$HAPROXY" -v | head -1 | cut -d' ' -f3)"
  echo "caddy: $(caddy version | cut -d' ' -f1)"
  echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
  echo "h2load: $(h2load --version | cut -d/ -f2)"
  echo "settings: ROUNDS=$ROUNDS DURATION=${DURATION}s CONNS=$CONNS CONNS_BIG=$CONNS_BIG H2=${H2_CLIENTS}x$H2_STREAMS H3=${H3_CLIENTS}x$H3_STREAMS TLS_WORKERS=$TLS_WORKERS TLS_VERSION=$TLS_VERSION TLS_CURVE=$TLS_CURVE KEY=$KEY IDLE_CONNS=$IDLE_CONNS PROXY_PROCS=$PROXY_PROCS"
  [ -z "$NOTE" ] || echo "note: $NOTE"
} >"$facts"

stamp=$(date -u +%Y%m%d-%H%M)-$(git rev-parse --short HEAD)
if [ "$SAVE" = 1 ]; then
  mkdir -p bench/reports
  python3 bench/report.py "$facts" "$results" "$memory" "$cold" "$profile" "$gobench" >"bench/reports/$stamp.md"
  python3 bench/report.py --index bench/reports >bench/REPORT.md
  echo "report: bench/reports/$stamp.md (and bench/REPORT.md)" >&2
else
  python3 bench/report.py "$facts" "$results" "$memory" "$cold" "$profile" "$gobench"
fi
