package remotewrite

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
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
	flagPrefix string         // of cfg's flags, for LimitError.Flag
	validation validationOpts // with the size limits
	bufs       bufPool        // compressed bodies and decompressed payloads
}

// NewDecoder returns a Decoder for cfg, which should have passed Validate;
// non-positive limits and empty tenant settings fall back to the defaults.
// flagPrefix is the prefix cfg's flags are registered under
// (Config.RegisterFlags), so that a LimitError names the exact flag.
func NewDecoder(cfg Config, flagPrefix string) *Decoder {
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
	return &Decoder{cfg: cfg, flagPrefix: flagPrefix, validation: validationOpts{
		legacyNames: cfg.NameValidationScheme == NameSchemeLegacy,
		lim:         newLimits(&cfg, flagPrefix),
	}}
}

// flagName returns the full command-line flag name for name.
func (d *Decoder) flagName(name string) string { return d.flagPrefix + name }

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
	held     int64 // reserved in budget for pooled
}

// Release returns the buffers and the budget; Payload must not be used
// afterwards.
func (b *Body) Release() {
	if b.pooled != nil {
		b.d.bufs.put(b.pooled)
		b.pooled = nil
	}
	if b.held > 0 {
		b.budget.Release(b.held)
		b.held = 0
	}
	b.Payload = nil
}

// Read negotiates the protocol, enforces the size limits and decompresses
// the body (errors as Decode's). The caller decodes the payload
// (DecodePayload, or a Scanner first) and releases it.
func (d *Decoder) Read(r *http.Request) (*Body, error) { return d.ReadWithin(r, nil) }

// ReadWithin is Read with the memory it holds reserved in budget (nil:
// none): the capacity of the compressed body's buffer as the body arrives,
// then that of the decompressed payload's before it is allocated. An
// exhausted budget is an error wrapping ErrOverloaded.
func (d *Decoder) ReadWithin(r *http.Request, budget Budget) (*Body, error) {
	proto, err := ParseContentType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	if err := CheckContentEncoding(r.Header.Get("Content-Encoding")); err != nil {
		return nil, err
	}
	if budget == nil {
		budget = unbounded{}
	}

	rb := bodyReader{bufs: &d.bufs, budget: budget}
	defer rb.release()
	compressed, err := d.readBody(r.ContentLength, r.Body, &rb)
	if err != nil {
		return nil, err
	}

	n, err := snappy.DecodedLen(compressed)
	if err != nil {
		return nil, badRequest("invalid snappy block (%d bytes): %v", len(compressed), err)
	}
	if int64(n) > d.cfg.MaxDecodedBytes {
		return nil, &LimitError{What: whatDecoded, Flag: d.flagName(flagMaxDecoded), Limit: d.cfg.MaxDecodedBytes, Got: int64(n)}
	}
	held := int64(bufCap(n))
	if err := budget.Acquire(held); err != nil {
		return nil, err
	}
	out := &Body{Protocol: proto, d: d, budget: budget, held: held, pooled: d.bufs.get(n)}
	out.Payload, err = snappy.Decode((*out.pooled)[:n], compressed)
	if err != nil {
		out.Release()
		return nil, badRequest("invalid snappy block (%d bytes): %v", len(compressed), err)
	}
	return out, nil
}

// unbounded is the Budget of a caller without one.
type unbounded struct{}

func (unbounded) Acquire(int64) error { return nil }
func (unbounded) Release(int64)       {}

// DecodePayload unmarshals, converts and validates an uncompressed payload
// within the decoder's limits; with origin, Decoded.Origin maps each series
// back to the payload's. The result does not alias payload.
func (d *Decoder) DecodePayload(proto Protocol, payload []byte, origin bool) (*Decoded, error) {
	return d.DecodePayloadWith(nil, proto, payload, origin)
}

// DecodeBuffers is the memory a decode works in (the interning table, the
// label, sample and series arenas of a Remote Write 1.0 payload), kept
// for the next decode by the same owner so that a request whose series
// are decoded costs no arena of its own. The zero value is ready to use.
// Not safe for concurrent use.
type DecodeBuffers struct {
	v1  v1Decoder
	out Decoded
}

// DecodePayloadWith is DecodePayload in b's memory (nil: its own). What it
// returns aliases b and is valid until b's next use; strings in it are
// allocated and may be kept.
func (d *Decoder) DecodePayloadWith(b *DecodeBuffers, proto Protocol, payload []byte, origin bool) (*Decoded, error) {
	var v1 *v1Decoder
	out := &Decoded{}
	if b != nil {
		v1, out = &b.v1, &b.out
		*out = Decoded{WasSorted: out.WasSorted[:0]}
	} else {
		v1 = &v1Decoder{}
	}
	out.Protocol = proto
	opts, lim := d.validation, d.validation.lim
	switch proto {
	case ProtocolV1:
		req, meta, p, o, err := v1.decode(payload, lim, origin)
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
// length is contentLength (-1: unknown), into rb's buffer.
func (d *Decoder) readBody(contentLength int64, body io.Reader, rb *bodyReader) ([]byte, error) {
	limit := d.cfg.MaxCompressedBytes
	if contentLength > limit {
		return nil, &LimitError{What: whatCompressed, Flag: d.flagName(flagMaxCompressed), Limit: limit, Got: contentLength}
	}
	if body == nil {
		return nil, nil
	}
	// The declared length is only a claim: grow with what arrives (doubling,
	// in pooled buffers), so that a client that declares 10 MiB and
	// trickles bytes holds what it sent.
	size := initialBodyGuess
	if contentLength >= 0 {
		size = int(min(contentLength+1, initialBodyGuess))
	}
	if err := rb.grow(size); err != nil {
		return nil, err
	}
	body = io.LimitReader(body, limit+1)
	for {
		b := *rb.buf
		if len(b) == cap(b) {
			if err := rb.grow(int(min(2*int64(cap(b)), limit+1))); err != nil {
				return nil, err
			}
			b = *rb.buf
		}
		n, err := body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		*rb.buf = b
		if int64(len(b)) > limit {
			return nil, &LimitError{What: whatCompressed, Flag: d.flagName(flagMaxCompressed), Limit: limit, Got: int64(len(b)), AtLeast: true}
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: read request body: %w", ErrBadRequest, err)
		}
	}
}

// bodyReader is the buffer of a body being read, with its capacity held
// in a budget.
type bodyReader struct {
	bufs   *bufPool
	budget Budget
	buf    *[]byte
	held   int64
}

// grow replaces the buffer by one of at least size bytes, holding its
// capacity in the budget first.
func (rb *bodyReader) grow(size int) error {
	c := int64(bufCap(size))
	if err := rb.budget.Acquire(c); err != nil {
		return err
	}
	nb := rb.bufs.get(size)
	if rb.buf != nil {
		*nb = append((*nb)[:0], *rb.buf...)
		rb.release()
	}
	rb.buf, rb.held = nb, c
	return nil
}

// release returns the buffer and its budget.
func (rb *bodyReader) release() {
	if rb.buf != nil {
		rb.bufs.put(rb.buf)
		rb.buf = nil
	}
	rb.budget.Release(rb.held)
	rb.held = 0
}

// Buffer size classes: powers of two from 4 KiB to 128 MiB. A request
// takes a buffer of its class, so a burst of large requests leaves large
// buffers that only large requests reuse (sync.Pool lets the garbage
// collector take them back after the burst), and the memory a request
// holds is at most twice what it needs.
const (
	minBufShift = 12
	bufClasses  = 16
)

// bufPool pools byte buffers by size class. Safe for concurrent use.
type bufPool struct{ classes [bufClasses]sync.Pool }

// bufClass is the class of a buffer of n bytes, or -1 when n is larger
// than the largest class.
func bufClass(n int) int {
	c := 0
	if n > 1<<minBufShift {
		c = bits.Len(uint(n-1)) - minBufShift
	}
	if c >= bufClasses {
		return -1
	}
	return c
}

// bufCap is the capacity of the buffer get(n) returns.
func bufCap(n int) int {
	if c := bufClass(n); c >= 0 {
		return 1 << (c + minBufShift)
	}
	return n
}

// get returns an empty buffer of capacity bufCap(n).
func (p *bufPool) get(n int) *[]byte {
	c := bufClass(n)
	if c < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 1<<(c+minBufShift))
	return &b
}

// put returns b to its class; a buffer of another size is left to the
// garbage collector.
func (p *bufPool) put(b *[]byte) {
	c := bufClass(cap(*b))
	if c >= 0 && cap(*b) == 1<<(c+minBufShift) {
		p.classes[c].Put(b)
	}
}
