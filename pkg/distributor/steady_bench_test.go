package distributor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// perfRules are the 10 relabel rules of the shared perf tools
// (promgov-cluster.sh governance), the workload issue 12 measures.
const perfRules = `
rules:
  - name: perf-relabel
    relabel_configs:
      - {action: drop, source_labels: [__name__], regex: "go_(gc|memstats|sched)_.+"}
      - {action: drop, source_labels: [__name__], regex: ".+_(debug|test)_.+|.+_bucket_tmp"}
      - {action: drop, source_labels: [__name__], regex: "rwload_metric_99[0-9]"}
      - {action: drop, source_labels: [job], regex: "blackbox-debug|canary-.+"}
      - {action: labeldrop, regex: "pod_template_hash|controller_revision_hash|.+_uid"}
      - {action: replace, source_labels: [instance], regex: "(.*?)[0-9]+(.*)", target_label: instance, replacement: "${1}N${2}"}
      - {action: lowercase, source_labels: [job], target_label: job}
      - {action: replace, source_labels: [id], regex: "(.{64}).+", target_label: id, replacement: "$1"}
      - {action: replace, target_label: env, replacement: perf}
      - {action: keep, source_labels: [job]}
`

// steadyLoad is the perf tools' load (rwprobe load): series k of metric
// k mod 1000 with labels __name__, id, instance and job, 500 series a
// request, requests taken in order and wrapping around.
type steadyLoad struct {
	payloads [][]byte // uncompressed
	series   int      // per payload
}

func newSteadyLoad(tb testing.TB, proto remotewrite.Protocol, total, metrics, batch int) steadyLoad {
	tb.Helper()
	var out steadyLoad
	out.series = batch
	for lo := 0; lo < total; lo += batch {
		st := writev2.NewSymbolTable()
		var v1 prompb.WriteRequest
		var v2 writev2.Request
		for k := lo; k < lo+batch; k++ {
			ls := labels.FromStrings("__name__", "rwload_metric_"+strconv.Itoa(k%metrics), "id", strconv.Itoa(k),
				"instance", "i-"+strconv.Itoa(k%10), "job", "rwprobe")
			s := prompb.Sample{Value: float64(k), Timestamp: 1_700_000_000_000}
			if proto == remotewrite.ProtocolV1 {
				ts := prompb.TimeSeries{Samples: []prompb.Sample{s}}
				ls.Range(func(l labels.Label) { ts.Labels = append(ts.Labels, prompb.Label{Name: l.Name, Value: l.Value}) })
				v1.Timeseries = append(v1.Timeseries, ts)
				continue
			}
			v2.Timeseries = append(v2.Timeseries, writev2.TimeSeries{
				LabelsRefs: st.SymbolizeLabels(ls, nil),
				Samples:    []writev2.Sample{{Value: s.Value, Timestamp: s.Timestamp}},
			})
		}
		var b []byte
		var err error
		if proto == remotewrite.ProtocolV1 {
			b, err = v1.Marshal()
		} else {
			v2.Symbols = st.Symbols()
			b, err = v2.Marshal()
		}
		require.NoError(tb, err)
		out.payloads = append(out.payloads, b)
	}
	return out
}

// benchPlacement is a placement over n ingesters.
func benchPlacement(tb testing.TB, n int) *ring.Placement {
	tb.Helper()
	var members []ring.Member
	for i := range n {
		members = append(members, ring.Member{Name: fmt.Sprint("i", i), Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: fmt.Sprint("a", i)})
	}
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}, members)
	require.NoError(tb, err)
	return p
}

func benchDistributor(tb testing.TB, p *ring.Placement, pusher PushSender, withRules bool) *Distributor {
	return benchDistributorCache(tb, p, pusher, withRules, 0)
}

// benchDistributorCache is benchDistributor with a series cache of
// cacheBytes (0: the default; negative: none).
func benchDistributorCache(tb testing.TB, p *ring.Placement, pusher PushSender, withRules bool, cacheBytes int) *Distributor {
	tb.Helper()
	if pusher == nil {
		pusher = acceptPusher{}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := Deps{Ring: staticPlacer{p}, Pusher: pusher, Logger: logger}
	if withRules {
		cfg, err := rules.LoadConfig([]byte(perfRules))
		require.NoError(tb, err)
		eng, err := rules.Compile(cfg, rules.NewMetrics(nil))
		require.NoError(tb, err)
		deps.Rules, deps.Types = staticRules{eng}, rules.NewTypeCache(100)
	}
	return New(Config{RemoteWrite: remotewrite.DefaultConfig(), PushTimeout: 10e9, RetryAfter: 1e9, SeriesCacheBytes: cacheBytes}, deps)
}

// BenchmarkSteadyIntake measures the distributor's per-series cost from
// the decompressed payload to the owners' batches on the perf tools' load
// (100k series over 1,000 metrics, 500 a request, one owner), with the
// series cache warm: every series seen before, as in the steady state of
// senders re-sending their series every scrape interval. Unlike
// BenchmarkIntake its cache is far larger than the CPU's caches.
//
// With cache=off every series takes the path of a series the cache does
// not hold: the path of a distributor that sees more series than its
// cache holds (millions of series), or of a new series.
func BenchmarkSteadyIntake(b *testing.B) {
	p := benchPlacement(b, 1)
	for _, proto := range []remotewrite.Protocol{remotewrite.ProtocolV1, remotewrite.ProtocolV2} {
		load := newSteadyLoad(b, proto, 100_000, 1000, 500)
		for _, c := range []struct {
			withRules bool
			cache     string
		}{{false, "on"}, {true, "on"}, {false, "off"}, {true, "off"}} {
			withRules := c.withRules
			cacheBytes := 0
			if c.cache == "off" {
				cacheBytes = -1
			}
			b.Run(fmt.Sprintf("rw%d/rules=%v/cache=%s", proto, withRules, c.cache), func(b *testing.B) {
				d := benchDistributorCache(b, p, nil, withRules, cacheBytes)
				run := func(payload []byte) {
					in := d.intakePool.get()
					in.d, in.tenant, in.proto, in.placement = d, "anonymous", proto, p
					in.gov = d.governance()
					in.gen = d.cache.acquire(in.gov.engine())
					if err := in.run(payload); err != nil {
						b.Fatal(err)
					}
					if in.gov != nil {
						d.govPool.put(in.gov.g)
					}
					d.intakePool.put(in)
				}
				for _, pl := range load.payloads {
					run(pl) // warm the cache
				}
				b.ReportAllocs()
				cpu := startCPU()
				i := 0
				for b.Loop() {
					run(load.payloads[i%len(load.payloads)])
					i++
				}
				cpu.report(b, load.series)
			})
		}
	}
}

// acceptPusher accepts every push without sending it anywhere.
type acceptPusher struct{}

func (acceptPusher) Send(context.Context, string, *ingesterv1.PushRequest) PendingPush {
	return answered{resp: &ingesterv1.PushResponse{}}
}

// BenchmarkSteadyServe is BenchmarkSteadyIntake through ServeHTTP: the
// body read, snappy, the intake, the fan-out (to a pusher that accepts
// without sending) and the answer.
func BenchmarkSteadyServe(b *testing.B) {
	p := benchPlacement(b, 1)
	for _, proto := range []remotewrite.Protocol{remotewrite.ProtocolV1, remotewrite.ProtocolV2} {
		load := newSteadyLoad(b, proto, 100_000, 1000, 500)
		bodies := make([][]byte, len(load.payloads))
		for i, pl := range load.payloads {
			bodies[i] = snappy.Encode(nil, pl)
		}
		ct := "application/x-protobuf"
		if proto == remotewrite.ProtocolV2 {
			ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
		}
		for _, withRules := range []bool{false, true} {
			b.Run(fmt.Sprintf("rw%d/rules=%v", proto, withRules), func(b *testing.B) {
				d := benchDistributor(b, p, acceptPusher{}, withRules)
				r := httptest.NewRequest(http.MethodPost, "/api/v1/write", nil)
				r.Header.Set("Content-Type", ct)
				r.Header.Set("Content-Encoding", "snappy")
				var body bytes.Reader
				w := &discardWriter{h: http.Header{}}
				run := func(i int) {
					body.Reset(bodies[i%len(bodies)])
					r.Body, r.ContentLength = io.NopCloser(&body), int64(body.Len())
					clear(w.h)
					w.code = 0
					d.ServeHTTP(w, r)
					if w.code != http.StatusNoContent {
						b.Fatalf("status %d", w.code)
					}
				}
				for i := range bodies {
					run(i) // warm the cache
				}
				b.ReportAllocs()
				cpu := startCPU()
				i := 0
				for b.Loop() {
					run(i)
					i++
				}
				cpu.report(b, load.series)
			})
		}
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return len(b), nil
}
func (w *discardWriter) WriteHeader(code int) { w.code = code }

// cpuClock measures the process's CPU time (user + system, every thread:
// the garbage collector's too), which a shared machine disturbs less than
// the wall clock b.Elapsed measures.
type cpuClock struct {
	start   time.Duration
	mallocs uint64
}

func startCPU() cpuClock {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return cpuClock{start: processCPU(), mallocs: ms.Mallocs}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds ns/series (wall clock), cpu-ns/series and allocs/series.
func (c cpuClock) report(b *testing.B, perOp int) {
	n := float64(b.N) * float64(perOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/series")
	b.ReportMetric(float64((processCPU()-c.start).Nanoseconds())/n, "cpu-ns/series")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.Mallocs-c.mallocs)/n, "allocs/series")
}
