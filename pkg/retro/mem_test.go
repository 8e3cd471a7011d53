package retro

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// memBackend is an in-memory Backend for the engine's tests: it injects the
// faults a real backend cannot produce on demand (a write that fails after
// n calls, a copy that never becomes readable, a failing delete).
type memBackend struct {
	mu     sync.Mutex
	series map[string]*memSeries

	failWriteAfter int // Write calls before every later one fails; -1 never
	writes         int
	lostWrites     bool // writes answer success and store nothing
	failDelete     error
	adminOff       bool
	writeErr       error
	deleteCalls    int
	maxRead        int // most samples one Read answered
	failReadAfter  int // Read calls before every later one fails; 0 never
	reads          int
}

type memSeries struct {
	ls      labels.Labels
	samples map[int64]float64
}

func newMem() *memBackend {
	return &memBackend{series: map[string]*memSeries{}, failWriteAfter: -1}
}

func (m *memBackend) add(ls labels.Labels, samples ...Sample) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.series[ls.String()]
	if s == nil {
		s = &memSeries{ls: ls, samples: map[int64]float64{}}
		m.series[ls.String()] = s
	}
	for _, smp := range samples {
		s.samples[smp.T] = smp.V
	}
}

// dump is every series with samples, rendered labels → sorted samples.
func (m *memBackend) dump() map[string][]Sample {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]Sample{}
	for k, s := range m.series {
		if len(s.samples) == 0 {
			continue
		}
		out[k] = sorted(s.samples, 0, 1<<62)
	}
	return out
}

func sorted(in map[int64]float64, start, end int64) []Sample {
	var out []Sample
	for t, v := range in {
		if t >= start && t <= end {
			out = append(out, Sample{T: t, V: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].T < out[j].T })
	return out
}

func (m *memBackend) Kind() string { return "memory" }

func (m *memBackend) ListSeries(_ context.Context, selector string, start, end int64) ([]labels.Labels, error) {
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(selector)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []labels.Labels
	for _, s := range m.series {
		ok := len(sorted(s.samples, start, end)) > 0
		for _, mt := range ms {
			ok = ok && mt.Matches(s.ls.Get(mt.Name))
		}
		if ok {
			out = append(out, s.ls)
		}
	}
	return out, nil
}

func (m *memBackend) Read(_ context.Context, series []labels.Labels, start, end int64) ([]Series, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reads++
	if m.failReadAfter > 0 && m.reads > m.failReadAfter {
		return nil, errors.New("read failed (injected)")
	}
	var out []Series
	n := 0
	for _, ls := range series {
		if s := m.series[ls.String()]; s != nil {
			if smp := sorted(s.samples, start, end); len(smp) > 0 {
				out = append(out, Series{Labels: ls, Samples: smp})
				n += len(smp)
			}
		}
	}
	m.maxRead = max(m.maxRead, n)
	return out, nil
}

func (m *memBackend) Write(_ context.Context, series []Series) error {
	m.mu.Lock()
	m.writes++
	fail := m.failWriteAfter >= 0 && m.writes > m.failWriteAfter
	lost := m.lostWrites
	m.mu.Unlock()
	if fail {
		if m.writeErr != nil {
			return m.writeErr
		}
		return errors.New("remote write: backend answered 503")
	}
	if lost {
		return nil
	}
	for _, s := range series {
		m.add(s.Labels, s.Samples...)
	}
	return nil
}

func (m *memBackend) Delete(_ context.Context, series []labels.Labels, start, end int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.deleteCalls++
	if m.failDelete != nil {
		return m.failDelete
	}
	for _, ls := range series {
		if s := m.series[ls.String()]; s != nil {
			for t := range s.samples {
				if t >= start && t <= end {
					delete(s.samples, t)
				}
			}
		}
	}
	return nil
}

func (m *memBackend) CheckDelete(context.Context) error {
	if m.adminOff {
		return ErrAdminDisabled
	}
	return nil
}

func (m *memBackend) CheckWrite(context.Context, int64) error { return nil }
