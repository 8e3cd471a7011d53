package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Result label values.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

type syncMetrics struct {
	pulls *prometheus.CounterVec
	peers prometheus.Gauge
}

func newSyncMetrics(reg prometheus.Registerer) *syncMetrics {
	f := promauto.With(reg)
	return &syncMetrics{
		pulls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_cluster_sketch_pulls_total",
			Help: "Tenant sketch pulls from peer ingesters, by result.",
		}, []string{"result"}),
		peers: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cluster_sketch_peers",
			Help: "Peer ingesters whose tenant sketches were pulled in the last round.",
		}),
	}
}

type handoffMetrics struct {
	pulls   *prometheus.CounterVec
	metrics *prometheus.CounterVec
	last    prometheus.Gauge
}

func newHandoffMetrics(reg prometheus.Registerer) *handoffMetrics {
	f := promauto.With(reg)
	return &handoffMetrics{
		pulls: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_cluster_handoff_pulls_total",
			Help: "Ring-change state pulls from one peer ingester, by result.",
		}, []string{"result"}),
		metrics: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_cluster_handoff_metrics_total",
			Help: "Metrics whose cardinality state was pulled from a previous owner, by result.",
		}, []string{"result"}),
		last: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_cluster_handoff_last_timestamp_seconds",
			Help: "When the last ring-change state pull finished.",
		}),
	}
}

type fanOutMetrics struct {
	calls *prometheus.CounterVec
}

func newFanOutMetrics(reg prometheus.Registerer) *fanOutMetrics {
	return &fanOutMetrics{calls: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "promgov_cluster_query_calls_total",
		Help: "Analytics API calls to ingesters from the distributor's fan-out, by result.",
	}, []string{"result"})}
}
