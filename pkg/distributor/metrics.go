package distributor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	pushDuration  *prometheus.HistogramVec
	samples       prometheus.Counter
	invalidSeries prometheus.Counter
	inflight      prometheus.Gauge
	overloaded    *prometheus.CounterVec
	sortedSeries  *prometheus.CounterVec
	cacheHits     prometheus.Counter
	cacheMisses   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	lookups := f.NewCounterVec(prometheus.CounterOpts{
		Name: "promgov_distributor_series_cache_lookups_total",
		Help: "Series looked up in the series cache, by result (hit: placed without decoding or rules; miss).",
	}, []string{"result"})
	return &metrics{
		cacheHits:   lookups.WithLabelValues("hit"),
		cacheMisses: lookups.WithLabelValues("miss"),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_distributor_requests_total",
			Help: "Remote-write requests by protocol and HTTP status code.",
		}, []string{"protocol", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "promgov_distributor_request_duration_seconds",
			Help:                        "Time from receiving a remote-write request to answering it.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"protocol"}),
		pushDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:                        "promgov_distributor_ingester_push_duration_seconds",
			Help:                        "Duration of gRPC pushes to ingesters by gRPC status code.",
			Buckets:                     prometheus.DefBuckets,
			NativeHistogramBucketFactor: 1.1,
		}, []string{"code"}),
		inflight: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_distributor_inflight_requests",
			Help: "Remote-write requests being received, decoded or pushed.",
		}),
		overloaded: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_distributor_instance_limit_rejections_total",
			Help: "Remote-write requests answered 503 because an instance limit was reached, by limit (max_inflight_push_requests, max_inflight_push_bytes).",
		}, []string{"limit"}),
		samples: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_distributor_received_samples_total",
			Help: "Valid samples, histograms and exemplars received and pushed to ingesters.",
		}),
		invalidSeries: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_distributor_invalid_series_total",
			Help: "Series rejected by validation (answered 400).",
		}),
		sortedSeries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_distributor_unsorted_series_total",
			Help: "Series that arrived with label names out of order and were sorted, by protocol and sender (from the User-Agent).",
		}, []string{"protocol", "sender"}),
	}
}
