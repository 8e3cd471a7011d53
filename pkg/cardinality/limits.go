package cardinality

import (
	"flag"
	"fmt"
	"regexp"
)

// Mode says whether a limit refuses series (enforce) or only counts what it
// would have refused (shadow).
type Mode string

// The limit modes. The empty Mode in an override inherits.
const (
	ModeEnforce Mode = "enforce"
	ModeShadow  Mode = "shadow"
)

// The limit names, as they appear in Decision.Limit, refusal messages,
// the limit label of self-metrics and the YAML keys.
const (
	LimitSeriesPerMetric = "max_series_per_metric"
	LimitValuesPerLabel  = "max_values_per_label"
	LimitSeriesPerTenant = "max_series_per_tenant"
)

func (m Mode) valid(allowEmpty bool) bool {
	return m == ModeEnforce || m == ModeShadow || (allowEmpty && m == "")
}

// Limits are the default limits. Zero means unlimited.
type Limits struct {
	// MaxSeriesPerMetric bounds the series of one (tenant, metric).
	MaxSeriesPerMetric int64 `yaml:"max_series_per_metric"`
	// MaxSeriesPerMetricMode is enforce or shadow.
	MaxSeriesPerMetricMode Mode `yaml:"max_series_per_metric_mode"`
	// MaxValuesPerLabel bounds the distinct values of each label name of one
	// (tenant, metric).
	MaxValuesPerLabel int64 `yaml:"max_values_per_label"`
	// MaxValuesPerLabelMode is enforce or shadow.
	MaxValuesPerLabelMode Mode `yaml:"max_values_per_label_mode"`
	// MaxSeriesPerTenant bounds a tenant's series cluster-wide.
	MaxSeriesPerTenant int64 `yaml:"max_series_per_tenant"`
	// MaxSeriesPerTenantMode is enforce or shadow.
	MaxSeriesPerTenantMode Mode `yaml:"max_series_per_tenant_mode"`
	// OnLimit is what an enforced per-metric limit (max_series_per_metric,
	// max_values_per_label) does with a series beyond it: refuse (the
	// default) or overflow (fold it into __overflow__ series, aggregated
	// exactly; docs/aggregation.md).
	OnLimit OnLimit `yaml:"on_limit,omitempty"`
}

// OnLimit is the policy of a per-metric limit.
type OnLimit string

// The per-metric limit policies. The empty OnLimit in an override inherits
// (refuse in the defaults).
const (
	OnLimitRefuse   OnLimit = "refuse"
	OnLimitOverflow OnLimit = "overflow"
)

// LimitOverrides override some of Limits; a nil pointer or empty Mode
// inherits, a pointer to 0 means unlimited.
type LimitOverrides struct {
	// MaxSeriesPerMetric overrides Limits.MaxSeriesPerMetric.
	MaxSeriesPerMetric *int64 `yaml:"max_series_per_metric,omitempty"`
	// MaxSeriesPerMetricMode overrides Limits.MaxSeriesPerMetricMode.
	MaxSeriesPerMetricMode Mode `yaml:"max_series_per_metric_mode,omitempty"`
	// MaxValuesPerLabel overrides Limits.MaxValuesPerLabel.
	MaxValuesPerLabel *int64 `yaml:"max_values_per_label,omitempty"`
	// MaxValuesPerLabelMode overrides Limits.MaxValuesPerLabelMode.
	MaxValuesPerLabelMode Mode `yaml:"max_values_per_label_mode,omitempty"`
	// MaxSeriesPerTenant overrides Limits.MaxSeriesPerTenant (tenant
	// overrides only).
	MaxSeriesPerTenant *int64 `yaml:"max_series_per_tenant,omitempty"`
	// MaxSeriesPerTenantMode overrides Limits.MaxSeriesPerTenantMode.
	MaxSeriesPerTenantMode Mode `yaml:"max_series_per_tenant_mode,omitempty"`
	// OnLimit overrides Limits.OnLimit.
	OnLimit OnLimit `yaml:"on_limit,omitempty"`
}

// MetricOverride overrides per-metric limits for metrics whose name matches
// Metric, optionally only for one tenant. The first matching entry wins.
type MetricOverride struct {
	// Metric is a regular expression, anchored at both ends, on the metric
	// name.
	Metric string `yaml:"metric"`
	// Tenant restricts the override to one tenant; empty matches all.
	Tenant string `yaml:"tenant,omitempty"`
	// LimitOverrides are the overridden limits; max_series_per_tenant is not
	// allowed here.
	LimitOverrides `yaml:",inline"`
}

// LimitsConfig is the `limits:` section. Precedence: defaults, then the
// tenant's override, then the first matching metric override.
type LimitsConfig struct {
	// Defaults apply to every tenant and metric.
	Defaults Limits `yaml:"defaults"`
	// Tenants overrides limits per tenant.
	Tenants map[string]LimitOverrides `yaml:"tenants"`
	// Metrics overrides per-metric limits by metric name regex.
	Metrics []MetricOverride `yaml:"metrics"`
	// Exempt lists metric name regular expressions (anchored) never limited.
	Exempt []string `yaml:"exempt"`
	// ExemptOwnMetrics exempts promgov_.* and up.
	ExemptOwnMetrics bool `yaml:"exempt_own_metrics"`
}

// RegisterFlags registers the default limits on fs with prefix.
func (l *LimitsConfig) RegisterFlags(prefix string, fs *flag.FlagSet) {
	fs.Int64Var(&l.Defaults.MaxSeriesPerMetric, prefix+"max-series-per-metric", 0, "Default maximum series per (tenant, metric); 0 is unlimited.")
	fs.Int64Var(&l.Defaults.MaxValuesPerLabel, prefix+"max-values-per-label", 0, "Default maximum values per label name of one metric; 0 is unlimited.")
	fs.Int64Var(&l.Defaults.MaxSeriesPerTenant, prefix+"max-series-per-tenant", 0, "Default maximum series per tenant, cluster-wide; 0 is unlimited.")
	modeFlag := func(dst *Mode, name string) {
		*dst = ModeEnforce
		fs.Func(prefix+name, "enforce or shadow.", func(s string) error {
			if !Mode(s).valid(false) {
				return fmt.Errorf("want enforce or shadow, got %q", s)
			}
			*dst = Mode(s)
			return nil
		})
	}
	modeFlag(&l.Defaults.MaxSeriesPerMetricMode, "max-series-per-metric-mode")
	modeFlag(&l.Defaults.MaxValuesPerLabelMode, "max-values-per-label-mode")
	modeFlag(&l.Defaults.MaxSeriesPerTenantMode, "max-series-per-tenant-mode")
	fs.BoolVar(&l.ExemptOwnMetrics, prefix+"exempt-own-metrics", true, "Never limit promgov_.* and up.")
}

// Validate reports the first invalid field, naming it and the fix.
func (l *LimitsConfig) Validate() error {
	if err := l.Defaults.validate("defaults"); err != nil {
		return err
	}
	for name, o := range l.Tenants {
		if err := o.validate(fmt.Sprintf("tenants[%q]", name)); err != nil {
			return err
		}
	}
	for i, o := range l.Metrics {
		field := fmt.Sprintf("metrics[%d]", i)
		if o.Metric == "" {
			return fmt.Errorf("%s.metric: must be a regular expression on the metric name, e.g. http_requests_.*", field)
		}
		if _, err := regexp.Compile("^(?:" + o.Metric + ")$"); err != nil {
			return fmt.Errorf("%s.metric: %q is not a valid regular expression: %w", field, o.Metric, err)
		}
		if o.MaxSeriesPerTenant != nil || o.MaxSeriesPerTenantMode != "" {
			return fmt.Errorf("%s.max_series_per_tenant: not allowed in a metric override; set it under tenants", field)
		}
		if err := o.validate(field); err != nil {
			return err
		}
	}
	for i, e := range l.Exempt {
		if _, err := regexp.Compile("^(?:" + e + ")$"); err != nil {
			return fmt.Errorf("exempt[%d]: %q is not a valid regular expression: %w", i, e, err)
		}
	}
	return nil
}

func validOnLimit(field string, o OnLimit) error {
	if o != "" && o != OnLimitRefuse && o != OnLimitOverflow {
		return fmt.Errorf("%s.on_limit: %q is not a policy; use refuse or overflow", field, o)
	}
	return nil
}

func (l Limits) validate(field string) error {
	if err := validOnLimit(field, l.OnLimit); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		v    int64
		m    Mode
	}{
		{LimitSeriesPerMetric, l.MaxSeriesPerMetric, l.MaxSeriesPerMetricMode},
		{LimitValuesPerLabel, l.MaxValuesPerLabel, l.MaxValuesPerLabelMode},
		{LimitSeriesPerTenant, l.MaxSeriesPerTenant, l.MaxSeriesPerTenantMode},
	} {
		if c.v < 0 {
			return fmt.Errorf("%s.%s: %d is negative; use 0 for unlimited or a positive maximum", field, c.name, c.v)
		}
		if !c.m.valid(true) {
			return fmt.Errorf("%s.%s_mode: %q is not a mode; use enforce or shadow", field, c.name, c.m)
		}
	}
	return nil
}

func (o LimitOverrides) validate(field string) error {
	if err := validOnLimit(field, o.OnLimit); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		v    *int64
		m    Mode
	}{
		{LimitSeriesPerMetric, o.MaxSeriesPerMetric, o.MaxSeriesPerMetricMode},
		{LimitValuesPerLabel, o.MaxValuesPerLabel, o.MaxValuesPerLabelMode},
		{LimitSeriesPerTenant, o.MaxSeriesPerTenant, o.MaxSeriesPerTenantMode},
	} {
		if c.v != nil && *c.v < 0 {
			return fmt.Errorf("%s.%s: %d is negative; use 0 for unlimited or a positive maximum", field, c.name, *c.v)
		}
		if !c.m.valid(true) {
			return fmt.Errorf("%s.%s_mode: %q is not a mode; use enforce or shadow", field, c.name, c.m)
		}
	}
	return nil
}

// limit is one resolved limit; max 0 means unlimited.
type limit struct {
	max    int64
	shadow bool
}

// effectiveLimits are the limits resolved for one (tenant, metric).
type effectiveLimits struct {
	exempt          bool
	seriesPerMetric limit
	valuesPerLabel  limit
	seriesPerTenant limit
}

// limited reports whether any limit needs the exact admitted-series set.
func (e effectiveLimits) limited() bool {
	return !e.exempt && (e.seriesPerMetric.max > 0 || e.valuesPerLabel.max > 0 || e.seriesPerTenant.max > 0)
}

type compiledOverride struct {
	re     *regexp.Regexp
	tenant string
	o      LimitOverrides
}

// compiledLimits is an immutable, validated LimitsConfig.
type compiledLimits struct {
	defaults Limits
	tenants  map[string]LimitOverrides
	metrics  []compiledOverride
	exempt   []*regexp.Regexp
}

func compileLimits(l LimitsConfig) (*compiledLimits, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	c := &compiledLimits{defaults: l.Defaults, tenants: make(map[string]LimitOverrides, len(l.Tenants))}
	for k, v := range l.Tenants {
		c.tenants[k] = v
	}
	for _, o := range l.Metrics {
		c.metrics = append(c.metrics, compiledOverride{re: regexp.MustCompile("^(?:" + o.Metric + ")$"), tenant: o.Tenant, o: o.LimitOverrides})
	}
	ex := l.Exempt
	if l.ExemptOwnMetrics {
		ex = append([]string{"promgov_.*", "up"}, ex...)
	}
	for _, e := range ex {
		c.exempt = append(c.exempt, regexp.MustCompile("^(?:"+e+")$"))
	}
	return c, nil
}

func applyOverride(v *int64, m *Mode, ov *int64, om Mode) {
	if ov != nil {
		*v = *ov
	}
	if om != "" {
		*m = om
	}
}

// resolve returns the limits of one (tenant, metric). It runs once per
// tracked metric and configuration generation, not per sample.
func (c *compiledLimits) resolve(tenant, metric string) effectiveLimits {
	l := c.defaults
	if o, ok := c.tenants[tenant]; ok {
		applyOverride(&l.MaxSeriesPerMetric, &l.MaxSeriesPerMetricMode, o.MaxSeriesPerMetric, o.MaxSeriesPerMetricMode)
		applyOverride(&l.MaxValuesPerLabel, &l.MaxValuesPerLabelMode, o.MaxValuesPerLabel, o.MaxValuesPerLabelMode)
		applyOverride(&l.MaxSeriesPerTenant, &l.MaxSeriesPerTenantMode, o.MaxSeriesPerTenant, o.MaxSeriesPerTenantMode)
	}
	for _, o := range c.metrics {
		if (o.tenant == "" || o.tenant == tenant) && o.re.MatchString(metric) {
			applyOverride(&l.MaxSeriesPerMetric, &l.MaxSeriesPerMetricMode, o.o.MaxSeriesPerMetric, o.o.MaxSeriesPerMetricMode)
			applyOverride(&l.MaxValuesPerLabel, &l.MaxValuesPerLabelMode, o.o.MaxValuesPerLabel, o.o.MaxValuesPerLabelMode)
			break
		}
	}
	e := effectiveLimits{
		seriesPerMetric: limit{max: l.MaxSeriesPerMetric, shadow: l.MaxSeriesPerMetricMode == ModeShadow},
		valuesPerLabel:  limit{max: l.MaxValuesPerLabel, shadow: l.MaxValuesPerLabelMode == ModeShadow},
		seriesPerTenant: limit{max: l.MaxSeriesPerTenant, shadow: l.MaxSeriesPerTenantMode == ModeShadow},
	}
	for _, re := range c.exempt {
		if re.MatchString(metric) {
			e.exempt = true
			break
		}
	}
	return e
}

// tenantLimit returns the tenant-wide series limit of tenant.
func (c *compiledLimits) tenantLimit(tenant string) limit {
	l := c.defaults
	if o, ok := c.tenants[tenant]; ok {
		applyOverride(&l.MaxSeriesPerTenant, &l.MaxSeriesPerTenantMode, o.MaxSeriesPerTenant, o.MaxSeriesPerTenantMode)
	}
	return limit{max: l.MaxSeriesPerTenant, shadow: l.MaxSeriesPerTenantMode == ModeShadow}
}
