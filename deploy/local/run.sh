#!/usr/bin/env bash
# make run: a local promgov cluster forwarding real traffic to a real backend.
#
#   Prometheus agent ──┐                               ┌─► ingester-1 ─┐
#   (scrapes itself    ├─► distributor :9500 ─(gRPC)───┼─► ingester-2 ─┼─► Prometheus :9090
#    and promgov)      │   (RW 1.0 / 2.0)              └─► ingester-3 ─┘   (backend, RW 1.0)
#   promgov loadgen ───┘
#
# Everything listens on 127.0.0.1. Ctrl-C stops everything this script started.
# Environment: PROMGOV_RUN_DIR (state, default .run), LOADGEN_RATE (samples/s, default 2000).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN_DIR=${PROMGOV_RUN_DIR:-$PWD/.run}
RATE=${LOADGEN_RATE:-2000}
BIN=$PWD/bin
. deploy/local/lib.sh

ensure_prometheus
PROM=$(command -v prometheus)
rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR/logs"
trap 'trap - INT TERM EXIT; echo; echo ">> stopping"; stop_all; echo ">> stopped; logs are in $RUN_DIR/logs"' INT TERM EXIT

echo ">> starting the backend: $($PROM --version 2>&1 | head -1) on :9090"
start_backend "$PROM"
echo ">> starting 3 ingesters (HTTP :9501-9503) and a distributor (HTTP :9500)"
# Debian's Prometheus 2.42 receives RW 1.0 only. The distributor also taps
# the read API (queries through :9500 reach the backend) and learns usage
# from deploy/grafana; drop_unused runs in shadow mode: it reports, drops nothing.
start_cluster 1 --query.backend-url=http://127.0.0.1:9090 \
  --usage.dashboards-path="$PWD/deploy/grafana" --usage.reload-interval=30s \
  --usage.drop-unused.mode=shadow --usage.drop-unused.grace-period=10m

echo ">> starting a real sender: Prometheus in agent mode scraping itself and promgov"
cat >"$RUN_DIR/agent.yml" <<YAML
global: {scrape_interval: 5s, external_labels: {cluster: local}}
scrape_configs:
  - job_name: agent
    static_configs: [{targets: ['127.0.0.1:9091']}]
  - job_name: promgov
    static_configs: [{targets: ['127.0.0.1:9500', '127.0.0.1:9501', '127.0.0.1:9502', '127.0.0.1:9503']}]
remote_write:
  - url: http://127.0.0.1:9500/api/v1/write
    send_exemplars: true
    metadata_config: {send: true, send_interval: 15s}
YAML
start agent "$PROM" --enable-feature=agent --config.file="$RUN_DIR/agent.yml" \
  --storage.agent.path="$RUN_DIR/agent" --web.listen-address=127.0.0.1:9091

echo ">> starting the load generator ($RATE samples/s, RW 2.0)"
start loadgen "$BIN/loadgen" -url=http://127.0.0.1:9500/api/v1/write -protocol=2 \
  -metrics=50 -series-per-metric=20 -rate="$RATE" -duration=24h -report-interval=30s

cat <<MSG

promgov is running. Look at:
  ring (a person's view)   http://127.0.0.1:9500/ring
  ring (JSON)              http://127.0.0.1:9500/promgov/api/v1/status/ring
  distributor metrics      http://127.0.0.1:9500/metrics
  top offenders (series)   http://127.0.0.1:9500/promgov/api/v1/cardinality/metrics?sort=series&limit=10
  unused metrics           http://127.0.0.1:9500/promgov/api/v1/usage/metrics?state=unused&sort=series
  suggested rules          http://127.0.0.1:9500/promgov/api/v1/usage/suggestions
  query API (tapped)       http://127.0.0.1:9500/api/v1/query?query=...   (proxied to :9090, usage recorded)
  Grafana data source URL  http://127.0.0.1:9500   (the whole Prometheus read API, proxied to :9090)
Example queries:
  curl -s http://127.0.0.1:9500/api/v1/query --data-urlencode 'query=count by (job) (up)'
  curl -s http://127.0.0.1:9500/api/v1/query --data-urlencode 'query=sum(rate(promgov_distributor_received_samples_total[1m]))'
  curl -s http://127.0.0.1:9500/api/v1/query --data-urlencode 'query=count({__name__=~"loadgen_.*"})'
Logs: $RUN_DIR/logs   Ctrl-C stops everything.
MSG
# Wait for Ctrl-C (or for every child to exit).
wait
