package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"
)

// Ruleset is an active compiled ruleset with its identity.
type Ruleset struct {
	// Engine applies the rules.
	Engine *Engine
	// Hash is the hex SHA-256 of the canonical YAML of the rules config.
	Hash string
	// LoadedAt is when the ruleset became active.
	LoadedAt time.Time
}

// Manager holds the active ruleset and swaps it atomically on Reload. Apply
// and Active are safe for concurrent use with Reload and with each other.
type Manager struct {
	logger  *slog.Logger
	metrics *Metrics
	now     func() time.Time

	reloadMu sync.Mutex // serialises Reload and Close
	active   atomic.Pointer[Ruleset]
	plugins  *pluginSet // the active ruleset's plugins; under reloadMu
	kinds    *Registry
	usage    UsagePolicy // for rules of kind unused; under reloadMu

	rulesActive prometheus.Gauge
}

// NewManager returns a Manager whose active ruleset is empty (every series
// is kept) until the first successful Reload. reg may be nil; logger may be
// nil (logs are discarded).
func NewManager(logger *slog.Logger, reg prometheus.Registerer) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metrics := NewMetrics(reg)
	m := &Manager{
		logger:  logger,
		metrics: metrics,
		now:     time.Now,
		kinds:   NewRegistry(),
		plugins: &pluginSet{metrics: metrics.pluginMetrics(), logger: logger.With("component", "plugin")},
		rulesActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promgov_rules_active",
			Help: "Number of rules in the active ruleset.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.rulesActive)
	}
	empty, err := Compile(DefaultConfig(), m.metrics)
	if err != nil {
		panic(fmt.Sprintf("rules: compile empty config: %v", err)) // unreachable: the default config is valid.
	}
	hash, _ := configHash(DefaultConfig())
	m.active.Store(&Ruleset{Engine: empty, Hash: hash, LoadedAt: m.now()})
	return m
}

// Reload compiles cfg and makes it active. On error the previous ruleset
// stays active and the error (wrapping ErrInvalidConfig for configuration
// problems) is returned. Whether the whole configuration reload succeeded
// is the binary's Reloader's to export (internal/proc).
func (m *Manager) Reload(cfg Config) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	l := m.plugins.loader()
	e, err := compile(cfg, m.metrics, m.kinds, l, m.usage)
	if err == nil {
		var hash string
		hash, err = configHash(cfg)
		if err == nil {
			old := m.active.Load()
			now := m.now()
			m.active.Store(&Ruleset{Engine: e, Hash: hash, LoadedAt: now})
			l.commit()
			m.metrics.forgetExcept(old.Engine.rules, e.rules)
			m.rulesActive.Set(float64(e.Len()))
			m.logger.Info("rules config reloaded", "rules", e.Len(), "hash", hash)
			return nil
		}
	}
	l.abort()
	m.logger.Error("rules config reload failed; keeping the previous ruleset", "err", err, "active_hash", m.active.Load().Hash)
	return fmt.Errorf("reload rules: %w", err)
}

// SetUsagePolicy gives rules of kind unused the usage analysis' answers,
// from the next Reload on (call it before the first).
func (m *Manager) SetUsagePolicy(u UsagePolicy) {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.usage = u
}

// Close releases the active ruleset's plugins, waiting until ctx is done
// at most for their batches in flight; series applied afterwards get each
// plugin's on_error verdict. Call it once the write path has stopped.
func (m *Manager) Close(ctx context.Context) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	return m.plugins.close(ctx)
}

// ReloadFile loads the rules section of the configuration file at path and
// calls Reload; a file that cannot be read or parsed is a failed reload too.
func (m *Manager) ReloadFile(path string) error {
	cfg, err := LoadConfigFile(path)
	if err != nil {
		m.logger.Error("rules config reload failed; keeping the previous ruleset", "err", err, "active_hash", m.active.Load().Hash)
		return fmt.Errorf("reload rules: %w", err)
	}
	return m.Reload(cfg)
}

// Active returns the active ruleset.
func (m *Manager) Active() *Ruleset { return m.active.Load() }

// Apply applies the active ruleset to s (see Engine.Apply).
func (m *Manager) Apply(s *Series, tr *Trace) Result { return m.active.Load().Engine.Apply(s, tr) }

// Metrics returns the per-rule metrics, for compiling engines that should
// count into the same series.
func (m *Manager) Metrics() *Metrics { return m.metrics }

// configHash is the hex SHA-256 of cfg's YAML encoding.
func configHash(cfg Config) (string, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("hash rules config: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}
