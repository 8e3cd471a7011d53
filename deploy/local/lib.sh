# Used by run.sh: start a local promgov cluster on
# 127.0.0.1 and stop everything it started. Source it; set RUN_DIR and BIN.

pids=()

# stop_all stops what start started in reverse order, one at a time: senders
# first, then the distributor, then the ingesters (which flush to the
# backend), and the backend last.
stop_all() {
  local i pid
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    pid=${pids[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
}

# start NAME COMMAND...: run in the background in its own session (so a
# Ctrl-C reaches only this script, which stops everything in order), output
# to $RUN_DIR/logs/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" >"$RUN_DIR/logs/$name.log" 2>&1 &
  pids+=($!)
}

# wait_http URL: wait until URL answers 2xx (20 s at most).
wait_http() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "!! $1 did not answer; see $RUN_DIR/logs" >&2; return 1
}

# ensure_prometheus: install Debian's prometheus package when missing.
ensure_prometheus() {
  command -v prometheus >/dev/null 2>&1 && return 0
  echo ">> installing the backend (Debian package prometheus)"
  local sudo=; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq prometheus >/dev/null
}

# start_backend PROMETHEUS_BINARY: a Prometheus receiving remote write on :9090.
start_backend() {
  cat >"$RUN_DIR/backend.yml" <<YAML
global: {scrape_interval: 15s}
storage:
  tsdb:
    # A ring change can deliver a metric's last samples from its old owner
    # after the new owner's first ones (docs/architecture.md).
    out_of_order_time_window: 10m
YAML
  start backend "$1" --config.file="$RUN_DIR/backend.yml" --storage.tsdb.path="$RUN_DIR/backend" \
    --web.listen-address=127.0.0.1:9090 --web.enable-remote-write-receiver
  wait_http http://127.0.0.1:9090/-/ready
}

# start_cluster BACKEND_PROTOCOL [DISTRIBUTOR_FLAG...]: 3 ingesters (HTTP
# :9501-9503, gRPC :9095-9097) and a distributor (HTTP :9500), all in one
# memberlist cluster. INGESTER_FLAGS (word-split) are added to every ingester.
start_cluster() {
  local proto=$1 i
  shift
  for i in 1 2 3; do
    start "ingester-$i" "$BIN/ingester" \
      --web.listen-address=127.0.0.1:950$i --grpc.listen-address=127.0.0.1:909$((4+i)) \
      --memberlist.bind-address=127.0.0.1:794$((6+i)) --memberlist.join=127.0.0.1:7946 \
      --memberlist.node-name=ingester-$i --wal.dir="$RUN_DIR/wal-$i" \
      --backend.url=http://127.0.0.1:9090/api/v1/write --backend.protocol="$proto" \
      ${INGESTER_FLAGS:-}
  done
  start distributor "$BIN/distributor" --web.listen-address=127.0.0.1:9500 \
    --memberlist.bind-address=127.0.0.1:7946 --memberlist.join=127.0.0.1:7947 \
    --memberlist.node-name=distributor-1 "$@"
  for i in 1 2 3; do wait_http http://127.0.0.1:950$i/-/ready; done
  wait_http http://127.0.0.1:9500/-/ready
}
