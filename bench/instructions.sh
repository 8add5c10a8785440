#!/usr/bin/env bash
# bench/instructions.sh — user-space instructions per request of Gatehouse on
# the tiny keep-alive workload (MODE=close: a new connection per request,
# "Connection: close", as run.sh's close workload), counted by callgrind:
# repeatable to well under 1% between runs, where CPU time on a shared
# machine spreads by ±10–40% per round (bench/NOTES.md, "Tiny keep-alive,
# fifth pass", "New connection per request, instructions"). Compares binaries
# given as arguments (default: the checkout's, built here), each run RUNS
# times, alternating.
#
#   bench/instructions.sh                         # the checkout
#   bench/instructions.sh /tmp/gh-main ./gh-new   # two builds, side by side
#   N=20000 C=50 RUNS=2 bench/instructions.sh
#   MODE=close bench/instructions.sh              # per connection+request
#
# Each run starts `gatehouse serve` (GOMAXPROCS=1, run.sh's configuration:
# one site, the bench's testapp) under valgrind --tool=callgrind, sends WARM
# requests (the app starts, pools fill), zeroes the counters, sends exactly N
# keep-alive GET / over C connections (benchtool gets; MODE=close: N GET /
# each on a new connection, C at a time, benchtool gets -close), and dumps
# (OUT=DIR keeps the callgrind files there, for callgrind_annotate). Printed per
# run: instructions per request in all, and without the runtime's stack
# growth (runtime.newstack, inclusive): under valgrind's timing the runtime's
# adaptive goroutine stack size starts the wake-up goroutines small and they
# grow (~3,400 instructions per request), which a native run under wrk does
# not show, so compare the second figure. Third: system clock reads per
# request (calls of runtime.nanotime1, one clock, and of time.now, which
# time.Now calls: two, wall and monotonic): under valgrind the runtime reads
# the clock with a system call, whose work the instruction counts leave out,
# where natively each is a vDSO call. GODEBUG=asyncpreemptoff=1: callgrind
# asserts on the runtime's preemption signals now and then. Only the
# Gatehouse process is counted (not its keeper, not the app).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
N=${N:-20000}
C=${C:-50}
WARM=${WARM:-2000}
RUNS=${RUNS:-2}
MODE=${MODE:-keepalive}
case $MODE in
  keepalive) gets=() ;;
  close) gets=(-close) ;;
  *) echo "MODE is keepalive or close, not $MODE" >&2; exit 2 ;;
esac
command -v valgrind >/dev/null || { echo "valgrind is needed (apt-get install valgrind)" >&2; exit 2; }

work=$(mktemp -d /tmp/gatehouse-instr.XXXXXX)
vpid=
cleanup() { [ -z "$vpid" ] || kill -9 "$vpid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/testapp" ./internal/testapp
go build -o "$work/benchtool" ./bench/benchtool
bins=("$@")
if [ ${#bins[@]} = 0 ]; then
  go build -o "$work/gatehouse" ./cmd/gatehouse
  bins=("$work/gatehouse")
fi

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
mkdir -p "$work/app"
cat >"$work/app/web.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="$work/testapp" arguments="-no-token-check">
      <environmentVariables>
        <environmentVariable name="GOMAXPROCS" value="$(nproc)" />
      </environmentVariables>
    </aspNetCore>
  </system.webServer>
</configuration>
XML

# count BIN: one callgrind run; prints "total without-stack-growth" per request.
count() {
  local bin=$1 port out
  port=$(freeport)
  cat >"$work/gh.yaml" <<YAML
protocols: {http3: false}
sites:
  - name: bench
    bindings:
      - {scheme: http, address: 127.0.0.1, port: $port}
    applications:
      - {path: /, dir: $work/app}
YAML
  local root=()
  if [ "$(id -u)" = 0 ]; then root=(--allow-root); fi
  out=$work/cg.out
  rm -f "$out"*
  GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file="$out.%p" \
    "$bin" serve --log-level error "${root[@]}" --config "$work/gh.yaml" >"$work/vg.log" 2>&1 &
  vpid=$!
  local ok=
  for _ in $(seq 600); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then ok=1; break; fi
    sleep 0.1
  done
  [ -n "$ok" ] || { echo "gatehouse under callgrind never answered; see $work/vg.log" >&2; exit 1; }
  "$work/benchtool" gets -addr "127.0.0.1:$port" -n "$WARM" -c "$C" "${gets[@]}" >/dev/null
  callgrind_control -z "$vpid" >/dev/null 2>&1
  "$work/benchtool" gets -addr "127.0.0.1:$port" -n "$N" -c "$C" "${gets[@]}" >/dev/null
  callgrind_control -d "$vpid" >/dev/null 2>&1
  kill -9 "$vpid" 2>/dev/null || true
  wait "$vpid" 2>/dev/null || true
  vpid=
  local f ir ns cr
  f=$(ls -t "$out".* | head -1)
  if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT"
    cp "$f" "$OUT/callgrind.$(basename "$bin").$MODE.$(date +%H%M%S)"
  fi
  ir=$(callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ && !t {gsub(",", "", $1); t = $1} END {print t}')
  ns=$(callgrind_annotate --inclusive=yes "$f" 2>/dev/null |
    awk '/runtime\/stack.go:runtime.newstack( |$)/ {gsub(",", "", $1); s += $1} END {print s + 0}')
  cr=$(callgrind_annotate --tree=calling --threshold=100 "$f" 2>/dev/null |
    awk '/>  .*runtime\.nanotime1/ || />  .*time_linux_amd64\.s:time\.now / {
      w = /time\.now / ? 2 : 1
      if (match($0, /\([0-9,]+x\)/)) { c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c); s += w * c }
    } END {print s + 0}')
  echo "$((ir / N)) $(((ir - ns) / N)) $(awk -v c="$cr" -v n="$N" 'BEGIN {printf "%.2f", c / n}')"
}

printf '%-40s %4s %18s %28s %18s\n' binary run "instructions/req" "without stack growth/req" "clock reads/req"
for r in $(seq "$RUNS"); do
  for bin in "${bins[@]}"; do
    read -r all rest clocks < <(count "$bin")
    printf '%-40s %4d %18s %28s %18s\n' "$bin" "$r" "$all" "$rest" "$clocks"
  done
done
