package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/snappy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Remote Write HTTP header names and values.
const (
	headerVersion          = "X-Prometheus-Remote-Write-Version"
	headerSamplesWritten   = "X-Prometheus-Remote-Write-Samples-Written"
	headerHistogramWritten = "X-Prometheus-Remote-Write-Histograms-Written"
	headerExemplarsWritten = "X-Prometheus-Remote-Write-Exemplars-Written"
	contentTypeV1          = "application/x-protobuf"
	contentTypeV2          = "application/x-protobuf;proto=io.prometheus.write.v2.Request"
	versionV1              = "0.1.0"
	versionV2              = "2.0.0"
)

// Sender sends one batch for one tenant to the backend. It returns nil when
// the batch was written, an error for which IsRecoverable is true when the
// same batch may be sent again later, or another error when it must be
// dropped. Implementations must be safe for concurrent use; the Forwarder
// calls Send from all its shards at once and never modifies req or meta
// during or after the call.
type Sender interface {
	Send(ctx context.Context, tenant string, req *writev2.Request, meta []prompb.MetricMetadata) error
}

// SenderFunc adapts an ordinary function to Sender (handy for tests and
// for wrapping a Client). It is as concurrency-safe as the function.
type SenderFunc func(ctx context.Context, tenant string, req *writev2.Request, meta []prompb.MetricMetadata) error

// Send calls fn.
func (fn SenderFunc) Send(ctx context.Context, tenant string, req *writev2.Request, meta []prompb.MetricMetadata) error {
	return fn(ctx, tenant, req, meta)
}

var (
	_ Sender = (*Client)(nil)
	_ Sender = SenderFunc(nil)
)

// Client writes batches to one Remote Write endpoint. It starts with
// BackendConfig.Protocol and permanently falls back from 2.0 to 1.0 when the
// backend shows it only speaks 1.0. It is safe for concurrent use and starts
// no goroutines; Close releases idle connections.
type Client struct {
	cfg       BackendConfig
	logger    *slog.Logger
	http      *http.Client
	userAgent string
	protocol  atomic.Int32
	bufs      sync.Pool // *encodeBuffers
	m         clientMetrics
}

type encodeBuffers struct {
	proto  []byte
	snappy []byte
}

// NewClient validates cfg and returns a Client. logger may be nil (discard);
// reg may be nil (metrics are not registered).
func NewClient(cfg BackendConfig, logger *slog.Logger, reg prometheus.Registerer) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("backend config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	c := &Client{
		cfg:       cfg,
		logger:    logger,
		http:      &http.Client{Transport: transport},
		userAgent: "promgov/" + buildVersion(),
		m:         newClientMetrics(reg),
	}
	c.bufs.New = func() any { return &encodeBuffers{} }
	c.setProtocol(int32(cfg.Protocol))
	return c, nil
}

// buildVersion is the main module's version from the build info.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Protocol returns the Remote Write version currently in use (1 or 2).
func (c *Client) Protocol() int { return int(c.protocol.Load()) }

func (c *Client) setProtocol(p int32) {
	c.protocol.Store(p)
	c.m.protocol.Set(float64(p))
}

// fallBack switches from 2.0 to 1.0 once, logging and counting the reason.
func (c *Client) fallBack(reason, msg string) {
	if c.protocol.CompareAndSwap(ProtocolV2, ProtocolV1) {
		c.m.protocol.Set(ProtocolV1)
		c.m.fallbacks.WithLabelValues(reason).Inc()
		c.logger.Warn(msg, "url", c.cfg.URL, "reason", reason)
	}
}

// Close releases idle connections. The Client must not be used afterwards.
func (c *Client) Close(context.Context) error {
	c.http.CloseIdleConnections()
	return nil
}

// Send writes one batch for tenant. See Sender for the error contract and
// the package documentation for how meta is carried by each protocol.
func (c *Client) Send(ctx context.Context, tenant string, req *writev2.Request, meta []prompb.MetricMetadata) error {
	if c.Protocol() == ProtocolV1 {
		return c.sendV1(ctx, tenant, req, meta)
	}
	req2, left, err := attachMetadata(req, meta)
	if err != nil {
		return fmt.Errorf("attach metadata: %w", err)
	}
	if len(left) > 0 {
		// 2.0 has no family-level metadata: deliver the rest as 1.0.
		err := c.sendV1(ctx, tenant, &writev2.Request{}, left)
		switch {
		case err == nil:
		case IsRecoverable(err) || ctx.Err() != nil:
			return fmt.Errorf("send metadata: %w", err)
		case len(req.Timeseries) == 0:
			c.m.metadataDropped.WithLabelValues(dropReason(err)).Add(float64(len(left)))
			return fmt.Errorf("send metadata: %w", err)
		default:
			c.m.metadataDropped.WithLabelValues(dropReason(err)).Add(float64(len(left)))
			c.logger.Warn("backend rejected metadata-only remote write 1.0 request; metadata dropped, series still sent",
				"tenant", tenant, "metadata", len(left), "err", err)
		}
	}
	if len(req.Timeseries) == 0 {
		return nil
	}
	resp, err := c.post(ctx, tenant, ProtocolV2, req2)
	if err != nil {
		var he *HTTPError
		if errors.As(err, &he) && he.Status == http.StatusUnsupportedMediaType {
			c.fallBack("415", "backend answered 415 to remote write 2.0; using remote write 1.0 from now on")
			if c.Protocol() == ProtocolV1 {
				return c.sendV1(ctx, tenant, req, meta)
			}
		}
		return err
	}
	c.checkWritten(tenant, req, resp)
	return nil
}

// checkWritten interprets the *-Written headers of a 2xx answer to 2.0.
func (c *Client) checkWritten(tenant string, req *writev2.Request, h http.Header) {
	type stat struct {
		header string
		kind   string
		sent   int
	}
	var samples, hists, exemplars int
	for i := range req.Timeseries {
		samples += len(req.Timeseries[i].Samples)
		hists += len(req.Timeseries[i].Histograms)
		exemplars += len(req.Timeseries[i].Exemplars)
	}
	stats := [...]stat{
		{headerSamplesWritten, "samples", samples},
		{headerHistogramWritten, "histograms", hists},
		{headerExemplarsWritten, "exemplars", exemplars},
	}
	seen := false
	var missing []any
	for _, s := range stats {
		v := h.Get(s.header)
		if v == "" {
			continue
		}
		seen = true
		n, err := strconv.Atoi(v)
		if err != nil || n >= s.sent {
			continue
		}
		c.m.partial.WithLabelValues(s.kind).Add(float64(s.sent - n))
		missing = append(missing, s.kind, s.sent-n)
	}
	if !seen {
		c.fallBack("no_written_headers", "backend answered remote write 2.0 without X-Prometheus-Remote-Write-*-Written headers; treating it as a 1.0 receiver from now on")
		return
	}
	if len(missing) > 0 {
		c.logger.Debug("backend partially wrote a remote write 2.0 request; not retried", append([]any{"tenant", tenant}, missing...)...)
	}
}

// sendV1 converts and posts a batch as Remote Write 1.0.
func (c *Client) sendV1(ctx context.Context, tenant string, req *writev2.Request, meta []prompb.MetricMetadata) error {
	v1, err := ToV1(req, meta)
	if err != nil {
		return fmt.Errorf("convert to remote write 1.0: %w", err)
	}
	if len(v1.Timeseries) == 0 && len(v1.Metadata) == 0 {
		return nil
	}
	_, err = c.post(ctx, tenant, ProtocolV1, v1)
	return err
}

// marshaler is what both protocol's request types offer.
type marshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// encode marshals msg and snappy-compresses it into b's buffers. The
// result is valid until the next call.
func (b *encodeBuffers) encode(msg marshaler) ([]byte, error) {
	size := msg.Size()
	if cap(b.proto) < size {
		b.proto = make([]byte, size)
	}
	raw := b.proto[:size]
	var n int
	var err error
	if v2, ok := msg.(*writev2.Request); ok {
		// Avoids a temporary buffer per series for packed label refs.
		n, err = v2.OptimizedMarshalToSizedBuffer(raw)
	} else {
		n, err = msg.MarshalToSizedBuffer(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("marshal: %w: %w", ErrInvalidBatch, err)
	}
	b.snappy = snappy.Encode(b.snappy[:cap(b.snappy)], raw[size-n:])
	return b.snappy, nil
}

// post encodes msg and performs one HTTP request, classifying the outcome.
func (c *Client) post(ctx context.Context, tenant string, proto int, msg marshaler) (http.Header, error) {
	bufs := c.bufs.Get().(*encodeBuffers)
	defer c.bufs.Put(bufs)
	body, err := bufs.encode(msg)
	if err != nil {
		return nil, err
	}

	reqCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	httpReq.Header.Set("Content-Encoding", "snappy")
	httpReq.Header.Set("User-Agent", c.userAgent)
	if proto == ProtocolV2 {
		httpReq.Header.Set("Content-Type", contentTypeV2)
		httpReq.Header.Set(headerVersion, versionV2)
	} else {
		httpReq.Header.Set("Content-Type", contentTypeV1)
		httpReq.Header.Set(headerVersion, versionV1)
	}
	if c.cfg.TenantHeader != "" && tenant != "" {
		httpReq.Header.Set(c.cfg.TenantHeader, tenant)
	}

	protoLabel := "1"
	if proto == ProtocolV2 {
		protoLabel = "2"
	}
	start := time.Now()
	resp, err := c.http.Do(httpReq)
	if err != nil {
		c.m.requests.WithLabelValues(protoLabel, "error").Observe(time.Since(start).Seconds())
		if ctx.Err() != nil {
			return nil, fmt.Errorf("post %s: %w", c.cfg.URL, ctx.Err())
		}
		return nil, &RecoverableError{Err: fmt.Errorf("post %s: %w", c.cfg.URL, err)}
	}
	defer resp.Body.Close()
	msgBody, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // allow connection reuse
	c.m.requests.WithLabelValues(protoLabel, strconv.Itoa(resp.StatusCode/100)+"xx").Observe(time.Since(start).Seconds())

	switch {
	case resp.StatusCode/100 == 2:
		return resp.Header, nil
	case resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, &RecoverableError{
			Err:        &HTTPError{Status: resp.StatusCode, Body: string(msgBody)},
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	default:
		return nil, &HTTPError{Status: resp.StatusCode, Body: string(msgBody)}
	}
}
