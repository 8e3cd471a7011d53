package govstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// Reviews of shadow candidates: a candidate can be rejected (it is then
// never staged again), and a proposal made from a suggestion keeps the
// preview it was written with beside it. Both are written once, like the
// versions.

// RejectMark records that a person rejected shadow version Version.
type RejectMark struct {
	Version   uint64 `json:"version"`
	By        string `json:"by"`
	Reason    string `json:"reason,omitempty"`
	Timestamp string `json:"timestamp"`
}

// MaxProposalBytes bounds the preview kept with a proposal.
const MaxProposalBytes = 4 << 20

func rejectedName(n uint64) string { return fmt.Sprintf("%s%020d.json", dirRejected, n) }
func proposalName(n uint64) string { return fmt.Sprintf("%s%020d.json", dirProposals, n) }

// Reject marks shadow version n rejected: Resolve never stages it again,
// so every node stops running its shadow copies (an older candidate newer
// than the active version, if any, is staged instead). Only shadow
// versions are rejected: an enforce version is undone with a rollback. By
// and reason are bounded like a version's author and message.
func (s *Store) Reject(ctx context.Context, n uint64, by, reason string) (RejectMark, error) {
	v, err := s.Get(ctx, n)
	if err != nil {
		return RejectMark{}, err
	}
	if v.Mode != ModeShadow {
		return RejectMark{}, fmt.Errorf("version %d is an %s version: only shadow candidates are rejected; undo an enforce version with a rollback", n, v.Mode)
	}
	if len(by) > MaxAuthorBytes || !utf8Valid(by) || len(reason) > MaxMessageBytes || !utf8Valid(reason) {
		return RejectMark{}, fmt.Errorf("author or reason: must be valid UTF-8 of at most %d and %d bytes", MaxAuthorBytes, MaxMessageBytes)
	}
	m := RejectMark{Version: n, By: by, Reason: reason, Timestamp: s.now().UTC().Format("2006-01-02T15:04:05Z")}
	b, err := json.Marshal(m)
	if err != nil {
		return RejectMark{}, err
	}
	if err := s.bkt.Upload(ctx, rejectedName(n), bytes.NewReader(b)); err != nil {
		return RejectMark{}, unavailable(fmt.Sprintf("mark version %d rejected", n), err)
	}
	return m, nil
}

// Rejected returns the versions marked rejected.
func (s *Store) Rejected(ctx context.Context) (map[uint64]RejectMark, error) {
	return readMarks(ctx, s, dirRejected, "list rejected versions", func(m *RejectMark, n uint64) { m.Version = n })
}

// SaveProposal keeps b (a JSON document: the suggestion and the preview a
// proposal was written with) beside version n.
func (s *Store) SaveProposal(ctx context.Context, n uint64, b []byte) error {
	if len(b) > MaxProposalBytes {
		return fmt.Errorf("proposal of version %d: %d bytes is over %d", n, len(b), MaxProposalBytes)
	}
	if !json.Valid(b) {
		return fmt.Errorf("proposal of version %d: not JSON", n)
	}
	if err := s.bkt.Upload(ctx, proposalName(n), bytes.NewReader(b)); err != nil {
		return unavailable(fmt.Sprintf("write the proposal of version %d", n), err)
	}
	return nil
}

// Proposal returns what SaveProposal kept beside version n; an error
// wrapping ErrNotFound when n is not a proposal.
func (s *Store) Proposal(ctx context.Context, n uint64) ([]byte, error) {
	r, err := s.bkt.Get(ctx, proposalName(n))
	if err != nil {
		if s.bkt.IsObjNotFoundErr(err) {
			return nil, fmt.Errorf("proposal of version %d: %w", n, ErrNotFound)
		}
		return nil, unavailable(fmt.Sprintf("read the proposal of version %d", n), err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, MaxProposalBytes+1))
	if err != nil {
		return nil, unavailable(fmt.Sprintf("read the proposal of version %d", n), err)
	}
	if len(b) > MaxProposalBytes || !json.Valid(b) {
		return nil, fmt.Errorf("%w: proposal of version %d does not decode", ErrCorrupt, n)
	}
	return b, nil
}
