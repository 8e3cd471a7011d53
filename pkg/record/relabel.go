package record

import (
	"github.com/prometheus/prometheus/model/labels"
)

// AppendRelabeled appends e with ls (sorted, valid, __name__ present) as
// its labels instead of its own, and ls's hash: every other field of the
// series (samples, exemplars with their own labels, histograms, metadata)
// is copied byte for byte. It is how a series rewritten by relabelling is
// re-encoded without decoding its data.
func AppendRelabeled(dst []byte, e *Entry, ls labels.Labels) []byte {
	size := LabelsSize(ls)
	for b := e.Series; len(b) > 0; {
		num, _, n := consumeField(b)
		if n < 0 {
			break
		}
		if num != fieldLabels {
			size += n
		}
		b = b[n:]
	}
	dst = AppendHeader(dst, ls.Hash(), e.Flags, e.Samples, e.Histograms, e.Exemplars, size)
	dst = AppendLabels(dst, ls)
	for b := e.Series; len(b) > 0; {
		num, _, n := consumeField(b)
		if n < 0 {
			break
		}
		if num != fieldLabels {
			dst = append(dst, b[:n]...)
		}
		b = b[n:]
	}
	return dst
}
