package distributor

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/record"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// pushLog records every push and answers that everything was written.
type pushLog struct {
	mu         sync.Mutex
	pushes     []string // one rendering per push, sorted at the end
	histograms int64
}

func (l *pushLog) Send(ctx context.Context, addr string, req *ingesterv1.PushRequest) PendingPush {
	resp, err := l.push(ctx, addr, req)
	return answered{resp, err}
}

func (l *pushLog) push(_ context.Context, addr string, req *ingesterv1.PushRequest) (*ingesterv1.PushResponse, error) {
	var resp ingesterv1.PushResponse
	s := fmt.Sprintf("%s %s meta=%v:", addr, req.GetTenant(), req.GetMetadata())
	it := record.NewIter(req.GetSeries())
	for it.Next() {
		e := it.Entry()
		if _, err := e.Validate(); err != nil {
			return nil, err
		}
		s += fmt.Sprintf(" [%x %d %x]", e.Hash, e.Flags, e.Series)
		resp.SamplesWritten += int64(e.Samples)
		resp.HistogramsWritten += int64(e.Histograms)
		resp.ExemplarsWritten += int64(e.Exemplars)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.pushes = append(l.pushes, s)
	l.histograms += resp.HistogramsWritten
	l.mu.Unlock()
	return &resp, nil
}

func (l *pushLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.pushes
	l.pushes = nil
	sort.Strings(out)
	return out
}

// TestSeriesCacheChangesNothing sends the same requests, three times each,
// to a distributor with the series cache and to one without, and requires
// the same answers, the same batches for every ingester and the same
// metrics: the cache only saves work. The requests mix what the fast path
// takes (float series, 1.0 and 2.0, sorted or not, with 2.0 metadata and
// start timestamps) with what it leaves to the decoder (histograms,
// exemplars, invalid series), rule drops, rewrites and usage drops.
func TestSeriesCacheChangesNothing(t *testing.T) {
	members := []ring.Member{}
	for i := range 3 {
		members = append(members, ring.Member{Name: fmt.Sprint("i", i), Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: fmt.Sprint("a", i)})
	}
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25}, members)
	require.NoError(t, err)
	cfg, err := rules.LoadConfig([]byte(testRules))
	require.NoError(t, err)

	type system struct {
		d   *Distributor
		log *pushLog
		reg *prometheus.Registry
	}
	newSystem := func(cacheBytes int) system {
		s := system{log: &pushLog{}, reg: prometheus.NewRegistry()}
		logger := slog.New(slog.DiscardHandler)
		m := rules.NewManager(logger, s.reg)
		m.SetUsagePolicy(newUnusedNames("unused_total"))
		withUsage := cfg
		withUsage.Rules = append(slices.Clip(cfg.Rules), rules.RuleConfig{Name: rules.UsageDropRuleName, Action: rules.ActionDrop, Unused: &rules.UnusedConfig{}})
		require.NoError(t, m.Reload(withUsage))
		s.d = New(Config{RemoteWrite: remotewrite.DefaultConfig(), SeriesCacheBytes: cacheBytes, PushTimeout: time.Second}, Deps{
			Ring: staticPlacer{p}, Pusher: s.log, Rules: m, Types: rules.NewTypeCache(100),
			Logger: logger, Registerer: s.reg,
		})
		return s
	}
	cached, plain := newSystem(0), newSystem(-1)

	v1 := func(series ...prompb.TimeSeries) []byte {
		b, err := (&prompb.WriteRequest{Timeseries: series}).Marshal()
		require.NoError(t, err)
		return snappy.Encode(nil, b)
	}
	lbl := func(kv ...string) []prompb.Label {
		var out []prompb.Label
		for i := 0; i < len(kv); i += 2 {
			out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
		}
		return out
	}
	smp := []prompb.Sample{{Value: 1, Timestamp: 1000}, {Value: 2, Timestamp: 2000}}
	// One byte over the value limit, well within what the scanner's fast
	// path reads: sent every round, it must be refused every round, never
	// served from the cache.
	longValue := strings.Repeat("v", remotewrite.DefaultMaxLabelValueLength+1)
	v1Req := v1(
		prompb.TimeSeries{Labels: lbl("__name__", "http_requests", "path", "/users/123"), Samples: smp},
		prompb.TimeSeries{Labels: lbl("path", "/x/7", "__name__", "unsorted", "a", "b"), Samples: smp},
		prompb.TimeSeries{Labels: lbl("__name__", "debug_x", "job", "j"), Samples: smp},
		prompb.TimeSeries{Labels: lbl("__name__", "legacy_up", "job", "j"), Samples: smp},
		prompb.TimeSeries{Labels: lbl("__name__", "unused_total"), Samples: smp},
		prompb.TimeSeries{Labels: lbl("__name__", ""), Samples: smp},
		prompb.TimeSeries{Labels: lbl("__name__", "with_exemplar"), Samples: smp,
			Exemplars: []prompb.Exemplar{{Labels: lbl("trace_id", "t"), Value: 1, Timestamp: 1000}}},
		prompb.TimeSeries{Labels: lbl("__name__", "both"), Samples: smp,
			Histograms: []prompb.Histogram{{Count: &prompb.Histogram_CountInt{CountInt: 1}, ZeroCount: &prompb.Histogram_ZeroCountInt{ZeroCountInt: 1}, Timestamp: 1000}}},
		prompb.TimeSeries{Labels: lbl("__name__", "acme_ok", "job", "j"), Samples: smp},
		prompb.TimeSeries{Labels: lbl("__name__", "long_value", "a", longValue), Samples: smp},
	)
	st := writev2.NewSymbolTable()
	v2 := writev2.Request{Timeseries: []writev2.TimeSeries{
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "requests", "job", "j"), nil),
			Samples:  []writev2.Sample{{Value: 1, Timestamp: 1000, StartTimestamp: 500}},
			Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("Requests."), UnitRef: st.Symbolize("")}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "temp", "job", "j"), nil),
			Samples:  []writev2.Sample{{Value: 21, Timestamp: 1000}},
			Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, UnitRef: st.Symbolize("celsius")}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "debug_y"), nil),
			Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "no_data"), nil)},
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "long_value", "a", longValue), nil),
			Samples: []writev2.Sample{{Value: 1, Timestamp: 1000}}},
	}}
	v2.Symbols = st.Symbols()
	raw2, err := v2.Marshal()
	require.NoError(t, err)
	v2Req := snappy.Encode(nil, raw2)

	for round := range 3 {
		for _, req := range []struct {
			ct   string
			body []byte
		}{
			{remotewrite.ProtocolV1.ContentType(), v1Req},
			{remotewrite.ProtocolV2.ContentType(), v2Req},
		} {
			wc := post(t, cached.d, req.ct, req.body, "team-a")
			wp := post(t, plain.d, req.ct, req.body, "team-a")
			require.Equal(t, wp.Code, wc.Code, "round %d %s", round, req.ct)
			require.Equal(t, wp.Body.String(), wc.Body.String())
			require.Equal(t, wp.Header(), wc.Header())
			require.Equal(t, plain.log.take(), cached.log.take(), "round %d %s", round, req.ct)
			require.Equal(t, 400, wc.Code, "round %d %s: the long value is refused", round, req.ct)
		}
	}
	// Every counter is the same but the cache's own: the same series are
	// looked up, and only the distributor with a cache finds them.
	pc, cc := counterValues(t, plain.reg), counterValues(t, cached.reg)
	const hit, miss = "promgov_distributor_series_cache_lookups_total,result=hit", "promgov_distributor_series_cache_lookups_total,result=miss"
	assert.Equal(t, pc[hit]+pc[miss], cc[hit]+cc[miss], "the same lookups")
	assert.Zero(t, pc[hit], "a cache that is off finds nothing")
	assert.Positive(t, cc[hit], "rounds 2 and 3 find the fast-path series")
	for _, k := range []string{hit, miss} {
		delete(pc, k)
		delete(cc, k)
	}
	require.Equal(t, pc, cc)
	require.Equal(t, int64(3), cached.log.histograms, "the 1.0 series with samples and histograms is split")
}

// counterValues flattens every counter of g by name and labels.
func counterValues(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() == nil {
				continue
			}
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			out[key] = m.GetCounter().GetValue()
		}
	}
	require.NotEmpty(t, out)
	return out
}

// FuzzIntakeCacheChangesNothing: whatever the payload, an intake with a
// warm series cache places exactly what one without the cache places, and
// fails the same way.
func FuzzIntakeCacheChangesNothing(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.proto, s.payload)
	}
	h := newIntakeHarness(f)
	f.Fuzz(func(t *testing.T, proto int, payload []byte) {
		pr := fuzzProtocol(proto)
		plain := h.distributor(-1)
		cached := h.distributor(0)
		want := h.render(t, plain, pr, payload)
		h.render(t, cached, pr, payload)
		require.Equal(t, want, h.render(t, cached, pr, payload))
	})
}

// FuzzIntakeCacheAcrossRequests: after any request (of either protocol)
// has filled the series cache, any other request is answered and placed
// exactly as without the cache. A hit only replays what the decoder,
// the validator and the rules decided for the same labels; a series they
// refused is refused again.
func FuzzIntakeCacheAcrossRequests(f *testing.F) {
	seeds := fuzzSeeds(f)
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add(a.proto, a.payload, b.proto, b.payload)
		}
	}
	h := newIntakeHarness(f)
	f.Fuzz(func(t *testing.T, protoA int, a []byte, protoB int, b []byte) {
		plain := h.distributor(-1)
		cached := h.distributor(0)
		h.render(t, cached, fuzzProtocol(protoA), a)
		require.Equal(t, h.render(t, plain, fuzzProtocol(protoB), b), h.render(t, cached, fuzzProtocol(protoB), b))
	})
}

func fuzzProtocol(n int) remotewrite.Protocol {
	if n%2 == 0 {
		return remotewrite.ProtocolV2
	}
	return remotewrite.ProtocolV1
}

// intakeHarness runs single intakes on distributors with the test rules,
// over a fixed placement of two ingesters.
type intakeHarness struct {
	p   *ring.Placement
	eng *rules.Engine
}

func newIntakeHarness(f *testing.F) *intakeHarness {
	members := []ring.Member{
		{Name: "i0", Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: "a0"},
		{Name: "i1", Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: "a1"},
	}
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 31, ReplicationFactor: 5, Load: 1.25}, members)
	require.NoError(f, err)
	cfg, err := rules.LoadConfig([]byte(testRules))
	require.NoError(f, err)
	eng, err := rules.Compile(cfg, rules.NewMetrics(nil))
	require.NoError(f, err)
	return &intakeHarness{p: p, eng: eng}
}

// distributor is a distributor with the given series cache bound (< 0: off).
func (h *intakeHarness) distributor(cacheBytes int) *Distributor {
	return New(Config{RemoteWrite: remotewrite.DefaultConfig(), SeriesCacheBytes: cacheBytes}, Deps{
		Ring: staticPlacer{h.p}, Pusher: noPusher{}, Rules: staticRules{h.eng}, Types: rules.NewTypeCache(10),
	})
}

// render runs one intake of payload on d and renders its outcome and
// what it placed for each ingester.
func (h *intakeHarness) render(t *testing.T, d *Distributor, pr remotewrite.Protocol, payload []byte) string {
	var pool governorPool
	gov := d.governance()
	gov.g = pool.get()
	in := &intake{sb: labels.NewScratchBuilder(16)}
	in.d, in.tenant, in.proto, in.placement, in.gov = d, "t", pr, h.p, gov
	in.gen = d.cache.acquire(h.eng)
	defer in.gen.release()
	err := in.run(payload)
	out := fmt.Sprintf("err=%v rejected=%d first=%q valid=%d sorted=%d dropped=%d changed=%d\n",
		err, in.rejected, in.firstInvalid, in.valid, in.sorted, gov.stats.dropped, gov.stats.changed)
	for _, pt := range in.nonEmptyParts() {
		// The same series, not the same bytes: the cache copies samples
		// as sent (a zero field may be explicit).
		it := record.NewIter(pt.batch)
		for it.Next() {
			out += fmt.Sprintf("%s %x %d ", pt.owner.Name, it.Entry().Hash, it.Entry().Flags)
		}
		req, _, err := record.ToV2Request(pt.batch, nil)
		require.NoError(t, err)
		out += fmt.Sprintf("%+v %v\n", *req, pt.metadata)
	}
	return out
}

type fuzzSeed struct {
	proto   int
	payload []byte
}

func fuzzSeeds(f *testing.F) []fuzzSeed {
	v1 := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "legacy_up"}, {Name: "path", Value: "/a/1"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 2}}},
		{Labels: []prompb.Label{{Name: "z", Value: "1"}, {Name: "__name__", Value: "debug_x"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 2}}},
		{Labels: []prompb.Label{{Name: "__name__", Value: "up"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: 2}},
			Exemplars: []prompb.Exemplar{{Labels: []prompb.Label{{Name: "trace_id", Value: "x"}}, Value: 1}}},
	}, Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "up"}}}
	b1, err := v1.Marshal()
	require.NoError(f, err)
	st := writev2.NewSymbolTable()
	v2 := writev2.Request{Timeseries: []writev2.TimeSeries{
		{LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", "x_total", "job", "j"), nil),
			Samples:  []writev2.Sample{{Value: 1, Timestamp: 1, StartTimestamp: 1}},
			Metadata: writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_COUNTER, HelpRef: st.Symbolize("h")}},
		{LabelsRefs: []uint32{1, 99}, Samples: []writev2.Sample{{Value: 1, Timestamp: 1}}},
	}}
	v2.Symbols = st.Symbols()
	b2, err := v2.Marshal()
	require.NoError(f, err)
	// The same labels in both protocols, sorted or not, valid or not, so
	// that one request's cache entries meet the other's series.
	shared := [][]string{
		{"__name__", "x_total", "job", "j"},
		{"job", "j", "__name__", "unsorted_total"},
		{"__name__", "bad", "a", "v\xff"},
		{"b", "1", "__name__", "dup", "b", "2"},
	}
	return []fuzzSeed{{1, b1}, {2, b2}, {1, nil}, {2, []byte{0x2a, 0x01, 0x61}},
		{1, rawBody(f, remotewrite.ProtocolV1, shared)}, {2, rawBody(f, remotewrite.ProtocolV2, shared)}}
}

func TestSeriesCacheBoundedAndPerRuleset(t *testing.T) {
	const maxBytes = 2 * cacheChunkSize
	c := newSeriesCache(maxBytes)
	out := record.AppendLabel(nil, "__name__", "m")
	off, n, ok := record.FindLabel(out, "__name__")
	require.True(t, ok)
	var g *cacheGen
	gens := 1
	for i := range 300_000 {
		g = c.acquire(nil)
		key := g.hashKey(fmt.Appendf(nil, "t\xff%08d-some-labels-as-sent", i))
		v := cacheValue{out: out, nameOff: off, nameLen: n, outHash: uint64(i), msg: []byte("message of a drop")}
		g.put(key, &v)
		g.record(1, 0) // every series is new: a full generation does not pay
		if g.full.Load() {
			if g.use.stale.Load() {
				gens++
			}
			g.release()
			continue
		}
		var got cacheValue
		hit := g.get(key, &got)
		require.True(t, hit, "a series just put is found")
		require.Equal(t, uint64(i), got.outHash)
		require.Equal(t, "m", string(got.name()))
		require.Equal(t, "message of a drop", string(got.msg))
		require.LessOrEqual(t, len(g.chunks)*cacheChunkSize, maxBytes)
		g.release()
	}
	require.Greater(t, gens, 1, "a full generation gives way to a new one")
	g = c.acquire(nil)
	hit := g.get(g.hashKey([]byte("t\xffother")), &cacheValue{})
	require.False(t, hit)

	cfg, err := rules.LoadConfig([]byte(testRules))
	require.NoError(t, err)
	eng, err := rules.Compile(cfg, rules.NewMetrics(nil))
	require.NoError(t, err)
	g2 := c.acquire(eng)
	require.NotSame(t, g, g2, "a new ruleset starts an empty generation")
	hit = g2.get(g2.hashKey([]byte("t\xff00000001-some-labels-as-sent")), &cacheValue{})
	require.False(t, hit)
	require.Same(t, g2, c.acquire(eng))
}
