package distributor

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
)

// dropNames drops the metric names it holds (enforce) or only reports them (shadow).
type dropNames struct {
	names   map[string]bool
	enforce bool
}

func (d dropNames) Check(name string) usage.Verdict {
	if !d.names[name] {
		return usage.Verdict{}
	}
	return usage.Verdict{Drop: d.enforce, WouldDrop: true}
}

var _ DropPolicy = dropNames{}

func TestSplitDropPolicy(t *testing.T) {
	p, err := ring.NewPlacement(ring.PlacementConfig{PartitionCount: 271, ReplicationFactor: 20, Load: 1.25},
		[]ring.Member{{Name: "i0", Role: ring.RoleIngester, State: ring.StateActive, GRPCAddress: "a0"}})
	require.NoError(t, err)
	st := writev2.NewSymbolTable()
	req := writev2.Request{}
	for _, name := range []string{"used_total", "unused_total", "renamed_from_total"} {
		req.Timeseries = append(req.Timeseries, writev2.TimeSeries{
			LabelsRefs: st.SymbolizeLabels(labels.FromStrings("__name__", name, "job", "a"), nil),
			Samples:    []writev2.Sample{{Value: 1, Timestamp: 1}, {Value: 2, Timestamp: 2}},
		})
	}
	req.Symbols = st.Symbols()
	payload, err := req.Marshal()
	require.NoError(t, err)
	cfg, err := rules.LoadConfig([]byte(`
rules:
  - name: rename
    relabel_configs:
      - source_labels: [__name__]
        regex: "renamed_from_total"
        target_label: __name__
        replacement: "renamed_to_total"
`))
	require.NoError(t, err)
	eng, err := rules.Compile(cfg, rules.NewMetrics(nil))
	require.NoError(t, err)

	for _, tc := range []struct {
		name        string
		eng         *rules.Engine
		policy      dropNames
		wantSeries  int
		wantDropped int
	}{
		{name: "enforce drops unused", policy: dropNames{names: map[string]bool{"unused_total": true}, enforce: true}, wantSeries: 2, wantDropped: 1},
		{name: "shadow drops nothing", policy: dropNames{names: map[string]bool{"unused_total": true}}, wantSeries: 3},
		{name: "checked after the rules, on the new name", eng: eng,
			policy: dropNames{names: map[string]bool{"renamed_to_total": true, "renamed_from_total": false}, enforce: true}, wantSeries: 2, wantDropped: 1},
		{name: "old name no longer matters after a rename", eng: eng,
			policy: dropNames{names: map[string]bool{"renamed_from_total": true}, enforce: true}, wantSeries: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(Config{RemoteWrite: remotewrite.DefaultConfig()}, Deps{Ring: staticPlacer{p}, Pusher: noPusher{}})
			// Twice: decoded first, then from the series cache.
			for range 2 {
				var pool governorPool
				gov := &governance{eng: tc.eng, g: pool.get(), drop: tc.policy}
				in := runIntake(t, d, remotewrite.ProtocolV2, payload, "team-a", gov)
				total := 0
				for _, pt := range in.nonEmptyParts() {
					total += pt.series
				}
				require.Equal(t, tc.wantSeries, total)
				require.Equal(t, tc.wantDropped, gov.usage.dropped)
				require.Equal(t, 2*tc.wantDropped, gov.usage.droppedSamples)
			}
		})
	}
}

// runIntake reads payload through a fresh intake of d with gov.
func runIntake(t testing.TB, d *Distributor, proto remotewrite.Protocol, payload []byte, tenant string, gov *governance) *intake {
	t.Helper()
	in := &intake{sb: labels.NewScratchBuilder(16)}
	in.d, in.tenant, in.proto, in.placement, in.gov = d, tenant, proto, d.ring.Placement(), gov
	in.gen = d.cache.generation(gov.engine())
	require.NoError(t, in.run(payload))
	return in
}
