// Package querylog reads Prometheus query log files (the JSON lines written
// with query_log_file) incrementally, remembering how far it has read.
package querylog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxLine bounds one log line.
const maxLine = 4 << 20

// Entry is one logged query.
type Entry struct {
	// Query is the PromQL expression.
	Query string
	// Time is when the query was logged.
	Time time.Time
	// Path is the HTTP path, when logged.
	Path string
	// RuleGroup is set for rule evaluations (not user queries).
	RuleGroup string
}

type line struct {
	Params struct {
		Query string `json:"query"`
	} `json:"params"`
	TS          time.Time `json:"ts"`
	HTTPRequest struct {
		Path string `json:"path"`
	} `json:"httpRequest"`
	RuleGroup struct {
		Name string `json:"name"`
	} `json:"ruleGroup"`
}

// ParseLine decodes one query log line.
func ParseLine(b []byte) (Entry, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Entry{}, fmt.Errorf("decode query log line: %w", err)
	}
	return Entry{Query: l.Params.Query, Time: l.TS, Path: l.HTTPRequest.Path, RuleGroup: l.RuleGroup.Name}, nil
}

// Tailer reads a query log file from where it last stopped. When the file
// shrinks (rotation or truncation) it starts again from the beginning.
// Safe for concurrent use (reads are serialised).
type Tailer struct {
	path string

	mu     sync.Mutex
	offset int64
}

// NewTailer returns a Tailer for path, starting at the beginning of the file.
func NewTailer(path string) *Tailer { return &Tailer{path: path} }

// ReadNew calls fn for every complete line appended since the last call and
// returns how many lines could not be decoded. A trailing partial line is
// left for the next call.
func (t *Tailer) ReadNew(fn func(Entry)) (bad int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := os.Open(t.path)
	if err != nil {
		return 0, fmt.Errorf("open query log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("stat query log: %w", err)
	}
	if st.Size() < t.offset {
		t.offset = 0
	}
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek query log: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Overlong line: skip it entirely.
			n := int64(len(b))
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = r.ReadSlice('\n')
				n += int64(len(b))
			}
			if err != nil {
				return bad, nil
			}
			t.offset += n
			bad++
			continue
		}
		if err != nil { // io.EOF: partial or no line left.
			return bad, nil
		}
		t.offset += int64(len(b))
		b = bytes.TrimSpace(b)
		if len(b) == 0 || len(b) > maxLine {
			continue
		}
		e, perr := ParseLine(b)
		if perr != nil || e.Query == "" {
			if perr != nil {
				bad++
			}
			continue
		}
		fn(e)
	}
}
