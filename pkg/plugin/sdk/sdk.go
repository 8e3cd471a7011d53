// Package sdk is the guest side of promgov's WebAssembly plugin ABI: a
// plugin written in Go registers two functions and the SDK does the rest
// (the ABI version export, the buffer the host writes into, decoding the
// batch, encoding the verdicts).
//
// A plugin is a main package built as a WASI reactor with the standard
// toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o myplugin.wasm ./myplugin
//
// and registers itself from an init function (a reactor's main is never
// called):
//
//	func init() { sdk.Register(configure, evaluate) }
//	func main() {}
//
// configure receives the plugin configuration from the governance
// configuration once per instance, before any evaluate; evaluate is called
// once per series and returns its Verdict. Both run on the plugin's single
// thread: the host never calls an instance concurrently, so a plugin needs
// no locking. A panic in either aborts the instance: the host counts it as a
// trap, applies the rule's on_error to the batch and starts a fresh
// instance.
//
// The exports are compiled only for GOOS=wasip1; the types and the codec
// build everywhere, so a plugin's logic can be tested (and benchmarked) as
// ordinary Go. The registered functions are package state because a wasm
// export has no receiver: one plugin per module.
package sdk

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/promgov/promgov/pkg/plugin/abi"
)

// Action is what a Verdict does to a series.
type Action = abi.Action

// The actions.
const (
	ActionKeep    = abi.ActionKeep    // forward the series unchanged
	ActionDrop    = abi.ActionDrop    // drop the series
	ActionRewrite = abi.ActionRewrite // replace all of its labels with Verdict.Labels
	ActionTag     = abi.ActionTag     // add or overwrite Verdict.Labels, keep the others
)

// Label is one label of a series.
type Label struct {
	Name, Value string
}

// Series is one series of a batch. Its strings stay valid after the call
// (they are not reused), so a plugin may keep them; its Labels slice is
// reused by the next batch: copy it (slices.Clone) to keep it.
type Series struct {
	// Tenant is the tenant the series was written by.
	Tenant string
	// Type is the metric type from the sender's metadata: "counter",
	// "gauge", "histogram", "gaugehistogram", "summary", "info",
	// "stateset" or "unknown".
	Type string
	// Labels are the series' labels sorted by name, the metric name
	// included as __name__.
	Labels []Label
}

// Get returns the value of the label name, or "" when it is absent.
func (s *Series) Get(name string) string {
	for _, l := range s.Labels {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Name returns the metric name (the __name__ label).
func (s *Series) Name() string { return s.Get("__name__") }

// Verdict is a plugin's decision for one series.
type Verdict struct {
	Action Action
	// Labels: for ActionRewrite the complete new label set (at least one
	// label); for ActionTag the labels to add or overwrite (none: the
	// host adds the rule's tag label). Names must be non-empty and
	// unique, values non-empty. Nil for keep and drop.
	Labels []Label
	// Reason says why, for traces and logs (at most 64 KiB).
	Reason string
}

// Keep forwards the series unchanged.
func Keep() Verdict { return Verdict{Action: ActionKeep} }

// Drop drops the series, saying why.
func Drop(reason string) Verdict { return Verdict{Action: ActionDrop, Reason: reason} }

// Tag adds (or overwrites) labels on the series, saying why.
func Tag(reason string, labels ...Label) Verdict {
	return Verdict{Action: ActionTag, Labels: labels, Reason: reason}
}

// Rewrite replaces the series' labels with labels, saying why.
func Rewrite(reason string, labels []Label) Verdict {
	return Verdict{Action: ActionRewrite, Labels: labels, Reason: reason}
}

// ConfigureFunc receives the plugin configuration; an error fails the load
// with its message.
type ConfigureFunc func(config []byte) error

// EvaluateFunc decides for one series.
type EvaluateFunc func(Series) Verdict

// handler is what Register installed.
type handler struct {
	configure ConfigureFunc
	evaluate  EvaluateFunc
}

// registered is the plugin of this module (see the package comment).
var registered *handler

// Register installs the plugin's functions; call it once, from an init
// function. configure may be nil when the plugin takes no configuration.
func Register(configure ConfigureFunc, evaluate EvaluateFunc) {
	if evaluate == nil {
		panic("sdk.Register: evaluate is nil")
	}
	if registered != nil {
		panic("sdk.Register: called twice")
	}
	registered = &handler{configure: configure, evaluate: evaluate}
}

// EvaluateBatch decodes a batch in the ABI's layout, calls evaluate for
// each series and appends the encoded verdicts to out. It is what the
// promgov_evaluate export runs; it is exported so that a plugin's logic can
// be tested and benchmarked through the codec as ordinary Go.
//
// The decoder is bounds-checked but, unlike the host's, does not check
// UTF-8 (the host sends the series as it validated them): in a Go guest
// every call and every byte loop costs several times what it does natively,
// so it is written as one loop over the bytes with inlined helpers.
func EvaluateBatch(batch []byte, evaluate EvaluateFunc, out []byte) ([]byte, error) {
	var slab []Label
	return evaluateBatch(batch, evaluate, out, &slab)
}

// evaluateBatch is EvaluateBatch with the label slab kept in *slab for the
// next batch (saving an allocation per batch, which a Go guest pays dearly
// for): a Series' Labels slice is therefore valid only during the call.
func evaluateBatch(batch []byte, evaluate EvaluateFunc, out []byte, keep *[]Label) ([]byte, error) {
	// One copy per batch: the Series' strings alias it and stay valid.
	b := append([]byte(nil), batch...)
	n, b, ok := u32(b)
	if !ok || uint64(n) > abi.MaxBatch || uint64(n)*9 > uint64(len(b)) {
		return out, errors.New("decode batch: bad series count")
	}
	out = abi.AppendU32(out, n)
	slab := (*keep)[:0]
	for i := range int(n) {
		if len(b) < 1 {
			return out, fmt.Errorf("decode batch: series %d: %w", i, abi.ErrShort)
		}
		typ := b[0]
		var tenant string
		var nl uint32
		tenant, b, ok = str(b[1:])
		if ok {
			nl, b, ok = u32(b)
		}
		if !ok || nl > abi.MaxLabels || uint64(nl)*8 > uint64(len(b)) {
			return out, fmt.Errorf("decode batch: series %d: bad tenant or label count", i)
		}
		if cap(slab)-len(slab) < int(nl) {
			slab = make([]Label, 0, max(int(nl), 8*(int(n)-i)))
			*keep = slab
		}
		lbls := slab[len(slab) : len(slab)+int(nl) : len(slab)+int(nl)]
		slab = slab[:len(slab)+int(nl)]
		for j := range lbls {
			lbls[j].Name, b, ok = str(b)
			if ok {
				lbls[j].Value, b, ok = str(b)
			}
			if !ok {
				return out, fmt.Errorf("decode batch: series %d: label %d: %w", i, j, abi.ErrShort)
			}
		}
		out = appendVerdict(out, evaluate(Series{Tenant: tenant, Type: abi.TypeName(typ), Labels: lbls}))
	}
	if len(b) != 0 {
		return out, fmt.Errorf("decode batch: %d trailing bytes", len(b))
	}
	return out, nil
}

// u32 reads a little-endian uint32 from the front of b.
func u32(b []byte) (uint32, []byte, bool) {
	if len(b) < 4 {
		return 0, b, false
	}
	return binary.LittleEndian.Uint32(b), b[4:], true
}

// str reads a length-prefixed string from the front of b, aliasing b.
func str(b []byte) (string, []byte, bool) {
	if len(b) < 4 {
		return "", b, false
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	if n > uint64(len(b)-4) {
		return "", b, false
	}
	return bytesString(b[4 : 4+n]), b[4+n:], true
}

// appendVerdict encodes v.
func appendVerdict(out []byte, v Verdict) []byte {
	out = append(out, byte(v.Action))
	out = abi.AppendString(out, v.Reason)
	out = abi.AppendU32(out, uint32(len(v.Labels)))
	for _, l := range v.Labels {
		out = abi.AppendString(out, l.Name)
		out = abi.AppendString(out, l.Value)
	}
	return out
}
