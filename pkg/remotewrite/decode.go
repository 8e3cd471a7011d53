package remotewrite

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// LimitError.What values.
const (
	whatCompressed = "compressed request body"
	whatDecoded    = "decoded request"
)

// Decoded is a decoded, converted and validated remote write request.
//
// Every string in Request and Metadata is a heap copy owned by the Decoded
// (gogo's generated Unmarshal copies strings out of the input buffer), so the
// value stays valid after Release and after the pooled buffers are reused.
type Decoded struct {
	// Protocol is the protocol the request was sent with.
	Protocol Protocol
	// Request holds the valid series only; its symbols are local to it.
	Request writev2.Request
	// Metadata is Remote Write 1.0 family metadata (V1 only), kept separate
	// from the series.
	Metadata []prompb.MetricMetadata
	// Rejected is how many invalid series were removed.
	Rejected int
	// FirstInvalid names the first invalid series and why; "" if none.
	FirstInvalid string
	// Sorted is how many series arrived with unsorted label names and were
	// sorted (as Prometheus's own receiver does) instead of being refused.
	Sorted int
	// Origin, when asked for (DecodePayload), holds for each series of
	// Request the index of the payload's series it came from, and
	// WasSorted whether validation sorted its labels.
	Origin    []int32
	WasSorted []bool
}

// Release drops d's references so its memory can be collected sooner. It is
// optional and idempotent. The decoder's pooled buffers are already returned
// before Decode returns, so Release never invalidates strings a caller kept.
func (d *Decoded) Release() {
	if d == nil {
		return
	}
	*d = Decoded{}
}

// Decoder turns HTTP remote write requests into Decoded values. It holds
// buffer pools and is safe for concurrent use.
type Decoder struct {
	cfg        Config
	validation validationOpts // with the size limits
	bodyPool   sync.Pool      // *bytes.Buffer for compressed bodies
	decodePool sync.Pool      // *[]byte for decompressed payloads
}

// NewDecoder returns a Decoder for cfg, which should have passed Validate;
// non-positive limits and empty tenant settings fall back to the defaults.
func NewDecoder(cfg Config) *Decoder {
	def := DefaultConfig()
	if cfg.MaxCompressedBytes <= 0 {
		cfg.MaxCompressedBytes = def.MaxCompressedBytes
	}
	if cfg.MaxDecodedBytes <= 0 {
		cfg.MaxDecodedBytes = def.MaxDecodedBytes
	}
	if cfg.DefaultTenant == "" {
		cfg.DefaultTenant = def.DefaultTenant
	}
	if cfg.TenantHeader == "" {
		cfg.TenantHeader = def.TenantHeader
	}
	for _, b := range []struct {
		val *int
		def int
	}{
		{&cfg.MaxLabelNameLength, def.MaxLabelNameLength},
		{&cfg.MaxLabelValueLength, def.MaxLabelValueLength},
		{&cfg.MaxLabelNamesPerSeries, def.MaxLabelNamesPerSeries},
		{&cfg.MaxSeriesPerRequest, def.MaxSeriesPerRequest},
		{&cfg.MaxBucketsPerHistogram, def.MaxBucketsPerHistogram},
	} {
		if *b.val <= 0 {
			*b.val = b.def
		}
	}
	if cfg.NameValidationScheme == "" {
		cfg.NameValidationScheme = def.NameValidationScheme
	}
	return &Decoder{cfg: cfg, validation: validationOpts{
		legacyNames: cfg.NameValidationScheme == NameSchemeLegacy,
		lim:         newLimits(&cfg),
	}}
}

// Decode negotiates the protocol, enforces the size limits, decompresses and
// unmarshals the body, converts Remote Write 1.0 to the internal 2.0 form and
// removes invalid series. Errors wrap ErrUnsupportedMediaType (415),
// ErrBadRequest (400) or are a *LimitError matching ErrTooLarge (413).
// Invalid series are not an error: see Decoded.Rejected and FirstInvalid.
func (d *Decoder) Decode(r *http.Request) (*Decoded, error) {
	b, err := d.Read(r)
	if err != nil {
		return nil, err
	}
	defer b.Release()
	return d.DecodePayload(b.Protocol, b.Payload, false)
}

// Body is a request's negotiated protocol and decompressed payload, in the
// decoder's pooled buffers until Release.
type Body struct {
	Protocol Protocol
	Payload  []byte
	d        *Decoder
	pooled   *[]byte
	budget   Budget
	held     int64 // reserved in budget for Payload
}

// Release returns the buffers and the budget; Payload must not be used
// afterwards.
func (b *Body) Release() {
	if b.pooled != nil {
		b.d.putDecoded(b.pooled)
		b.pooled = nil
	}
	if b.held > 0 {
		b.budget.Release(b.held)
		b.held = 0
	}
	b.Payload = nil
}

// maxPooledBuffer is the largest buffer the decoder keeps for reuse: a
// burst of large requests leaves nothing pinned behind it, while the
// requests senders send by the thousand (a few hundred KiB) reuse theirs.
const maxPooledBuffer = 4 << 20

// Read negotiates the protocol, enforces the size limits and decompresses
// the body (errors as Decode's). The caller decodes the payload
// (DecodePayload, or a Scanner first) and releases it.
func (d *Decoder) Read(r *http.Request) (*Body, error) { return d.ReadWithin(r, nil) }

// ReadWithin is Read with the bytes held reserved in budget (nil: none):
// the compressed body as it arrives, then the decompressed payload before
// it is allocated. An exhausted budget is an error wrapping ErrOverloaded.
func (d *Decoder) ReadWithin(r *http.Request, budget Budget) (*Body, error) {
	proto, err := ParseContentType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	if err := CheckContentEncoding(r.Header.Get("Content-Encoding")); err != nil {
		return nil, err
	}

	body := d.getBody()
	defer d.putBody(body)
	var src io.Reader = r.Body
	var br *budgetReader
	if budget != nil && r.Body != nil {
		br = &budgetReader{r: r.Body, b: budget}
		src = br
		defer func() { budget.Release(br.held) }()
	}
	if err := d.readBody(r.ContentLength, src, body); err != nil {
		return nil, err
	}

	n, err := snappy.DecodedLen(body.Bytes())
	if err != nil {
		return nil, badRequest("invalid snappy block (%d bytes): %v", body.Len(), err)
	}
	if int64(n) > d.cfg.MaxDecodedBytes {
		return nil, &LimitError{What: whatDecoded, Flag: d.cfg.flagName(flagMaxDecoded), Limit: d.cfg.MaxDecodedBytes, Got: int64(n)}
	}
	out := &Body{Protocol: proto, d: d}
	if budget != nil {
		// The body and the payload are reserved together (a request alone
		// is let through whatever its size; see ByteBudget); the body's
		// part is returned when ReadWithin returns, the payload's on
		// Release.
		var bodyHeld int64
		if br != nil {
			bodyHeld, br.held = br.held, 0
			budget.Release(bodyHeld)
		}
		if err := budget.Acquire(bodyHeld + int64(n)); err != nil {
			return nil, err
		}
		if br != nil {
			br.held = bodyHeld
		}
		out.budget, out.held = budget, int64(n)
	}
	out.Payload, out.pooled, err = d.decompress(body.Bytes(), n)
	if err != nil {
		out.Release()
		return nil, err
	}
	return out, nil
}

// DecodePayload unmarshals, converts and validates an uncompressed payload
// within the decoder's limits; with origin, Decoded.Origin maps each series
// back to the payload's. The result does not alias payload.
func (d *Decoder) DecodePayload(proto Protocol, payload []byte, origin bool) (*Decoded, error) {
	out := &Decoded{Protocol: proto}
	opts, lim := d.validation, d.validation.lim
	switch proto {
	case ProtocolV1:
		req, meta, p, o, err := decodeV1Origin(payload, lim, origin)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return nil, err
			}
			return nil, badRequest("decode %s protobuf: %v", ProtoMessageV1, err)
		}
		out.Request, out.Metadata, opts.pre, out.Origin = req, meta, p, o
	case ProtocolV2:
		if err := lim.countSeriesV2(payload); err != nil {
			return nil, err
		}
		if err := out.Request.Unmarshal(payload); err != nil {
			return nil, badRequest("decode %s protobuf: %v", ProtoMessageV2, err)
		}
		if len(out.Request.Symbols) > 0 && out.Request.Symbols[0] != "" {
			return nil, badRequest("symbols[0] must be the empty string as the %s spec requires, got %q",
				ProtoMessageV2, truncate(out.Request.Symbols[0], maxRenderedValue))
		}
		if origin {
			out.Origin = make([]int32, len(out.Request.Timeseries))
			for i := range out.Origin {
				out.Origin[i] = int32(i)
			}
		}
	default:
		return nil, fmt.Errorf("%w: unknown protocol %d", ErrUnsupportedMediaType, int(proto))
	}
	if origin {
		opts.origin, opts.sortedOut = &out.Origin, &out.WasSorted
	}
	out.Rejected, out.FirstInvalid, out.Sorted = validateRequest(&out.Request, opts)
	return out, nil
}

// initialBodyGuess bounds what readBody reserves from a declared
// Content-Length before the bytes arrive.
const initialBodyGuess = 64 << 10

// readBody reads at most MaxCompressedBytes+1 bytes of body, whose declared
// length is contentLength (-1: unknown), into buf.
func (d *Decoder) readBody(contentLength int64, body io.Reader, buf *bytes.Buffer) error {
	limit := d.cfg.MaxCompressedBytes
	if contentLength > limit {
		return &LimitError{What: whatCompressed, Flag: d.cfg.flagName(flagMaxCompressed), Limit: limit, Got: contentLength}
	}
	if body == nil {
		return nil
	}
	// The declared length is only a claim: grow with what arrives, so that a
	// client that declares 10 MiB and trickles bytes holds what it sent.
	if contentLength > 0 {
		buf.Grow(int(min(contentLength, initialBodyGuess)))
	}
	n, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	if errors.Is(err, ErrOverloaded) {
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: read request body: %w", ErrBadRequest, err)
	}
	if n > limit {
		return &LimitError{What: whatCompressed, Flag: d.cfg.flagName(flagMaxCompressed), Limit: limit, Got: n, AtLeast: true}
	}
	return nil
}

// decompress decodes compressed, whose decoded length n was checked
// against the limit, into a pooled buffer, which the caller returns with
// putDecoded once payload is no longer used.
func (d *Decoder) decompress(compressed []byte, n int) (payload []byte, pooled *[]byte, err error) {
	bp, _ := d.decodePool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	out, err := snappy.Decode((*bp)[:n], compressed)
	if err != nil {
		d.putDecoded(bp)
		return nil, nil, badRequest("invalid snappy block (%d bytes): %v", len(compressed), err)
	}
	return out, bp, nil
}

// putDecoded returns a payload buffer to the pool unless it is too large
// to keep.
func (d *Decoder) putDecoded(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		d.decodePool.Put(bp)
	}
}

func (d *Decoder) getBody() *bytes.Buffer {
	b, _ := d.bodyPool.Get().(*bytes.Buffer)
	if b == nil {
		return new(bytes.Buffer)
	}
	b.Reset()
	return b
}

// putBody returns a body buffer to the pool unless it is too large to keep.
func (d *Decoder) putBody(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBuffer {
		d.bodyPool.Put(b)
	}
}
