package cardinality

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
)

// Series is one series of a batch as the ingester hot path sees it.
type Series struct {
	// Tenant is the series' tenant.
	Tenant string
	// Metric is the metric name (the __name__ label).
	Metric string
	// Hash is a 64-bit hash of the full label set, such as labels.Hash. When
	// 0, Observe computes Labels.Hash.
	Hash uint64
	// Labels is the full label set; label values feed the per-label sketches
	// and the max_values_per_label limit. It is not retained.
	Labels labels.Labels
	// LabelsFrom, when Labels is empty, builds the label set on demand:
	// Observe asks for it only for a series it has not yet counted in the
	// current sub-window, so a series sent again costs no label set.
	LabelsFrom LabelSource
	// Samples counts the samples and histograms of the series in the batch.
	Samples int
	// Bytes is the series' share of the batch's encoded size.
	Bytes int

	// tn and m are what Prefetch found for Tenant and Metric; Observe uses
	// and clears them. counted: Prefetch counted the series in
	// promgov_cardinality_observed_series_total (once for its batch).
	tn      *tenantState
	m       *metricState
	counted bool
}

// LabelSource builds one series' label set; see Series.LabelsFrom. Observe
// calls it from the goroutine that called Observe.
type LabelSource interface {
	Labels() labels.Labels
}

// Decision is Observe's verdict on one series.
type Decision struct {
	// Admit is false when an enforced limit refused the series.
	Admit bool
	// Limit names the limit that refused (or in shadow mode would have
	// refused) the series, e.g. "max_series_per_metric"; empty otherwise.
	Limit string
	// Shadow is true when Limit would have refused the series but is in
	// shadow mode, or enforcement failed open during a state transfer.
	Shadow bool
	// Message explains the refusal, naming the limit, metric and tenant; it
	// is meant for the sender (HTTP 400 body).
	Message string
}

// Tracker tracks cardinality on one ingester and decides, per series, whether
// limits admit it. Every method is safe for concurrent use. It starts no
// goroutine: Run drives rotation, refreshes and periodic snapshots, Close
// writes the final snapshot.
type Tracker struct {
	cfg    Config
	sub    time.Duration
	n      int
	logger *slog.Logger
	m      *selfMetrics
	now    func() time.Time

	limits atomic.Pointer[compiledLimits]
	gen    atomic.Uint64

	mu      sync.RWMutex
	tenants map[string]*tenantState
	// labelledTenants counts the tenants with their own self-metric series
	// (at most cfg.MetricsMaxTenants); guarded by mu.
	labelledTenants int

	nMetrics    atomic.Int64
	nLabelPairs atomic.Int64
	nAdmitted   atomic.Int64
	transfers   atomic.Int64
	lastSweep   atomic.Int64
	snapMu      sync.Mutex
}

// Options are New's optional collaborators.
type Options struct {
	// Registerer registers self-metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger logs; nil discards.
	Logger *slog.Logger
	// Now is the clock used by reads and Run; nil is time.Now.
	Now func() time.Time
}

// New validates cfg, restores the snapshot at cfg.SnapshotPath if one exists
// (a damaged snapshot is logged and ignored) and returns a Tracker.
func New(cfg Config, opts Options) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cardinality config: %w", err)
	}
	lim, err := compileLimits(cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("cardinality config: limits: %w", err)
	}
	t := &Tracker{
		cfg:     cfg,
		sub:     cfg.subWindow(),
		n:       cfg.SubWindows,
		logger:  opts.Logger,
		m:       newSelfMetrics(opts.Registerer),
		now:     opts.Now,
		tenants: map[string]*tenantState{},
	}
	if t.logger == nil {
		t.logger = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.limits.Store(lim)
	t.gen.Store(1)
	if cfg.SnapshotPath != "" {
		if err := t.restoreFile(cfg.SnapshotPath); err != nil {
			t.m.snapshotErrors.Inc()
			t.logger.Warn("cardinality snapshot not restored; starting empty", "path", cfg.SnapshotPath, "err", err)
		}
	}
	return t, nil
}

// SetLimits replaces the limits, e.g. on a configuration reload. Tracked
// metrics pick them up on their next observation.
func (t *Tracker) SetLimits(l LimitsConfig) error {
	c, err := compileLimits(l)
	if err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	t.limits.Store(c)
	t.gen.Add(1)
	return nil
}

// tenantState is one tenant's metrics and tenant-wide sketches.
type tenantState struct {
	name string

	mu      sync.RWMutex // guards metrics and dead
	metrics map[string]*metricState
	dead    bool

	skMu     sync.Mutex // guards the rings and peers
	demand   ring       // every series attempted
	admitted ring       // every series admitted: what the tenant limit counts
	refused  ring       // every series refused or shadow-refused
	peers    map[string]peerSketch

	cluster  atomic.Int64 // cluster-wide admitted estimate at the last refresh
	newSince atomic.Int64 // series newly admitted here since that refresh

	refusals [3][2]prometheus.Counter // [limit kind][shadow]
}

// metricState is one (tenant, metric).
type metricState struct {
	mu sync.Mutex
	// probeBase and probeMask locate the slot array Observe probes first
	// (admitted's, or seen's without it) for Prefetch, which reads them
	// without mu. They are published by publishProbe whenever the set's
	// slots change, one after the other, so a reader may see a stale or
	// mismatched pair: its prefetch is wasted, never wrong (a prefetch
	// never faults, and the address is never dereferenced).
	probeBase atomic.Uintptr
	probeMask atomic.Uint64
	name      string
	dead      bool

	gen   uint64
	lim   effectiveLimits
	first int64 // unix nanoseconds of the first observation

	series   ring
	refused  ring
	rates    rates
	labels   map[string]*labelState
	admitted *hashSet // nil unless a series limit applies
	// seen holds the series observed in sub-window seenEpoch, when there is
	// no admitted set to tell: a series seen again in the same sub-window
	// changes no sketch, so it skips them. Cleared when the epoch moves.
	seen      hashSet
	seenEpoch uint32
	msgs      *[3][3]string // refusal texts, [limit kind][enforce, shadow, fail open]; lazily
	obs       uint64        // observations that fed the label-drop sketches; see labelDrop.stamp
}

// labelState is one (tenant, metric, label name).
type labelState struct {
	values   ring
	admitted *hashSet   // value hashes; nil unless max_values_per_label applies
	drop     *labelDrop // nil unless Config.LabelDropEstimates
}

// labelDrop is a label's label-drop estimate state, apart so that a tracker
// without estimates pays one pointer per label for it. Its owner's mutex
// guards it.
//
// without counts the distinct label sets of the metric's series with this
// label removed (see withoutHash), at Config.Precision. nameHash is the
// label name's nameHash, computed once. complete is the oldest epoch from
// which without holds every series the metric was observed with
// (math.MinInt64: all of them): a label created after the metric's first
// series, or restored from a snapshot that had no without sketches, misses
// the series observed before, so its estimate is unknown until their
// sub-windows leave the window. Merging two states takes the larger
// complete epoch. stamp is the metricState.obs of the last observation that
// carried the label.
type labelDrop struct {
	without  ring
	nameHash uint64
	complete int64
	stamp    uint64
}

const (
	kindSeriesPerMetric = iota
	kindValuesPerLabel
	kindSeriesPerTenant
)

var limitNames = [3]string{LimitSeriesPerMetric, LimitValuesPerLabel, LimitSeriesPerTenant}

func (t *Tracker) tenant(name string) *tenantState {
	t.mu.RLock()
	tn := t.tenants[name]
	t.mu.RUnlock()
	if tn != nil {
		return tn
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if tn = t.tenants[name]; tn != nil {
		return tn
	}
	tn = t.newTenant(strings.Clone(name))
	t.tenants[tn.name] = tn
	t.m.tenants.Set(float64(len(t.tenants)))
	return tn
}

// OtherTenant is the tenant label value under which the self-metrics of
// tenants past Config.MetricsMaxTenants are counted.
const OtherTenant = "__other__"

// newTenant builds a tenant's state. Called with t.mu held.
func (t *Tracker) newTenant(name string) *tenantState {
	tn := &tenantState{name: name, metrics: map[string]*metricState{}}
	lv := OtherTenant
	if t.labelledTenants < t.cfg.MetricsMaxTenants {
		t.labelledTenants++
		lv = labelValue(name)
	}
	for k := range limitNames {
		tn.refusals[k][0] = t.m.refusals.WithLabelValues(limitNames[k], lv, string(ModeEnforce))
		tn.refusals[k][1] = t.m.refusals.WithLabelValues(limitNames[k], lv, string(ModeShadow))
	}
	return tn
}

// metric returns the tracked state of name in tn, creating it; nil when the
// tenant was removed concurrently or the metric cap is reached (untracked
// is true then).
func (t *Tracker) metric(tn *tenantState, name string, now time.Time) (m *metricState, untracked bool) {
	tn.mu.RLock()
	m, dead := tn.metrics[name], tn.dead
	tn.mu.RUnlock()
	if m != nil || dead {
		return m, false
	}
	if t.nMetrics.Load() >= int64(t.cfg.MaxTrackedMetrics) {
		t.m.untracked.WithLabelValues("metric").Inc()
		return nil, true
	}
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.dead {
		return nil, false
	}
	if m = tn.metrics[name]; m != nil {
		return m, false
	}
	m = &metricState{name: strings.Clone(name), first: now.UnixNano()}
	tn.metrics[m.name] = m
	t.m.trackedMetrics.Set(float64(t.nMetrics.Add(1)))
	return m, false
}

// refreshLimits re-resolves m's limits after a SetLimits. Called with m.mu.
func (t *Tracker) refreshLimits(tn *tenantState, m *metricState) {
	g := t.gen.Load()
	if m.gen == g {
		return
	}
	m.gen = g
	m.lim = t.limits.Load().resolve(tn.name, m.name)
	m.msgs = nil
	needSet := !m.lim.exempt && (m.lim.seriesPerMetric.max > 0 || m.lim.seriesPerTenant.max > 0)
	switch {
	case needSet && m.admitted == nil:
		m.admitted = &hashSet{}
	case !needSet && m.admitted != nil:
		t.nAdmitted.Add(-int64(m.admitted.len()))
		m.admitted = nil
	}
	needValues := !m.lim.exempt && m.lim.valuesPerLabel.max > 0
	for _, ls := range m.labels {
		if needValues && ls.admitted == nil {
			ls.admitted = &hashSet{}
		} else if !needValues {
			ls.admitted = nil
		}
	}
}
