package cardinality

import (
	"cmp"
	"slices"
)

// onLimit resolves the on_limit policy of one (tenant, metric): defaults,
// then the tenant's override, then the first matching metric override.
func (c *compiledLimits) onLimit(tenant, metric string) OnLimit {
	p := c.defaults.OnLimit
	if o, ok := c.tenants[tenant]; ok && o.OnLimit != "" {
		p = o.OnLimit
	}
	for _, o := range c.metrics {
		if (o.tenant == "" || o.tenant == tenant) && o.re.MatchString(metric) {
			if o.o.OnLimit != "" {
				p = o.o.OnLimit
			}
			break
		}
	}
	if p == "" {
		return OnLimitRefuse
	}
	return p
}

// UsesOverflow reports whether any limit has on_limit: overflow.
func (l *LimitsConfig) UsesOverflow() bool {
	if l.Defaults.OnLimit == OnLimitOverflow {
		return true
	}
	for _, o := range l.Tenants {
		if o.OnLimit == OnLimitOverflow {
			return true
		}
	}
	for _, o := range l.Metrics {
		if o.OnLimit == OnLimitOverflow {
			return true
		}
	}
	return false
}

// neverOverflow are labels never chosen: the name, and the labels that
// make a histogram or summary series what it is.
var neverOverflow = []string{"__name__", "le", "quantile"}

// maxOverflowLabels bounds the labels one metric overflows.
const maxOverflowLabels = 3

// OverflowLabels reports whether series a per-metric limit refuses in
// (tenant, metric) overflow instead, and which labels they overflow: the
// label with the most estimated values first, then, while the label-drop
// estimate says the series without the labels chosen so far still exceed
// the series limit, the next one (at most 3). Safe for concurrent use.
func (t *Tracker) OverflowLabels(tenant, metric string) ([]string, bool) {
	if t.limits.Load().onLimit(tenant, metric) != OnLimitOverflow {
		return nil, false
	}
	tn := t.tenant(tenant)
	tn.mu.RLock()
	m := tn.metrics[metric]
	tn.mu.RUnlock()
	if m == nil {
		return nil, false
	}
	cur := epochOf(t.now(), t.sub)
	m.mu.Lock()
	limit := m.lim.seriesPerMetric.max
	series, _, err := m.series.window(cur, t.n, t.cfg.Precision, false)
	var rows []LabelCardinality
	if err == nil {
		rows, err = t.labelRows(m, cur, series, false)
	}
	m.mu.Unlock()
	if err != nil {
		return nil, false
	}
	rows = slices.DeleteFunc(rows, func(l LabelCardinality) bool { return slices.Contains(neverOverflow, l.Name) })
	slices.SortStableFunc(rows, func(a, b LabelCardinality) int { return cmp.Compare(b.Values, a.Values) })
	var out []string
	for _, l := range rows {
		out = append(out, l.Name)
		if len(out) == maxOverflowLabels || limit == 0 || l.SeriesWithout == 0 || int64(l.SeriesWithout) <= limit {
			break
		}
	}
	if len(out) == 0 {
		return nil, false
	}
	slices.Sort(out)
	return out, true
}
