package cardinality

// ResolvedLimits are the limits a LimitsConfig sets for one (tenant,
// metric); 0 is unlimited.
type ResolvedLimits struct {
	Exempt             bool
	MaxSeriesPerMetric int64
	SeriesPerMetricOn  Mode
	MaxSeriesPerTenant int64
	SeriesPerTenantOn  Mode
	MaxValuesPerLabel  int64
	ValuesPerLabelOn   Mode
}

// LimitResolver answers the limits of a configuration that is not (yet)
// in force, e.g. a candidate's in the impact preview. Safe for concurrent
// use.
type LimitResolver struct{ c *compiledLimits }

// NewLimitResolver validates l and returns its resolver.
func NewLimitResolver(l LimitsConfig) (*LimitResolver, error) {
	c, err := compileLimits(l)
	if err != nil {
		return nil, err
	}
	return &LimitResolver{c: c}, nil
}

// Resolve returns the limits of (tenant, metric), as the tracker would
// enforce them.
func (r *LimitResolver) Resolve(tenant, metric string) ResolvedLimits {
	e := r.c.resolve(tenant, metric)
	mode := func(l limit) Mode {
		if l.shadow {
			return ModeShadow
		}
		return ModeEnforce
	}
	return ResolvedLimits{
		Exempt:             e.exempt,
		MaxSeriesPerMetric: e.seriesPerMetric.max, SeriesPerMetricOn: mode(e.seriesPerMetric),
		MaxSeriesPerTenant: e.seriesPerTenant.max, SeriesPerTenantOn: mode(e.seriesPerTenant),
		MaxValuesPerLabel: e.valuesPerLabel.max, ValuesPerLabelOn: mode(e.valuesPerLabel),
	}
}
