#!/usr/bin/env bash
# make run: a local promgov cluster forwarding real traffic to a real backend.
#
#   Prometheus agent ──┐                               ┌─► ingester-1 ─┐
#   (scrapes itself    ├─► distributor :9500 ─(gRPC)───┼─► ingester-2 ─┼─► Prometheus :9090
#    and promgov)      │   (RW 1.0 / 2.0)              └─► ingester-3 ─┘   (backend, RW 1.0)
#   promgov loadgen ───┘
#
# Everything listens on 127.0.0.1. Ctrl-C stops everything this script started
# and exits 0. Every port is checked before anything starts.
#
# Environment (README, "make run"):
#   PORT_BASE, DISTRIBUTOR_PORT, INGESTER_PORT, INGESTER_GRPC_PORT, GOSSIP_PORT,
#   BACKEND_PORT, AGENT_PORT   ports (deploy/local/lib.sh, set_ports)
#   LOADGEN_RATE               samples/s of the load generator (default 2000)
#   INGESTER_FLAGS, DISTRIBUTOR_FLAGS   extra flags (word-split)
#   PROMGOV_CONFIG             the shared config file (default deploy/local/promgov.yml)
#   PROMGOV_RUN_DIR            state and logs (default .run; emptied at start)
#   PROMGOV_BIN                the promgov binaries (default bin, which make run builds)
#   PROMETHEUS                 the Prometheus binary of the backend and the agent
#                              (default: Debian's prometheus, installed when missing)
#   STOP_TIMEOUT               seconds a process may take to stop before it is killed (60)
set -euo pipefail
# Writing to a closed stdout (`make run | tee run.log`, then Ctrl-C, which
# ends tee first) fails instead of killing this script before it stopped
# what it started. Started processes get SIGPIPE back (lib.sh, start).
trap '' PIPE
cd "$(dirname "$0")/../.."
RUN_DIR=${PROMGOV_RUN_DIR:-$PWD/.run}
RATE=${LOADGEN_RATE:-2000}
BIN=${PROMGOV_BIN:-$PWD/bin}
CONFIG=${PROMGOV_CONFIG:-$PWD/deploy/local/promgov.yml}
. deploy/local/lib.sh

# Before anything starts: every port free, every command there.
set_ports
check_ports backend agent distributor ingesters
if [ -n "${PROMETHEUS:-}" ]; then need_commands curl; PROM=$PROMETHEUS; else need_commands curl prometheus; PROM=$(command -v prometheus); fi
for b in distributor ingester loadgen; do
  [ -x "$BIN/$b" ] || fail "$BIN/$b is missing: make run builds it (make build)"
done
[ -r "$CONFIG" ] || fail "PROMGOV_CONFIG=$CONFIG cannot be read"
rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR/logs"
cp "$CONFIG" "$RUN_DIR/promgov.yml"

# stop CODE: stop everything in order and exit CODE. Ctrl-C and SIGTERM are
# a clean stop (0); an error stops with its status. A second Ctrl-C does not
# interrupt the stop.
stop() {
  trap '' INT TERM
  trap - EXIT
  set +e
  say ""
  say ">> stopping"
  stop_all
  say ">> stopped; logs are in $RUN_DIR/logs"
  exit "$1"
}
trap 'stop 0' INT TERM
trap 'stop $?' EXIT

# Prometheus 2.x runs an agent with a feature flag, 3.x with --agent.
agent_mode=--agent
"$PROM" --version 2>&1 | grep -q 'version 2\.' && agent_mode=--enable-feature=agent

say ">> starting the backend: $("$PROM" --version 2>&1 | head -1) on :$BACKEND_PORT"
start_backend "$PROM"
say ">> starting 3 ingesters (HTTP :$INGESTER_PORT-$((INGESTER_PORT + 2))) and a distributor (HTTP :$DISTRIBUTOR_PORT)"
# Debian's Prometheus 2.42 receives RW 1.0 only. The distributor also taps
# the read API (queries through the distributor reach the backend) and
# learns usage from deploy/grafana; drop_unused runs in shadow mode: it
# reports, drops nothing. The config file's demo rule and limit are in
# shadow mode too.
INGESTER_FLAGS="--config.file=$RUN_DIR/promgov.yml ${INGESTER_FLAGS:-}" \
  start_cluster 1 --config.file="$RUN_DIR/promgov.yml" --query.backend-url="http://$BACKEND" \
  --usage.dashboards-path="$PWD/deploy/grafana" --usage.reload-interval=30s \
  --usage.drop-unused.mode=shadow --usage.drop-unused.grace-period=10m

say ">> starting a real sender: Prometheus in agent mode scraping itself and promgov"
cat >"$RUN_DIR/agent.yml" <<YAML
global: {scrape_interval: 5s, external_labels: {cluster: local}}
scrape_configs:
  - job_name: agent
    static_configs: [{targets: ['127.0.0.1:$AGENT_PORT']}]
  - job_name: promgov
    static_configs: [{targets: ['$DISTRIBUTOR', '127.0.0.1:$INGESTER_PORT', '127.0.0.1:$((INGESTER_PORT + 1))', '127.0.0.1:$((INGESTER_PORT + 2))']}]
remote_write:
  - url: http://$DISTRIBUTOR/api/v1/write
    send_exemplars: true
    metadata_config: {send: true, send_interval: 15s}
YAML
start agent "$PROM" "$agent_mode" --config.file="$RUN_DIR/agent.yml" \
  --storage.agent.path="$RUN_DIR/agent" --web.listen-address="127.0.0.1:$AGENT_PORT"
wait_http "http://127.0.0.1:$AGENT_PORT/-/ready"

say ">> starting the load generator ($RATE samples/s, RW 2.0)"
start loadgen "$BIN/loadgen" -url="http://$DISTRIBUTOR/api/v1/write" -protocol=2 \
  -metrics=50 -series-per-metric=20 -rate="$RATE" -duration=24h -report-interval=30s

D=http://$DISTRIBUTOR
say "
promgov is running. Look at:
  web UI                   $D/
  ring (a person's view)   $D/ring
  ring (JSON)              $D/promgov/api/v1/status/ring
  distributor metrics      $D/metrics
  top offenders (series)   $D/promgov/api/v1/cardinality/metrics?sort=series&limit=10
  refused (demo limit)     $D/promgov/api/v1/cardinality/metrics?sort=refused&limit=10
  unused metrics           $D/promgov/api/v1/usage/metrics?state=unused&sort=series
  suggested rules          $D/promgov/api/v1/usage/suggestions
  active rules             $D/promgov/api/v1/rules
  query API (tapped)       $D/api/v1/query?query=...   (proxied to :$BACKEND_PORT, usage recorded)
  Grafana data source URL  $D   (the whole Prometheus read API, proxied to :$BACKEND_PORT)
Example queries:
  curl -s $D/api/v1/query --data-urlencode 'query=count by (job) (up)'
  curl -s $D/api/v1/query --data-urlencode 'query=sum(rate(promgov_distributor_received_samples_total[1m]))'
  curl -s $D/api/v1/query --data-urlencode 'query=count({__name__=~\"loadgen_.*\"})'
Configuration: $RUN_DIR/promgov.yml; after editing it: curl -X POST $D/-/reload (rules, usage),
  curl -X POST http://127.0.0.1:$INGESTER_PORT/-/reload (and the other ingesters: limits)
Logs: $RUN_DIR/logs   Ctrl-C stops everything."

# Run until Ctrl-C (the trap stops everything) or until a process exits by
# itself, which stops the rest.
while true; do
  wait -n || true
  if gone=$(exited_child); then
    say "!! $gone exited; the end of $RUN_DIR/logs/$gone.log:"
    say "$(tail -n 5 "$RUN_DIR/logs/$gone.log")"
    stop 1
  fi
done
