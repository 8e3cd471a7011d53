package wal

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of promgov_wal_append_failures_total.
const (
	reasonFull     = "full"
	reasonIO       = "io"
	reasonTooLarge = "too_large"
	reasonClosed   = "closed"
)

// How a group's wait for announced appends ended
// (promgov_wal_group_waits_total).
const (
	waitArrived = "arrived" // every announced append queued or was withdrawn
	waitPaced   = "paced"   // group_commit_delay passed since the previous fsync began
	waitDelay   = "delay"   // group_commit_delay passed with announced appends missing
)

// metrics are the WAL's Prometheus metrics.
type metrics struct {
	sizeBytes       prometheus.Gauge
	segments        prometheus.Gauge
	fsyncDuration   prometheus.Histogram
	fsyncFailures   prometheus.Counter
	groupRecords    prometheus.Histogram
	groupWaits      *prometheus.CounterVec
	waitsArrived    prometheus.Counter // groupWaits{ended="arrived"}
	waitsPaced      prometheus.Counter // groupWaits{ended="paced"}
	waitsDelay      prometheus.Counter // groupWaits{ended="delay"}
	appendedRecords prometheus.Counter
	appendedBytes   prometheus.Counter
	appendFailures  *prometheus.CounterVec
	droppedSegments prometheus.Counter
	droppedBytes    prometheus.Counter
	corruptRecords  prometheus.Counter
	corruptBytes    prometheus.Counter
	truncatedBytes  prometheus.Counter
	oldestAge       prometheus.GaugeFunc
}

// newMetrics creates the metrics. oldestAge reports the age of the oldest
// uncommitted record in seconds.
func newMetrics(oldestAge func() float64) *metrics {
	m := &metrics{
		sizeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_wal_size_bytes",
			Help: "Bytes of WAL segments on disk.",
		}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_wal_segments",
			Help: "Number of WAL segments on disk.",
		}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promgov_wal_fsync_duration_seconds",
			Help:    "Duration of WAL segment fsyncs.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9),
		}),
		fsyncFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_fsync_failures_total",
			Help: "WAL segment fsyncs that failed.",
		}),
		groupRecords: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promgov_wal_group_commit_records",
			Help:    "Records made durable by one WAL write and fsync.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		groupWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_wal_group_waits_total",
			Help: "Groups that waited before their fsync, by how the wait ended (arrived: every announced append came; paced: group_commit_delay passed since the previous fsync began; delay: group_commit_delay passed with announced appends missing). A group after a quiet spell with nothing announced does not wait.",
		}, []string{"ended"}),
		appendedRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_appended_records_total",
			Help: "Records appended to the WAL and acknowledged.",
		}),
		appendedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_appended_bytes_total",
			Help: "Bytes (headers included) appended to the WAL and acknowledged.",
		}),
		appendFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promgov_wal_append_failures_total",
			Help: "Appends that failed, by reason (full, io, too_large, closed).",
		}, []string{"reason"}),
		droppedSegments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_overflow_dropped_segments_total",
			Help: "Segments deleted unsent by the drop_oldest overflow policy.",
		}),
		droppedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_overflow_dropped_bytes_total",
			Help: "Bytes deleted unsent by the drop_oldest overflow policy.",
		}),
		corruptRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_corrupt_records_total",
			Help: "Corrupt WAL regions skipped by readers; each lost at least one record.",
		}),
		corruptBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_corrupt_bytes_total",
			Help: "Bytes of corrupt WAL regions skipped by readers.",
		}),
		truncatedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promgov_wal_torn_tail_truncated_bytes_total",
			Help: "Bytes of torn records truncated from the WAL tail on open.",
		}),
		oldestAge: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "promgov_wal_oldest_uncommitted_age_seconds",
			Help: "Approximate age of the oldest WAL record not yet committed by the forwarder.",
		}, oldestAge),
	}
	for _, r := range []string{reasonFull, reasonIO, reasonTooLarge, reasonClosed} {
		m.appendFailures.WithLabelValues(r)
	}
	m.waitsArrived = m.groupWaits.WithLabelValues(waitArrived)
	m.waitsPaced = m.groupWaits.WithLabelValues(waitPaced)
	m.waitsDelay = m.groupWaits.WithLabelValues(waitDelay)
	return m
}

// register registers the metrics with reg unless it is nil.
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		m.sizeBytes, m.segments, m.fsyncDuration, m.fsyncFailures, m.groupRecords, m.groupWaits,
		m.appendedRecords, m.appendedBytes, m.appendFailures, m.droppedSegments,
		m.droppedBytes, m.corruptRecords, m.corruptBytes, m.truncatedBytes, m.oldestAge,
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register wal metrics: %w", err)
		}
	}
	return nil
}
