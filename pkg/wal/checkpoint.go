package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
)

// Checkpoint file names.
const (
	checkpointName    = "checkpoint"
	checkpointTmpName = "checkpoint.tmp"
)

// checkpointSize is the size of the checkpoint file: segment u64, offset
// u64, CRC32-C u32 over the first 16 bytes, little-endian.
const checkpointSize = 20

// errBadCheckpoint is returned for a checkpoint file that does not decode.
var errBadCheckpoint = errors.New("invalid checkpoint file")

// encodeCheckpoint encodes pos in the checkpoint file format.
func encodeCheckpoint(pos Position) []byte {
	b := make([]byte, checkpointSize)
	binary.LittleEndian.PutUint64(b[0:8], uint64(pos.Segment))
	binary.LittleEndian.PutUint64(b[8:16], uint64(pos.Offset))
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[0:16], castagnoli))
	return b
}

// decodeCheckpoint decodes a checkpoint file.
func decodeCheckpoint(b []byte) (Position, error) {
	if len(b) != checkpointSize {
		return Position{}, fmt.Errorf("%w: size %d, want %d", errBadCheckpoint, len(b), checkpointSize)
	}
	if crc32.Checksum(b[0:16], castagnoli) != binary.LittleEndian.Uint32(b[16:20]) {
		return Position{}, fmt.Errorf("%w: checksum mismatch", errBadCheckpoint)
	}
	seg := binary.LittleEndian.Uint64(b[0:8])
	off := binary.LittleEndian.Uint64(b[8:16])
	if seg > math.MaxInt32 || off > math.MaxInt64 {
		return Position{}, fmt.Errorf("%w: position %d:%d out of range", errBadCheckpoint, seg, off)
	}
	return Position{Segment: int(seg), Offset: int64(off)}, nil
}

// readCheckpoint reads the checkpoint file of dir; ok is false when there
// is none.
func readCheckpoint(fsys FS, dir string) (pos Position, ok bool, err error) {
	f, err := fsys.OpenFile(filepath.Join(dir, checkpointName), os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	b := make([]byte, checkpointSize+1)
	n, err := f.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return Position{}, false, fmt.Errorf("read checkpoint: %w", err)
	}
	pos, err = decodeCheckpoint(b[:n])
	if err != nil {
		return Position{}, false, err
	}
	return pos, true, nil
}

// writeCheckpoint persists pos: atomically through a temporary file, or,
// when the disk is too full for one, by overwriting the existing checkpoint
// in place. Overwriting needs no new blocks; it is not atomic, but the
// file is 20 bytes, well within one sector, and its CRC makes a torn write
// an invalid checkpoint, after which Open replays every segment (re-sending,
// never losing).
func writeCheckpoint(fsys FS, dir string, pos Position) error {
	err := writeCheckpointAtomic(fsys, dir, pos)
	if err == nil || !isDiskFull(err) {
		return err
	}
	if ierr := overwriteCheckpoint(fsys, dir, pos); ierr != nil {
		return errors.Join(err, ierr)
	}
	return nil
}

// overwriteCheckpoint rewrites an existing checkpoint file in place.
func overwriteCheckpoint(fsys FS, dir string, pos Position) error {
	f, err := fsys.OpenFile(filepath.Join(dir, checkpointName), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("overwrite checkpoint: %w", err)
	}
	// Opened without O_APPEND or O_TRUNC: the write lands at offset 0.
	if err := writeSyncClose(f, encodeCheckpoint(pos)); err != nil {
		return fmt.Errorf("overwrite checkpoint: %w", err)
	}
	return nil
}

// writeSyncClose writes b to f, fsyncs and closes it.
func writeSyncClose(f File, b []byte) error {
	n, err := f.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeCheckpointAtomic persists pos atomically: write a temporary file,
// fsync it, rename it over the checkpoint and fsync the directory.
func writeCheckpointAtomic(fsys FS, dir string, pos Position) error {
	tmp := filepath.Join(dir, checkpointTmpName)
	f, err := fsys.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create checkpoint: %w", err)
	}
	if err := writeSyncClose(f, encodeCheckpoint(pos)); err != nil {
		_ = fsys.Remove(tmp)
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := fsys.Rename(tmp, filepath.Join(dir, checkpointName)); err != nil {
		return fmt.Errorf("rename checkpoint: %w", err)
	}
	if err := syncDir(fsys, dir); err != nil {
		return fmt.Errorf("sync wal dir after checkpoint: %w", err)
	}
	return nil
}
