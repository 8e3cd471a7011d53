package forward

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// clientMetrics are the Client's metrics; all label sets are bounded.
type clientMetrics struct {
	protocol        prometheus.Gauge
	fallbacks       *prometheus.CounterVec
	partial         *prometheus.CounterVec
	metadataDropped *prometheus.CounterVec
	requests        *prometheus.HistogramVec
}

func newClientMetrics(reg prometheus.Registerer) clientMetrics {
	f := promauto.With(reg)
	return clientMetrics{
		protocol: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_forward_protocol_version",
			Help: "Remote write protocol version currently used towards the backend (1 or 2).",
		}),
		fallbacks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_forward_protocol_fallbacks_total",
			Help: "Fallbacks from remote write 2.0 to 1.0, by reason (415, no_written_headers).",
		}, []string{"reason"}),
		partial: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_forward_partial_write_total",
			Help: "Items of partly written requests that the backend reported as not written in its X-Prometheus-Remote-Write-*-Written headers (on any answer that carries them); never retried. type is samples, histograms or exemplars.",
		}, []string{"type"}),
		metadataDropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_forward_dropped_metadata_total",
			Help: "Family metadata entries the backend rejected in metadata-only remote write 1.0 requests, by reason.",
		}, []string{"reason"}),
		requests: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promgov_forward_request_duration_seconds",
			Help:    "Duration of single HTTP requests to the backend, by protocol and status class.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}, []string{"protocol", "status"}),
	}
}

// forwarderMetrics are the Forwarder's metrics; all label sets are bounded.
type forwarderMetrics struct {
	sentSamples    prometheus.Counter
	sentHistograms prometheus.Counter
	sentExemplars  prometheus.Counter
	sentMetadata   prometheus.Counter
	dropped        *prometheus.CounterVec
	rejectedSeries *prometheus.CounterVec
	splitRequests  prometheus.Counter
	retries        prometheus.Counter
	rejected       prometheus.Counter
	sendDuration   *prometheus.HistogramVec
	shards         prometheus.Gauge
	desiredShards  prometheus.Gauge
	maxShards      prometheus.Gauge
	reshards       prometheus.Counter
	backoff        prometheus.Gauge
}

func newForwarderMetrics(reg prometheus.Registerer, pending, oldestAge func() float64) forwarderMetrics {
	f := promauto.With(reg)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promgov_forward_pending_samples",
		Help: "Samples, histograms and exemplars held in memory waiting to be sent (read from the WAL and not yet acknowledged by the backend; more may wait in the WAL).",
	}, pending)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promgov_forward_oldest_pending_age_seconds",
		Help: "Time since the oldest pending request was started (its first data was appended); 0 when nothing is pending.",
	}, oldestAge)
	return forwarderMetrics{
		sentSamples: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_sent_samples_total",
			Help: "Float samples written to the backend.",
		}),
		sentHistograms: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_sent_histograms_total",
			Help: "Native histogram samples written to the backend.",
		}),
		sentExemplars: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_sent_exemplars_total",
			Help: "Exemplars written to the backend.",
		}),
		sentMetadata: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_sent_metadata_total",
			Help: "Family metadata entries sent to the backend.",
		}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_forward_dropped_samples_total",
			Help: "Samples, histograms and exemplars dropped, by reason (http_<status>, partial_write, invalid, error; shutdown only without a WAL). A partly written request counts only what the backend's Written headers say it refused.",
		}, []string{"reason"}),
		rejectedSeries: f.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_forward_rejected_series_total",
			Help: "Series dropped because the backend refused them, found by splitting a refused request (reason http_<status>), or dropped with a refused part when forward.max_split_requests ran out (split_budget).",
		}, []string{"reason"}),
		splitRequests: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_split_requests_total",
			Help: "Requests (attempts, retries included) sent with part of a refused request to isolate the series the backend refused.",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_retries_total",
			Help: "Requests retried after a recoverable error.",
		}),
		rejected: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_backpressure_rejected_samples_total",
			Help: "Samples, histograms and exemplars refused by Append because the queue was full.",
		}),
		sendDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promgov_forward_send_duration_seconds",
			Help:    "Duration of one send attempt of a batch, by outcome (success, recoverable, dropped).",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 8),
		}, []string{"outcome"}),
		shards: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_forward_shards",
			Help: "Shards (parallel senders) currently receiving data.",
		}),
		desiredShards: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_forward_shards_desired",
			Help: "Shards the load needs by the scaler's last estimate (fractional, before bounds and hysteresis).",
		}),
		maxShards: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_forward_shards_max",
			Help: "Most shards the scaler may use (--forward.max-shards).",
		}),
		reshards: f.NewCounter(prometheus.CounterOpts{
			Name: "promgov_forward_reshards_total",
			Help: "Changes of the number of shards.",
		}),
		backoff: f.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_forward_backoff_seconds",
			Help: "Current retry delay while the backend fails (one request at a time reaches it); 0 while it answers.",
		}),
	}
}
