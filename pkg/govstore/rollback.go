package govstore

import (
	"context"
	"errors"
	"fmt"
)

// PreviousGood is the newest good enforce version older than the active
// one whose body differs from it: what a rollback makes active again.
func (s *Store) PreviousGood(ctx context.Context) (*Version, error) {
	st, err := s.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	if st.Active == nil {
		return nil, fmt.Errorf("%w: no active version to roll back from", ErrNotFound)
	}
	for n := st.Active.Number - 1; n > 0; n-- {
		if _, bad := st.Failed[n]; bad {
			continue
		}
		v, err := s.Get(ctx, n)
		if errors.Is(err, ErrCorrupt) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if v.Mode == ModeEnforce && v.Hash != st.Active.Hash {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: no earlier good version differs from the active version %d", ErrNotFound, st.Active.Number)
}
