package govstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Mode says how a version runs.
type Mode string

// The modes.
const (
	// ModeEnforce versions are active: the newest one that no node rejected
	// runs everywhere.
	ModeEnforce Mode = "enforce"
	// ModeShadow versions are candidates: stored, previewed and diffed, and
	// made active with promote.
	ModeShadow Mode = "shadow"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeEnforce || m == ModeShadow }

// Meta is a version without its body, for listings.
type Meta struct {
	// Number counts versions from 1, without gaps.
	Number uint64 `json:"version"`
	// Hash is ContentHash(Body).
	Hash string `json:"hash"`
	// Author is who wrote it (X-Promgov-User, or "seed", "gitops").
	Author string `json:"author"`
	// Timestamp is when it was written.
	Timestamp time.Time `json:"timestamp"`
	// Message says why.
	Message string `json:"message"`
	// Parent is the version it was based on (0 for the first).
	Parent uint64 `json:"parent"`
	// Mode is enforce or shadow.
	Mode Mode `json:"mode"`
}

// Version is one immutable version of the governance configuration.
type Version struct {
	Meta
	// Body is the canonical YAML document.
	Body string `json:"body"`
}

// Metadata returns v's metadata.
func (v *Version) Metadata() Meta { return v.Meta }

// Bounds on the metadata of a version.
const (
	MaxAuthorBytes  = 256
	MaxMessageBytes = 4096
)

// ErrCorrupt marks a version object that does not decode or whose body does
// not match its hash.
var ErrCorrupt = errors.New("corrupted version object")

// EncodeVersion is the object form of v.
func EncodeVersion(v *Version) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode version %d: %w", v.Number, err)
	}
	return append(b, '\n'), nil
}

// DecodeVersion decodes a version object and checks it: the number it was
// stored under, a known mode, bounded fields and the body's content hash.
// Any failure wraps ErrCorrupt.
func DecodeVersion(b []byte, number uint64) (*Version, error) {
	if len(b) > 2*MaxBodyBytes {
		return nil, fmt.Errorf("%w: version %d: %d bytes is over the limit", ErrCorrupt, number, len(b))
	}
	var v Version
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: version %d: %v", ErrCorrupt, number, err)
	}
	switch {
	case v.Number != number:
		return nil, fmt.Errorf("%w: object of version %d says it is version %d", ErrCorrupt, number, v.Number)
	case v.Parent >= v.Number:
		return nil, fmt.Errorf("%w: version %d: parent %d is not older", ErrCorrupt, number, v.Parent)
	case !v.Mode.Valid():
		return nil, fmt.Errorf("%w: version %d: unknown mode %q", ErrCorrupt, number, v.Mode)
	case len(v.Author) > MaxAuthorBytes || len(v.Message) > MaxMessageBytes || !utf8.ValidString(v.Author) || !utf8.ValidString(v.Message):
		return nil, fmt.Errorf("%w: version %d: author or message too long or not UTF-8", ErrCorrupt, number)
	case ContentHash([]byte(v.Body)) != v.Hash:
		return nil, fmt.Errorf("%w: version %d: body does not match its hash %s", ErrCorrupt, number, v.Hash)
	}
	return &v, nil
}

// versionName is the object name of version n; zero-padded so that names
// sort like numbers.
func versionName(n uint64) string { return fmt.Sprintf("%s%020d.json", dirVersions, n) }

// failedName is the object that marks version n failed.
func failedName(n uint64) string { return fmt.Sprintf("%s%020d.json", dirFailed, n) }

// parseNumber returns the number of an object name under dir, or false.
func parseNumber(name, dir string) (uint64, bool) {
	if len(name) != len(dir)+20+len(".json") || name[:len(dir)] != dir || name[len(name)-5:] != ".json" {
		return 0, false
	}
	n, err := strconv.ParseUint(name[len(dir):len(dir)+20], 10, 64)
	return n, err == nil && n > 0
}

// Object directories.
const (
	dirVersions = "versions/"
	dirFailed   = "failed/"
	dirClaims   = "claims/"
	// dirRejected marks shadow versions a person rejected; dirProposals
	// keeps the preview a proposal was written with.
	dirRejected  = "rejected/"
	dirProposals = "proposals/"
)
