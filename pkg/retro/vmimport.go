package retro

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
)

// vmImport writes series with VictoriaMetrics' /api/v1/import (JSON lines,
// at most MaxSamplesPerWrite samples a request), then asks it to make them
// searchable at once (/internal/force_flush), so that the verify step does
// not wait for the next in-memory flush.
func (b *HTTPBackend) vmImport(ctx context.Context, series []Series) error {
	for _, s := range series {
		if len(s.Histograms) > 0 { // VictoriaMetrics' export never gives any
			return fmt.Errorf("import %s: native histogram samples: %w", s.Labels, ErrUnsupported)
		}
	}
	var buf bytes.Buffer
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/api/v1/import", bytes.NewReader(buf.Bytes()))
		if err != nil {
			return err
		}
		_, err = b.do("import", req)
		buf.Reset()
		n = 0
		return err
	}
	for _, s := range series {
		rest := s.Samples
		for len(rest) > 0 {
			k := min(len(rest), b.cfg.MaxSamplesPerWrite-n)
			if err := appendImportLine(&buf, s, rest[:k]); err != nil {
				return err
			}
			n += k
			rest = rest[k:]
			if n >= b.cfg.MaxSamplesPerWrite {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	// Best effort: without it (an auth proxy may hide /internal) the copy
	// becomes searchable within seconds all the same, and verify waits.
	_, _ = b.call(ctx, "force flush", "/internal/force_flush", nil)
	return nil
}

// appendImportLine appends one /api/v1/import line of s with samples.
func appendImportLine(buf *bytes.Buffer, s Series, samples []Sample) error {
	metric, err := json.Marshal(s.Labels.Map())
	if err != nil {
		return err
	}
	buf.WriteString(`{"metric":`)
	buf.Write(metric)
	buf.WriteString(`,"values":[`)
	for i, smp := range samples {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(importValue(smp.V))
	}
	buf.WriteString(`],"timestamps":[`)
	for i, smp := range samples {
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.FormatInt(smp.T, 10))
	}
	buf.WriteString("]}\n")
	return nil
}

// importValue renders v as /api/v1/import reads it: a JSON number, or the
// strings VictoriaMetrics accepts for values JSON has no number for.
func importValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return `"NaN"`
	case math.IsInf(v, 1):
		return `"Inf"`
	case math.IsInf(v, -1):
		return `"-Inf"`
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
