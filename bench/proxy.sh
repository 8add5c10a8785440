#!/usr/bin/env bash
# bench/proxy.sh — the quick check: CPU per small forwarded request,
# Gatehouse against nginx, both in front of the same backend, loaded by wrk
# on loopback, in rounds; prints the report instead of saving it.
#
#   ./bench/proxy.sh            # 3 rounds of 10 s per front door;
#                               # ROUNDS=5 DURATION=30 CONNS=32 to change
#   BASELINE=/tmp/gatehouse-old ./bench/proxy.sh
#                               # also measure another gatehouse binary (say,
#                               # built from the last commit) in the same run
#
# It is bench/run.sh with one workload and two targets; see there for how
# the figures are taken.
exec env WORKLOADS="${WORKLOADS:-tiny}" TARGETS="${TARGETS:-nginx gatehouse}" MEMORY=0 COLDSTART=0 SAVE=0 \
  DURATION="${DURATION:-10}" CONNS="${CONNS:-16}" "$(dirname "$0")/run.sh"
