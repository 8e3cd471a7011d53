package usage

import (
	"fmt"
)

// sourceEntry is one configured source and its status. The status is a
// pointer so that a reload can keep it for a source that stays configured.
type sourceEntry struct {
	src Source
	st  *SourceStatus
}

// sourceKey identifies a source across reloads.
func sourceKey(s Source) string { return s.Kind() + "\x00" + s.Name() }

// entries pairs srcs with statuses, reusing the entry of a source that was
// already configured (prev), so its health history — and the drop policy's
// grace period — survive a reload that does not touch it. A query log keeps
// its Source too, so it goes on reading where it stopped.
func entries(srcs []Source, prev []*sourceEntry) []*sourceEntry {
	old := make(map[string]*sourceEntry, len(prev))
	for _, e := range prev {
		old[sourceKey(e.src)] = e
	}
	out := make([]*sourceEntry, 0, len(srcs))
	for _, s := range srcs {
		if e, ok := old[sourceKey(s)]; ok {
			if _, tailing := e.src.(*QueryLog); tailing {
				s = e.src
			}
			out = append(out, &sourceEntry{src: s, st: e.st})
			continue
		}
		out = append(out, &sourceEntry{src: s, st: &SourceStatus{Name: s.Name(), Kind: s.Kind()}})
	}
	return out
}

// ApplyConfig replaces the configuration on a reload (SIGHUP, POST
// /-/reload): the sources (those still configured keep their status and
// health history; new ones start unhealthy until their first load, which
// blocks dropping, fail safe), the load timeout and the drop policy's mode,
// grace period and allow/deny lists. reload_interval and the query
// section's tap and bounds take effect at the next restart. sources is
// SourcesFromConfig(cfg, …). An invalid cfg changes nothing.
func (m *Manager) ApplyConfig(cfg Config, sources []Source) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("usage config: %w", err)
	}
	if err := m.policy.SetConfig(cfg.DropUnused); err != nil {
		return fmt.Errorf("usage config: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = entries(sources, m.sources)
	m.cfg = cfg
	m.deps.Logger.Info("usage config reloaded", "sources", len(m.sources), "drop_unused_mode", cfg.DropUnused.Mode)
	return nil
}
