package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// RecordType tells the consumer how to decode a record's payload. 0 is
// invalid; the WAL does not interpret other values.
type RecordType uint8

// Record types used by promgov.
const (
	// RecordBatch is one accepted push: a marshalled
	// promgov.ingester.v1.PushRequest (tenant, Remote Write 2.0 request
	// bytes, family metadata); see forward.EncodeRecord.
	RecordBatch RecordType = 1
)

// headerSize is the size of the record header; see the package doc.
const headerSize = 13

// resyncChunk is how many bytes a resync scan reads at once.
const resyncChunk = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Position addresses a byte in the log: a segment index and an offset in
// it. Positions returned by the WAL are record boundaries.
type Position struct {
	// Segment is the segment index.
	Segment int
	// Offset is the byte offset in the segment.
	Offset int64
}

// Before reports whether p comes strictly before q.
func (p Position) Before(q Position) bool {
	if p.Segment != q.Segment {
		return p.Segment < q.Segment
	}
	return p.Offset < q.Offset
}

// String formats p as "segment:offset".
func (p Position) String() string { return fmt.Sprintf("%d:%d", p.Segment, p.Offset) }

// Record is one decoded log record.
type Record struct {
	// Type is the record type given to Append.
	Type RecordType
	// Payload is the record payload. The caller owns it, unless the
	// reader shares its buffers (Reader.SharePayloads): then it is valid
	// until the reader's next call.
	Payload []byte
	// Pos is where the record starts.
	Pos Position
	// Next is where the record ends; Commit(Next) acknowledges this record
	// and everything before it.
	Next Position
}

// CorruptionError describes invalid data found in a segment.
type CorruptionError struct {
	// Segment is the segment index.
	Segment int
	// Offset is where the invalid data starts.
	Offset int64
	// Err says what is wrong.
	Err error
}

// Error implements error.
func (e *CorruptionError) Error() string {
	return fmt.Sprintf("corrupt wal record in segment %d at offset %d: %v", e.Segment, e.Offset, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Causes of a CorruptionError.
var (
	errHeaderChecksum  = errors.New("header checksum mismatch")
	errPayloadChecksum = errors.New("payload checksum mismatch")
	errZeroType        = errors.New("record type 0")
	errTruncated       = errors.New("record extends past the end of the segment")
)

// appendRecord appends the encoding of one record to dst.
func appendRecord(dst []byte, typ RecordType, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	h := dst[start : start+headerSize]
	binary.LittleEndian.PutUint32(h[0:4], uint32(len(payload)))
	h[8] = byte(typ)
	crc := crc32.Update(0, castagnoli, h[8:9])
	crc = crc32.Update(crc, castagnoli, payload)
	binary.LittleEndian.PutUint32(h[4:8], crc)
	binary.LittleEndian.PutUint32(h[9:13], crc32.Checksum(h[0:9], castagnoli))
	return append(dst, payload...)
}

// header is a decoded record header.
type header struct {
	length uint32
	crc    uint32
	typ    RecordType
}

// parseHeader decodes and verifies a header; b holds at least headerSize
// bytes.
func parseHeader(b []byte) (header, error) {
	if crc32.Checksum(b[0:9], castagnoli) != binary.LittleEndian.Uint32(b[9:13]) {
		return header{}, errHeaderChecksum
	}
	h := header{
		length: binary.LittleEndian.Uint32(b[0:4]),
		crc:    binary.LittleEndian.Uint32(b[4:8]),
		typ:    RecordType(b[8]),
	}
	if h.typ == 0 {
		return header{}, errZeroType
	}
	return h, nil
}

// checkPayload verifies the payload CRC of a record.
func (h header) checkPayload(payload []byte) error {
	crc := crc32.Update(0, castagnoli, []byte{byte(h.typ)})
	if crc32.Update(crc, castagnoli, payload) != h.crc {
		return errPayloadChecksum
	}
	return nil
}

// decodeRecord decodes the record at the start of b. It returns the number
// of bytes consumed; the payload aliases b.
func decodeRecord(b []byte) (RecordType, []byte, int, error) {
	if len(b) < headerSize {
		return 0, nil, 0, errTruncated
	}
	h, err := parseHeader(b)
	if err != nil {
		return 0, nil, 0, err
	}
	end := headerSize + int64(h.length)
	if end > int64(len(b)) {
		return 0, nil, 0, errTruncated
	}
	payload := b[headerSize:end]
	if err := h.checkPayload(payload); err != nil {
		return 0, nil, 0, err
	}
	return h.typ, payload, int(end), nil
}

// segmentScanner reads records from one segment up to a limit.
type segmentScanner struct {
	r       io.ReaderAt
	segment int
	chunk   []byte
	// ra holds the segment's bytes from raOff, read ahead in one call;
	// every one lies below a limit read was given, so it never changes.
	ra    []byte
	raOff int64
	raBuf []byte
	// share makes read return payloads that alias ra or payload, valid
	// until the next read, instead of a fresh buffer per record.
	share   bool
	payload []byte
}

// readAhead is how much read fetches at once: one read call per this much
// of small records instead of two per record.
const readAhead = 256 << 10

// cached returns the n bytes at off if the read-ahead window holds them.
func (s *segmentScanner) cached(off, n int64) []byte {
	if off < s.raOff || off+n > s.raOff+int64(len(s.ra)) {
		return nil
	}
	return s.ra[off-s.raOff : off-s.raOff+n]
}

// fill reads ahead from off, up to limit. A short file leaves the window
// short; other errors are returned.
func (s *segmentScanner) fill(off, limit int64) error {
	if s.raBuf == nil {
		s.raBuf = make([]byte, readAhead)
	}
	n, err := s.r.ReadAt(s.raBuf[:min(limit-off, readAhead)], off)
	s.ra, s.raOff = s.raBuf[:n], off
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// readFull reads len(p) bytes at off; io.EOF after a full read is ignored.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// read decodes the record at off, which must end at or before limit. Invalid
// data yields a *CorruptionError; other errors are I/O errors.
func (s *segmentScanner) read(off, limit int64) (Record, error) {
	corrupt := func(err error) (Record, error) {
		return Record{}, &CorruptionError{Segment: s.segment, Offset: off, Err: err}
	}
	if limit-off < headerSize {
		return corrupt(errTruncated)
	}
	hdr := s.cached(off, headerSize)
	if hdr == nil {
		if err := s.fill(off, limit); err != nil {
			return Record{}, fmt.Errorf("read header of segment %d at %d: %w", s.segment, off, err)
		}
		if hdr = s.cached(off, headerSize); hdr == nil {
			// The file is shorter than the WAL believes: the data is gone.
			return corrupt(errTruncated)
		}
	}
	h, err := parseHeader(hdr)
	if err != nil {
		return corrupt(err)
	}
	next := off + headerSize + int64(h.length)
	if next > limit {
		return corrupt(errTruncated)
	}
	payload, err := s.payloadAt(off+headerSize, h.length)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return corrupt(errTruncated)
	} else if err != nil {
		return Record{}, fmt.Errorf("read payload of segment %d at %d: %w", s.segment, off, err)
	}
	if err := h.checkPayload(payload); err != nil {
		return corrupt(err)
	}
	return Record{
		Type:    h.typ,
		Payload: payload,
		Pos:     Position{Segment: s.segment, Offset: off},
		Next:    Position{Segment: s.segment, Offset: next},
	}, nil
}

// payloadAt returns the n payload bytes at off: a fresh buffer, or, when
// the scanner shares its buffers, the read-ahead window itself or the
// scanner's payload buffer. A short file gives io.ErrUnexpectedEOF.
func (s *segmentScanner) payloadAt(off int64, n uint32) ([]byte, error) {
	c := s.cached(off, int64(n))
	if s.share && c != nil {
		return c, nil
	}
	var p []byte
	if s.share {
		if cap(s.payload) < int(n) {
			s.payload = make([]byte, n)
		}
		p = s.payload[:n]
	} else {
		// A fresh buffer per record: the caller keeps what it aliases.
		p = make([]byte, n)
	}
	if c != nil {
		copy(p, c)
		return p, nil
	}
	return p, readFull(s.r, p, off)
}

// resync finds the first valid record starting in [from, limit). It returns
// its offset, or limit when there is none.
func (s *segmentScanner) resync(from, limit int64) (int64, error) {
	if s.chunk == nil {
		s.chunk = make([]byte, resyncChunk+headerSize)
	}
	for base := from; limit-base >= headerSize; {
		n := min(int64(len(s.chunk)), limit-base)
		buf := s.chunk[:n]
		if err := readFull(s.r, buf, base); errors.Is(err, io.ErrUnexpectedEOF) {
			return limit, nil // the rest of the file is gone
		} else if err != nil {
			return 0, fmt.Errorf("resync segment %d at %d: %w", s.segment, base, err)
		}
		last := n - headerSize // last candidate offset within buf
		for i := int64(0); i <= last; i++ {
			if _, err := parseHeader(buf[i:]); err != nil {
				continue
			}
			off := base + i
			if _, err := s.read(off, limit); err == nil {
				return off, nil
			} else if !isCorruption(err) {
				return 0, err
			}
		}
		base += last + 1
	}
	return limit, nil
}

// isCorruption reports whether err is a *CorruptionError.
func isCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}
