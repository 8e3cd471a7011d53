package rules

import "math/bits"

// maxEffects bounds what one Effects remembers; a series whose rules made
// more increments is not replayable (Effects.Replayable).
const maxEffects = 6

// Effect kinds besides the action slots 0-3 of ruleMetrics.series.
const (
	effectTypeUnknown = 4
	effectInvalid     = 5
)

// Effects are the rule counter increments of one ApplyRecorded, to be
// made again by Replay when the same series gets the same outcome without
// running the rules. It holds no pointers (callers keep many).
type Effects struct {
	ops  [maxEffects]uint16 // rule index << 3 | kind
	n    uint8
	over bool
}

// add records one increment; a nil fx records nothing.
func (fx *Effects) add(rule int, kind uint8) {
	if fx == nil {
		return
	}
	if int(fx.n) == maxEffects || rule >= 1<<13 {
		fx.over = true
		return
	}
	fx.ops[fx.n] = uint16(rule)<<3 | uint16(kind)
	fx.n++
}

// typeUnknownMask records the type-unknown increments of a series-cache
// hit (bit i: rule i).
func (fx *Effects) typeUnknownMask(mask uint64) {
	for fx != nil && mask != 0 {
		i := bits.TrailingZeros64(mask)
		fx.add(i, effectTypeUnknown)
		mask &^= 1 << i
	}
}

// forget makes fx not replayable: the outcome it goes with must not be
// remembered (a plugin's on_error verdict).
func (fx *Effects) forget() {
	if fx != nil {
		fx.over = true
	}
}

// Replayable reports whether Replay can make every increment recorded.
func (fx *Effects) Replayable() bool { return !fx.over }

// Empty reports whether nothing was recorded.
func (fx *Effects) Empty() bool { return fx.n == 0 && !fx.over }

// Replay makes the increments fx recorded with this engine again. fx must
// come from ApplyRecorded on the same Engine.
func (e *Engine) Replay(fx *Effects) {
	for _, op := range fx.ops[:fx.n] {
		r := e.rules[op>>3]
		switch kind := op & 7; kind {
		case effectTypeUnknown:
			r.metrics.typeUnknown.inc()
		case effectInvalid:
			e.metrics.invalid(r.name)
		default:
			r.metrics.series[kind].inc()
		}
	}
}

// ReplayN is Replay n times, each counter incremented once by n.
func (e *Engine) ReplayN(fx *Effects, n int) {
	if n <= 0 {
		return
	}
	for _, op := range fx.ops[:fx.n] {
		r := e.rules[op>>3]
		switch kind := op & 7; kind {
		case effectTypeUnknown:
			r.metrics.typeUnknown.add(n)
		case effectInvalid:
			e.metrics.invalidN(r.name, n)
		default:
			r.metrics.series[kind].add(n)
		}
	}
}

// RuleName returns the name of the rule at index i (as Result.Rule names
// it), for callers that keep rule indexes.
func (e *Engine) RuleName(i int) string { return e.rules[i].name }

// RuleIndex returns the index of the rule called name, or -1.
func (e *Engine) RuleIndex(name string) int {
	for i, r := range e.rules {
		if r.name == name {
			return i
		}
	}
	return -1
}

// EffectsSize is the size of an encoded Effects.
const EffectsSize = 16

// Encode writes fx into b, for callers that keep effects outside the Go
// heap's pointerful memory (DecodeEffects reads them back).
func (fx *Effects) Encode(b *[EffectsSize]byte) {
	for i, op := range fx.ops {
		b[2*i], b[2*i+1] = byte(op), byte(op>>8)
	}
	b[2*maxEffects] = fx.n
	b[2*maxEffects+1] = 0
	if fx.over {
		b[2*maxEffects+1] = 1
	}
}

// DecodeEffects reads what Encode wrote.
func DecodeEffects(b *[EffectsSize]byte) Effects {
	var fx Effects
	for i := range fx.ops {
		fx.ops[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	fx.n, fx.over = b[2*maxEffects], b[2*maxEffects+1] != 0
	return fx
}
