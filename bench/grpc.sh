#!/usr/bin/env bash
# bench/grpc.sh — gRPC through Gatehouse (protocol h2c) against nginx
# (grpc_pass) and Caddy (reverse_proxy h2c://), each in front of grpc-go's
# interop server, which is also measured alone as the limit. The load is
# benchtool grpc (grpc-go's client) over cleartext HTTP/2 to the front door:
# unary calls, and round trips on bidirectional streams (each round trip
# counted as one RPC). Loopback only, bounded in time (~2 minutes with the
# defaults); not part of go test. See bench/NOTES.md ("gRPC").
#
#   bench/grpc.sh
#   ROUNDS=5 DURATION=10 bench/grpc.sh
#   TARGETS="nginx gatehouse" WORKLOADS=unary bench/grpc.sh
#   BASELINE=/tmp/gatehouse-old bench/grpc.sh   # also a second gatehouse binary
#
# Fairness as in bench/run.sh: one worker per front door (nginx
# worker_processes 1, GOMAXPROCS=$PROXY_PROCS for Caddy and Gatehouse), the
# backends GOMAXPROCS=$(nproc); targets take turns within each round in an
# order that rotates per round; every ratio is taken within a round and the
# median over rounds is printed. CPU per RPC is user+system time of the
# front door's processes (Gatehouse: itself and its keeper, not the app)
# from /proc/PID/stat over the measurement, divided by the RPCs completed.
# Gatehouse starts its own copy of the interop server (an app is its
# child); nginx and Caddy share the one started here.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}          # seconds per measurement (after 1 s warm-up)
CONNS=${CONNS:-4}                # client connections
WORKERS=${WORKERS:-32}           # concurrent calls (or streams)
PROXY_PROCS=${PROXY_PROCS:-1}    # GOMAXPROCS of Caddy and Gatehouse
WORKLOADS=${WORKLOADS:-"unary stream"}
TARGETS=${TARGETS:-"direct nginx caddy gatehouse${BASELINE:+ baseline}"}
# BASELINE names another gatehouse binary (e.g. built from main), measured as
# target "baseline" in the same rounds, with its own copy of the app.
BASELINE=${BASELINE:-}

[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v caddy >/dev/null || TARGETS=${TARGETS//caddy/}
[ "$(getconf CLK_TCK)" = 100 ] || { echo "CLK_TCK is not 100; the CPU figures assume it" >&2; exit 1; }

work=$(mktemp -d /tmp/gatehouse-grpcbench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building into $work" >&2
go build -o "$work/gatehouse" ./cmd/gatehouse
go build -o "$work/benchtool" ./bench/benchtool
go build -o "$work/" google.golang.org/grpc/interop/server   # $work/server

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
waitport() {
  for _ in $(seq 200); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "port $1 never opened" >&2; exit 1
}
csv() { local IFS=,; echo "$*"; }
ncpu=$(nproc)
declare -A ADDR PIDS

# --- the backend alone --------------------------------------------------
bport=$(freeport)
GOMAXPROCS=$ncpu "$work/server" --port="$bport" >/dev/null 2>&1 &
bpid=$!; pids+=($bpid)
waitport "$bport"
ADDR[direct]=127.0.0.1:$bport; PIDS[direct]=$bpid

start_nginx() {
  local p=$(freeport) d=$work/nginx
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
  upstream grpcapp { server 127.0.0.1:$bport; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$p http2;
    location / { grpc_pass grpc://grpcapp; }
  }
}
EOF
  "$NGINX" -p "$d" -c "$d/nginx.conf" &
  local master=$!; pids+=($master)
  waitport "$p"
  local workers=
  for _ in $(seq 100); do workers=$(pgrep -P $master || true); [ -z "$workers" ] || break; sleep 0.05; done
  ADDR[nginx]=127.0.0.1:$p; PIDS[nginx]=$(csv $master $workers)
}

start_caddy() {
  local p=$(freeport)
  mkdir -p "$work/caddy"
  cat >"$work/caddy/Caddyfile" <<EOF
{
  admin off
  auto_https off
  servers {
    protocols h1 h2 h2c
  }
}
http://127.0.0.1:$p {
  reverse_proxy h2c://127.0.0.1:$bport
}
EOF
  XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy GOMAXPROCS=$PROXY_PROCS \
    caddy run --config "$work/caddy/Caddyfile" --adapter caddyfile >"$work/caddy/log" 2>&1 &
  local pid=$!; pids+=($pid)
  waitport "$p"
  ADDR[caddy]=127.0.0.1:$p; PIDS[caddy]=$pid
}

# start_gatehouse NAME BINARY starts a Gatehouse as target NAME.
start_gatehouse() {
  local name=$1 bin=$2 p=$(freeport)
  local app=$work/app-$name
  mkdir -p "$app"
  cat >"$app/web.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="$work/server" arguments="--port=%ASPNETCORE_PORT%">
      <environmentVariables>
        <environmentVariable name="GOMAXPROCS" value="$ncpu" />
      </environmentVariables>
      <handlerSettings>
        <handlerSetting name="protocol" value="h2c" />
      </handlerSettings>
    </aspNetCore>
  </system.webServer>
</configuration>
EOF
  cat >"$work/$name.yaml" <<EOF
protocols: {h2c: true}
sites:
  - name: bench
    bindings:
      - {scheme: http, address: 127.0.0.1, port: $p}
    applications:
      - {path: /, dir: $app}
EOF
  local root=()
  [ "$(id -u)" != 0 ] || root=(--allow-root)
  GOMAXPROCS=$PROXY_PROCS "$bin" serve --log-level error "${root[@]}" --config "$work/$name.yaml" >"$work/$name.log" 2>&1 &
  local pid=$!; pids+=($pid)
  waitport "$p"
  # Gatehouse's processes: itself and its keeper (the app is not counted).
  local all=$pid c
  for c in $(pgrep -P $pid); do
    if [ "$(readlink /proc/$c/exe)" = "$(readlink -f "$bin")" ] ||
       [ "$(tr '\0' '\n' </proc/$c/cmdline | head -n1)" = gatehouse-keeper ]; then
      all="$all $c"
    fi
  done
  ADDR[$name]=127.0.0.1:$p; PIDS[$name]=$(csv $all)
}

for t in $TARGETS; do
  case $t in
    direct) ;;
    nginx) start_nginx ;;
    caddy) start_caddy ;;
    gatehouse) start_gatehouse gatehouse "$work/gatehouse" ;;
    baseline) [ -x "$BASELINE" ] || { echo "BASELINE=$BASELINE is not an executable" >&2; exit 2; }
            start_gatehouse baseline "$BASELINE" ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done

results=$work/results.tsv
printf 'round\tworkload\ttarget\trps\trpcs\tcpu_us\terrors\n' >"$results"
loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)
read -ra tlist <<<"$TARGETS"
for r in $(seq "$ROUNDS"); do
  for w in $WORKLOADS; do
    n=${#tlist[@]}; order=()
    for i in $(seq 0 $((n - 1))); do order+=("${tlist[$(((i + r - 1) % n))]}"); done
    for t in "${order[@]}"; do
      # The first call through Gatehouse also starts its app: the warm-up
      # second of benchtool covers it.
      out=$(timeout $((DURATION + 40)) "$work/benchtool" grpc -addr "${ADDR[$t]}" -mode "$w" -conns "$CONNS" \
        -workers "$WORKERS" -dur "${DURATION}s" -pids "${PIDS[$t]}") || { echo "$w $t: benchtool failed" >&2; continue; }
      v() { echo "$out" | awk -v k="$1" '$1 == k {print $2}'; }
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$w" "$t" "$(v rps)" "$(v rpcs)" "$(v cpu_us_per_rpc)" "$(v errors)" >>"$results"
      tail -1 "$results" | awk -F'\t' '{printf "round %s %-6s %-10s %8s RPC/s %7s µs CPU/RPC errors %s\n", $1, $2, $3, $4, $6, $7}' >&2
    done
  done
done
loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)

echo "date: $(date -u +'%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with local changes)')"
echo "machine: $ncpu cores; load average $loadavg_start at the start, $loadavg_end at the end"
echo "nginx $("$NGINX" -v 2>&1 | cut -d/ -f2), caddy $(caddy version 2>/dev/null | cut -d' ' -f1), grpc-go $(go list -m -f '{{.Version}}' google.golang.org/grpc)"
echo "settings: ROUNDS=$ROUNDS DURATION=${DURATION}s CONNS=$CONNS WORKERS=$WORKERS PROXY_PROCS=$PROXY_PROCS"
python3 - "$results" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault((r["workload"], r["target"]), {})[r["round"]] = r
workloads = sorted({r["workload"] for r in rows}, key=["unary", "stream"].index)
targets = [t for t in ["direct", "nginx", "caddy", "baseline", "gatehouse"] if any(k[1] == t for k in by)]
print("\nmedians over rounds:")
print(f"{'workload':8} {'target':10} {'RPC/s':>9} {'µs CPU/RPC':>11} {'errors':>7}")
for w in workloads:
    for t in targets:
        rs = list(by.get((w, t), {}).values())
        if rs:
            print(f"{w:8} {t:10} {statistics.median(float(r['rps']) for r in rs):9.0f} "
                  f"{statistics.median(float(r['cpu_us']) for r in rs):11.2f} {sum(int(r['errors'] or 0) for r in rs):7}")
print("\nratios, subject / peer (median of per-round ratios; CPU below 1 and RPC/s above 1 favour the subject;")
print("\"baseline\" is the BASELINE binary):")
pairs = [("gatehouse", "nginx"), ("gatehouse", "caddy"), ("gatehouse", "baseline"), ("baseline", "nginx")]
for w in workloads:
    for subject, peer in pairs:
        g = by.get((w, subject), {})
        p = by.get((w, peer), {})
        rounds = sorted(set(g) & set(p))
        if not rounds:
            continue
        cpu = statistics.median(float(g[k]["cpu_us"]) / float(p[k]["cpu_us"]) for k in rounds)
        rps = statistics.median(float(g[k]["rps"]) / float(p[k]["rps"]) for k in rounds)
        print(f"{w:8} {subject:9} vs {peer:6} CPU/RPC {cpu:5.2f}  RPC/s {rps:5.2f}  ({len(rounds)} rounds)")
PY
