package forward

import (
	"flag"
	"fmt"
	"time"
)

// Remote Write protocol versions accepted by BackendConfig.Protocol.
const (
	// ProtocolV1 is Prometheus Remote Write 1.0 (prompb.WriteRequest).
	ProtocolV1 = 1
	// ProtocolV2 is Prometheus Remote Write 2.0 (writev2.Request).
	ProtocolV2 = 2
)

// Config configures the Forwarder (yaml key "forward"). Binaries call
// RegisterFlags("forward.", fs).
type Config struct {
	// MaxSamplesPerSend triggers a send once a pending request holds this
	// many samples + histograms + exemplars. A single series is never split,
	// so a request may exceed it by at most one series.
	MaxSamplesPerSend int `yaml:"max_samples_per_send"`
	// BatchSendDeadline is the longest a pending request waits before it is
	// sent even if it is not full.
	BatchSendDeadline time.Duration `yaml:"batch_send_deadline"`
	// MinShards is the number of shards to start with and the fewest the
	// scaler keeps. Each shard sends sequentially; the series are hashed
	// over the shards, so every series keeps its order.
	MinShards int `yaml:"min_shards"`
	// MaxShards bounds the number of shards (concurrent requests to the
	// backend) the scaler may grow to under backlog or latency.
	MaxShards int `yaml:"max_shards"`
	// ShardUpdateInterval is how often the scaler recomputes the number
	// of shards the load needs.
	ShardUpdateInterval time.Duration `yaml:"shard_update_interval"`
	// Concurrency was the fixed number of shards; it is replaced by
	// MinShards and MaxShards and refused when set.
	Concurrency int `yaml:"concurrency"`
	// MinBackoff is the first retry delay (shortened at random by up to
	// BackoffJitter).
	MinBackoff time.Duration `yaml:"min_backoff"`
	// MaxBackoff caps the retry delay (a longer Retry-After still wins).
	// The delay doubles with every failed retry up to it and is reset only
	// by a written answer.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxPendingSamples bounds the samples + histograms + exemplars held in
	// memory. With a WAL (WALForwarder) it is how far the reader runs ahead
	// of the backend: the reader waits and the data waits on disk. Without
	// a WAL, Forwarder.Append fails with ErrBackpressure beyond it.
	MaxPendingSamples int `yaml:"max_pending_samples"`
	// CheckpointInterval is how often the WALForwarder persists how far the
	// backend has acknowledged (each commit costs two fsyncs). After a
	// crash, at most this much acknowledged data is sent again.
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// FlushDeadline bounds how long Run keeps sending after its context
	// ends; with a WAL the rest stays in it for the next start.
	FlushDeadline time.Duration `yaml:"flush_deadline"`
	// MaxSplitRequests bounds the extra requests one batch may cost when
	// the backend refuses it whole (400, 409, 413, 422, nothing written):
	// the batch is split in halves, and so on, until the refused series
	// are isolated and only they are dropped (see isolate.go). 0 drops a
	// refused batch whole.
	MaxSplitRequests int `yaml:"max_split_requests"`
}

// DefaultMaxSamplesPerSend is vmagent's request size rather than
// Prometheus's 2,000: on the issue-12 workload (1 ingester, 10 rules),
// interleaved, it measured +11 % samples per proxy CPU-second (medians of
// 3: 649k against 585k), and the backend handles five times fewer
// requests. A request of 10,000 samples is about 1-2 MB before snappy.
const DefaultMaxSamplesPerSend = 10000

// DefaultConfig returns a Config with the flag defaults.
func DefaultConfig() Config {
	return Config{
		MaxSamplesPerSend: DefaultMaxSamplesPerSend,
		BatchSendDeadline: 5 * time.Second,
		MinShards:         1,
		MaxShards:         50,
		MinBackoff:        30 * time.Millisecond,
		MaxBackoff:        5 * time.Second,
		MaxPendingSamples: 1_000_000,
		FlushDeadline:     30 * time.Second,
		MaxSplitRequests:  64,

		CheckpointInterval:  time.Second,
		ShardUpdateInterval: 10 * time.Second,
	}
}

// RegisterFlags registers the forwarder flags under prefix (e.g. "forward.")
// with the defaults of DefaultConfig.
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.IntVar(&c.MaxSamplesPerSend, prefix+"max-samples-per-send", d.MaxSamplesPerSend, "Send a request once it holds this many samples (histograms and exemplars count as samples).")
	fs.DurationVar(&c.BatchSendDeadline, prefix+"batch-send-deadline", d.BatchSendDeadline, "Longest time a non-full request waits before it is sent.")
	fs.IntVar(&c.MinShards, prefix+"min-shards", d.MinShards, "Shards (parallel senders) to start with and the fewest kept; each series always uses the same shard.")
	fs.IntVar(&c.MaxShards, prefix+"max-shards", d.MaxShards, "Most shards the forwarder grows to when the backlog or the backend's latency needs them.")
	fs.DurationVar(&c.ShardUpdateInterval, prefix+"shard-update-interval", d.ShardUpdateInterval, "How often the number of shards is adapted to the load.")
	fs.DurationVar(&c.MinBackoff, prefix+"min-backoff", d.MinBackoff, "First retry delay after a recoverable error; it doubles with every failed retry.")
	fs.DurationVar(&c.MaxBackoff, prefix+"max-backoff", d.MaxBackoff, "Maximum retry delay (a longer Retry-After is honoured); reset by a successful send.")
	fs.IntVar(&c.MaxPendingSamples, prefix+"max-pending-samples", d.MaxPendingSamples, "Samples read from the WAL and held in memory ahead of the backend; beyond it reading pauses and the data waits on disk.")
	fs.DurationVar(&c.CheckpointInterval, prefix+"checkpoint-interval", d.CheckpointInterval, "How often to persist how far the backend has acknowledged the WAL; after a crash at most this much is sent again.")
	fs.IntVar(&c.MaxSplitRequests, prefix+"max-split-requests", d.MaxSplitRequests, "When the backend refuses a whole request for some of its series (400, 409, 413, 422), split it and resend halves, using at most this many extra requests, so that only the refused series are dropped; 0 drops the whole request.")
	fs.DurationVar(&c.FlushDeadline, prefix+"flush-deadline", d.FlushDeadline, "On shutdown, how long to keep sending pending data; the rest stays in the WAL and is sent after the next start.")
}

// Validate reports the first invalid field, naming its yaml key and the fix.
func (c *Config) Validate() error {
	switch {
	case c.MaxSamplesPerSend <= 0:
		return fmt.Errorf("forward.max_samples_per_send: %d must be positive; e.g. 10000", c.MaxSamplesPerSend)
	case c.BatchSendDeadline <= 0:
		return fmt.Errorf("forward.batch_send_deadline: %s must be positive; e.g. 5s", c.BatchSendDeadline)
	case c.Concurrency != 0:
		return fmt.Errorf("forward.concurrency: no longer supported, the number of shards adapts to the load; remove it and set forward.max_shards (e.g. %d) to bound it", max(c.Concurrency, 1))
	case c.MinShards <= 0:
		return fmt.Errorf("forward.min_shards: %d must be at least 1; e.g. 1", c.MinShards)
	case c.MaxShards < c.MinShards:
		return fmt.Errorf("forward.max_shards: %d must be >= forward.min_shards (%d); e.g. 50", c.MaxShards, c.MinShards)
	case c.ShardUpdateInterval <= 0:
		return fmt.Errorf("forward.shard_update_interval: %s must be positive; e.g. 10s", c.ShardUpdateInterval)
	case c.MinBackoff <= 0:
		return fmt.Errorf("forward.min_backoff: %s must be positive; e.g. 30ms", c.MinBackoff)
	case c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("forward.max_backoff: %s must be >= forward.min_backoff (%s); raise it, e.g. 5s", c.MaxBackoff, c.MinBackoff)
	case c.MaxPendingSamples < c.MaxSamplesPerSend:
		return fmt.Errorf("forward.max_pending_samples: %d must be >= forward.max_samples_per_send (%d); raise it, e.g. 1000000", c.MaxPendingSamples, c.MaxSamplesPerSend)
	case c.CheckpointInterval <= 0:
		return fmt.Errorf("forward.checkpoint_interval: %s must be positive; e.g. 1s", c.CheckpointInterval)
	case c.MaxSplitRequests < 0:
		return fmt.Errorf("forward.max_split_requests: %d must not be negative; e.g. 64, or 0 to drop a refused request whole", c.MaxSplitRequests)
	case c.FlushDeadline < 0:
		return fmt.Errorf("forward.flush_deadline: %s must not be negative; e.g. 30s", c.FlushDeadline)
	}
	return nil
}
