package distributor

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
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
)

const testRules = `
rules:
  - name: drop-debug
    relabel_configs:
      - source_labels: [__name__]
        regex: "debug_.*"
        action: drop
  - name: rename-legacy
    relabel_configs:
      - source_labels: [__name__]
        regex: "legacy_(.*)"
        target_label: __name__
        replacement: "app_$1"
  - name: normalise-path
    action: rewrite
    labels:
      normalize:
        - labels: [path]
          builtin: [number]
  - name: counters-total
    action: tag
    naming: {type_suffixes: true}
  - name: shadow-prefix
    mode: shadow
    action: drop
    naming: {required_prefixes: [acme_]}
`

// withRules makes tc's distributor apply doc's rules.
func withRules(t *testing.T, tc *testCluster, doc string) *rules.Manager {
	t.Helper()
	cfg, err := rules.LoadConfig([]byte(doc))
	require.NoError(t, err)
	m := rules.NewManager(slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, m.Reload(cfg))
	tc.with(func(d *Deps) { d.Rules, d.Types = m, rules.NewTypeCache(100) })
	return m
}

// received returns every series the ingesters got, rendered with its
// labels, and checks each landed on the owner of its (new) name.
func received(t *testing.T, tc *testCluster, tenant string) []string {
	t.Helper()
	p := tc.dist.ring.Placement()
	var out []string
	var key []byte
	for name, rec := range tc.recorders {
		rec.mu.Lock()
		for _, b := range rec.batches {
			sb := labels.NewScratchBuilder(8)
			for i := range b.Request.Timeseries {
				ls, err := b.Request.Timeseries[i].ToLabels(&sb, b.Request.Symbols)
				require.NoError(t, err)
				key = ring.Key(key[:0], tenant, ls.Get("__name__"))
				owner, ok := p.Owner(key)
				require.True(t, ok)
				require.Equal(t, owner.Name, name, "%s landed on the wrong ingester", ls)
				out = append(out, ls.String())
			}
		}
		rec.mu.Unlock()
	}
	sort.Strings(out)
	return out
}

func TestRulesChangeWhatIsForwarded(t *testing.T) {
	for name, tc := range map[string]struct {
		series []prompb.TimeSeries
		meta   []prompb.MetricMetadata
		want   []string
	}{
		"dropped series are not forwarded": {
			series: []prompb.TimeSeries{v1Series("debug_queue", "job", "a"), v1Series("acme_up", "job", "a")},
			want:   []string{`{__name__="acme_up", job="a"}`},
		},
		"renamed series land on the owner of the new name": {
			series: []prompb.TimeSeries{v1Series("legacy_requests", "job", "a")},
			want:   []string{`{__name__="app_requests", job="a"}`},
		},
		"label values are normalised": {
			series: []prompb.TimeSeries{v1Series("acme_hits", "path", "/users/42")},
			want:   []string{`{__name__="acme_hits", path="/users/:id"}`},
		},
		"RW 1.0 metadata gives the type to type rules": {
			series: []prompb.TimeSeries{v1Series("acme_requests", "job", "a")},
			meta:   []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "acme_requests"}},
			want:   []string{`{__name__="acme_requests", governance_violation="counters-total", job="a"}`},
		},
		"untouched series pass unchanged": {
			series: []prompb.TimeSeries{v1Series("acme_up", "job", "a"), v1Series("acme_up", "job", "b")},
			want:   []string{`{__name__="acme_up", job="a"}`, `{__name__="acme_up", job="b"}`},
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := newTestCluster(t, 3, 5*time.Second)
			withRules(t, c, testRules)
			w := post(t, c.dist, "application/x-protobuf", v1Body(t, &prompb.WriteRequest{Timeseries: tc.series, Metadata: tc.meta}), "team-a")
			require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
			require.Equal(t, tc.want, received(t, c, "team-a"))
		})
	}
}

func TestRulesV2MetadataAndWrittenHeaders(t *testing.T) {
	c := newTestCluster(t, 3, 5*time.Second)
	withRules(t, c, testRules)
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	add := func(md writev2.Metadata, kv ...string) {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings(kv...), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}},
			Metadata:   md,
		})
	}
	add(writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER}, "__name__", "acme_requests", "job", "a")
	add(writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE}, "__name__", "debug_queue", "job", "a")
	add(writev2.Metadata{}, "__name__", "legacy_x", "path", "/a/7")
	req.Symbols = st.Symbols()
	b, err := req.Marshal()
	require.NoError(t, err)
	w := post(t, c.dist, "application/x-protobuf;proto=io.prometheus.write.v2.Request", snappy.Encode(nil, b), "team-a")
	require.Equal(t, http.StatusNoContent, w.Code, w.Body.String())
	// The dropped series' samples count as written: the sender must not
	// retry what the rules dropped on purpose.
	require.Equal(t, "6", w.Header().Get("X-Prometheus-Remote-Write-Samples-Written"))
	require.Equal(t, []string{
		`{__name__="acme_requests", governance_violation="counters-total", job="a"}`,
		`{__name__="app_x", path="/a/:id"}`,
	}, received(t, c, "team-a"))
}

func TestRulesReloadTakesEffect(t *testing.T) {
	c := newTestCluster(t, 2, 5*time.Second)
	m := withRules(t, c, testRules)
	body := v1Body(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{v1Series("debug_queue", "job", "a")}})
	require.Equal(t, http.StatusNoContent, post(t, c.dist, "application/x-protobuf", body, "t").Code)
	require.Empty(t, received(t, c, "t"))
	require.NoError(t, m.Reload(rules.DefaultConfig()))
	require.Equal(t, http.StatusNoContent, post(t, c.dist, "application/x-protobuf", body, "t").Code)
	require.Equal(t, []string{`{__name__="debug_queue", job="a"}`}, received(t, c, "t"))
}

func v1Series(name string, kv ...string) prompb.TimeSeries {
	ls := []prompb.Label{{Name: "__name__", Value: name}}
	for i := 0; i+1 < len(kv); i += 2 {
		ls = append(ls, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Value: 1, Timestamp: 1000}}}
}

// BenchmarkIntake measures the distributor's per-series cost of reading
// a request of 1,000 series and placing them on 3 owners (everything
// between the decompressed payload and the gRPC pushes), without rules and
// with the realistic 20-rule set of pkg/rules, in remote write 1.0 and 2.0,
// with the series cache warm (every series seen before: the steady state)
// and off (every series decoded, validated and relabelled).
func BenchmarkIntake(b *testing.B) {
	const n = 1000
	members := []ring.Member{}
	for i := range 3 {
		members = append(members, ring.Member{Name: fmt.Sprint("i", i), Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: fmt.Sprint("a", i)})
	}
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}, members)
	require.NoError(b, err)
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	v1 := prompb.WriteRequest{}
	for i := range n {
		ls := labels.FromStrings("__name__", fmt.Sprintf("metric_%d_total", i%50), "job", "api-server",
			"instance", fmt.Sprintf("10.0.%d.%d:9090", i/250, i%250), "method", "GET", "code", "200",
			"path", "/api/users", "env", "prod", "team", "core")
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(ls, nil),
			Samples:    []writev2.Sample{{Value: float64(i), Timestamp: 1}},
			Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
		})
		var pl []prompb.Label
		ls.Range(func(l labels.Label) { pl = append(pl, prompb.Label{Name: l.Name, Value: l.Value}) })
		v1.Timeseries = append(v1.Timeseries, prompb.TimeSeries{Labels: pl, Samples: []prompb.Sample{{Value: float64(i), Timestamp: 1}}})
	}
	req.Symbols = st.Symbols()
	payloads := map[remotewrite.Protocol][]byte{}
	payloads[remotewrite.ProtocolV2], err = req.Marshal()
	require.NoError(b, err)
	payloads[remotewrite.ProtocolV1], err = v1.Marshal()
	require.NoError(b, err)
	// The same series in vmagent's order (instance and job after the
	// scraped labels): sorted at the edge, on a cache miss only.
	unsorted := map[remotewrite.Protocol][]byte{}
	for i := range v1.Timeseries {
		ls := v1.Timeseries[i].Labels
		var head, tail []prompb.Label
		for _, l := range ls {
			if l.Name == "instance" || l.Name == "job" {
				tail = append(tail, l)
			} else {
				head = append(head, l)
			}
		}
		v1.Timeseries[i].Labels = append(head, tail...)
		refs := req.Timeseries[i].LabelsRefs
		var rh, rt []uint32
		for j := 0; j+1 < len(refs); j += 2 {
			if n := req.Symbols[refs[j]]; n == "instance" || n == "job" {
				rt = append(rt, refs[j], refs[j+1])
			} else {
				rh = append(rh, refs[j], refs[j+1])
			}
		}
		req.Timeseries[i].LabelsRefs = append(rh, rt...)
	}
	unsorted[remotewrite.ProtocolV2], err = req.Marshal()
	require.NoError(b, err)
	unsorted[remotewrite.ProtocolV1], err = v1.Marshal()
	require.NoError(b, err)
	cfg, err := rules.LoadConfigFile("../rules/testdata/realistic.yaml")
	require.NoError(b, err)
	eng, err := rules.Compile(cfg, rules.NewMetrics(nil))
	require.NoError(b, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, proto := range []remotewrite.Protocol{remotewrite.ProtocolV1, remotewrite.ProtocolV2} {
		for _, cache := range []int{0, -1} {
			for _, ruleset := range []string{"no_rules", "realistic", "no_rules_vmagent_order"} {
				name := fmt.Sprintf("rw%d/cache=%v/%s", proto, cache == 0, ruleset)
				payload, wantSorted := payloads[proto], 0
				if ruleset == "no_rules_vmagent_order" {
					payload, wantSorted = unsorted[proto], n // every time, hits included
				}
				b.Run(name, func(b *testing.B) {
					deps := Deps{Ring: staticPlacer{p}, Pusher: noPusher{}, Logger: logger}
					if ruleset == "realistic" {
						deps.Rules, deps.Types = staticRules{eng}, rules.NewTypeCache(100)
					}
					d := New(Config{RemoteWrite: remotewrite.DefaultConfig(), SeriesCacheBytes: cache}, deps)
					run := func() {
						in := d.intakePool.get()
						in.d, in.tenant, in.proto, in.placement = d, "team-a", proto, p
						in.gov = d.governance()
						in.gen = d.cache.acquire(in.gov.engine())
						if err := in.run(payload); err != nil {
							b.Fatal(err)
						}
						if in.sorted != wantSorted {
							b.Fatalf("sorted %d series, want %d", in.sorted, wantSorted)
						}
						total := 0
						for _, pt := range in.nonEmptyParts() {
							total += pt.series
						}
						if total != n {
							b.Fatalf("placed %d series, want %d", total, n)
						}
						if in.gov != nil {
							d.govPool.put(in.gov.g)
						}
						d.intakePool.put(in)
					}
					run() // warm the cache (when on)
					b.ReportAllocs()
					for b.Loop() {
						run()
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/series")
				})
			}
		}
	}
}

// staticRules is a RulesSource with one engine.
type staticRules struct{ eng *rules.Engine }

func (s staticRules) Active() *rules.Ruleset { return &rules.Ruleset{Engine: s.eng} }

func TestUntouchedSeriesDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("-race makes sync.Pool drop items: allocation counts are meaningless")
	}
	cfg, err := rules.LoadConfigFile("../rules/testdata/realistic.yaml")
	require.NoError(t, err)
	eng, err := rules.Compile(cfg, rules.NewMetrics(nil))
	require.NoError(t, err)
	st := writev2.NewSymbolTable()
	req := &writev2.Request{Timeseries: []writev2.TimeSeries{{
		LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "http_requests_total", "job", "api-server",
			"method", "GET", "path", "/api/users", "team", "core"), nil),
		Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER},
	}}}
	req.Symbols = st.Symbols()
	ts := &req.Timeseries[0]
	var pool governorPool
	g := pool.get()
	types := rules.NewTypeCache(10)
	var fx rules.Effects
	require.Equal(t, rules.Kept, g.applyRecorded(eng, types, eng.UsesMetadata(), "team-a", "http_requests_total", req, ts, &fx).Action)
	allocs := testing.AllocsPerRun(100, func() {
		_ = g.applyRecorded(eng, types, eng.UsesMetadata(), "team-a", "http_requests_total", req, ts, &fx)
	})
	require.Zero(t, allocs)
}
