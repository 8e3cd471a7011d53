package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/promgov/promgov/pkg/govapi"
	"github.com/promgov/promgov/pkg/preview"
)

// Suggestions become proposals: the rules page proposes a suggestion (a
// shadow version with its preview kept beside it, pkg/preview), and the
// versions page shows each staged proposal's preview with promote
// (approve) and reject (the candidate is never staged again, the active
// version stays).

// proposeAPIPath is the API route that proposes suggestion id.
func proposeAPIPath(id string) string { return "/promgov/api/v1/suggestions/" + id + "/propose" }

// maxProposalRows bounds the metrics of a proposal's preview the page
// lists (the preview keeps up to preview.MaxMetricRows).
const maxProposalRows = 20

// proposalView is a proposal's preview as the versions page shows it.
type proposalView struct {
	preview.Proposal
	// Metrics are the first maxProposalRows of Preview.Metrics.
	Metrics []preview.Metric
}

// proposals reads the kept proposal of every row that may still be
// promoted or rejected (a candidate newer than the active version).
func (u *UI) proposals(ctx context.Context, r *http.Request, rows []versionRow) []error {
	var errs []error
	for i := range rows {
		if !rows[i].Reject {
			continue
		}
		var p preview.Proposal
		err := u.api.get(ctx, r, govapi.PathVersions+"/"+strconv.FormatUint(rows[i].Number, 10)+"/proposal", nil, &p)
		switch {
		case err == nil:
			v := &proposalView{Proposal: p, Metrics: p.Preview.Metrics}
			if len(v.Metrics) > maxProposalRows {
				v.Metrics = v.Metrics[:maxProposalRows]
			}
			rows[i].Proposal = v
		case isStatus(err, http.StatusNotFound): // not a proposal
		default:
			errs = append(errs, err)
		}
	}
	return errs
}

// propose serves POST /ui/suggestions/{id}/propose: it calls the propose
// API in-process as the viewer (the author) and answers 303 to the
// versions page at the proposal, or the rules page with the refusal.
func (u *UI) propose(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	fail := func(code int, err error) {
		u.renderRules(w, r, code, err)
	}
	if !u.d.Governance {
		fail(http.StatusNotFound, errors.New("not proposed: no governance store: set --governance.store.backend (docs/governance.md)"))
		return
	}
	who, err := u.permits(r, http.MethodPost, proposeAPIPath(id))
	if err != nil {
		fail(http.StatusForbidden, fmt.Errorf("not proposed: %w", err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), proposeTimeout)
	defer cancel()
	var p preview.Proposal
	if err := u.api.do(ctx, r, http.MethodPost, proposeAPIPath(id), nil, http.Header{govapi.HeaderUser: {who}}, nil, &p); err != nil {
		code := http.StatusBadGateway
		var ae *apiError
		if errors.As(err, &ae) {
			code = ae.Status
		}
		fail(code, fmt.Errorf("not proposed: %w", err))
		return
	}
	u.d.Logger.Info("suggestion proposed from the UI", "by", who, "suggestion", id, "version", p.Version.Number)
	n := strconv.FormatUint(p.Version.Number, 10)
	http.Redirect(w, r, PathConfig+"?written="+n+"#proposal-"+n, http.StatusSeeOther)
}

// proposeTimeout bounds a proposal: a store read and write and a preview
// fanned out to every ingester.
const proposeTimeout = 3 * pageTimeout
