# Used by run.sh: start a local promgov cluster on
# 127.0.0.1 and stop everything it started. Source it; set RUN_DIR and BIN,
# then call set_ports.

pids=()
names=()

# say MESSAGE...: print a line, and never fail or die for it: the reader of
# stdout may be gone (`make run | tee run.log` after Ctrl-C).
say() { printf '%s\n' "$*" 2>/dev/null || true; }

# fail MESSAGE...: print to stderr and exit 1.
fail() {
  printf '!! %s\n' "$@" >&2 2>/dev/null || true
  exit 1
}

# set_ports: the ports everything listens on (127.0.0.1). PORT_BASE=N moves
# them all to N..N+12; each variable below can also be set on its own.
#
#   DISTRIBUTOR_PORT     9500  distributor HTTP (remote write, APIs, query tap)
#   INGESTER_PORT        9501  HTTP of ingester 1 (ingesters 2, 3: +1, +2)
#   INGESTER_GRPC_PORT   9095  gRPC of ingester 1 (ingesters 2, 3: +1, +2)
#   GOSSIP_PORT          7946  memberlist of the distributor (ingesters: +1..+3), TCP and UDP
#   BACKEND_PORT         9090  the backend Prometheus
#   AGENT_PORT           9091  the Prometheus agent (make run only)
set_ports() {
  local b=${PORT_BASE:-}
  if [ -n "$b" ]; then
    [[ $b =~ ^[0-9]+$ ]] && [ "$b" -ge 1024 ] && [ "$b" -le 65522 ] ||
      fail "PORT_BASE=$b: use a number from 1024 to 65522 (make run uses PORT_BASE..PORT_BASE+12)"
    : "${DISTRIBUTOR_PORT:=$b}" "${INGESTER_PORT:=$((b + 1))}" "${INGESTER_GRPC_PORT:=$((b + 4))}"
    : "${GOSSIP_PORT:=$((b + 7))}" "${BACKEND_PORT:=$((b + 11))}" "${AGENT_PORT:=$((b + 12))}"
  fi
  : "${DISTRIBUTOR_PORT:=9500}" "${INGESTER_PORT:=9501}" "${INGESTER_GRPC_PORT:=9095}"
  : "${GOSSIP_PORT:=7946}" "${BACKEND_PORT:=9090}" "${AGENT_PORT:=9091}"
  local v
  for v in DISTRIBUTOR_PORT INGESTER_PORT INGESTER_GRPC_PORT GOSSIP_PORT BACKEND_PORT AGENT_PORT; do
    [[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 65535 ] || fail "$v=${!v}: not a port number"
  done
  DISTRIBUTOR=127.0.0.1:$DISTRIBUTOR_PORT
  BACKEND=127.0.0.1:$BACKEND_PORT
}

# port_socket PORT PROTO: the inode of a socket bound to PORT (any address)
# and listening (tcp) or bound (udp), from /proc/net; fails when none is.
port_socket() {
  local hex f state=0A
  hex=$(printf '%04X' "$1")
  [ "$2" = udp ] && state=07
  for f in "/proc/net/$2" "/proc/net/${2}6"; do
    [ -r "$f" ] || continue
    awk -v hex=":$hex" -v st="$state" \
      'NR > 1 && substr($2, length($2) - 4) == hex && $4 == st {print $10; found = 1; exit} END {exit !found}' "$f" && return 0
  done
  return 1
}

# port_owner INODE: "NAME (pid N)" of the process holding the socket, when
# this user may see it.
port_owner() {
  local fd pid
  fd=$(find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$1\]" 2>/dev/null | head -n 1)
  [ -n "$fd" ] || return 1
  pid=${fd#/proc/}
  pid=${pid%%/*}
  echo "$(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid): $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-120)"
}

# check_ports WHAT...: fail, naming every port and who holds it, when a port
# the listed parts need is in use. WHAT: backend agent distributor ingesters.
# Nothing has been started yet when it fails.
check_ports() {
  local what i busy=() entry port proto name inode owner
  local -a want=()
  for what in "$@"; do
    case $what in
      backend) want+=("$BACKEND_PORT:tcp:the backend Prometheus (BACKEND_PORT)") ;;
      agent) want+=("$AGENT_PORT:tcp:the Prometheus agent (AGENT_PORT)") ;;
      distributor)
        want+=("$DISTRIBUTOR_PORT:tcp:the distributor's HTTP (DISTRIBUTOR_PORT)")
        want+=("$GOSSIP_PORT:tcp:the distributor's gossip (GOSSIP_PORT)" "$GOSSIP_PORT:udp:the distributor's gossip (GOSSIP_PORT)") ;;
      ingesters)
        for i in 1 2 3; do
          want+=("$((INGESTER_PORT + i - 1)):tcp:ingester-$i's HTTP (INGESTER_PORT+$((i - 1)))")
          want+=("$((INGESTER_GRPC_PORT + i - 1)):tcp:ingester-$i's gRPC (INGESTER_GRPC_PORT+$((i - 1)))")
          want+=("$((GOSSIP_PORT + i)):tcp:ingester-$i's gossip (GOSSIP_PORT+$i)" "$((GOSSIP_PORT + i)):udp:ingester-$i's gossip (GOSSIP_PORT+$i)")
        done ;;
    esac
  done
  for entry in "${want[@]}"; do
    IFS=: read -r port proto name <<<"$entry"
    inode=$(port_socket "$port" "$proto") || continue
    owner=$(port_owner "$inode") || owner="a process of another user (see: ss -lntup 'sport = :$port')"
    busy+=("port $port/$proto, for $name, is in use by $owner")
  done
  [ ${#busy[@]} -eq 0 ] && return 0
  fail "${busy[@]}" "Stop what uses it, or move the ports: PORT_BASE=19500 make run (or BACKEND_PORT=... and the others; README, \"make run\")."
}

# need_commands CMD...: install the missing ones with apt-get (Debian
# packages of the same names; sudo when not root) or fail saying what to
# install.
need_commands() {
  local missing=() c sudo=
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if command -v apt-get >/dev/null 2>&1; then
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    say ">> installing what make run needs: ${missing[*]} (Debian packages; make deps installs every prerequisite)"
    if $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; then
      return 0
    fi
  fi
  fail "make run needs ${missing[*]}, which $([ ${#missing[@]} -gt 1 ] && echo are || echo is) not installed." \
    "Install every prerequisite with: make deps   (Debian: apt-get install ${missing[*]})"
}

# start NAME COMMAND...: run in the background in its own session (so a
# Ctrl-C reaches only this script, which stops everything in order), output
# to $RUN_DIR/logs/NAME.log, SIGPIPE back to its default.
start() {
  local name=$1
  shift
  (trap - PIPE && exec setsid "$@" >"$RUN_DIR/logs/$name.log" 2>&1) &
  pids+=($!)
  names+=("$name")
}

# stop_all stops what start started in reverse order, one at a time: senders
# first, then the distributor, then the ingesters (which flush to the
# backend), and the backend last. A process still running STOP_TIMEOUT
# seconds (default 60) after SIGTERM is killed.
stop_all() {
  local i pid n
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    pid=${pids[$i]}
    kill -TERM "$pid" 2>/dev/null || continue
    for ((n = 0; n < ${STOP_TIMEOUT:-60} * 10; n++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "!! ${names[$i]} did not stop within ${STOP_TIMEOUT:-60}s of SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
}

# exited_child: the name of a started process that is no longer running.
exited_child() {
  local i
  for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || { echo "${names[$i]}"; return 0; }
  done
  return 1
}

# wait_http URL [NAME]: wait until URL answers 2xx (60 s at most), failing
# at once when NAME (default: the process started last) exits: a port
# taken since check_ports or a bad flag, and what answers is not ours.
wait_http() {
  local name=${2:-${names[-1]}} pid= i
  for i in "${!names[@]}"; do [ "${names[$i]}" = "$name" ] && pid=${pids[$i]}; done
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || fail "$name exited while starting; the end of $RUN_DIR/logs/$name.log:" "$(tail -n 5 "$RUN_DIR/logs/$name.log")"
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "$name did not answer at $1 within 60s; see $RUN_DIR/logs/$name.log"
}

# start_backend PROMETHEUS_BINARY: a Prometheus receiving remote write on
# BACKEND_PORT.
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
    --web.listen-address="$BACKEND" --web.enable-remote-write-receiver
  wait_http "http://$BACKEND/-/ready"
}

# start_cluster BACKEND_PROTOCOL [DISTRIBUTOR_FLAG...]: 3 ingesters and a
# distributor in one memberlist cluster on the ports of set_ports.
# ingester-1 is the seed the others join once it is up, so that nobody has
# to retry a join. INGESTER_FLAGS and DISTRIBUTOR_FLAGS (word-split) are
# added to every ingester's and to the distributor's flags.
start_cluster() {
  local proto=$1 i join
  shift
  for i in 1 2 3; do
    join=()
    [ "$i" -gt 1 ] && join=(--memberlist.join="127.0.0.1:$((GOSSIP_PORT + 1))")
    start "ingester-$i" "$BIN/ingester" \
      --web.listen-address="127.0.0.1:$((INGESTER_PORT + i - 1))" \
      --grpc.listen-address="127.0.0.1:$((INGESTER_GRPC_PORT + i - 1))" \
      --memberlist.bind-address="127.0.0.1:$((GOSSIP_PORT + i))" "${join[@]}" \
      --memberlist.node-name="ingester-$i" --wal.dir="$RUN_DIR/wal-$i" \
      --backend.url="http://$BACKEND/api/v1/write" --backend.protocol="$proto" \
      ${INGESTER_FLAGS:-}
    [ "$i" -eq 1 ] && wait_http "http://127.0.0.1:$INGESTER_PORT/-/healthy"
  done
  start distributor "$BIN/distributor" --web.listen-address="$DISTRIBUTOR" \
    --memberlist.bind-address="127.0.0.1:$GOSSIP_PORT" --memberlist.join="127.0.0.1:$((GOSSIP_PORT + 1))" \
    --memberlist.node-name=distributor-1 "$@" ${DISTRIBUTOR_FLAGS:-}
  for i in 1 2 3; do wait_http "http://127.0.0.1:$((INGESTER_PORT + i - 1))/-/ready" "ingester-$i"; done
  wait_http "http://$DISTRIBUTOR/-/ready" distributor
}
