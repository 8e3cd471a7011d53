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

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"

	"github.com/promgov/promgov/pkg/record"
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
// same batch may be sent again later, a *PartialWriteError when the backend
// wrote part of it and refused the rest, or another error when it must be
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

// NewClient validates cfg and returns a Client. logger may be nil (discard);
// reg may be nil (metrics are not registered). The HTTP client is built
// from cfg.HTTP by Prometheus's own config package: authentication, TLS,
// proxy and headers behave as in a Prometheus remote_write section.
func NewClient(cfg BackendConfig, logger *slog.Logger, reg prometheus.Registerer) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("backend config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := cfg.Name
	if name == "" {
		name = DefaultBackendName
	}
	httpClient, err := config.NewClientFromConfig(cfg.HTTP, "promgov_forward_"+name)
	if err != nil {
		return nil, fmt.Errorf("backend %q HTTP client: %w", name, err)
	}
	c := &Client{
		cfg:       cfg,
		logger:    logger,
		http:      httpClient,
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
//
// A Remote Write 2.0 request answered 415, or answered 2xx without any
// X-Prometheus-Remote-Write-*-Written header (which the 2.0 specification
// says to treat as 415: a 1.0 receiver decodes a 2.0 body as an empty 1.0
// request and stores nothing), switches the Client to 1.0 and sends the
// same batch again as 1.0 before Send returns, so the batch that revealed
// the receiver's protocol is not lost.
func (c *Client) Send(ctx context.Context, tenant string, req *writev2.Request, meta []prompb.MetricMetadata) error {
	return c.send(ctx, tenant, v2Payload{req: req, md: meta})
}

// SendBatch is Send for a batch in pkg/record's form (see BatchSender).
func (c *Client) SendBatch(ctx context.Context, tenant string, batch []byte, sent Counts, meta []prompb.MetricMetadata) error {
	return c.send(ctx, tenant, batchPayload{batch: batch, sent: sent, md: meta})
}

func (c *Client) send(ctx context.Context, tenant string, p payload) error {
	if c.Protocol() == ProtocolV1 {
		return c.sendV1(ctx, tenant, p)
	}
	bufs := c.bufs.Get().(*encodeBuffers)
	defer c.bufs.Put(bufs)
	raw, left, err := p.v2(bufs)
	if err != nil {
		return err
	}
	if len(left) > 0 {
		// 2.0 has no family-level metadata: deliver the rest as 1.0.
		err := c.sendV1(ctx, tenant, v2Payload{req: &writev2.Request{}, md: left})
		switch {
		case err == nil:
		case IsRecoverable(err) || ctx.Err() != nil:
			return fmt.Errorf("send metadata: %w", err)
		case !p.hasSeries():
			c.m.metadataDropped.WithLabelValues(dropReason(err)).Add(float64(len(left)))
			return fmt.Errorf("send metadata: %w", err)
		default:
			c.m.metadataDropped.WithLabelValues(dropReason(err)).Add(float64(len(left)))
			c.logger.Warn("backend rejected metadata-only remote write 1.0 request; metadata dropped, series still sent",
				"tenant", tenant, "metadata", len(left), "err", err)
		}
	}
	if !p.hasSeries() {
		return nil
	}
	sent := p.counts()
	ans, err := c.post(ctx, tenant, ProtocolV2, bufs, raw)
	var he *HTTPError
	switch {
	case err == nil:
		written, present := readWritten(ans.header, sent, noneWritten)
		if !present {
			c.fallBack("no_written_headers", "backend answered remote write 2.0 with 2xx but without X-Prometheus-Remote-Write-*-Written headers, so it stored nothing (a 1.0 receiver); re-sending the batch and using remote write 1.0 from now on")
			return c.sendV1(ctx, tenant, p)
		}
		return c.partial(tenant, ans.status, sent, written, nil)
	case errors.As(err, &he) && he.Status == http.StatusUnsupportedMediaType:
		c.fallBack("415", "backend answered 415 to remote write 2.0; re-sending the batch and using remote write 1.0 from now on")
		return c.sendV1(ctx, tenant, p)
	case errors.As(err, &he) && !IsRecoverable(err):
		// 2.0: a header missing from a 4xx answer means none of that kind
		// was written.
		written, _ := readWritten(ans.header, sent, noneWritten)
		return c.partial(tenant, he.Status, sent, written, he)
	default:
		return err
	}
}

// partial turns the written counts of an answer into Send's result: nil
// when everything was written, he unchanged when nothing was, a
// *PartialWriteError otherwise (its unwritten elements are counted in
// promgov_forward_partial_write_total).
func (c *Client) partial(tenant string, status int, sent, written Counts, he *HTTPError) error {
	switch {
	case written == sent && he == nil:
		return nil
	case written.Total() == 0 && he != nil:
		return he
	}
	c.m.partial.WithLabelValues("samples").Add(float64(sent.Samples - written.Samples))
	c.m.partial.WithLabelValues("histograms").Add(float64(sent.Histograms - written.Histograms))
	c.m.partial.WithLabelValues("exemplars").Add(float64(sent.Exemplars - written.Exemplars))
	c.logger.Debug("backend wrote part of a request", "tenant", tenant, "status", status,
		"samples", written.Samples, "of_samples", sent.Samples, "histograms", written.Histograms, "of_histograms", sent.Histograms,
		"exemplars", written.Exemplars, "of_exemplars", sent.Exemplars)
	pe := &PartialWriteError{Status: status, Sent: sent, Written: written}
	if he != nil {
		pe.Err = he
	}
	return pe
}

// readWritten reads the X-Prometheus-Remote-Write-*-Written headers of an
// answer to a request carrying sent. present reports whether any of them
// is there. For a missing or unparseable header, missing(sent) is taken as
// written; values are clamped to [0, sent].
func readWritten(h http.Header, sent Counts, missing func(int) int) (written Counts, present bool) {
	read := func(name string, n int) int {
		v := h.Get(name)
		got, err := strconv.ParseInt(v, 10, 64)
		if v == "" || err != nil {
			return missing(n)
		}
		present = true
		return int(max(0, min(got, int64(n))))
	}
	written = Counts{
		Samples:    read(headerSamplesWritten, sent.Samples),
		Histograms: read(headerHistogramWritten, sent.Histograms),
		Exemplars:  read(headerExemplarsWritten, sent.Exemplars),
	}
	return written, present
}

// noneWritten and allWritten are what a missing Written header means: in
// an answer to 2.0 (2xx or 4xx) the specification lets a sender assume 0;
// in a 2xx answer to 1.0 nothing can be assumed but success.
func noneWritten(int) int  { return 0 }
func allWritten(n int) int { return n }

// sendV1 converts and posts a batch as Remote Write 1.0. Written headers
// are read when the receiver sends them (the 1.0 specification has none):
// on a 2xx a missing one means all of that kind was written, on a 4xx none.
func (c *Client) sendV1(ctx context.Context, tenant string, p payload) error {
	bufs := c.bufs.Get().(*encodeBuffers)
	defer c.bufs.Put(bufs)
	raw, any, err := p.v1(bufs)
	if err != nil {
		return err
	}
	if !any {
		return nil
	}
	sent := p.counts()
	ans, err := c.post(ctx, tenant, ProtocolV1, bufs, raw)
	var he *HTTPError
	switch {
	case err == nil:
		if written, present := readWritten(ans.header, sent, allWritten); present {
			return c.partial(tenant, ans.status, sent, written, nil)
		}
		return nil
	case errors.As(err, &he) && !IsRecoverable(err):
		if written, present := readWritten(ans.header, sent, noneWritten); present {
			return c.partial(tenant, he.Status, sent, written, he)
		}
		return err
	default:
		return err
	}
}

// encodeBuffers are one request's encoding buffers, pooled by the Client.
type encodeBuffers struct {
	proto  []byte
	snappy []byte
	v1     record.V1Encoder
	v2     record.V2Encoder
}

// marshaler is what both protocol's request types offer.
type marshaler interface {
	Size() int
	MarshalToSizedBuffer([]byte) (int, error)
}

// marshal marshals msg into b.proto. The result is valid until the next
// call.
func (b *encodeBuffers) marshal(msg marshaler) ([]byte, error) {
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
	return raw[size-n:], nil
}

// compress snappy-compresses raw into b.snappy: a snappy block (what
// Remote Write requires; any snappy decoder reads it) written by
// klauspost/compress/s2, about three times faster than golang/snappy's
// encoder on forward requests and a little smaller.
func (b *encodeBuffers) compress(raw []byte) []byte {
	if need := s2.MaxEncodedLen(len(raw)); need > cap(b.snappy) {
		b.snappy = make([]byte, need)
	}
	b.snappy = s2.EncodeSnappy(b.snappy[:cap(b.snappy)], raw)
	return b.snappy
}

// answer is the status and headers of the backend's HTTP answer.
type answer struct {
	status int
	header http.Header
}

// post compresses raw and performs one HTTP request, classifying the outcome:
// nil error for a 2xx, a *RecoverableError for 5xx, 429 and network
// errors, an *HTTPError otherwise. The answer is valid whenever the backend
// answered, whatever the status.
func (c *Client) post(ctx context.Context, tenant string, proto int, bufs *encodeBuffers, raw []byte) (answer, error) {
	body := bufs.compress(raw)

	reqCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	httpReq, err := http.NewRequestWithContext(reqCtx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("build request: %w", err)
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
	for k, v := range c.cfg.Headers {
		httpReq.Header.Set(k, v)
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
			return answer{}, fmt.Errorf("post %s: %w", c.cfg.URL, ctx.Err())
		}
		return answer{}, &RecoverableError{Err: fmt.Errorf("post %s: %w", c.cfg.URL, err)}
	}
	defer resp.Body.Close()
	msgBody, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // allow connection reuse
	c.m.requests.WithLabelValues(protoLabel, strconv.Itoa(resp.StatusCode/100)+"xx").Observe(time.Since(start).Seconds())

	ans := answer{status: resp.StatusCode, header: resp.Header}
	switch {
	case resp.StatusCode/100 == 2:
		return ans, nil
	case resp.StatusCode/100 == 5 || resp.StatusCode == http.StatusTooManyRequests:
		return ans, &RecoverableError{
			Err:        &HTTPError{Status: resp.StatusCode, Body: string(msgBody)},
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	default:
		return ans, &HTTPError{Status: resp.StatusCode, Body: string(msgBody)}
	}
}
