package wal

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Sync policies accepted in Config.SyncPolicy.
const (
	// SyncAlways fsyncs every record on its own before Append returns.
	SyncAlways = "always"
	// SyncGroup batches concurrent appends into one write and one fsync.
	SyncGroup = "group"
	// SyncInterval acknowledges after the write and fsyncs periodically.
	SyncInterval = "interval"
)

// Overflow policies accepted in Config.OverflowPolicy.
const (
	// OverflowBackpressure refuses appends with ErrFull while a bound is hit.
	OverflowBackpressure = "backpressure"
	// OverflowDropOldest deletes the oldest sealed segments to make room.
	OverflowDropOldest = "drop_oldest"
)

// Default values used by RegisterFlags.
const (
	DefaultDir          = "data/wal"
	DefaultSegmentSize  = 64 << 20
	DefaultSyncInterval = time.Second
	// DefaultGroupCommitDelay bounds the group policy's wait
	// (GroupCommitDelay 0): for the appends announced with WAL.Expect, and
	// for the delay since the previous group's fsync began.
	DefaultGroupCommitDelay = 2 * time.Millisecond
	DefaultMaxSizeBytes     = 4 << 30
	DefaultMaxAge           = 2 * time.Hour
	DefaultSyncPolicy       = SyncGroup
	DefaultOverflowPolicy   = OverflowBackpressure
)

// minSegmentSize is the smallest accepted Config.SegmentSize.
const minSegmentSize = 4 << 10

// Config configures a WAL. Zero bounds (MaxSizeBytes, MaxAge) disable the
// bound.
type Config struct {
	// Dir is the directory holding segments and the checkpoint.
	Dir string `yaml:"dir"`
	// SegmentSize is the size in bytes at which a new segment is started.
	// It also bounds the size of one record.
	SegmentSize int64 `yaml:"segment_size_bytes"`
	// SyncPolicy is "always", "group" or "interval"; see the package doc
	// for what each one risks.
	SyncPolicy string `yaml:"sync_policy"`
	// SyncInterval is the fsync period of the "interval" policy.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// GroupCommitDelay is how long, at most, the "group" policy holds a
	// group so more records share its fsync (an fsync costs about as much
	// CPU as logging a few thousand samples): until the appends announced
	// with WAL.Expect have joined, and until GroupCommitDelay has passed
	// since the previous group's fsync began (fsyncs start at most once
	// per delay). After a quiet spell, with nothing announced, a group
	// does not wait. 0 means DefaultGroupCommitDelay; a negative value
	// never waits.
	GroupCommitDelay time.Duration `yaml:"group_commit_delay"`
	// MaxSizeBytes bounds the bytes on disk; 0 means unbounded.
	MaxSizeBytes int64 `yaml:"max_size_bytes"`
	// MaxAge bounds the age of the oldest uncommitted record; 0 means
	// unbounded.
	MaxAge time.Duration `yaml:"max_age"`
	// OverflowPolicy is "backpressure" or "drop_oldest".
	OverflowPolicy string `yaml:"overflow_policy"`
	// Preallocate writes zeros ahead of the data in the head segment, a
	// few megabytes at a time, and trims them when the segment is sealed.
	// An fsync then finds the blocks and the file size already on disk and
	// flushes only the data, without a journal commit: on ext4 and XFS
	// that is cheaper and quicker (docs/wal.md). Turn it off on
	// copy-on-write file systems (btrfs, ZFS), where writing zeros
	// allocates nothing ahead.
	Preallocate bool `yaml:"preallocate"`
}

// DefaultConfig returns the configuration RegisterFlags registers.
func DefaultConfig() Config {
	return Config{
		Dir:            DefaultDir,
		SegmentSize:    DefaultSegmentSize,
		SyncPolicy:     DefaultSyncPolicy,
		SyncInterval:   DefaultSyncInterval,
		MaxSizeBytes:   DefaultMaxSizeBytes,
		MaxAge:         DefaultMaxAge,
		OverflowPolicy: DefaultOverflowPolicy,
		Preallocate:    true,
	}
}

// RegisterFlags registers the configuration flags with their defaults under
// prefix (for example "wal." gives --wal.dir).
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	d := DefaultConfig()
	fs.StringVar(&c.Dir, prefix+"dir", d.Dir, "Directory of the write-ahead log segments and checkpoint.")
	fs.Int64Var(&c.SegmentSize, prefix+"segment-size-bytes", d.SegmentSize, "Size in bytes at which a new WAL segment is started; also the largest record.")
	fs.StringVar(&c.SyncPolicy, prefix+"sync-policy", d.SyncPolicy, `WAL fsync policy: "always" (fsync per record), "group" (one fsync per group of concurrent appends) or "interval" (periodic fsync; power loss may lose up to sync-interval of acknowledged data).`)
	fs.DurationVar(&c.SyncInterval, prefix+"sync-interval", d.SyncInterval, `Fsync period of the "interval" sync policy.`)
	fs.DurationVar(&c.GroupCommitDelay, prefix+"group-commit-delay", d.GroupCommitDelay, `How long, at most, the "group" sync policy holds a group so more pushes share its fsync (CPU per fsync against latency): it waits for the pushes already under way in the ingester, and fsyncs start at most once per this delay; 0 means the default (2ms), negative never waits.`)
	fs.Int64Var(&c.MaxSizeBytes, prefix+"max-size-bytes", d.MaxSizeBytes, "Maximum bytes of WAL on disk; 0 means unbounded.")
	fs.DurationVar(&c.MaxAge, prefix+"max-age", d.MaxAge, "Maximum age of the oldest record not yet acknowledged by the backend; 0 means unbounded.")
	fs.StringVar(&c.OverflowPolicy, prefix+"overflow-policy", d.OverflowPolicy, `What to do when max-size-bytes or max-age is reached: "backpressure" (refuse new appends) or "drop_oldest" (delete the oldest segments).`)
	fs.BoolVar(&c.Preallocate, prefix+"preallocate", d.Preallocate, "Write zeros a few megabytes ahead of the data in the active WAL segment, so an fsync flushes only data (cheaper on ext4 and XFS); turn off on copy-on-write file systems (btrfs, ZFS).")
}

// Validate reports every invalid field, naming its yaml key and the fix.
func (c *Config) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("dir: must not be empty; set it to the WAL directory"))
	}
	if c.SegmentSize < minSegmentSize {
		errs = append(errs, fmt.Errorf("segment_size_bytes: %d is too small; set it to at least %d", c.SegmentSize, minSegmentSize))
	}
	switch c.SyncPolicy {
	case SyncAlways, SyncGroup:
	case SyncInterval:
		if c.SyncInterval <= 0 {
			errs = append(errs, fmt.Errorf("sync_interval: %s must be positive with sync_policy %q; set it to e.g. 1s", c.SyncInterval, SyncInterval))
		}
	default:
		errs = append(errs, fmt.Errorf("sync_policy: %q is unknown; use %q, %q or %q", c.SyncPolicy, SyncAlways, SyncGroup, SyncInterval))
	}
	if c.MaxSizeBytes < 0 {
		errs = append(errs, fmt.Errorf("max_size_bytes: %d is negative; set it to 0 (unbounded) or a positive size", c.MaxSizeBytes))
	} else if c.MaxSizeBytes > 0 && c.MaxSizeBytes < 2*c.SegmentSize {
		errs = append(errs, fmt.Errorf("max_size_bytes: %d is less than two segments; set it to at least 2*segment_size_bytes (%d) or lower segment_size_bytes", c.MaxSizeBytes, 2*c.SegmentSize))
	}
	if c.GroupCommitDelay > time.Second {
		errs = append(errs, fmt.Errorf("group_commit_delay: %s is over 1s; set it to a few milliseconds, 0 for the default or a negative value for none", c.GroupCommitDelay))
	}
	if c.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("max_age: %s is negative; set it to 0 (unbounded) or a positive duration", c.MaxAge))
	}
	switch c.OverflowPolicy {
	case OverflowBackpressure, OverflowDropOldest:
	default:
		errs = append(errs, fmt.Errorf("overflow_policy: %q is unknown; use %q or %q", c.OverflowPolicy, OverflowBackpressure, OverflowDropOldest))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid wal config: %w", errors.Join(errs...))
	}
	return nil
}
