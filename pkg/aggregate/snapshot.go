package aggregate

import (
	"bytes"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
)

// The snapshot format: magic, then a gob-encoded state, then a CRC-32
// (IEEE) of both, little endian. The same encoding carries one metric's
// state in a ring-change handoff.
const snapshotMagic = "PGAGG1\n"

// ErrCorrupt is wrapped by every error about an undecodable snapshot.
var ErrCorrupt = errors.New("corrupt aggregation state")

type stateSnap struct {
	Rules []ruleSnap
}

type ruleSnap struct {
	Name        string
	Fingerprint uint64
	Closed      int64
	Groups      []groupSnap
}

type groupSnap struct {
	Tenant, Metric string
	Part, Kind     uint8
	Hist           bool
	FloatH         bool // a float histogram was among the inputs
	Type           int32
	Kept           []labels.Label
	Total          float64
	TotalH         *histogram.FloatHistogram
	Seen           int64
	Inputs         []inputSnap
	Windows        []windowSnap
}

type inputSnap struct {
	Hash          uint64
	FirstT, LastT int64
	FirstV, LastV float64
	FirstH, LastH *histogram.FloatHistogram
}

type windowSnap struct {
	Start  int64
	Delta  float64
	DeltaH *histogram.FloatHistogram
	Gauges map[uint64]tv
	Last   tv
}

func encodeState(s *stateSnap) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(snapshotMagic)
	if err := gob.NewEncoder(&buf).Encode(s); err != nil {
		return nil, fmt.Errorf("encode aggregation state: %w", err)
	}
	return binary.LittleEndian.AppendUint32(buf.Bytes(), crc32.ChecksumIEEE(buf.Bytes())), nil
}

// maxStateBytes bounds what decodeState accepts.
const maxStateBytes = 1 << 30

func decodeState(b []byte) (*stateSnap, error) {
	if len(b) < len(snapshotMagic)+4 || string(b[:len(snapshotMagic)]) != snapshotMagic {
		return nil, fmt.Errorf("%w: no aggregation state header", ErrCorrupt)
	}
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrCorrupt, len(b), maxStateBytes)
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	var s stateSnap
	if err := gob.NewDecoder(bytes.NewReader(body[len(snapshotMagic):])).Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	for _, r := range s.Rules {
		for i := range r.Groups {
			if err := validGroup(&r.Groups[i]); err != nil {
				return nil, fmt.Errorf("%w: rule %s: %v", ErrCorrupt, r.Name, err)
			}
		}
	}
	return &s, nil
}

// validGroup checks what the state machine relies on.
func validGroup(g *groupSnap) error {
	if g.Kind != uint8(kindCounter) && g.Kind != uint8(kindGauge) || int(g.Part) >= len(partSuffix) {
		return fmt.Errorf("bad group kind %d or part %d", g.Kind, g.Part)
	}
	if g.Hist && g.Kind != uint8(kindCounter) {
		return errors.New("native histograms in a gauge group")
	}
	hs := []*histogram.FloatHistogram{g.TotalH}
	for _, in := range g.Inputs {
		if g.Hist != (in.LastH != nil) || g.Hist != (in.FirstH != nil) {
			return errors.New("input without its histograms")
		}
		hs = append(hs, in.FirstH, in.LastH)
	}
	for _, w := range g.Windows {
		hs = append(hs, w.DeltaH)
		if len(w.Gauges) > 0 && g.Kind != uint8(kindGauge) {
			return errors.New("gauge values in a counter group")
		}
	}
	for _, h := range hs {
		if h == nil {
			continue
		}
		if !g.Hist {
			return errors.New("histograms in a float group")
		}
		if err := h.Validate(); err != nil {
			return fmt.Errorf("invalid histogram: %w", err)
		}
	}
	return nil
}

// snapGroup copies g's state, with the total it carries on from a
// replaced rule's group. r.mu is held.
func (r *rule) snapGroup(g *group) groupSnap {
	gs := groupSnap{
		Tenant: g.tenant, Metric: g.metric, Part: uint8(g.part), Kind: uint8(g.kind), Hist: g.hist, FloatH: g.floatH, Type: g.typ,
		Kept: g.kept, Total: g.total, TotalH: copyH(g.totalH), Seen: g.seen,
	}
	if g.carry != nil {
		t, th := carried(g.carryFrom, g.carry)
		gs.Total += t
		if th != nil {
			_ = addInto(&gs.TotalH, th)
		}
	}
	for h, in := range g.inputs {
		gs.Inputs = append(gs.Inputs, inputSnap{Hash: h, FirstT: in.firstT, LastT: in.lastT, FirstV: in.firstV, LastV: in.lastV,
			FirstH: in.firstH, LastH: in.lastH}) // input histograms are never modified in place
	}
	for _, w := range g.windows {
		ws := windowSnap{Start: w.start, Delta: w.delta, DeltaH: copyH(w.deltaH), Last: w.last}
		if len(w.gauges) > 0 {
			ws.Gauges = make(map[uint64]tv, len(w.gauges))
			for k, v := range w.gauges {
				ws.Gauges[k] = v
			}
		}
		gs.Windows = append(gs.Windows, ws)
	}
	return gs
}

func copyH(h *histogram.FloatHistogram) *histogram.FloatHistogram {
	if h == nil {
		return nil
	}
	return h.Copy()
}

// Snapshot encodes the whole state.
func (e *Engine) Snapshot() ([]byte, error) {
	var s stateSnap
	for _, r := range e.set.Load().rules {
		r.mu.Lock()
		rs := ruleSnap{Name: r.cfg.Name, Fingerprint: r.fingerprint, Closed: r.closed}
		for _, g := range r.groups {
			rs.Groups = append(rs.Groups, r.snapGroup(g))
		}
		r.mu.Unlock()
		s.Rules = append(s.Rules, rs)
	}
	return encodeState(&s)
}

// Restore merges a snapshot into the state (at start, before pushes).
// State of rules that no longer exist, or whose configuration changed, is
// dropped and logged.
func (e *Engine) Restore(b []byte) error {
	s, err := decodeState(b)
	if err != nil {
		return err
	}
	e.merge(s, true)
	return nil
}

// ExportMetric encodes the state of every group of (tenant, metric) and,
// when forget is set, drops it here: the metric's new owner merges it with
// ImportMetric. It returns nil when there is none.
func (e *Engine) ExportMetric(tenant, metric string, forget bool) ([]byte, error) {
	var s stateSnap
	for _, r := range e.set.Load().rules {
		r.mu.Lock()
		rs := ruleSnap{Name: r.cfg.Name, Fingerprint: r.fingerprint, Closed: r.closed}
		for key, g := range r.groups {
			if g.tenant != tenant || g.metric != metric {
				continue
			}
			rs.Groups = append(rs.Groups, r.snapGroup(g))
			if forget {
				r.dropGroup(e, key, g)
			}
		}
		r.mu.Unlock()
		if len(rs.Groups) > 0 {
			s.Rules = append(s.Rules, rs)
		}
	}
	if len(s.Rules) == 0 {
		return nil, nil
	}
	return encodeState(&s)
}

// ImportMetric merges state from a previous owner's ExportMetric.
func (e *Engine) ImportMetric(b []byte) error {
	s, err := decodeState(b)
	if err != nil {
		return err
	}
	e.merge(s, false)
	return nil
}

// dropGroup forgets a group. r.mu is held.
func (r *rule) dropGroup(e *Engine, key string, g *group) {
	delete(r.groups, key)
	e.groups.Add(-1)
	r.m.groups.Sub(float64(len(g.out)))
	r.m.inputSeries.Sub(float64(len(g.inputs)))
}

// merge adds s to the state. restore: s is this ingester's own snapshot
// (its closed watermark is taken as is).
func (e *Engine) merge(s *stateSnap, restore bool) {
	for _, rs := range s.Rules {
		var r *rule
		for _, x := range e.set.Load().rules {
			if x.cfg.Name == rs.Name {
				r = x
			}
		}
		if r == nil || r.fingerprint != rs.Fingerprint {
			e.logger.Warn("aggregation state of a rule that no longer exists or changed is dropped", "rule", rs.Name, "groups", len(rs.Groups))
			continue
		}
		r.mu.Lock()
		if restore && rs.Closed > r.closed {
			r.closed = rs.Closed
		}
		for i := range rs.Groups {
			r.mergeGroup(e, &rs.Groups[i])
		}
		r.mu.Unlock()
	}
}

// mergeGroup merges one group's state. Increases are additive, so totals
// and open windows add up; an input known on both sides is joined
// exactly: the increase from the older side's last sample to the newer
// side's first is added. Windows already closed here go into the total.
// r.mu is held.
func (r *rule) mergeGroup(e *Engine, gs *groupSnap) {
	key := groupKey(gs.Tenant, gs.Metric, kind(gs.Kind), gs.Kept, r.keyBuf[:0])
	g, ok := r.groups[string(key)]
	if !ok {
		if e.groups.Add(1) > e.maxGroups.Load() {
			e.groups.Add(-1)
			return
		}
		g = r.newGroup(gs.Tenant, gs.Metric, part(gs.Part), kind(gs.Kind), gs.Hist, gs.Type, gs.Kept)
		r.groups[string(key)] = g
		r.m.groups.Add(float64(len(g.out)))
	}
	g.total += gs.Total
	g.floatH = g.floatH || gs.FloatH
	if gs.TotalH != nil {
		_ = addInto(&g.totalH, gs.TotalH)
	}
	g.seen = max(g.seen, gs.Seen)
	for _, is := range gs.Inputs {
		here := g.inputs[is.Hash]
		if here == nil {
			g.inputs[is.Hash] = &input{firstT: is.FirstT, firstV: is.FirstV, firstH: is.FirstH, lastT: is.LastT, lastV: is.LastV, lastH: is.LastH}
			r.m.inputSeries.Inc()
			continue
		}
		// Join the two histories at the gap between them.
		older, newer := &input{firstT: is.FirstT, firstV: is.FirstV, firstH: is.FirstH, lastT: is.LastT, lastV: is.LastV, lastH: is.LastH}, here
		if here.lastT < is.FirstT {
			older, newer = here, older
		}
		if older.lastT < newer.firstT && g.kind == kindCounter {
			start := r.start(newer.firstT)
			if g.hist && older.lastH != nil && newer.firstH != nil {
				d := newer.firstH
				if !newer.firstH.DetectReset(older.lastH) {
					d, _, _, _ = newer.firstH.Copy().Sub(older.lastH)
				}
				if d != nil {
					if start+r.interval <= r.closed {
						_ = addInto(&g.totalH, d)
					} else {
						_ = addInto(&g.windowFor(start).deltaH, d)
					}
				}
			} else if !g.hist {
				d := newer.firstV - older.lastV
				if newer.firstV < older.lastV {
					d = newer.firstV
				}
				if start+r.interval <= r.closed {
					g.total += d
				} else {
					g.windowFor(start).delta += d
				}
			}
		}
		here.firstT, here.firstV, here.firstH = older.firstT, older.firstV, older.firstH
		here.lastT, here.lastV, here.lastH = newer.lastT, newer.lastV, newer.lastH
	}
	for _, ws := range gs.Windows {
		if ws.Start+r.interval <= r.closed {
			// Closed here already: the increase goes into the total (a
			// gauge's closed interval is gone).
			if g.kind == kindCounter {
				g.total += ws.Delta
				if ws.DeltaH != nil {
					_ = addInto(&g.totalH, ws.DeltaH)
				}
			}
			continue
		}
		w := g.windowFor(ws.Start)
		w.delta += ws.Delta
		if ws.DeltaH != nil {
			_ = addInto(&w.deltaH, ws.DeltaH)
		}
		for k, v := range ws.Gauges {
			if cur, ok := w.gauges[k]; !ok || v.T > cur.T {
				w.gauges[k] = v
			}
		}
		if ws.Last.T >= w.last.T {
			w.last = ws.Last
		}
	}
}

// groupKey builds the key of a group from its kept labels (the same key
// rule.group builds from an input).
func groupKey(tenant, metric string, k kind, kept []labels.Label, buf []byte) []byte {
	key := append(buf, tenant...)
	key = append(key, 0xff)
	key = append(key, metric...)
	key = append(key, 0xff, byte(k))
	for _, l := range kept {
		key = append(key, l.Name...)
		key = append(key, 0xff)
		key = append(key, l.Value...)
		key = append(key, 0xff)
	}
	return key
}
