package usage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/promgov/promgov/internal/fileutil"
)

// accessFileVersion is the version of the statistics snapshot file.
//
// The file is JSON: {"version": 1, "tenants": {"<tenant>": AccessData}}.
const accessFileVersion = 1

type accessFile struct {
	Version int                   `json:"version"`
	Tenants map[string]AccessData `json:"tenants"`
}

// maxAccessFile bounds the snapshot file read at start.
const maxAccessFile = 1 << 30

// LoadAccessFile reads a statistics snapshot written by AccessSnapshotter
// into s. A missing file is no error (a first start).
func LoadAccessFile(path string, s *AccessStats) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open access statistics %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAccessFile+1))
	if err != nil {
		return fmt.Errorf("read access statistics %s: %w", path, err)
	}
	if len(b) > maxAccessFile {
		return fmt.Errorf("access statistics %s: larger than %d bytes", path, maxAccessFile)
	}
	tenants, err := decodeAccessFile(b)
	if err != nil {
		return fmt.Errorf("access statistics %s: %w", path, err)
	}
	for t, snap := range tenants {
		s.MergeTenant(t, snap)
	}
	return nil
}

// decodeAccessFile decodes and validates a snapshot file's content.
func decodeAccessFile(b []byte) (map[string]AccessSnapshot, error) {
	var af accessFile
	if err := json.Unmarshal(b, &af); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if af.Version != accessFileVersion {
		return nil, fmt.Errorf("unsupported version %d (want %d)", af.Version, accessFileVersion)
	}
	out := make(map[string]AccessSnapshot, len(af.Tenants))
	for t, d := range af.Tenants {
		snap, err := d.Snapshot()
		if err != nil {
			return nil, fmt.Errorf("tenant %q: %w", t, err)
		}
		out[t] = snap
	}
	return out, nil
}

// WriteAccessFile writes s's statistics to path atomically.
func WriteAccessFile(path string, s *AccessStats) (int64, error) {
	af := accessFile{Version: accessFileVersion, Tenants: map[string]AccessData{}}
	for t, snap := range s.TenantSnapshots() {
		af.Tenants[t] = snap.Data()
	}
	return fileutil.WriteAtomic(path, func(w io.Writer) error { return json.NewEncoder(w).Encode(af) })
}

// AccessSnapshotter persists an ingester's query statistics: every Interval
// and once more when Run stops, so a restart keeps what the ingester owned.
type AccessSnapshotter struct {
	stats    *AccessStats
	path     string
	interval time.Duration
	logger   *slog.Logger
	errs     prometheus.Counter
	last     prometheus.Gauge
}

// NewAccessSnapshotter loads path into stats (a damaged file is logged,
// counted and ignored: statistics restart empty, which drops nothing since
// fresh usage data is younger than any grace period) and returns the
// actor that keeps it written. logger and reg may be nil.
func NewAccessSnapshotter(stats *AccessStats, path string, interval time.Duration, logger *slog.Logger, reg prometheus.Registerer) *AccessSnapshotter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &AccessSnapshotter{
		stats: stats, path: path, interval: interval, logger: logger,
		errs: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "promgov_usage_access_snapshot_errors_total",
			Help: "Query statistics snapshots that failed to load or write.",
		}),
		last: promauto.With(reg).NewGauge(prometheus.GaugeOpts{
			Name: "promgov_usage_access_snapshot_last_success_timestamp_seconds",
			Help: "Time of the last query statistics snapshot written.",
		}),
	}
	if err := LoadAccessFile(path, stats); err != nil {
		a.errs.Inc()
		logger.Warn("query statistics not restored; starting empty", "err", err)
	}
	return a
}

// Run writes a snapshot every interval and once more when ctx is done.
func (a *AccessSnapshotter) Run(ctx context.Context) error {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			a.write()
			return nil
		case <-t.C:
			a.write()
		}
	}
}

func (a *AccessSnapshotter) write() {
	if _, err := WriteAccessFile(a.path, a.stats); err != nil {
		a.errs.Inc()
		a.logger.Warn("writing the query statistics snapshot failed", "err", err)
		return
	}
	a.last.SetToCurrentTime()
}
