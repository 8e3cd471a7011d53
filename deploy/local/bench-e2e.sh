#!/usr/bin/env bash
# make bench-e2e: end-to-end throughput of a local cluster (1 distributor, 3
# ingesters) forwarding to a real Prometheus, fed by loadgen as fast as it
# can. Prints accepted samples/s and samples per CPU-second of all promgov
# processes together (from their process_cpu_seconds_total).
#
# Environment: DURATION (default 30s), PROTOCOL (loadgen's, default 2),
# BACKEND_PROTOCOL (default 1 with Debian's Prometheus, 2 with PROMGOV_PROMETHEUS),
# PROMGOV_PROMETHEUS (a Prometheus 3.x binary; default: Debian's), INGESTER_FLAGS
# (extra ingester flags, e.g. --cardinality.label-drop-estimates=false), and
# the ports of make run (PORT_BASE and the others, deploy/local/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/bin
. deploy/local/lib.sh
set_ports
check_ports backend distributor ingesters
need_commands curl python3
DURATION=${DURATION:-30s}
PROTOCOL=${PROTOCOL:-2}
if [ -n "${PROMGOV_PROMETHEUS:-}" ]; then PROM=$PROMGOV_PROMETHEUS; BP=${BACKEND_PROTOCOL:-2}
else need_commands prometheus; PROM=$(command -v prometheus); BP=${BACKEND_PROTOCOL:-1}; fi
RUN_DIR=$(mktemp -d /tmp/promgov-bench.XXXXXX)
mkdir -p "$RUN_DIR/logs"
trap 'stop_all; rm -rf "$RUN_DIR"' EXIT
INGESTERS="$INGESTER_PORT $((INGESTER_PORT + 1)) $((INGESTER_PORT + 2))"

start_backend "$PROM"
start_cluster "$BP"

cpu() { # total CPU seconds of the promgov processes
  local sum=0 p v
  for p in $DISTRIBUTOR_PORT $INGESTERS; do
    v=$(curl -fsS "http://127.0.0.1:$p/metrics" | awk '/^process_cpu_seconds_total/ {print $2}')
    sum=$(awk -v a="$sum" -v b="$v" 'BEGIN {print a + b}')
  done
  echo "$sum"
}

before=$(cpu)
"$BIN/loadgen" -url="http://$DISTRIBUTOR/api/v1/write" -protocol="$PROTOCOL" \
  -metrics=200 -series-per-metric=50 -labels=3 -series-per-request=2000 \
  -rate=0 -concurrency=4 -duration="$DURATION" -report-interval=0 -output=json >"$RUN_DIR/report.json"
# Count the CPU of forwarding too: wait (up to 60s) until the ingesters have
# sent every sample they received (the WAL may hold a backlog).
metric_sum() { # metric_sum NAME: sum of NAME over the ingesters
  local p sum=0 v
  for p in $INGESTERS; do
    v=$(curl -fsS "http://127.0.0.1:$p/metrics" | awk -v m="$1" 'index($0, m) == 1 {s += $2} END {print s + 0}')
    sum=$(awk -v a="$sum" -v b="$v" 'BEGIN {print a + b}')
  done
  echo "$sum"
}
for _ in $(seq 600); do
  awk -v r="$(metric_sum 'promgov_ingester_received_total{kind="samples"}')" \
      -v s="$(metric_sum 'promgov_forward_sent_samples_total')" 'BEGIN {exit !(s >= r)}' && break
  sleep 0.1
done
after=$(cpu)

python3 - "$RUN_DIR/report.json" "$before" "$after" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); cpu = float(sys.argv[3]) - float(sys.argv[2])
print(f"accepted samples      {r['accepted_samples']}")
print(f"accepted samples/s    {r['samples_per_second']:.0f}")
print(f"latency ms p50/p99    {r['latency_ms']['p50']:.1f} / {r['latency_ms']['p99']:.1f}")
print(f"promgov CPU seconds   {cpu:.1f}")
print(f"samples per CPU-sec   {r['accepted_samples'] / cpu:.0f}")
print(f"status counts         {r['status_counts']}")
PY
