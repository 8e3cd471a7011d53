package govstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/thanos-io/objstore"
)

// ErrNotFound is returned for a version that does not exist.
var ErrNotFound = errors.New("version not found")

// ConflictError is a write that named a version other than the newest: the
// caller edits a stale version and must rebase on Current.
type ConflictError struct {
	// IfMatch is the version the write named.
	IfMatch uint64
	// Current is the newest version (zero Number when the store is empty).
	Current Meta
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("version conflict: the write edits version %d but the newest version is %d; fetch it, rebase the change and retry with If-Match: %d",
		e.IfMatch, e.Current.Number, e.Current.Number)
}

// UnavailableError is a store that could not be reached or failed; writes
// are refused (503) and every node keeps its active version.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string { return "governance store unavailable: " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// FailedMark records that a node rejected a version.
type FailedMark struct {
	Version   uint64    `json:"version"`
	Node      string    `json:"node"`
	Reason    string    `json:"reason"`
	Timestamp time.Time `json:"timestamp"`
}

// WriteRequest is a new version to write.
type WriteRequest struct {
	// Body is the candidate YAML; it is validated and normalised.
	Body []byte
	// IfMatch is the version the change edits: it must be the newest (0 on
	// an empty store).
	IfMatch uint64
	// Author and Message describe the change.
	Author, Message string
	// Mode is enforce (the default) or shadow.
	Mode Mode
}

// Store is the versioned governance configuration in a bucket. Safe for
// concurrent use; writes of one process are serialised, writes of several
// processes are ordered by the claim protocol (package doc).
type Store struct {
	bkt      objstore.Bucket
	now      func() time.Time
	claimTTL time.Duration

	writeMu sync.Mutex
	mu      sync.Mutex
	cache   map[uint64]*Version // decoded versions (immutable)
	corrupt map[uint64]error    // versions that failed to decode (immutable too)
}

// New returns a Store on bkt.
func New(bkt objstore.Bucket) *Store {
	return &Store{bkt: bkt, now: time.Now, claimTTL: time.Minute,
		cache: make(map[uint64]*Version), corrupt: make(map[uint64]error)}
}

// Close releases the bucket.
func (s *Store) Close() error { return s.bkt.Close() }

func unavailable(op string, err error) error {
	var ue *UnavailableError
	if errors.As(err, &ue) || errors.Is(err, context.Canceled) {
		return err
	}
	return &UnavailableError{Err: fmt.Errorf("%s: %w", op, err)}
}

// Numbers lists the version numbers in the store, oldest first.
func (s *Store) Numbers(ctx context.Context) ([]uint64, error) {
	var out []uint64
	err := s.bkt.Iter(ctx, dirVersions, func(name string) error {
		if n, ok := parseNumber(name, dirVersions); ok {
			out = append(out, n)
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("list versions", err)
	}
	slices.Sort(out)
	return out, nil
}

// Head returns the newest version number (0 when the store is empty).
func (s *Store) Head(ctx context.Context) (uint64, error) {
	ns, err := s.Numbers(ctx)
	if err != nil || len(ns) == 0 {
		return 0, err
	}
	return ns[len(ns)-1], nil
}

// Get returns version n. A corrupted object is an error wrapping
// ErrCorrupt; a missing one wraps ErrNotFound.
func (s *Store) Get(ctx context.Context, n uint64) (*Version, error) {
	s.mu.Lock()
	v, err := s.cache[n], s.corrupt[n]
	s.mu.Unlock()
	if v != nil || err != nil {
		return v, err
	}
	r, err := s.bkt.Get(ctx, versionName(n))
	if err != nil {
		if s.bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("version %d: %w", n, ErrNotFound)
		}
		return nil, unavailable(fmt.Sprintf("read version %d", n), err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, 2*MaxBodyBytes+1))
	if err != nil {
		return nil, unavailable(fmt.Sprintf("read version %d", n), err)
	}
	v, err = DecodeVersion(b, n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.corrupt[n] = err
		return nil, err
	}
	s.cache[n] = v
	return v, nil
}

// List returns the metadata of every readable version, oldest first, and
// the errors of those that are corrupted.
func (s *Store) List(ctx context.Context) ([]Meta, []error, error) {
	ns, err := s.Numbers(ctx)
	if err != nil {
		return nil, nil, err
	}
	var metas []Meta
	var bad []error
	for _, n := range ns {
		v, err := s.Get(ctx, n)
		switch {
		case errors.Is(err, ErrCorrupt):
			bad = append(bad, err)
		case err != nil:
			return nil, nil, err
		default:
			metas = append(metas, v.Metadata())
		}
	}
	return metas, bad, nil
}

// Failed returns the versions marked failed.
func (s *Store) Failed(ctx context.Context) (map[uint64]FailedMark, error) {
	return readMarks(ctx, s, dirFailed, "list failed versions", func(m *FailedMark, n uint64) { m.Version = n })
}

// readMarks reads every mark under dir (one small JSON object per version,
// named by its number); an unreadable mark still counts, with only its
// version set.
func readMarks[M any](ctx context.Context, s *Store, dir, what string, setVersion func(*M, uint64)) (map[uint64]M, error) {
	out := make(map[uint64]M)
	err := s.bkt.Iter(ctx, dir, func(name string) error {
		n, ok := parseNumber(name, dir)
		if !ok {
			return nil
		}
		var m M
		if r, err := s.bkt.Get(ctx, name); err == nil {
			_ = json.NewDecoder(io.LimitReader(r, 64<<10)).Decode(&m)
			_ = r.Close()
		}
		setVersion(&m, n)
		out[n] = m
		return nil
	})
	if err != nil {
		return nil, unavailable(what, err)
	}
	return out, nil
}

// MarkFailed records that node rejected version n: every node then treats
// the newest older good version as active.
func (s *Store) MarkFailed(ctx context.Context, n uint64, node, reason string) error {
	b, err := json.Marshal(FailedMark{Version: n, Node: node, Reason: reason, Timestamp: s.now().UTC()})
	if err != nil {
		return err
	}
	if err := s.bkt.Upload(ctx, failedName(n), bytes.NewReader(b)); err != nil {
		return unavailable(fmt.Sprintf("mark version %d failed", n), err)
	}
	return nil
}

// State is the store's view of what should run.
type State struct {
	// Head is the newest version number.
	Head uint64
	// Active is the newest enforce version that is neither failed nor
	// corrupted; nil when there is none.
	Active *Version
	// Shadow is the newest shadow version newer than Active that is neither
	// failed, rejected nor corrupted; nil when there is none.
	Shadow *Version
	// Failed are the versions marked failed.
	Failed map[uint64]FailedMark
	// Rejected are the shadow versions a person rejected.
	Rejected map[uint64]RejectMark
	// Corrupt are the errors of corrupted versions.
	Corrupt []error
}

// Resolve reads the store and returns what should run.
func (s *Store) Resolve(ctx context.Context) (State, error) {
	ns, err := s.Numbers(ctx)
	if err != nil {
		return State{}, err
	}
	failed, err := s.Failed(ctx)
	if err != nil {
		return State{}, err
	}
	rejected, err := s.Rejected(ctx)
	if err != nil {
		return State{}, err
	}
	st := State{Failed: failed, Rejected: rejected}
	if len(ns) > 0 {
		st.Head = ns[len(ns)-1]
	}
	for i := len(ns) - 1; i >= 0 && st.Active == nil; i-- {
		n := ns[i]
		if _, bad := failed[n]; bad {
			continue
		}
		v, err := s.Get(ctx, n)
		switch {
		case errors.Is(err, ErrCorrupt):
			st.Corrupt = append(st.Corrupt, err)
			continue
		case err != nil:
			return State{}, err
		}
		if _, rej := rejected[n]; v.Mode == ModeEnforce {
			st.Active = v
		} else if st.Shadow == nil && !rej {
			st.Shadow = v
		}
	}
	return st, nil
}

// Write validates and stores a new version. It fails with *ConflictError
// when w.IfMatch is not the newest version, with *UnavailableError when
// the store cannot be reached, and with the validation error (naming the
// field) for an invalid candidate; then nothing is stored.
func (s *Store) Write(ctx context.Context, w WriteRequest) (*Version, error) {
	_, body, err := Normalize(w.Body)
	if err != nil {
		return nil, err
	}
	if w.Mode == "" {
		w.Mode = ModeEnforce
	}
	if !w.Mode.Valid() {
		return nil, fmt.Errorf("mode: unknown mode %q; use enforce or shadow", w.Mode)
	}
	if len(w.Author) > MaxAuthorBytes || !utf8Valid(w.Author) {
		return nil, fmt.Errorf("author: must be valid UTF-8 of at most %d bytes", MaxAuthorBytes)
	}
	if len(w.Message) > MaxMessageBytes || !utf8Valid(w.Message) {
		return nil, fmt.Errorf("message: must be valid UTF-8 of at most %d bytes", MaxMessageBytes)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	head, err := s.Head(ctx)
	if err != nil {
		return nil, err
	}
	if head != w.IfMatch {
		return nil, s.conflict(ctx, w.IfMatch, head)
	}
	n := head + 1
	release, err := s.claim(ctx, n)
	if err != nil {
		return nil, err
	}
	defer release()
	ok, err := s.bkt.Exists(ctx, versionName(n))
	if err != nil {
		return nil, unavailable("check version", err)
	}
	if ok {
		return nil, s.conflict(ctx, w.IfMatch, n)
	}
	v := &Version{Meta: Meta{Number: n, Hash: ContentHash(body), Author: w.Author, Timestamp: s.now().UTC(),
		Message: w.Message, Parent: w.IfMatch, Mode: w.Mode}, Body: string(body)}
	obj, err := EncodeVersion(v)
	if err != nil {
		return nil, err
	}
	if err := s.bkt.Upload(ctx, versionName(n), bytes.NewReader(obj)); err != nil {
		return nil, unavailable(fmt.Sprintf("write version %d", n), err)
	}
	s.mu.Lock()
	s.cache[n] = v
	s.mu.Unlock()
	return v, nil
}

func (s *Store) conflict(ctx context.Context, ifMatch, head uint64) error {
	ce := &ConflictError{IfMatch: ifMatch, Current: Meta{Number: head}}
	if head > 0 {
		if v, err := s.Get(ctx, head); err == nil {
			ce.Current = v.Metadata()
		}
	}
	return ce
}

// claim uploads this writer's claim on version n and lists the claims on
// n: it holds the claim only when no other live claim is there. release
// deletes the claim.
func (s *Store) claim(ctx context.Context, n uint64) (release func(), err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	dir := fmt.Sprintf("%s%020d/", dirClaims, n)
	now := s.now()
	mine := fmt.Sprintf("%s%020d-%s", dir, now.UnixNano(), hex.EncodeToString(rnd[:]))
	// A filesystem bucket removes a directory emptied by another writer's
	// release while this one creates it: retry that race.
	for try := 0; ; try++ {
		err := s.bkt.Upload(ctx, mine, strings.NewReader(""))
		if err == nil {
			break
		}
		if try == 2 {
			return nil, unavailable("claim version", err)
		}
	}
	release = func() { _ = s.bkt.Delete(context.WithoutCancel(ctx), mine) }
	others := 0
	err = s.bkt.Iter(ctx, dir, func(name string) error {
		if name == mine {
			return nil
		}
		var ts int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(name, dir), "%020d-", &ts); err == nil && now.Sub(time.Unix(0, ts)) > s.claimTTL {
			return nil // a writer that died while claiming
		}
		others++
		return nil
	})
	if err != nil {
		release()
		return nil, unavailable("list claims", err)
	}
	if others > 0 {
		// Contention, not a conflict: the head has not moved, and when
		// the claims overlapped every writer stands back, so nobody may
		// write version n. Worth retrying (a conflict would tell the
		// caller the store changed, which it may not have).
		release()
		return nil, unavailable("claim version", fmt.Errorf("another writer claimed version %d at the same moment; retry", n))
	}
	return release, nil
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
