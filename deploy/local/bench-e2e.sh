#!/usr/bin/env bash
# make bench-e2e: end-to-end throughput of a local cluster (1 distributor, 3
# ingesters) forwarding to a real Prometheus, fed by loadgen as fast as it
# can. Prints accepted samples/s, samples per CPU-second of the promgov
# processes (from their process_cpu_seconds_total) in all and for the
# distributor and the ingesters apart, WAL bytes per sample and resident
# memory: the figures of docs/deploy.md's sizing.
#
# Environment: DURATION (default 30s), PROTOCOL (loadgen's, default 2),
# BACKEND_PROTOCOL (default 1 with Debian's Prometheus, 2 with PROMGOV_PROMETHEUS),
# PROMGOV_PROMETHEUS (a Prometheus 3.x binary; default: Debian's), INGESTER_FLAGS
# (extra ingester flags, e.g. --cardinality.label-drop-estimates=false),
# LOADGEN_FLAGS (extra loadgen flags overriding the workload, e.g. -labels=10),
# and the ports of make run (PORT_BASE and the others, deploy/local/lib.sh).
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

# snapshot FILE: the promgov processes' CPU seconds, memory, samples received
# and WAL bytes appended, one "port metric value" line each.
snapshot() {
  local p
  for p in $DISTRIBUTOR_PORT $INGESTERS; do
    curl -fsS "http://127.0.0.1:$p/metrics" | awk -v p="$p" '
      /^process_cpu_seconds_total / {print p, "cpu", $2}
      /^process_resident_memory_bytes / {print p, "rss", $2}
      /^go_memstats_heap_inuse_bytes / {print p, "heap", $2}
      /^promgov_forward_pending_samples / {print p, "pending", $2}
      /^promgov_ingester_received_total\{kind="samples"/ {print p, "received", $2}
      /^promgov_wal_appended_bytes_total / {print p, "wal_bytes", $2}'
  done >"$1"
}

snapshot "$RUN_DIR/before"
"$BIN/loadgen" -url="http://$DISTRIBUTOR/api/v1/write" -protocol="$PROTOCOL" \
  -metrics=200 -series-per-metric=50 -labels=3 -series-per-request=2000 \
  -rate=0 -concurrency=4 -duration="$DURATION" -report-interval=0 -output=json ${LOADGEN_FLAGS:-} >"$RUN_DIR/report.json"
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
snapshot "$RUN_DIR/after"

DISTRIBUTOR_PORT=$DISTRIBUTOR_PORT INGESTERS=$INGESTERS \
  python3 - "$RUN_DIR/report.json" "$RUN_DIR/before" "$RUN_DIR/after" <<'PY'
import json, sys
from collections import defaultdict
r = json.load(open(sys.argv[1]))
def load(path):
    m = defaultdict(float)
    for line in open(path):
        port, name, value = line.split()
        m[(port, name)] += float(value)
    return m
b, a = load(sys.argv[2]), load(sys.argv[3])
import os
dport, ingesters = os.environ["DISTRIBUTOR_PORT"], os.environ["INGESTERS"].split()
d = lambda ports, name: sum(a[(p, name)] - b[(p, name)] for p in ports)
dist_cpu, ing_cpu = d([dport], "cpu"), d(ingesters, "cpu")
acc, received, wal = r['accepted_samples'], d(ingesters, "received"), d(ingesters, "wal_bytes")
print(f"accepted samples      {acc}")
print(f"accepted samples/s    {r['samples_per_second']:.0f}")
print(f"latency ms p50/p99    {r['latency_ms']['p50']:.1f} / {r['latency_ms']['p99']:.1f}")
print(f"promgov CPU seconds   {dist_cpu + ing_cpu:.1f} (distributor {dist_cpu:.1f}, ingesters {ing_cpu:.1f})")
print(f"samples per CPU-sec   {acc / (dist_cpu + ing_cpu):.0f} (distributor {acc / dist_cpu:.0f}, ingesters {acc / ing_cpu:.0f})")
print(f"WAL bytes per sample  {wal / received:.1f} ({wal / 2**20:.0f} MiB for {received:.0f} samples)")
for what, key in (("resident memory MiB ", "rss"), ("heap in use MiB     ", "heap")):
    print(f"{what}  distributor {a[(dport, key)] / 2**20:.0f}, ingesters " +
          ", ".join(f"{a[(p, key)] / 2**20:.0f}" for p in ingesters))
print(f"status counts         {r['status_counts']}")
PY
