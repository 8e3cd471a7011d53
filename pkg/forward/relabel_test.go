package forward

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/record"
)

// relabelConfigs decodes a write_relabel_configs list and validates it.
func relabelConfigs(t testing.TB, doc string) []*relabel.Config {
	t.Helper()
	var cfgs []*relabel.Config
	require.NoError(t, yaml.Unmarshal([]byte(doc), &cfgs))
	require.NoError(t, validateRelabel("write_relabel_configs", cfgs))
	return cfgs
}

// relabelBatch is what b must become: fn rewrites each series' labels or
// drops the series; the data is unchanged. Family metadata is filtered by
// keepMeta.
func relabelBatch(b Batch, fn func(labels.Labels) (labels.Labels, bool), keepMeta func(string) bool) Batch {
	st := writev2.NewSymbolTable()
	out := Batch{Tenant: b.Tenant}
	for _, ts := range b.Request.Timeseries {
		sb := labels.NewScratchBuilder(0)
		ls, err := ts.ToLabels(&sb, b.Request.Symbols)
		if err != nil {
			panic(err)
		}
		nls, keep := fn(ls)
		if !keep {
			continue
		}
		n := ts
		n.LabelsRefs = st.SymbolizeLabels(nls, nil)
		n.Exemplars = nil
		for _, e := range ts.Exemplars {
			ne := e
			ex, err := e.ToExemplar(&sb, b.Request.Symbols)
			if err != nil {
				panic(err)
			}
			ne.LabelsRefs = st.SymbolizeLabels(ex.Labels, nil)
			n.Exemplars = append(n.Exemplars, ne)
		}
		n.Metadata.HelpRef = st.Symbolize(b.Request.Symbols[ts.Metadata.HelpRef])
		n.Metadata.UnitRef = st.Symbolize(b.Request.Symbols[ts.Metadata.UnitRef])
		out.Request.Timeseries = append(out.Request.Timeseries, n)
	}
	out.Request.Symbols = st.Symbols()
	for _, m := range b.Metadata {
		if keepMeta(m.MetricFamilyName) {
			out.Metadata = append(out.Metadata, m)
		}
	}
	return out
}

// storeOf is what a receiver stores for a record.
func storeOf(t *testing.T, r walRecord) *store {
	t.Helper()
	req, _, err := record.ToV2Request(r.batch, nil)
	require.NoError(t, err)
	s := newStore()
	s.addV2(req)
	for _, m := range r.meta {
		s.Meta[m.MetricFamilyName] = nMeta{Type: m.Type, Help: m.Help, Unit: m.Unit}
	}
	return s
}

func TestRelabelerApply(t *testing.T) {
	all := func(string) bool { return true }
	tests := map[string]struct {
		configs  string
		fn       func(labels.Labels) (labels.Labels, bool)
		keepMeta func(family string) bool
		dropped  int // series
		sendsAny bool
	}{
		"keep everything unchanged": {
			configs:  `[{source_labels: [__name__], regex: ".+", action: keep}]`,
			fn:       func(ls labels.Labels) (labels.Labels, bool) { return ls, true },
			keepMeta: all, sendsAny: true,
		},
		"drop one metric and its family metadata": {
			configs: `[{source_labels: [__name__], regex: http_requests_total, action: drop}]`,
			fn: func(ls labels.Labels) (labels.Labels, bool) {
				return ls, ls.Get("__name__") != "http_requests_total"
			},
			keepMeta: func(f string) bool { return f != "http_requests" },
			dropped:  3, sendsAny: true,
		},
		"add a label, data copied as is": {
			configs: `[{target_label: env, replacement: prod}]`,
			fn: func(ls labels.Labels) (labels.Labels, bool) {
				return labels.NewBuilder(ls).Set("env", "prod").Labels(), true
			},
			keepMeta: all, sendsAny: true,
		},
		"rename a metric": {
			configs: `[{source_labels: [__name__], regex: "queue_(.*)", target_label: __name__, replacement: "q_$1"}]`,
			fn: func(ls labels.Labels) (labels.Labels, bool) {
				if n, ok := strings.CutPrefix(ls.Get("__name__"), "queue_"); ok {
					return labels.NewBuilder(ls).Set("__name__", "q_"+n).Labels(), true
				}
				return ls, true
			},
			keepMeta: all, sendsAny: true,
		},
		"labeldrop instance, keep by instance": {
			configs: `[{source_labels: [instance], regex: "host-[0-4]", action: keep}, {regex: instance, action: labeldrop}]`,
			fn: func(ls labels.Labels) (labels.Labels, bool) {
				inst := ls.Get("instance")
				if len(inst) != 6 || inst[5] > '4' {
					return ls, false
				}
				return labels.NewBuilder(ls).Del("instance").Labels(), true
			},
			keepMeta: all, dropped: 7, sendsAny: true,
		},
		"a series left without __name__ is dropped": {
			configs:  `[{regex: __name__, action: labeldrop}]`,
			fn:       func(ls labels.Labels) (labels.Labels, bool) { return ls, false },
			keepMeta: func(f string) bool { return f == "orphan_gauge" },
			dropped:  12, sendsAny: true, // the orphan family's metadata still goes
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := genBatch("team-a", 0, 12, 1_700_000_000_000)
			reg := prometheus.NewRegistry()
			rl := newRelabeler(relabelConfigs(t, tc.configs), reg)
			raw := record.FromV2(nil, &in.Request)
			r := walRecord{tenant: in.Tenant, batch: raw, meta: in.Metadata}
			for it := record.NewIter(raw); it.Next(); {
				r.count += it.Entry().Count()
			}
			before := r.count
			require.Equal(t, tc.sendsAny, rl.apply(&r))
			want := relabelBatch(in, tc.fn, tc.keepMeta)
			require.Equal(t, expected(want), storeOf(t, r))
			require.Equal(t, batchCount(&want.Request), r.count)
			require.Equal(t, float64(tc.dropped), testutil.ToFloat64(rl.droppedSeries))
			require.Equal(t, float64(before-r.count), testutil.ToFloat64(rl.droppedSamples))
			if tc.dropped == 0 && name == "keep everything unchanged" {
				require.Equal(t, raw, r.batch, "unchanged series are copied byte for byte")
			}
			// Hashes of rewritten entries are their new labels'.
			sb := labels.NewScratchBuilder(0)
			for it := record.NewIter(r.batch); it.Next(); {
				require.Equal(t, record.Labels(it.Entry().Series, &sb).Hash(), it.Entry().Hash)
			}
		})
	}
}

func TestRelabelerDropsWholeRecord(t *testing.T) {
	rl := newRelabeler(relabelConfigs(t, `[{source_labels: [__name__], regex: up, action: drop}]`), nil)
	in := floatBatch("team-a", 0, 5, 1000)
	r := walRecord{tenant: in.Tenant, batch: record.FromV2(nil, &in.Request), count: 5}
	require.False(t, rl.apply(&r), "nothing left to send")
	require.Zero(t, r.count)
	require.Nil(t, newRelabeler(nil, nil), "no configs: no relabeler, the zero-decode path")
}

// TestBackendsWriteRelabel forwards one WAL to two backends: one with
// write_relabel_configs receives the relabelled subset, the other
// everything, and the dropped series are counted for the first only.
func TestBackendsWriteRelabel(t *testing.T) {
	w := openTestWAL(t, filepath.Join(t.TempDir(), "wal"))
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	subset, all := newReceiver(t, modeV2), newReceiver(t, modeV1Only)
	bs, ba := DefaultBackendConfig(), DefaultBackendConfig()
	bs.Name, bs.URL = "subset", subset.url()
	bs.WriteRelabelConfigs = relabelConfigs(t, `
- {source_labels: [instance], regex: "host-[0-4]", action: drop}
- {target_label: replica, replacement: b}`)
	ba.Name, ba.URL = "all", all.url()
	backends, err := ResolveBackends(BackendConfig{}, []BackendConfig{bs, ba})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	fwd, err := NewBackends(walTestConfig(), backends, w, t.TempDir(), nil, reg)
	require.NoError(t, err)
	var batches []Batch
	var end = w.Checkpoint()
	for i := range 3 {
		b := floatBatch("team-a", 0, 10, int64(1000*(i+1)))
		batches = append(batches, b)
		end = appendBatch(t, w, b)
	}
	defer runBackends(t, fwd)()
	require.Eventually(t, func() bool { return w.Checkpoint() == end }, 10*time.Second, time.Millisecond)

	_, gotAll := all.snapshot()
	require.Equal(t, expected(batches...), gotAll, "the backend without relabelling gets everything")
	var want []Batch
	for _, b := range batches {
		want = append(want, relabelBatch(b, func(ls labels.Labels) (labels.Labels, bool) {
			inst := ls.Get("instance")
			if len(inst) == 6 && inst[5] <= '4' {
				return ls, false
			}
			return labels.NewBuilder(ls).Set("replica", "b").Labels(), true
		}, func(string) bool { return true }))
	}
	_, gotSubset := subset.snapshot()
	require.Equal(t, expected(want...), gotSubset)
	dropped := backendValues(t, reg, "promgov_forward_relabel_dropped_series_total")
	require.Equal(t, map[string]float64{"subset": 15}, dropped, "counted for the relabelling backend only")
}

// backendValues returns the value of a metric per backend label.
func backendValues(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "backend" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// BenchmarkRelabelRecord measures what write_relabel_configs cost the WAL
// reader per record of 500 one-sample series (backends without them skip
// this step entirely).
func BenchmarkRelabelRecord(b *testing.B) {
	in := floatBatch("team-a", 0, 500, 1_700_000_000_000)
	raw := record.FromV2(nil, &in.Request)
	// A record may carry the family metadata of its series (RW 1.0).
	meta := []prompb.MetricMetadata{{Type: prompb.MetricMetadata_GAUGE, MetricFamilyName: "up", Help: "Up."}}
	for name, doc := range map[string]string{
		"unchanged": `[{source_labels: [__name__], regex: ".+", action: keep}]`,
		"drop-half": `[{source_labels: [instance], regex: "host-.*[0-4]", action: drop}]`,
		"add-label": `[{target_label: env, replacement: prod}]`,
	} {
		for _, md := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/metadata=%v", name, md), func(b *testing.B) {
				rl := newRelabeler(relabelConfigs(b, doc), nil)
				b.ReportAllocs()
				for b.Loop() {
					r := walRecord{tenant: in.Tenant, batch: raw, count: 500}
					if md {
						r.meta = meta
					}
					rl.apply(&r)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*500), "ns/series")
			})
		}
	}
}

// BenchmarkWALForwardRelabel is BenchmarkWALForwardNoRelabel with
// write_relabel_configs that change nothing but must look at every series.
func BenchmarkWALForwardRelabel(b *testing.B) {
	cfgs := relabelConfigs(b, `[{source_labels: [__name__], regex: ".+", action: keep}]`)
	benchWALForward(b, func(w *WALForwarder) { w.relabel = newRelabeler(cfgs, nil) })
}
