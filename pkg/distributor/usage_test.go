package distributor

import (
	"sync/atomic"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
)

// unusedNames is the usage analysis' answer for the tests: the metric
// names it holds are unused; set replaces them and bumps the generation.
type unusedNames struct {
	names atomic.Pointer[map[string]bool]
	gen   atomic.Uint64
}

func newUnusedNames(names ...string) *unusedNames {
	u := &unusedNames{}
	u.set(names...)
	return u
}

func (u *unusedNames) set(names ...string) {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	u.names.Store(&m)
	u.gen.Add(1)
}

func (u *unusedNames) Unused(metric string) bool { return (*u.names.Load())[metric] }
func (u *unusedNames) Generation() uint64        { return u.gen.Load() }

var _ rules.UsagePolicy = (*unusedNames)(nil)

// usageRules compiles the rules of yaml with the usage.drop_unused rule in
// mode last, answered by u, as the distributor's Manager does.
func usageRules(t *testing.T, yaml string, mode rules.Mode, u rules.UsagePolicy) *rules.Manager {
	t.Helper()
	cfg, err := rules.LoadConfig([]byte(yaml))
	require.NoError(t, err)
	cfg.Rules = append(cfg.Rules, rules.RuleConfig{Name: rules.UsageDropRuleName, Mode: mode, Action: rules.ActionDrop, Unused: &rules.UnusedConfig{}})
	m := rules.NewManager(nil, nil)
	m.SetUsagePolicy(u)
	require.NoError(t, m.Reload(cfg))
	return m
}

const renameRule = `
rules:
  - name: rename
    relabel_configs:
      - source_labels: [__name__]
        regex: "renamed_from_total"
        target_label: __name__
        replacement: "renamed_to_total"
`

func TestUsageDropRule(t *testing.T) {
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

	for _, tc := range []struct {
		name        string
		rules       string
		mode        rules.Mode
		unused      []string
		wantSeries  int
		wantDropped int
	}{
		{name: "enforce drops unused", rules: "rules: []", mode: rules.ModeEnforce, unused: []string{"unused_total"}, wantSeries: 2, wantDropped: 1},
		{name: "shadow drops nothing", rules: "rules: []", mode: rules.ModeShadow, unused: []string{"unused_total"}, wantSeries: 3},
		{name: "checked after the rules, on the new name", rules: renameRule, mode: rules.ModeEnforce,
			unused: []string{"renamed_to_total"}, wantSeries: 2, wantDropped: 1},
		{name: "old name no longer matters after a rename", rules: renameRule, mode: rules.ModeEnforce,
			unused: []string{"renamed_from_total"}, wantSeries: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := usageRules(t, tc.rules, tc.mode, newUnusedNames(tc.unused...))
			d := New(Config{RemoteWrite: remotewrite.DefaultConfig()}, Deps{Ring: staticPlacer{p}, Pusher: noPusher{}, Rules: m})
			// Twice: decoded first, then from the series cache.
			for range 2 {
				gov := d.governance()
				in := runIntake(t, d, remotewrite.ProtocolV2, payload, "team-a", gov)
				total := 0
				for _, pt := range in.nonEmptyParts() {
					total += pt.series
				}
				require.Equal(t, tc.wantSeries, total)
				require.Equal(t, tc.wantDropped, gov.usage.dropped)
				require.Equal(t, 2*tc.wantDropped, gov.usage.droppedSamples)
				require.Zero(t, gov.stats.dropped, "a usage drop counted as a rule drop")
			}
		})
	}

	// The selection changes between requests: the series cache, which
	// remembered the series as forwarded, must not replay that.
	u := newUnusedNames()
	m := usageRules(t, "rules: []", rules.ModeEnforce, u)
	d := New(Config{RemoteWrite: remotewrite.DefaultConfig()}, Deps{Ring: staticPlacer{p}, Pusher: noPusher{}, Rules: m})
	forwarded := func() int {
		in := runIntake(t, d, remotewrite.ProtocolV2, payload, "team-a", d.governance())
		n := 0
		for _, pt := range in.nonEmptyParts() {
			n += pt.series
		}
		return n
	}
	require.Equal(t, 3, forwarded())
	require.Equal(t, 3, forwarded()) // from the cache
	u.set("used_total", "unused_total")
	require.Equal(t, 1, forwarded())
	require.Equal(t, 1, forwarded())
	u.set()
	require.Equal(t, 3, forwarded())
}

// runIntake reads payload through a fresh intake of d with gov.
func runIntake(t testing.TB, d *Distributor, proto remotewrite.Protocol, payload []byte, tenant string, gov *governance) *intake {
	t.Helper()
	in := &intake{sb: labels.NewScratchBuilder(16)}
	in.d, in.tenant, in.proto, in.placement, in.gov = d, tenant, proto, d.ring.Placement(), gov
	in.gen = d.cache.acquire(gov.engine())
	t.Cleanup(in.gen.release)
	require.NoError(t, in.run(payload))
	return in
}
