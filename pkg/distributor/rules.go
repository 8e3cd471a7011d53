package distributor

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/rules"
)

// RulesSource gives the active governance ruleset. The distributor takes
// one snapshot per request, so a reload never changes the rules in the
// middle of a request. Safe for concurrent use; the result is never nil.
type RulesSource interface {
	Active() *rules.Ruleset
}

var _ RulesSource = (*rules.Manager)(nil)

// governor applies the active ruleset to the series of one request. It is
// used by one request at a time (pooled between requests).
type governor struct {
	sb labels.ScratchBuilder
	ls labels.Labels // SeriesLabels' reused output

	// lastName/lastMeta memoise the type cache lookup of the previous series
	// (series of one metric usually come together).
	lastName string
	lastMeta rules.Metadata
	lastOK   bool

	// batch holds the series of a batch (intake.resolveBatches).
	batch govBatch
}

// ruleStats summarises what the rules did to one request.
type ruleStats struct {
	dropped, changed                                    int
	droppedSamples, droppedHistograms, droppedExemplars int
	// byRule counts outcomes per deciding rule; nil until a rule acted
	// (bounded by the number of rules).
	byRule    map[string]*ruleCount
	firstDrop string
}

type ruleCount struct{ dropped, changed int }

// drop counts a series a rule dropped, with what it carried; msg names
// the first one.
func (st *ruleStats) drop(rule string, msg []byte, c counts) {
	st.ruleCount(rule).dropped++
	st.dropped++
	st.droppedSamples += c.samples
	st.droppedHistograms += c.histograms
	st.droppedExemplars += c.exemplars
	if st.firstDrop == "" {
		st.firstDrop = string(msg)
	}
}

// change counts n series a rule rewrote or tagged.
func (st *ruleStats) change(rule string, n int) {
	st.ruleCount(rule).changed += n
	st.changed += n
}

func (st *ruleStats) ruleCount(rule string) *ruleCount {
	if st.byRule == nil {
		st.byRule = map[string]*ruleCount{}
	}
	c := st.byRule[rule]
	if c == nil {
		c = &ruleCount{}
		st.byRule[rule] = c
	}
	return c
}

// summary renders byRule as "rule:dropped=N,changed=M ..." in name order.
func (st *ruleStats) summary() string {
	names := make([]string, 0, len(st.byRule))
	for n := range st.byRule {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		c := st.byRule[n]
		fmt.Fprintf(&b, "%s:dropped=%d,changed=%d", n, c.dropped, c.changed)
	}
	return b.String()
}

// governorPool reuses governors (and their label buffers) across requests.
type governorPool struct{ p sync.Pool }

func (gp *governorPool) get() *governor {
	if g, ok := gp.p.Get().(*governor); ok {
		return g
	}
	return &governor{sb: labels.NewScratchBuilder(16)}
}

func (gp *governorPool) put(g *governor) {
	g.lastName, g.lastMeta, g.lastOK = "", rules.Metadata{}, false
	gp.p.Put(g)
}

// metadata returns what is known about ts: its RW 2.0 metadata, else what
// the type cache remembers of its family from RW 1.0 metadata requests.
func (g *governor) metadata(types *rules.TypeCache, tenant, name string, req *writev2.Request, ts *writev2.TimeSeries) rules.Metadata {
	if t := rules.TypeFromRW2(ts.Metadata.Type); t != "" {
		md := rules.Metadata{Type: t}
		if ts.Metadata.UnitRef != 0 {
			md.Unit = req.Symbols[ts.Metadata.UnitRef]
		}
		return md
	}
	if types == nil {
		return rules.Metadata{}
	}
	if g.lastOK && name == g.lastName {
		return g.lastMeta
	}
	md, _ := types.Lookup(tenant, name)
	g.lastName, g.lastMeta, g.lastOK = name, md, true
	return md
}

// applyRecorded runs the engine on ts, recording the rule counters it
// incremented in fx. The returned labels are only valid until the next
// call (Kept series alias g's buffer); Changed labels are fresh.
func (g *governor) applyRecorded(eng *rules.Engine, types *rules.TypeCache, withMeta bool, tenant, name string,
	req *writev2.Request, ts *writev2.TimeSeries, fx *rules.Effects) rules.Result {
	remotewrite.SeriesLabels(&g.sb, req, ts, &g.ls)
	s := rules.Series{Tenant: tenant, Labels: g.ls}
	if withMeta {
		s.Meta = g.metadata(types, tenant, name, req, ts)
	}
	return eng.ApplyRecorded(&s, fx)
}

// rememberTypes feeds RW 1.0 family metadata to the type cache.
func rememberTypes(types *rules.TypeCache, tenant string, dec *remotewrite.Decoded) {
	if types == nil {
		return
	}
	for i := range dec.Metadata {
		md := &dec.Metadata[i]
		t := rules.TypeFromRW1(md.Type)
		if md.MetricFamilyName == "" || (t == "" && md.Unit == "") {
			continue
		}
		types.Set(tenant, md.MetricFamilyName, rules.Metadata{Type: t, Unit: md.Unit, Help: md.Help})
	}
}
