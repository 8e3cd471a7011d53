package wal

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// encodeRecords returns the concatenated encoding of payloads (type 1) and
// the start offset of each record.
func encodeRecords(payloads ...[]byte) ([]byte, []int64) {
	var b []byte
	var offs []int64
	for _, p := range payloads {
		offs = append(offs, int64(len(b)))
		b = appendRecord(b, RecordBatch, p)
	}
	return b, offs
}

func TestRecordRoundTrip(t *testing.T) {
	tests := map[string][]byte{
		"empty":  {},
		"small":  []byte("hello"),
		"binary": {0, 1, 2, 255, 254, 0},
		"large":  bytes.Repeat([]byte("x"), 100_000),
	}
	for name, payload := range tests {
		t.Run(name, func(t *testing.T) {
			b := appendRecord([]byte("prefix"), 7, payload)
			typ, got, n, err := decodeRecord(b[6:])
			require.NoError(t, err)
			require.Equal(t, RecordType(7), typ)
			require.Equal(t, payload, got)
			require.Equal(t, headerSize+len(payload), n)
		})
	}
}

func TestDecodeRecordDamage(t *testing.T) {
	good := appendRecord(nil, RecordBatch, []byte("payload bytes"))
	tests := map[string]struct {
		mod  func([]byte) []byte
		want error
	}{
		"length bit flip":  {mod: func(b []byte) []byte { b[1] ^= 0x10; return b }, want: errHeaderChecksum},
		"crc bit flip":     {mod: func(b []byte) []byte { b[5] ^= 0x01; return b }, want: errHeaderChecksum},
		"type bit flip":    {mod: func(b []byte) []byte { b[8] ^= 0x02; return b }, want: errHeaderChecksum},
		"hcrc bit flip":    {mod: func(b []byte) []byte { b[12] ^= 0x80; return b }, want: errHeaderChecksum},
		"payload bit flip": {mod: func(b []byte) []byte { b[headerSize+3] ^= 0x04; return b }, want: errPayloadChecksum},
		"short header":     {mod: func(b []byte) []byte { return b[:headerSize-1] }, want: errTruncated},
		"short payload":    {mod: func(b []byte) []byte { return b[:len(b)-1] }, want: errTruncated},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := tc.mod(bytes.Clone(good))
			_, _, _, err := decodeRecord(b)
			require.ErrorIs(t, err, tc.want)

			sc := segmentScanner{r: bytes.NewReader(b), segment: 3}
			_, err = sc.read(0, int64(len(b)))
			var ce *CorruptionError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, 3, ce.Segment)
			require.Equal(t, int64(0), ce.Offset)
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestScannerResync(t *testing.T) {
	payloads := [][]byte{[]byte("first"), bytes.Repeat([]byte{0}, 5000), []byte("third"), bytes.Repeat([]byte("abc"), 30000), []byte("last")}
	clean, offs := encodeRecords(payloads...)
	tests := map[string]struct {
		flip     int64 // byte to damage
		wantNext int64 // where resync from the damaged record lands
	}{
		"header of first":   {flip: offs[0] + 2, wantNext: offs[1]},
		"payload of second": {flip: offs[1] + headerSize + 100, wantNext: offs[2]},
		"header of large":   {flip: offs[3], wantNext: offs[4]},
		"payload of last":   {flip: offs[4] + headerSize, wantNext: int64(len(clean))},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := bytes.Clone(clean)
			b[tc.flip] ^= 0x20
			sc := segmentScanner{r: bytes.NewReader(b)}
			damaged := int64(0)
			for i, o := range offs {
				if o <= tc.flip {
					damaged = offs[i]
				}
			}
			_, err := sc.read(damaged, int64(len(b)))
			require.True(t, isCorruption(err), "err %v", err)
			next, err := sc.resync(damaged+1, int64(len(b)))
			require.NoError(t, err)
			require.Equal(t, tc.wantNext, next)
		})
	}
}

// FuzzReader feeds arbitrary bytes to the segment scanner used by readers
// and by tail repair: it must terminate, never return a record that does
// not verify, and always make progress.
func FuzzReader(f *testing.F) {
	clean, _ := encodeRecords([]byte("a"), []byte("bb"), bytes.Repeat([]byte{7}, 300))
	f.Add(clean)
	f.Add(clean[:len(clean)-5])
	flipped := bytes.Clone(clean)
	flipped[20] ^= 1
	f.Add(flipped)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 64))
	f.Fuzz(func(t *testing.T, data []byte) {
		limit := int64(len(data))
		sc := segmentScanner{r: bytes.NewReader(data), segment: 1}
		for off := int64(0); off < limit; {
			rec, err := sc.read(off, limit)
			if err == nil {
				require.Greater(t, rec.Next.Offset, off)
				require.LessOrEqual(t, rec.Next.Offset, limit)
				typ, payload, n, derr := decodeRecord(data[off:])
				require.NoError(t, derr)
				require.Equal(t, rec.Type, typ)
				require.Equal(t, rec.Payload, payload)
				require.Equal(t, rec.Next.Offset, off+int64(n))
				off = rec.Next.Offset
				continue
			}
			var ce *CorruptionError
			require.True(t, errors.As(err, &ce), "unexpected error %v", err)
			next, err := sc.resync(off+1, limit)
			require.NoError(t, err)
			require.Greater(t, next, off)
			require.LessOrEqual(t, next, limit)
			off = next
		}
	})
}

func TestCheckpointRoundTrip(t *testing.T) {
	for _, pos := range []Position{{}, {Segment: 1}, {Segment: 12345, Offset: 1 << 40}} {
		t.Run(pos.String(), func(t *testing.T) {
			got, err := decodeCheckpoint(encodeCheckpoint(pos))
			require.NoError(t, err)
			require.Equal(t, pos, got)
		})
	}
	b := encodeCheckpoint(Position{Segment: 2, Offset: 10})
	for i := range b {
		t.Run(fmt.Sprintf("flip byte %d", i), func(t *testing.T) {
			d := bytes.Clone(b)
			d[i] ^= 0x08
			_, err := decodeCheckpoint(d)
			require.ErrorIs(t, err, errBadCheckpoint)
		})
	}
}

// FuzzCheckpoint checks that the checkpoint decoder never panics and only
// accepts what the encoder produces.
func FuzzCheckpoint(f *testing.F) {
	f.Add(encodeCheckpoint(Position{Segment: 3, Offset: 99}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pos, err := decodeCheckpoint(data)
		if err != nil {
			require.ErrorIs(t, err, errBadCheckpoint)
			return
		}
		require.Equal(t, data, encodeCheckpoint(pos))
	})
}

// FuzzReaderDamage builds valid records from fuzz data, flips one byte and
// checks that every record before the damage is read intact and that
// reading ends.
func FuzzReaderDamage(f *testing.F) {
	f.Add([]byte("some payload bytes that are split into records"), uint16(7), uint16(30), byte(1))
	f.Add(bytes.Repeat([]byte{0}, 500), uint16(50), uint16(2), byte(0x80))
	f.Fuzz(func(t *testing.T, data []byte, chunk, flipAt uint16, mask byte) {
		if mask == 0 || len(data) == 0 {
			return
		}
		size := int(chunk%64) + 1
		var payloads [][]byte
		for len(data) > 0 {
			n := min(size, len(data))
			payloads = append(payloads, data[:n])
			data = data[n:]
		}
		b, offs := encodeRecords(payloads...)
		flip := int64(flipAt) % int64(len(b))
		b[flip] ^= mask
		limit := int64(len(b))
		sc := segmentScanner{r: bytes.NewReader(b)}
		off := int64(0)
		for i, o := range offs {
			end := limit
			if i+1 < len(offs) {
				end = offs[i+1]
			}
			if end > flip {
				break
			}
			rec, err := sc.read(o, limit)
			require.NoError(t, err)
			require.Equal(t, payloads[i], rec.Payload)
			off = rec.Next.Offset
		}
		for steps := 0; off < limit; steps++ {
			require.Less(t, steps, len(b)+1, "reader does not progress")
			rec, err := sc.read(off, limit)
			if err == nil {
				off = rec.Next.Offset
				continue
			}
			require.True(t, isCorruption(err), "unexpected error %v", err)
			next, err := sc.resync(off+1, limit)
			require.NoError(t, err)
			off = next
		}
	})
}
