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
}

// Release returns the buffers; Payload must not be used afterwards.
func (b *Body) Release() {
	if b.pooled != nil {
		b.d.decodePool.Put(b.pooled)
		b.pooled = nil
	}
	b.Payload = nil
}

// Read negotiates the protocol, enforces the size limits and decompresses
// the body (errors as Decode's). The caller decodes the payload
// (DecodePayload, or a Scanner first) and releases it.
func (d *Decoder) Read(r *http.Request) (*Body, error) {
	proto, err := ParseContentType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	if err := CheckContentEncoding(r.Header.Get("Content-Encoding")); err != nil {
		return nil, err
	}

	body := d.getBody()
	defer d.bodyPool.Put(body)
	if err := d.readBody(r, body); err != nil {
		return nil, err
	}

	payload, pooled, err := d.decompress(body.Bytes())
	if err != nil {
		return nil, err
	}
	return &Body{Protocol: proto, Payload: payload, d: d, pooled: pooled}, nil
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

// readBody reads at most MaxCompressedBytes+1 bytes of r.Body into buf.
func (d *Decoder) readBody(r *http.Request, buf *bytes.Buffer) error {
	limit := d.cfg.MaxCompressedBytes
	if r.ContentLength > limit {
		return &LimitError{What: whatCompressed, Flag: d.cfg.flagName(flagMaxCompressed), Limit: limit, Got: r.ContentLength}
	}
	if r.Body == nil {
		return nil
	}
	// The declared length is only a claim: grow with what arrives, so that a
	// client that declares 10 MiB and trickles bytes holds what it sent.
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, initialBodyGuess)))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return fmt.Errorf("%w: read request body: %w", ErrBadRequest, err)
	}
	if n > limit {
		return &LimitError{What: whatCompressed, Flag: d.cfg.flagName(flagMaxCompressed), Limit: limit, Got: n, AtLeast: true}
	}
	return nil
}

// decompress checks the snappy header's decoded length against the limit and
// decodes into a pooled buffer, which the caller returns to decodePool once
// payload is no longer used.
func (d *Decoder) decompress(compressed []byte) (payload []byte, pooled *[]byte, err error) {
	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return nil, nil, badRequest("invalid snappy block (%d bytes): %v", len(compressed), err)
	}
	if int64(n) > d.cfg.MaxDecodedBytes {
		return nil, nil, &LimitError{What: whatDecoded, Flag: d.cfg.flagName(flagMaxDecoded), Limit: d.cfg.MaxDecodedBytes, Got: int64(n)}
	}
	bp, _ := d.decodePool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if cap(*bp) < n {
		*bp = make([]byte, n)
	}
	out, err := snappy.Decode((*bp)[:n], compressed)
	if err != nil {
		d.decodePool.Put(bp)
		return nil, nil, badRequest("invalid snappy block (%d bytes): %v", len(compressed), err)
	}
	return out, bp, nil
}

func (d *Decoder) getBody() *bytes.Buffer {
	b, _ := d.bodyPool.Get().(*bytes.Buffer)
	if b == nil {
		return new(bytes.Buffer)
	}
	b.Reset()
	return b
}
