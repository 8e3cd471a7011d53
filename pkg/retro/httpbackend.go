package retro

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/forward"
)

// Backend kinds.
const (
	KindPrometheus      = "prometheus"
	KindVictoriaMetrics = "victoriametrics"
	// KindMimir and KindThanos are read through the Prometheus query API
	// (queryapi.go); they have no delete API, so a job can dry-run and copy
	// but not delete originals.
	KindMimir  = "mimir"
	KindThanos = "thanos"
)

// kinds lists the backend kinds for error messages.
const kinds = KindPrometheus + ", " + KindVictoriaMetrics + ", " + KindMimir + " or " + KindThanos

// validKind reports whether k is a backend kind.
func validKind(k string) bool {
	switch k {
	case KindPrometheus, KindVictoriaMetrics, KindMimir, KindThanos:
		return true
	}
	return false
}

// maxAnswerBytes bounds an answer of the backend's read APIs.
const maxAnswerBytes = 1 << 30

// HTTPBackendConfig is a backend reached over HTTP.
type HTTPBackendConfig struct {
	// Kind is prometheus, victoriametrics, mimir or thanos.
	Kind string `json:"kind"`
	// URL is the backend's query API base URL (http://host:9090, no path;
	// Mimir's http://host/prometheus; a Thanos Query).
	URL string `json:"url"`
	// WriteURL is where copies are remote-written: by default <URL>/api/v1/write
	// for Prometheus (VictoriaMetrics imports through <URL>/api/v1/import);
	// required to execute against Mimir (its /api/v1/push) or Thanos (a
	// Receive's /api/v1/receive).
	WriteURL string `json:"write_url,omitempty"`
	// Tenant is sent to the remote write endpoint (forward's tenant header).
	Tenant string `json:"tenant,omitempty"`
	// MaxSamplesPerWrite bounds one remote write request.
	MaxSamplesPerWrite int `json:"-"`
}

// Validate checks the kind and the URL; errors name the field.
func (cfg HTTPBackendConfig) Validate() error {
	if !validKind(cfg.Kind) {
		return fmt.Errorf("backend.kind %q: %w (use %s)", cfg.Kind, ErrUnsupported, kinds)
	}
	if !httpURL(cfg.URL) {
		return fmt.Errorf("backend.url %q: want http(s)://host:port", cfg.URL)
	}
	if cfg.WriteURL != "" && !httpURL(cfg.WriteURL) {
		return fmt.Errorf("backend.write_url %q: want http(s)://host:port/path", cfg.WriteURL)
	}
	return nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// HTTPBackend is a Prometheus, VictoriaMetrics single-node, Mimir or
// Thanos backend reached over its HTTP APIs. Safe for concurrent use.
type HTTPBackend struct {
	cfg    HTTPBackendConfig
	base   string
	client *http.Client
	writer *forward.Client // nil: VictoriaMetrics imports; Mimir or Thanos without write_url
}

// NewHTTPBackend validates cfg and returns the backend. Remote writes go
// through pkg/forward's Client (Remote Write 2.0, falling back to 1.0) to
// WriteURL, by default <URL>/api/v1/write for Prometheus; VictoriaMetrics
// without WriteURL imports through /api/v1/import.
func NewHTTPBackend(cfg HTTPBackendConfig, logger *slog.Logger) (*HTTPBackend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxSamplesPerWrite <= 0 {
		cfg.MaxSamplesPerWrite = 10000
	}
	base := strings.TrimRight(cfg.URL, "/")
	b := &HTTPBackend{cfg: cfg, base: base, client: &http.Client{Timeout: 5 * time.Minute}}
	writeURL := cfg.WriteURL
	if writeURL == "" && cfg.Kind == KindPrometheus {
		writeURL = base + "/api/v1/write"
	}
	if writeURL != "" {
		bc := forward.DefaultBackendConfig()
		bc.Name = "retrospective"
		bc.URL = writeURL
		bc.Timeout = time.Minute
		w, err := forward.NewClient(bc, logger, nil)
		if err != nil {
			return nil, fmt.Errorf("backend.write_url: %w", err)
		}
		b.writer = w
	}
	return b, nil
}

// Kind implements Backend.
func (b *HTTPBackend) Kind() string { return b.cfg.Kind }

// Close releases idle connections.
func (b *HTTPBackend) Close() {
	if b.writer != nil {
		_ = b.writer.Close(context.Background())
	}
	b.client.CloseIdleConnections()
}

// apiGet calls a Prometheus-style JSON API and decodes its data.
func (b *HTTPBackend) apiGet(ctx context.Context, op, path string, params url.Values, out any) error {
	answer, err := b.call(ctx, op, path, params)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	if err := json.Unmarshal(answer, &env); err != nil {
		return fmt.Errorf("%s: decode answer: %w", op, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s: %s", op, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// pathDeleteSeries is the admin API's delete of Prometheus and VictoriaMetrics.
const pathDeleteSeries = "/api/v1/admin/tsdb/delete_series"

// call GETs path (params nil) or POSTs params as a form, and returns the
// answer's body.
func (b *HTTPBackend) call(ctx context.Context, op, path string, params url.Values) ([]byte, error) {
	method, body := http.MethodGet, io.Reader(nil)
	if params != nil {
		method, body = http.MethodPost, strings.NewReader(params.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, b.base+path, body)
	if err != nil {
		return nil, err
	}
	if params != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return b.do(op, req)
}

func (b *HTTPBackend) do(op string, req *http.Request) ([]byte, error) {
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		msg := string(body)
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return nil, &httpStatusError{op: op, status: resp.StatusCode, body: strings.TrimSpace(msg)}
	}
	return body, nil
}

// ListSeries implements Backend with /api/v1/series.
func (b *HTTPBackend) ListSeries(ctx context.Context, selector string, start, end int64) ([]labels.Labels, error) {
	var data []map[string]string
	err := b.apiGet(ctx, "list series", "/api/v1/series", url.Values{
		"match[]": {selector}, "start": {msToParam(start)}, "end": {msToParam(end)},
	}, &data)
	if err != nil {
		return nil, err
	}
	out := make([]labels.Labels, 0, len(data))
	for _, m := range data {
		out = append(out, labels.FromMap(m))
	}
	return out, nil
}

// labelNames returns every label name the backend knows (over all time) on
// series of the given metric names, for exact selectors.
func (b *HTTPBackend) labelNames(ctx context.Context, names []string) ([]string, error) {
	params := url.Values{"start": {"0"}}
	for _, n := range names {
		params.Add("match[]", exactSelector(labels.FromStrings(model.MetricNameLabel, n), nil))
	}
	var out []string
	if err := b.apiGet(ctx, "list label names", "/api/v1/labels", params, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// selectors returns exact selectors of series.
func (b *HTTPBackend) selectors(ctx context.Context, series []labels.Labels) ([]string, error) {
	names, err := b.labelNames(ctx, metricNames(series))
	if err != nil {
		return nil, err
	}
	out := make([]string, len(series))
	for i, s := range series {
		out[i] = exactSelector(s, names)
	}
	return out, nil
}

// Read implements Backend: remote read (Prometheus), export
// (VictoriaMetrics) or the query API (Mimir, Thanos).
func (b *HTTPBackend) Read(ctx context.Context, series []labels.Labels, start, end int64) ([]Series, error) {
	if len(series) == 0 {
		return nil, nil
	}
	var got []Series
	var err error
	switch b.cfg.Kind {
	case KindPrometheus:
		got, err = b.remoteRead(ctx, series, start, end)
	case KindVictoriaMetrics:
		got, err = b.export(ctx, series, start, end)
	default:
		got, err = b.queryRead(ctx, series, start, end)
	}
	if err != nil {
		return nil, err
	}
	return keepExact(got, series), nil
}

// export reads series with VictoriaMetrics' /api/v1/export (JSON lines).
func (b *HTTPBackend) export(ctx context.Context, series []labels.Labels, start, end int64) ([]Series, error) {
	sels, err := b.selectors(ctx, series)
	if err != nil {
		return nil, err
	}
	params := url.Values{"match[]": sels, "start": {msToParam(start)}, "end": {msToParam(end)}}
	body, err := b.call(ctx, "export", "/api/v1/export", params)
	if err != nil {
		return nil, err
	}
	return parseExport(body)
}

// parseExport decodes /api/v1/export's JSON lines.
func parseExport(body []byte) ([]Series, error) {
	var out []Series
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), maxAnswerBytes)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var line struct {
			Metric     map[string]string `json:"metric"`
			Values     []float64         `json:"values"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("export: decode line: %w", err)
		}
		if len(line.Values) != len(line.Timestamps) {
			return nil, fmt.Errorf("export: %d values for %d timestamps", len(line.Values), len(line.Timestamps))
		}
		s := Series{Labels: labels.FromMap(line.Metric), Samples: make([]Sample, len(line.Values))}
		for i := range line.Values {
			s.Samples[i] = Sample{T: line.Timestamps[i], V: line.Values[i]}
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return out, nil
}

// Write implements Backend with remote write, in requests of at most
// MaxSamplesPerWrite samples, or VictoriaMetrics' import.
func (b *HTTPBackend) Write(ctx context.Context, series []Series) error {
	if b.writer == nil {
		if b.cfg.Kind == KindVictoriaMetrics {
			return b.vmImport(ctx, series)
		}
		return errNoWriteURL(b.cfg.Kind)
	}
	st := writev2.NewSymbolTable()
	req := &writev2.Request{}
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		req.Symbols = st.Symbols()
		err := b.writer.Send(ctx, b.cfg.Tenant, req, nil)
		st.Reset()
		req = &writev2.Request{}
		n = 0
		if err != nil {
			return fmt.Errorf("remote write: %w", err)
		}
		return nil
	}
	for _, s := range series {
		rest := s.Samples
		for len(rest) > 0 {
			k := min(len(rest), b.cfg.MaxSamplesPerWrite-n)
			ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(s.Labels, nil), Samples: make([]writev2.Sample, k)}
			for i, smp := range rest[:k] {
				ts.Samples[i] = writev2.Sample{Timestamp: smp.T, Value: smp.V}
			}
			req.Timeseries = append(req.Timeseries, ts)
			n += k
			rest = rest[k:]
			if n >= b.cfg.MaxSamplesPerWrite {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		// Native histograms go in series of their own: Remote Write 2.0
		// allows a series samples or histograms, not both.
		hrest := s.Histograms
		for len(hrest) > 0 {
			k := min(len(hrest), b.cfg.MaxSamplesPerWrite-n)
			ts := writev2.TimeSeries{LabelsRefs: st.SymbolizeLabels(s.Labels, nil), Histograms: make([]writev2.Histogram, k)}
			for i, h := range hrest[:k] {
				if h.H != nil {
					ts.Histograms[i] = writev2.FromIntHistogram(0, h.T, h.H)
				} else {
					ts.Histograms[i] = writev2.FromFloatHistogram(0, h.T, h.FH)
				}
			}
			req.Timeseries = append(req.Timeseries, ts)
			n += k
			hrest = hrest[k:]
			if n >= b.cfg.MaxSamplesPerWrite {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// Delete implements Backend with /api/v1/admin/tsdb/delete_series and exact
// selectors. VictoriaMetrics deletes whole series whatever the range, so it
// first checks that no sample lies outside [start, end].
func (b *HTTPBackend) Delete(ctx context.Context, series []labels.Labels, start, end int64) error {
	if len(series) == 0 {
		return nil
	}
	if err := noDeleteAPI(b.cfg.Kind); err != nil {
		return err
	}
	sels, err := b.selectors(ctx, series)
	if err != nil {
		return err
	}
	params := url.Values{"match[]": sels}
	if b.cfg.Kind == KindPrometheus {
		params.Set("start", msToParam(start))
		params.Set("end", msToParam(end))
	} else {
		all, err := b.export(ctx, series, 0, time.Now().Add(24*time.Hour).UnixMilli())
		if err != nil {
			return err
		}
		for _, s := range keepExact(all, series) {
			for _, smp := range s.Samples {
				if smp.T < start || smp.T > end {
					return fmt.Errorf("delete %s: VictoriaMetrics deletes whole series and this one has samples outside the job's range (at %s): widen the range or run without delete_originals", s.Labels, time.UnixMilli(smp.T).UTC().Format(time.RFC3339))
				}
			}
		}
	}
	_, err = b.call(ctx, "delete series", pathDeleteSeries, params)
	return adminError(err)
}

// adminError turns Prometheus' answer to a disabled admin API into
// ErrAdminDisabled.
func adminError(err error) error {
	var he *httpStatusError
	if errors.As(err, &he) && (he.status == http.StatusNotFound || strings.Contains(he.body, "admin APIs disabled")) {
		return fmt.Errorf("%w (%s answered %d %q): start Prometheus with --web.enable-admin-api, or run without delete_originals", ErrAdminDisabled, he.op, he.status, he.body)
	}
	return err
}

// CheckDelete implements Backend: it asks to delete a series that cannot
// exist, which answers 204 when the admin API is on and deletes nothing.
func (b *HTTPBackend) CheckDelete(ctx context.Context) error {
	if err := noDeleteAPI(b.cfg.Kind); err != nil {
		return err
	}
	params := url.Values{"match[]": {`{__name__="promgov_retrospective_admin_probe",promgov_probe="` + fmt.Sprint(time.Now().UnixNano()) + `"}`}}
	if b.cfg.Kind == KindPrometheus {
		params.Set("start", "0")
		params.Set("end", "1")
	}
	_, err := b.call(ctx, "probe the admin API", pathDeleteSeries, params)
	return adminError(err)
}

// CheckWrite implements Backend: Prometheus accepts samples older than its
// head only within storage.tsdb.out_of_order_time_window.
func (b *HTTPBackend) CheckWrite(ctx context.Context, start int64) error {
	if b.writer == nil && b.cfg.Kind != KindVictoriaMetrics {
		return errNoWriteURL(b.cfg.Kind)
	}
	if b.cfg.Kind != KindPrometheus {
		return nil
	}
	var data struct {
		YAML string `json:"yaml"`
	}
	if err := b.apiGet(ctx, "read the configuration", "/api/v1/status/config", nil, &data); err != nil {
		return err
	}
	var cfg struct {
		Storage struct {
			TSDB struct {
				Window model.Duration `yaml:"out_of_order_time_window"`
			} `yaml:"tsdb"`
		} `yaml:"storage"`
	}
	if err := yaml.Unmarshal([]byte(data.YAML), &cfg); err != nil {
		return fmt.Errorf("read the configuration: %w", err)
	}
	// Leave 5 minutes for the job to run before the oldest sample leaves the window.
	oldest := time.Now().Add(-time.Duration(cfg.Storage.TSDB.Window) + 5*time.Minute)
	if time.UnixMilli(start).Before(oldest) {
		return fmt.Errorf("%w: the range starts at %s but Prometheus' storage.tsdb.out_of_order_time_window (%s) only accepts samples after %s: widen the window, %s",
			ErrUnsupported, time.UnixMilli(start).UTC().Format(time.RFC3339), cfg.Storage.TSDB.Window, oldest.UTC().Format(time.RFC3339), openMetricsHint)
	}
	return nil
}

// CleanTombstones implements TombstoneCleaner with Prometheus' admin API.
func (b *HTTPBackend) CleanTombstones(ctx context.Context) error {
	if b.cfg.Kind != KindPrometheus {
		return fmt.Errorf("clean tombstones: %w by %s", ErrUnsupported, b.cfg.Kind)
	}
	_, err := b.call(ctx, "clean tombstones", "/api/v1/admin/tsdb/clean_tombstones", url.Values{})
	return adminError(err)
}
