package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/preview"
	"github.com/promgov/promgov/pkg/usage"
)

// mixinTraffic is node-exporter traffic, 10 instances: three metrics the
// node-exporter mixin's dashboards read and node_entropy_available_bits,
// which no dashboard, recording rule or alert of the mixins reads.
func mixinTraffic() [][]string {
	var series [][]string
	for i := range 10 {
		inst := fmt.Sprintf("host-%d:9100", i)
		series = append(series,
			[]string{"node_cpu_seconds_total", "instance", inst, "job", "node", "cpu", "0", "mode", "idle"},
			[]string{"node_filesystem_avail_bytes", "instance", inst, "job", "node", "mountpoint", "/", "fstype", "ext4", "device", "sda1"},
			[]string{"node_load1", "instance", inst, "job", "node"},
			[]string{"node_entropy_available_bits", "instance", inst, "job", "node"},
		)
	}
	return series
}

// TestGovernanceFeedbackLoopMixins is issue 14's feedback loop on the real
// node-exporter mixin (../shared/datasets/mixins): with its dashboards,
// recording rules and alerts as the usage sources of a real cluster
// (distributor, 2 ingesters, Prometheus 3.16, a filesystem governance
// store),
//
//	sender ──RW 1.0──► distributor ──► ingester ×2 ──► Prometheus
//	                       │ usage: node-exporter dashboards + rules + alerts
//	                       └─ governance store (filesystem)
//
// the metric nobody reads is suggested (and only it: no metric the mixin
// reads is), proposed with a preview that drops exactly its series,
// rejected (nothing changes: it still reaches Prometheus and the active
// version stays), proposed again, promoted, and then stops reaching
// Prometheus while the metrics the mixin reads keep arriving.
func TestGovernanceFeedbackLoopMixins(t *testing.T) {
	t.Parallel()
	ne := filepath.Join(mixinsRoot(t), "node-exporter")
	g := startGovClusterWith(t, 1, []string{"--usage.reload-interval=1s",
		"--usage.dashboards-path=" + filepath.Join(ne, "dashboards"),
		"--usage.rules-path=" + filepath.Join(ne, "rules.yaml") + "," + filepath.Join(ne, "alerts.yaml")},
		"--governance.store.backend=filesystem", "--governance.store.filesystem.directory="+t.TempDir())
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 1) }, 15*time.Second, 100*time.Millisecond, "nodes never ran the seed")

	const unused = "node_entropy_available_bits"
	used := []string{"node_cpu_seconds_total", "node_filesystem_avail_bytes", "node_load1"}
	send := func() time.Time {
		ts := time.Now()
		writeV1(t, g.cluster, ts, mixinTraffic()...)
		eventually(t, func(ct *assert.CollectT) bool {
			return countAt(ct, g.backend, `count(last_over_time({job="node"}[1ms]))`, ts) > 0
		}, 30*time.Second, 200*time.Millisecond, "the traffic at %s never reached Prometheus", ts)
		return ts
	}
	send()

	var (
		sug usage.Suggestion
		bad []string // suggestions dropping a metric the mixin reads
	)
	eventually(t, func(ct *assert.CollectT) bool {
		code, out := g.ctlQuiet("suggestions", "list")
		var ss []usage.Suggestion
		if code != 0 || json.Unmarshal([]byte(out), &ss) != nil {
			return false
		}
		for _, s := range ss {
			for _, m := range used {
				if s.Kind == usage.SuggestDropMetrics && slices.Contains(s.Metrics, m) {
					bad = append(bad, s.ID+" drops "+m)
				}
			}
			if s.Kind == usage.SuggestDropMetrics && slices.Equal(s.Metrics, []string{unused}) {
				sug = s
				return true
			}
		}
		return false
	}, 30*time.Second, 500*time.Millisecond, "no drop suggestion for %s", unused)
	require.Empty(t, bad, "suggestions dropping metrics the mixin's dashboards read")
	require.EqualValues(t, 10, sug.SeriesSaved)

	propose := func(want uint64) preview.Proposal {
		code, out := g.ctl(t, "suggestions", "propose", "-o", "json", sug.ID)
		require.Equal(t, 0, code, out)
		var p preview.Proposal
		require.NoError(t, json.Unmarshal([]byte(out), &p))
		require.Equal(t, want, p.Version.Number)
		require.Equal(t, "shadow", string(p.Version.Mode))
		require.Len(t, p.Preview.Metrics, 1, "the preview changes only %s", unused)
		require.Equal(t, unused, p.Preview.Metrics[0].Metric)
		require.Equal(t, 10.0, p.Preview.Totals.SeriesDropped)
		return p
	}
	arriving := func(ts time.Time) map[string]float64 {
		out := map[string]float64{}
		for _, m := range append(slices.Clone(used), unused) {
			out[m] = countAt(t, g.backend, "count(last_over_time("+m+"[1ms]))", ts)
		}
		return out
	}
	all := map[string]float64{"node_cpu_seconds_total": 10, "node_filesystem_avail_bytes": 10, "node_load1": 10, unused: 10}

	// Rejected: nothing changes.
	propose(2)
	code, out := g.ctl(t, "config", "reject", "--message=keep it for now", "2")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "version 2 rejected")
	eventually(t, func(ct *assert.CollectT) bool { return g.allOnShadow(ct, 1, 0) }, 10*time.Second, 50*time.Millisecond, "the rejected candidate still runs in shadow somewhere")
	ts := send()
	eventually(t, func(ct *assert.CollectT) bool {
		return assert.Equal(ct, all, arriving(ts))
	}, 30*time.Second, 500*time.Millisecond, "after the rejection every metric must still arrive")

	// Proposed again and promoted: the unused metric stops.
	propose(3)
	code, out = g.ctl(t, "config", "promote", "3")
	require.Equal(t, 0, code, out)
	eventually(t, func(ct *assert.CollectT) bool { return g.allOn(ct, 4) }, 10*time.Second, 50*time.Millisecond, "the promoted version never reached every node")
	ts = send()
	want := map[string]float64{"node_cpu_seconds_total": 10, "node_filesystem_avail_bytes": 10, "node_load1": 10, unused: 0}
	eventually(t, func(ct *assert.CollectT) bool {
		return assert.Equal(ct, want, arriving(ts))
	}, 30*time.Second, 500*time.Millisecond, "after the promotion %s must stop and the mixin's metrics keep arriving", unused)
}
