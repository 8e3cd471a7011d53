package retro

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
)

// The TSDB-block route: a job of mode openmetrics writes the transformed
// series to OpenMetrics files on the node that runs it instead of the
// backend, for `promtool tsdb create-blocks-from openmetrics`, whose blocks
// the operator moves into Prometheus' data directory. It is the route for
// ranges older than the backend's out-of-order window accepts.
//
// Each batch writes its own file, renamed into place when the batch is
// done, so a batch redone after a crash replaces its file instead of
// appending duplicates (promtool refuses out-of-order samples). Inside a
// file each series' samples are in time order (slices run in order). With
// a governance store the finished file is uploaded to the job's objects
// (jobs/<id>/openmetrics/) instead, so a job taken over by another
// ingester adds to the same output and any node serves it.

// PathOpenMetrics is GET PathOpenMetrics+"{id}": a finished openmetrics
// job's series, one OpenMetrics exposition ending in # EOF.
const PathOpenMetrics = PathJobs + "/openmetrics/"

// omDir is the directory of job id's batch files.
func (m *Manager) omDir(id string) string {
	return filepath.Join(m.d.Config.Directory, id, "openmetrics")
}

// omBatch is one batch's OpenMetrics file being written.
type omBatch struct {
	f    *os.File
	w    *bufio.Writer
	path string // the final name; f is path + ".tmp"
	// With a store, commit uploads the file as job id's output instead.
	store *BucketStore
	id    string
}

// openMetricsBatch starts batch b's file of job id.
func (m *Manager) openMetricsBatch(id string, b int) (*omBatch, error) {
	dir := m.omDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, fmt.Sprintf("batch-%06d.om", b))
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return nil, err
	}
	return &omBatch{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path, store: m.d.Store, id: id}, nil
}

// write appends series as sample lines.
func (o *omBatch) write(series []Series) error {
	var buf []byte
	for _, s := range series {
		if len(s.Histograms) > 0 {
			return fmt.Errorf("%s has native histogram samples, which the TSDB-block route (promtool tsdb create-blocks-from openmetrics) cannot carry: %w; copy it with mode execute, or narrow the selector", s.Labels, ErrUnsupported)
		}
		buf = appendOMSeries(buf[:0], s)
		if _, err := o.w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// commit syncs the file and renames it into place, or uploads it to the
// store (and removes the local file).
func (o *omBatch) commit(ctx context.Context) error {
	if o.store == nil {
		err := errors.Join(o.w.Flush(), o.f.Sync(), o.f.Close())
		if err == nil {
			err = os.Rename(o.f.Name(), o.path)
		}
		return err
	}
	if err := o.w.Flush(); err != nil {
		return err
	}
	if _, err := o.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := o.store.putOutput(ctx, o.id, filepath.Base(o.path), o.f); err != nil {
		return err
	}
	return errors.Join(o.f.Close(), os.Remove(o.f.Name()))
}

// abort removes the unfinished file.
func (o *omBatch) abort() {
	_ = o.f.Close()
	_ = os.Remove(o.f.Name())
}

// appendOMSeries appends one OpenMetrics sample line per sample of s:
// name{labels} value timestamp-in-seconds.
func appendOMSeries(dst []byte, s Series) []byte {
	name := s.Labels.Get(model.MetricNameLabel)
	var head []byte
	head = append(head, name...)
	first := true
	s.Labels.Range(func(l labels.Label) {
		if l.Name == model.MetricNameLabel {
			return
		}
		if first {
			head = append(head, '{')
			first = false
		} else {
			head = append(head, ',')
		}
		head = append(head, l.Name...)
		head = append(head, '=')
		head = strconv.AppendQuote(head, l.Value)
	})
	if !first {
		head = append(head, '}')
	}
	for _, smp := range s.Samples {
		dst = append(dst, head...)
		dst = append(dst, ' ')
		dst = appendOMFloat(dst, smp.V)
		dst = append(dst, ' ')
		dst = appendOMTimestamp(dst, smp.T)
		dst = append(dst, '\n')
	}
	return dst
}

func appendOMFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// appendOMTimestamp renders milliseconds as seconds with 3 decimals, exact.
func appendOMTimestamp(dst []byte, ms int64) []byte {
	if ms < 0 {
		dst = append(dst, '-')
		ms = -ms
	}
	dst = strconv.AppendInt(dst, ms/1000, 10)
	dst = append(dst, '.')
	frac := ms % 1000
	if frac < 100 {
		dst = append(dst, '0')
	}
	if frac < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, frac, 10)
}

// handleOpenMetrics answers a finished openmetrics job's files, in batch
// order, and # EOF.
func (m *Manager) handleOpenMetrics(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, err := m.GetJob(r.Context(), id)
	if err != nil {
		m.answer(w, func() (*Job, error) { return nil, err })
		return
	}
	if j.Spec.Mode != ModeOpenMetrics || j.State != StateSucceeded {
		m.answer(w, func() (*Job, error) {
			return nil, &ConflictError{Msg: fmt.Sprintf("job %s is a %s job in state %s: only a succeeded %s job has OpenMetrics output", id, j.Spec.Mode, j.State, ModeOpenMetrics)}
		})
		return
	}
	var (
		files []string
		open  = func(name string) (io.ReadCloser, error) { return os.Open(name) }
	)
	if m.d.Store != nil {
		files, err = m.d.Store.outputs(r.Context(), id)
		open = func(name string) (io.ReadCloser, error) { return m.d.Store.output(r.Context(), id, name) }
	} else {
		files, err = filepath.Glob(filepath.Join(m.omDir(id), "batch-*.om"))
		sort.Strings(files)
	}
	if err != nil {
		m.answer(w, func() (*Job, error) { return nil, err })
		return
	}
	w.Header().Set("Content-Type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+`.om"`)
	for _, name := range files {
		if err := copyFile(w, open, name); err != nil {
			// The status is sent: end the body without # EOF so that
			// promtool refuses the truncated file.
			m.d.Logger.Warn("openmetrics output cut short", "job", id, "file", filepath.Base(name), "err", err)
			return
		}
	}
	_, _ = io.WriteString(w, "# EOF\n")
}

func copyFile(w io.Writer, open func(string) (io.ReadCloser, error), name string) error {
	f, err := open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// openMetricsHint is the route a too-old range is offered.
const openMetricsHint = "or write the transformed series as TSDB blocks instead: submit the job with mode: " + ModeOpenMetrics +
	", fetch GET " + PathOpenMetrics + "<id>, run `promtool tsdb create-blocks-from openmetrics <file> <dir>`" +
	", and move the blocks into Prometheus' data directory (docs/retrospective.md)"
