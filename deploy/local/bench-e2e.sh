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
#   SERIES     active series, over 1,000 metrics (default 100000); 1000000
#              measures the path of series the distributor's cache cannot
#              all hold (64 MiB holds about 300k)
#   INTERLEAVE 1 (default): series spread over the metrics round robin (a
#              request's 500 series span 500 metrics), every "series" label
#              value distinct, as ../shared/perf's rwprobe sends them; 0: a
#              metric's 100 series consecutive, "series" 0-99 in each. The
#              layout moves vmagent's figure by a third (docs/benchmarks.md)
#   VMAGENT    a vmagent binary to compare with (unset: promgov only)
#   INGESTER_FLAGS / DISTRIBUTOR_FLAGS  extra flags (word-split)
#   TLS=1      promgov with every security layer of docs/security.md on:
#              HTTPS with a client certificate identity (loadgen), gRPC
#              mutual TLS, encrypted gossip (certificates made with openssl)
#   KEEP=1     keep the scratch directories (logs) and say where
#   WARMUP     measure only the steady state: CPU (from /proc) and samples
#              (at the sink) from WARMUP after the load starts to its end, so
#              the first sight of every series and the drain are left out
#              (default 0: the whole run, drain included)
#   BASELINE   a git revision: build it too (into the scratch directory) and
#              run it as "baseline", interleaved with this tree's build run
#              by run, and print the ratio of the medians and the median of
#              the per-run ratios. make bench-cpu runs this with WARMUP: the
#              paired A/B that can show a change of a few percent, where
#              separate sittings cannot (docs/benchmarks.md)
#
# Each promgov run also prints what explains its CPU: the WAL's records per
# fsync and fsyncs per second, and the distributor's pushes per second.
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
INTERLEAVE=${INTERLEAVE:-1}
SERIES=${SERIES:-100000}
if [ $((SERIES % 1000)) -ne 0 ] || [ "$SERIES" -lt 1000 ]; then
  echo "bench-e2e: SERIES=$SERIES must be a multiple of 1000 (1,000 metrics)" >&2; exit 2
fi
VMAGENT=${VMAGENT:-}
WARMUP=${WARMUP:-0}
BASELINE=${BASELINE:-}
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

# BASELINE: that revision's binaries, built from `git archive` (the
# repository is not touched).
if [ -n "$BASELINE" ]; then
  git rev-parse --verify -q "$BASELINE^{commit}" >/dev/null || { echo "bench-e2e: BASELINE=$BASELINE is not a git revision" >&2; exit 2; }
  mkdir -p "$TOP/baseline-src"
  git archive "$BASELINE" | tar -x -C "$TOP/baseline-src"
  echo "bench-e2e: building BASELINE=$BASELINE ($(git rev-parse --short "$BASELINE"))" >&2
  make -s -C "$TOP/baseline-src" build BIN="$TOP/baseline-bin" VERSION="$BASELINE" REVISION="$(git rev-parse "$BASELINE")" >"$TOP/baseline-build.log" 2>&1 ||
    { cat "$TOP/baseline-build.log" >&2; echo "bench-e2e: building BASELINE=$BASELINE failed" >&2; exit 1; }
fi

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
sink_samples() { # samples and histograms the sink at $1 has counted
  curl -fsS "http://$1/count" | sed -E 's/.*"samples":([0-9]+).*"histograms":([0-9]+).*/\1 \2/' | awk '{print $1 + $2}'
}

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

# snapshot SINK PID...: "unix_time cpu_ticks sink_samples wal_records
# fsyncs pushes", read back to back (the CPU and the sink first: their ratio
# is the figure). The counters are summed over METRICS_ADDRS (the promgov
# processes' web addresses; empty for vmagent).
snapshot() {
  local sink=$1 a; shift
  local t; t=$(date +%s.%N)
  local cpu; cpu=$(cpu_ticks "$@")
  local n; n=$(sink_samples "$sink")
  for a in "${METRICS_ADDRS[@]}"; do curl -fsS "${CURL_TLS[@]}" "$SCHEME://$a/metrics" 2>/dev/null || true; done |
    awk -v t="$t" -v cpu="$cpu" -v n="$n" '
      $1 == "promgov_wal_group_commit_records_sum" { rec += $2 }
      $1 == "promgov_wal_group_commit_records_count" { grp += $2 }
      index($1, "promgov_distributor_ingester_push_duration_seconds_count") == 1 { push += $2 }
      END { printf "%s %s %s %.0f %.0f %.0f\n", t, cpu, n, rec, grp, push }'
}

# measure NAME DIR URL PROTO SINK PID...: drive URL with loadgen and print one
# JSON line. With WARMUP, the CPU and the samples at the sink between WARMUP
# and the end of the load; otherwise from the start of the load until the
# sink has stopped growing (forwarding counts too).
measure() {
  local name=$1 dir=$2 url=$3 proto=$4 sink=$5; shift 5
  local before after last now t_last i lg
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  before=$(snapshot "$sink" "$@")
  "$BIN/loadgen" -url="$url" -protocol="$proto" -metrics=1000 -series-per-metric=$((SERIES / 1000)) -labels=1 \
    -label-cardinality=10 -interleave="$INTERLEAVE" -series-per-request=500 -concurrency=4 -rate="$RATE" -duration="$DURATION" \
    -report-interval=0 -output=json "${LOADGEN_TLS[@]}" >"$dir/load.json" 2>"$dir/load.err" &
  lg=$!
  if [ "$WARMUP" != 0 ]; then
    sleep "$WARMUP"
    kill -0 "$lg" 2>/dev/null || { echo "bench-e2e: the load ended within WARMUP=$WARMUP; make DURATION=$DURATION longer" >&2; exit 2; }
    before=$(snapshot "$sink" "$@")
    wait "$lg" || { cat "$dir/load.err" >&2; exit 1; }
    after=$(snapshot "$sink" "$@")
  else
    wait "$lg" || { cat "$dir/load.err" >&2; exit 1; }
    after=$(snapshot "$sink" "$@"); last=$(echo "$after" | cut -d' ' -f3); t_last=$SECONDS
    for i in $(seq 240); do
      sleep 0.5
      now=$(sink_samples "$sink")
      if [ "$now" != "$last" ]; then last=$now; after=$(snapshot "$sink" "$@"); t_last=$SECONDS
      elif [ $((SECONDS - t_last)) -ge 3 ]; then break; fi
    done
  fi
  local load_end; load_end=$(cut -d' ' -f1 /proc/loadavg)
  python3 - "$dir/load.json" "$name" "$before" "$after" "$(getconf CLK_TCK)" "$load" "$load_end" "$(peak_rss_kb "$@")" "$(peaks_mib "$@")" "$WARMUP" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); name = sys.argv[2]
# snapshot: unix time, CPU ticks, samples at the sink, WAL records, fsyncs, pushes
b, a = [float(x) for x in sys.argv[3].split()], [float(x) for x in sys.argv[4].split()]
tck, warmup = int(sys.argv[5]), sys.argv[10]
cpu = (a[1] - b[1]) / tck
at_sink = round(a[2] - b[2])
# The whole run counts what the senders had acknowledged; a steady window
# counts what reached the sink within it.
samples = at_sink if warmup != "0" else r["accepted_samples"]
row = {"system": name, "acked": r["accepted_samples"], "at_sink": at_sink, "cpu_s": round(cpu, 2),
       "samples_per_cpu_s": round(samples / cpu) if cpu else None,
       "p99_ms": round(r["latency_ms"]["p99"], 1), "peak_rss_mib": round(int(sys.argv[8]) / 1024, 1),
       "peak_rss_mib_per_process": [int(x) for x in sys.argv[9].split()],
       "load1": [float(sys.argv[6]), float(sys.argv[7])], "status": r["status_counts"]}
if warmup != "0":
    row["window_s"] = round(a[0] - b[0], 1)
records, fsyncs, pushes, secs = a[3] - b[3], a[4] - b[4], a[5] - b[5], a[0] - b[0]
if fsyncs:  # promgov: what explains its CPU
    row.update({"records_per_fsync": round(records / fsyncs, 2), "fsyncs_per_s": round(fsyncs / secs),
                "pushes_per_s": round(pushes / secs)})
print(json.dumps(row))
PY
}

run_promgov() { # NAME BIN_DIR RUN_INDEX
  local name=$1 bin=$2 dir=$TOP/$1-$3 i w g m seed="" sinkp dport mp
  mkdir -p "$dir"; write_rules "$dir"
  sinkp=$(port)
  "$BIN/nullsink" -listen=127.0.0.1:$sinkp >"$dir/sink.log" 2>&1 & pids+=($!)
  wait_http "http://127.0.0.1:$sinkp/-/ready"
  local measured=()
  METRICS_ADDRS=()
  for i in $(seq 1 "$INGESTERS"); do
    w=$(port); g=$(port); m=$(port)
    local join=(); [ -n "$seed" ] && join=(--memberlist.join="$seed")
    "$bin/ingester" --config.file="$dir/promgov.yml" --web.listen-address=127.0.0.1:$w --grpc.listen-address=127.0.0.1:$g \
      --memberlist.bind-address=127.0.0.1:$m "${join[@]}" --backend.url=http://127.0.0.1:$sinkp/api/v1/write \
      --backend.protocol="$BACKEND_PROTOCOL" --wal.dir="$dir/wal-$i" "${COMMON_TLS[@]}" "${INGESTER_TLS[@]}" ${INGESTER_FLAGS:-} >"$dir/ingester-$i.log" 2>&1 &
    pids+=($!); measured+=($!); METRICS_ADDRS+=(127.0.0.1:$w)
    [ -n "$seed" ] || seed=127.0.0.1:$m
    wait_http "$SCHEME://127.0.0.1:$w/-/ready"
  done
  dport=$(port); mp=$(port)
  "$bin/distributor" --config.file="$dir/promgov.yml" --web.listen-address=127.0.0.1:$dport \
    --memberlist.bind-address=127.0.0.1:$mp --memberlist.join="$seed" "${COMMON_TLS[@]}" ${DISTRIBUTOR_FLAGS:-} >"$dir/distributor.log" 2>&1 &
  pids+=($!); measured+=($!); METRICS_ADDRS+=(127.0.0.1:$dport)
  wait_http "$SCHEME://127.0.0.1:$dport/-/ready"
  measure "$name" "$dir" "$SCHEME://127.0.0.1:$dport/api/v1/write" "$PROTOCOL" "127.0.0.1:$sinkp" "${measured[@]}"
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
  METRICS_ADDRS=()
  wait_http "http://127.0.0.1:$p/health"
  measure "vmagent" "$dir" "http://127.0.0.1:$p/api/v1/write" 1 "127.0.0.1:$sinkp" "$vm"
  stop_pids
}

window=""; [ "$WARMUP" = 0 ] || window=", measured after $WARMUP"
echo "bench-e2e: $RUNS run(s) of $DURATION at rate ${RATE} (0: max)$window; promgov: $INGESTERS ingester(s), rules=$RULES, RW $PROTOCOL in, RW $BACKEND_PROTOCOL out, interleave=$INTERLEAVE, series=$SERIES${BASELINE:+; baseline: $BASELINE}${VMAGENT:+; vmagent: $VMAGENT}" >&2
: >"$TOP/results.jsonl"
run() { # WHAT RUN_INDEX
  case $1 in
    promgov) run_promgov promgov "$BIN" "$2" ;;
    baseline) run_promgov baseline "$TOP/baseline-bin" "$2" ;;
    vmagent) run_vmagent "$2" ;;
  esac >>"$TOP/results.jsonl"
  tail -n 1 "$TOP/results.jsonl"
}
for r in $(seq 1 "$RUNS"); do
  # Not in a pipeline: a subshell would hide the started PIDs from cleanup.
  # The build and its baseline take turns going first, so a drift of the
  # machine within a round does not favour one of them.
  if [ -n "$BASELINE" ] && [ $((r % 2)) = 0 ]; then run baseline "$r"; run promgov "$r"
  else run promgov "$r"; [ -z "$BASELINE" ] || run baseline "$r"; fi
  [ -z "$VMAGENT" ] || run vmagent "$r"
done

python3 - "$TOP/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
med = {}
for name in ("promgov", "baseline", "vmagent"):
    rs = [r for r in rows if r["system"] == name]
    if not rs:
        continue
    m = {k: statistics.median(r[k] for r in rs) for k in ("samples_per_cpu_s", "p99_ms", "peak_rss_mib")}
    med[name] = m
    loads = " ".join(f"{r['load1'][0]:.1f}-{r['load1'][1]:.1f}" for r in rs)
    extra = ""
    if all("records_per_fsync" in r for r in rs):
        extra = "; median {:.2f} records per fsync, {:,.0f} fsyncs/s, {:,.0f} pushes/s".format(
            *(statistics.median(r[k] for r in rs) for k in ("records_per_fsync", "fsyncs_per_s", "pushes_per_s")))
    print(f"{name:8s} median of {len(rs)}: {m['samples_per_cpu_s']:>10,.0f} samples per CPU-second, "
          f"p99 {m['p99_ms']:.1f} ms, peak RSS {m['peak_rss_mib']:.0f} MiB (load average {loads}){extra}")
if "vmagent" in med:
    print(f"ratio promgov / vmagent: {med['promgov']['samples_per_cpu_s'] / med['vmagent']['samples_per_cpu_s']:.2f}")
if "baseline" in med:
    head = [r["samples_per_cpu_s"] for r in rows if r["system"] == "promgov"]
    base = [r["samples_per_cpu_s"] for r in rows if r["system"] == "baseline"]
    pairs = [h / b for h, b in zip(head, base)]
    print(f"ratio promgov / baseline: {med['promgov']['samples_per_cpu_s'] / med['baseline']['samples_per_cpu_s']:.3f} (medians); "
          f"per run {' '.join(f'{p:.3f}' for p in pairs)}, median {statistics.median(pairs):.3f}, "
          f"promgov ahead in {sum(p > 1 for p in pairs)} of {len(pairs)}")
PY
