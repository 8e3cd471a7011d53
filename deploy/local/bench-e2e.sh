#!/usr/bin/env bash
# make bench-e2e: samples per CPU-second of a local promgov cluster (all its
# processes summed: distributor + ingesters, forwarding included), against
# an in-repo null sink (bin/nullsink: decodes, counts, drops), so the figure
# holds promgov's cost only. With VMAGENT=<path>, vmagent runs on the same
# workload in the same invocation, interleaved run by run, and the ratio of
# the medians is printed.
#
# Workload (the issue 12 / ../shared/perf workload, from bin/loadgen): 100k
# series over 1,000 metrics, 500 series (one sample each) per request, 4
# concurrent senders, as fast as the machine allows.
#
# Environment:
#   DURATION   load duration per run (default 20s)
#   RUNS       interleaved runs of each system (default 1; 3 for medians)
#   INGESTERS  ingesters in the promgov cluster (default 1)
#   RULES      1: the 10 relabel rules + cardinality limits (default), 0: none
#   RATE       samples per second loadgen sends (default 0: as fast as it can);
#              e.g. half of the maximum, to compare client p99 at the same rate
#   PROTOCOL   remote write version loadgen sends promgov, 1 or 2 (default 1;
#              vmagent is always sent 1.0, it forwards nothing it got as 2.0)
#   BACKEND_PROTOCOL  what the ingesters send the sink, 1 or 2 (default 1)
#   VMAGENT    a vmagent binary to compare with (unset: promgov only)
#   INGESTER_FLAGS / DISTRIBUTOR_FLAGS  extra flags (word-split)
#   TLS=1      promgov with every security layer of docs/security.md on:
#              HTTPS with a client certificate identity (loadgen), gRPC
#              mutual TLS, encrypted gossip (certificates made with openssl)
#   KEEP=1     keep the scratch directories (logs) and say where
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=$PWD/bin
DURATION=${DURATION:-20s}
RUNS=${RUNS:-1}
INGESTERS=${INGESTERS:-1}
RULES=${RULES:-1}
RATE=${RATE:-0}
PROTOCOL=${PROTOCOL:-1}
BACKEND_PROTOCOL=${BACKEND_PROTOCOL:-1}
VMAGENT=${VMAGENT:-}
command -v python3 >/dev/null || { echo "bench-e2e: python3 needed" >&2; exit 2; }
[ -z "$VMAGENT" ] || [ -x "$VMAGENT" ] || { echo "bench-e2e: VMAGENT=$VMAGENT is not executable" >&2; exit 2; }

TOP=$(mktemp -d /tmp/promgov-bench.XXXXXX)
pids=()
stop_pids() { # TERM what this script started, newest first, and wait for each
  local i
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "${pids[$i]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  pids=()
}
cleanup() { stop_pids; if [ "${KEEP:-0}" = 1 ]; then echo "kept $TOP" >&2; else rm -rf "$TOP"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# TLS=1: a CA, one member certificate, loadgen's client certificate, the
# web and identities files and a gossip key, shared by every run.
SCHEME=http; CURL_TLS=(); LOADGEN_TLS=(); COMMON_TLS=(); INGESTER_TLS=()
if [ "${TLS:-0}" = 1 ]; then
  c=$TOP/certs; mkdir -p "$c"
  ossl() { openssl "$@" 2>/dev/null; }
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout "$c/ca.key" -out "$c/ca.crt" -subj /CN=bench-ca
  for n in member loadgen; do
    ossl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$c/$n.key" -out "$c/$n.csr" -subj "/CN=$n"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$c/$n.ext"
    ossl x509 -req -in "$c/$n.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial -days 2 -out "$c/$n.crt" -extfile "$c/$n.ext"
  done
  printf 'tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: %s\n  client_auth_type: VerifyClientCertIfGiven\n' \
    "$c/member.crt" "$c/member.key" "$c/ca.crt" >"$c/web.yml"
  printf 'identities:\n  - name: loadgen\n    client_cert_cn: loadgen\n    roles: [write]\n' >"$c/identities.yml"
  openssl rand -base64 32 >"$c/gossip.key"
  SCHEME=https; CURL_TLS=(--cacert "$c/ca.crt")
  LOADGEN_TLS=(-tls-ca-file="$c/ca.crt" -tls-cert-file="$c/loadgen.crt" -tls-key-file="$c/loadgen.key")
  COMMON_TLS=(--web.config.file="$c/web.yml" --auth.config-file="$c/identities.yml" --memberlist.encryption-key-file="$c/gossip.key"
    --ingester.client.tls-enabled --ingester.client.tls-cert-path="$c/member.crt" --ingester.client.tls-key-path="$c/member.key"
    --ingester.client.tls-ca-path="$c/ca.crt")
  INGESTER_TLS=(--grpc.tls-cert-path="$c/member.crt" --grpc.tls-key-path="$c/member.key" --grpc.tls-ca-path="$c/ca.crt")
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 150); do curl -fsS "${CURL_TLS[@]}" -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done; echo "bench-e2e: $1 never answered" >&2; return 1; }
cpu_ticks() { # utime+stime of the given PIDs, in clock ticks
  local sum=0 p f
  for p in "$@"; do
    f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
    sum=$(( sum + $(echo "$f" | awk '{print $12 + $13}') ))
  done
  echo $sum
}
peak_rss_kb() { local sum=0 p v; for p in "$@"; do v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); sum=$((sum + ${v:-0})); done; echo $sum; }
peaks_mib() { local p out=""; for p in "$@"; do out="$out $(( $(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0) / 1024 ))"; done; echo "${out# }"; }
sink_samples() { curl -fsS "http://$1/count" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["samples"] + d["histograms"])'; }

# The 10 rules, written for loadgen's series: __name__="loadgen_metric_<m>_total",
# job="loadgen", series="<s>", label_0="value_<d>". Rule 3 drops 10 of the
# 1,000 metrics (1 % of the samples); 6, 7 and 9 touch every series.
write_rules() { # DIR: promgov.yml and relabel.yml (vmagent)
  cat >"$1/relabel.yml" <<'EOF'
- {action: drop, source_labels: [__name__], regex: "go_(gc|memstats|sched)_.+"}
- {action: drop, source_labels: [__name__], regex: ".+_(debug|test)_.+|.+_bucket_tmp"}
- {action: drop, source_labels: [__name__], regex: "loadgen_metric_99[0-9]_total"}
- {action: drop, source_labels: [job], regex: "blackbox-debug|canary-.+"}
- {action: labeldrop, regex: "pod_template_hash|controller_revision_hash|.+_uid"}
- {action: replace, source_labels: [label_0], regex: "(.*?)[0-9]+(.*)", target_label: label_0, replacement: "${1}N${2}"}
- {action: lowercase, source_labels: [job], target_label: job}
- {action: replace, source_labels: [series], regex: "(.{64}).+", target_label: series, replacement: "$1"}
- {action: replace, target_label: env, replacement: perf}
- {action: keep, source_labels: [job], regex: ".+"}
EOF
  if [ "$RULES" = 1 ]; then
    { echo "rules:"; echo "  - name: bench-relabel"; echo "    relabel_configs:"; sed 's/^/      /' "$1/relabel.yml"
      cat <<'EOF'
cardinality:
  limits:
    defaults:
      max_series_per_metric: 1000000
      max_series_per_metric_mode: enforce
EOF
    } >"$1/promgov.yml"
  else
    : >"$1/promgov.yml"
  fi
}

# measure NAME DIR URL PROTO PID...: drive URL with loadgen, wait until the
# sink has stopped growing, print one JSON line.
measure() {
  local name=$1 dir=$2 url=$3 proto=$4 sink=$5; shift 5
  local before after last now t_last i
  local s0; s0=$(sink_samples "$sink")
  before=$(cpu_ticks "$@")
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  "$BIN/loadgen" -url="$url" -protocol="$proto" -metrics=1000 -series-per-metric=100 -labels=1 \
    -label-cardinality=10 -series-per-request=500 -concurrency=4 -rate="$RATE" -duration="$DURATION" \
    -report-interval=0 -output=json "${LOADGEN_TLS[@]}" >"$dir/load.json" 2>"$dir/load.err"
  local load_end; load_end=$(cut -d' ' -f1 /proc/loadavg)
  # Forwarding counts too: take the CPU when the sink count last changed.
  last=$(sink_samples "$sink"); after=$(cpu_ticks "$@"); t_last=$SECONDS
  for i in $(seq 240); do
    sleep 0.5
    now=$(sink_samples "$sink")
    if [ "$now" != "$last" ]; then last=$now; after=$(cpu_ticks "$@"); t_last=$SECONDS
    elif [ $((SECONDS - t_last)) -ge 3 ]; then break; fi
  done
  python3 - "$dir/load.json" "$name" "$before" "$after" "$s0" "$last" "$(getconf CLK_TCK)" "$load" "$load_end" "$(peak_rss_kb "$@")" "$(peaks_mib "$@")" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
before, after, s0, s1, tck = (int(x) for x in sys.argv[3:8])
cpu = (after - before) / tck
acked = r["accepted_samples"]
print(json.dumps({"system": name, "acked": acked, "at_sink": s1 - s0, "cpu_s": round(cpu, 2),
                  "samples_per_cpu_s": round(acked / cpu) if cpu else None,
                  "p99_ms": round(r["latency_ms"]["p99"], 1), "peak_rss_mib": round(int(sys.argv[10]) / 1024, 1),
                  "peak_rss_mib_per_process": [int(x) for x in sys.argv[11].split()],
                  "load1": [float(sys.argv[8]), float(sys.argv[9])], "status": r["status_counts"]}))
PY
}

run_promgov() { # RUN_INDEX
  local dir=$TOP/promgov-$1 i w g m seed="" sinkp dport mp
  mkdir -p "$dir"; write_rules "$dir"
  sinkp=$(port)
  "$BIN/nullsink" -listen=127.0.0.1:$sinkp >"$dir/sink.log" 2>&1 & pids+=($!)
  wait_http "http://127.0.0.1:$sinkp/-/ready"
  local measured=()
  for i in $(seq 1 "$INGESTERS"); do
    w=$(port); g=$(port); m=$(port)
    local join=(); [ -n "$seed" ] && join=(--memberlist.join="$seed")
    "$BIN/ingester" --config.file="$dir/promgov.yml" --web.listen-address=127.0.0.1:$w --grpc.listen-address=127.0.0.1:$g \
      --memberlist.bind-address=127.0.0.1:$m "${join[@]}" --backend.url=http://127.0.0.1:$sinkp/api/v1/write \
      --backend.protocol="$BACKEND_PROTOCOL" --wal.dir="$dir/wal-$i" "${COMMON_TLS[@]}" "${INGESTER_TLS[@]}" ${INGESTER_FLAGS:-} >"$dir/ingester-$i.log" 2>&1 &
    pids+=($!); measured+=($!)
    [ -n "$seed" ] || seed=127.0.0.1:$m
    wait_http "$SCHEME://127.0.0.1:$w/-/ready"
  done
  dport=$(port); mp=$(port)
  "$BIN/distributor" --config.file="$dir/promgov.yml" --web.listen-address=127.0.0.1:$dport \
    --memberlist.bind-address=127.0.0.1:$mp --memberlist.join="$seed" "${COMMON_TLS[@]}" ${DISTRIBUTOR_FLAGS:-} >"$dir/distributor.log" 2>&1 &
  pids+=($!); measured+=($!)
  wait_http "$SCHEME://127.0.0.1:$dport/-/ready"
  measure "promgov" "$dir" "$SCHEME://127.0.0.1:$dport/api/v1/write" "$PROTOCOL" "127.0.0.1:$sinkp" "${measured[@]}"
  stop_pids
}

run_vmagent() { # RUN_INDEX
  local dir=$TOP/vmagent-$1 sinkp p flags=()
  mkdir -p "$dir"; write_rules "$dir"
  sinkp=$(port); p=$(port)
  "$BIN/nullsink" -listen=127.0.0.1:$sinkp >"$dir/sink.log" 2>&1 & pids+=($!)
  wait_http "http://127.0.0.1:$sinkp/-/ready"
  [ "$RULES" = 1 ] && flags=(-remoteWrite.relabelConfig="$dir/relabel.yml" -remoteWrite.maxHourlySeries=1000000)
  "$VMAGENT" -httpListenAddr=127.0.0.1:$p -remoteWrite.url=http://127.0.0.1:$sinkp/api/v1/write -remoteWrite.forcePromProto \
    -remoteWrite.tmpDataPath="$dir/queue" -loggerLevel=WARN "${flags[@]}" >"$dir/vmagent.log" 2>&1 &
  pids+=($!)
  local vm=$!
  wait_http "http://127.0.0.1:$p/health"
  measure "vmagent" "$dir" "http://127.0.0.1:$p/api/v1/write" 1 "127.0.0.1:$sinkp" "$vm"
  stop_pids
}

echo "bench-e2e: $RUNS run(s) of $DURATION at rate ${RATE} (0: max); promgov: $INGESTERS ingester(s), rules=$RULES, RW $PROTOCOL in, RW $BACKEND_PROTOCOL out${VMAGENT:+; vmagent: $VMAGENT}" >&2
: >"$TOP/results.jsonl"
for r in $(seq 1 "$RUNS"); do
  # Not in a pipeline: a subshell would hide the started PIDs from cleanup.
  run_promgov "$r" >>"$TOP/results.jsonl"; tail -n 1 "$TOP/results.jsonl"
  if [ -n "$VMAGENT" ]; then run_vmagent "$r" >>"$TOP/results.jsonl"; tail -n 1 "$TOP/results.jsonl"; fi
done

python3 - "$TOP/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = {}
for name in ("promgov", "vmagent"):
    rs = [r for r in rows if r["system"] == name]
    if not rs:
        continue
    m = {k: statistics.median(r[k] for r in rs) for k in ("samples_per_cpu_s", "p99_ms", "peak_rss_mib")}
    med[name] = m
    loads = " ".join(f"{r['load1'][0]:.1f}-{r['load1'][1]:.1f}" for r in rs)
    print(f"{name:8s} median of {len(rs)}: {m['samples_per_cpu_s']:>10,.0f} samples per CPU-second, "
          f"p99 {m['p99_ms']:.1f} ms, peak RSS {m['peak_rss_mib']:.0f} MiB (load average {loads})")
if len(med) == 2:
    print(f"ratio promgov / vmagent: {med['promgov']['samples_per_cpu_s'] / med['vmagent']['samples_per_cpu_s']:.2f}")
PY
