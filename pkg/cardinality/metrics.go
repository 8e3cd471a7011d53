package cardinality

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// labelValue makes a tenant or metric name a valid label value; client_golang
// panics on invalid UTF-8, and tenant names come from request headers.
func labelValue(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// selfMetrics are the tracker's own metrics. Their label sets are bounded:
// limit kinds × tenants, and at most Config.NearLimitMaxSeries near-limit
// series; never one series per tracked metric.
type selfMetrics struct {
	observed       prometheus.Counter
	refusals       *prometheus.CounterVec
	untracked      *prometheus.CounterVec
	failOpen       prometheus.Counter
	trackedMetrics prometheus.Gauge
	labelPairs     prometheus.Gauge
	tenants        prometheus.Gauge
	admitted       prometheus.Gauge
	nearLimit      *prometheus.GaugeVec
	transfers      prometheus.Gauge
	snapshotErrors prometheus.Counter
	snapshotTime   prometheus.Gauge
	snapshotBytes  prometheus.Gauge
}

func newSelfMetrics(reg prometheus.Registerer) *selfMetrics {
	m := &selfMetrics{
		observed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_cardinality_observed_series_total",
			Help: "Series observations (one per series per batch) seen by the cardinality tracker.",
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_cardinality_refusals_total",
			Help: "Series observations a cardinality limit refused (mode=enforce) or would have refused (mode=shadow).",
		}, []string{"limit", "tenant", "mode"}),
		untracked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_cardinality_untracked_total",
			Help: "Metrics (kind=metric) or label names (kind=label) not tracked because a memory cap was reached.",
		}, []string{"kind"}),
		failOpen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_cardinality_fail_open_admits_total",
			Help: "Series admitted that a limit would have refused, because a state transfer was in progress.",
		}),
		trackedMetrics: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cardinality_tracked_metrics",
			Help: "(tenant, metric) pairs tracked.",
		}),
		labelPairs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cardinality_tracked_label_pairs",
			Help: "(tenant, metric, label name) sketches tracked.",
		}),
		tenants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cardinality_tracked_tenants",
			Help: "Tenants tracked.",
		}),
		admitted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cardinality_admitted_series",
			Help: "Series held in exact admitted-series sets of limited metrics.",
		}),
		nearLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promgov_cardinality_near_limit_ratio",
			Help: "Usage/limit of metrics and tenants above 80% of a limit; only the highest near_limit_max_series are exported.",
		}, []string{"tenant", "metric", "limit"}),
		transfers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cardinality_transfers_in_progress",
			Help: "Ring-change state transfers in progress; while above 0 enforcement fails open if configured.",
		}),
		snapshotErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_cardinality_snapshot_errors_total",
			Help: "Failed cardinality snapshot writes or restores.",
		}),
		snapshotTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cardinality_last_snapshot_timestamp_seconds",
			Help: "Unix time of the last successful cardinality snapshot.",
		}),
		snapshotBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cardinality_last_snapshot_bytes",
			Help: "Size of the last successful cardinality snapshot.",
		}),
	}
	// Both kinds are exported from the start (at 0), so alerts and
	// dashboards see the series before the first cap is hit.
	for _, kind := range []string{"metric", "label"} {
		m.untracked.WithLabelValues(kind)
	}
	if reg != nil {
		reg.MustRegister(m.observed, m.refusals, m.untracked, m.failOpen, m.trackedMetrics, m.labelPairs,
			m.tenants, m.admitted, m.nearLimit, m.transfers, m.snapshotErrors, m.snapshotTime, m.snapshotBytes)
	}
	return m
}
