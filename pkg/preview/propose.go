package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/promgov/promgov/pkg/aggregate"
	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/rules"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/web"
)

// PathPropose turns a suggestion into a candidate version (distributors
// with a governance store).
const PathPropose = web.APIPrefix + "/suggestions/{id}/propose"

// Proposal is the answer of POST PathPropose: the shadow version written,
// the suggestion it came from and the candidate's preview.
type Proposal struct {
	Version    govstore.Meta    `json:"version"`
	Suggestion usage.Suggestion `json:"suggestion"`
	Preview    Data             `json:"preview"`
}

// ProposeDeps are what proposals are made from: Store, Usage, Cluster and
// Rules are required.
type ProposeDeps struct {
	Store   *govstore.Store
	Usage   usage.Reader
	Cluster Cluster
	Rules   Baseline
	Timeout time.Duration
	Logger  *slog.Logger
	// DropUnused previews the candidate's usage.drop_unused (nil: not
	// previewed).
	DropUnused DropUnused
	// Notify announces a version written (govsync's gossip notice); nil:
	// the nodes find it at their next poll.
	Notify func(uint64)
}

// ProposeHandler serves POST PathPropose: the suggestion's rules are
// added as one rule (named suggestion-<id>) to the active version's
// document (an aggregation suggestion's rules to its aggregations), the
// result is previewed on live traffic and written as a shadow version
// (If-Match: the newest version), with the proposal (the suggestion and
// the preview) kept beside it in the store. Nothing is enforced: a person
// promotes it (POST .../versions/{n}/promote) or rejects it (POST
// .../versions/{n}/reject).
func ProposeHandler(d ProposeDeps) http.Handler {
	p := NewProposer(d)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		author := strings.TrimSpace(r.Header.Get("X-Promgov-User"))
		if author == "" {
			author = "anonymous"
		}
		prop, err := p.ProposeID(r.Context(), r.PathValue("id"), author)
		if err != nil {
			proposeError(w, err)
			return
		}
		w.Header().Set("X-Promgov-Version", strconv.FormatUint(prop.Version.Number, 10))
		web.WriteJSON(w, prop)
	})
}

// Proposer turns suggestions into proposals (shadow versions with their
// preview). Safe for concurrent use; concurrent proposals race on the
// store's If-Match, and all but one get a *govstore.ConflictError.
type Proposer struct{ d ProposeDeps }

// NewProposer returns a Proposer; it panics without the required deps.
func NewProposer(d ProposeDeps) *Proposer {
	if d.Store == nil || d.Usage == nil || d.Cluster == nil || d.Rules == nil {
		panic("preview.NewProposer: Store, Usage, Cluster and Rules are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Proposer{d: d}
}

// ProposeError is a proposal refused for what was asked (Status 400, 404)
// or for what is unavailable now (503).
type ProposeError struct {
	Status int
	Err    error
}

func (e *ProposeError) Error() string { return e.Err.Error() }
func (e *ProposeError) Unwrap() error { return e.Err }

// ProposeID proposes the current suggestion id, written by author.
func (p *Proposer) ProposeID(ctx context.Context, id, author string) (Proposal, error) {
	rep := p.d.Usage.Report()
	if rep == nil {
		return Proposal{}, &ProposeError{http.StatusServiceUnavailable, errors.New("usage not classified yet: no suggestions to propose")}
	}
	for _, s := range usage.Suggest(rep) {
		if s.ID == id {
			return p.Propose(ctx, &s, author)
		}
	}
	return Proposal{}, &ProposeError{http.StatusNotFound, fmt.Errorf("no suggestion %q now (GET %s lists the current ones)", id, usage.PathSuggestions)}
}

// Propose writes sug as a shadow version of the active one, with its
// preview, by author. Store errors are returned as they are
// (*govstore.ConflictError, *govstore.UnavailableError, ...).
func (p *Proposer) Propose(ctx context.Context, sug *usage.Suggestion, author string) (Proposal, error) {
	d := p.d
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	st, err := d.Store.Resolve(ctx)
	if err != nil {
		return Proposal{}, err
	}
	body, note, err := proposedBody(st, sug)
	if err != nil {
		return Proposal{}, &ProposeError{http.StatusBadRequest, err}
	}
	req, err := DecodeRequest(body, url.Values{}, "")
	if err != nil {
		return Proposal{}, &ProposeError{http.StatusBadRequest, fmt.Errorf("the proposed version is invalid: %w", err)}
	}
	data, err := ask(ctx, d.Cluster, d.Rules, d.DropUnused, req)
	if err != nil {
		return Proposal{}, &ProposeError{http.StatusServiceUnavailable, err}
	}
	v, err := d.Store.Write(ctx, govstore.WriteRequest{Body: body, IfMatch: st.Head, Author: author, Mode: govstore.ModeShadow,
		Message: ProposalMessage(sug) + note})
	if err != nil {
		return Proposal{}, err
	}
	prop := Proposal{Version: v.Metadata(), Suggestion: *sug, Preview: data}
	// The preview is kept beside the version, for whoever reviews it
	// (GET .../config/versions/{n}/proposal, the UI's versions page).
	// The version is written either way: a preview that could not be
	// kept is logged, and the answer still carries it.
	if b, err := json.Marshal(prop); err != nil {
		d.Logger.Warn("cannot encode a proposal's preview", "version", v.Number, "err", err)
	} else if err := d.Store.SaveProposal(ctx, v.Number, b); err != nil {
		d.Logger.Warn("cannot keep a proposal's preview in the governance store", "version", v.Number, "err", err)
	}
	d.Logger.Info("suggestion proposed", "suggestion", sug.ID, "kind", sug.Kind, "version", v.Number, "author", author,
		"series_saved_preview", data.Totals.SeriesSaved)
	if d.Notify != nil {
		d.Notify(v.Number)
	}
	return prop, nil
}

// proposalPrefix starts the message of every proposed version; the
// suggestion's id follows (ProposedIDs reads it back).
const proposalPrefix = "proposal from suggestion "

// ProposalMessage is the version message of sug's proposal.
func ProposalMessage(sug *usage.Suggestion) string {
	return fmt.Sprintf("%s%s: %s %s (saves %d series)", proposalPrefix, sug.ID, sug.Kind, strings.Join(sug.Metrics, ","), sug.SeriesSaved)
}

// ProposedIDs returns the suggestions the versions in metas were proposed
// from (pending, promoted and rejected alike).
func ProposedIDs(metas []govstore.Meta) map[string]bool {
	out := map[string]bool{}
	for _, m := range metas {
		if rest, ok := strings.CutPrefix(m.Message, proposalPrefix); ok {
			if id, _, ok := strings.Cut(rest, ":"); ok {
				out[id] = true
			}
		}
	}
	return out
}

// proposedBody is the active version's document (the defaults on an empty
// store) with the suggestion applied: its relabelling rules appended as
// one rule named suggestion-<id>, or its aggregation rules appended to the
// document's aggregations. A document that left aggregations to each
// ingester's file (no aggregations: key) gets a list of its own; the
// version's message says so, and promoting it makes the ingesters apply
// that list instead of their file's.
func proposedBody(st govstore.State, s *usage.Suggestion) (body []byte, note string, err error) {
	doc := govstore.DefaultDocument()
	if st.Active != nil {
		if doc, err = govstore.ParseDocument([]byte(st.Active.Body)); err != nil {
			return nil, "", fmt.Errorf("the active version %d: %w", st.Active.Number, err)
		}
	}
	switch {
	case len(s.Aggregations) > 0:
		var aggs []aggregate.RuleConfig
		if doc.Aggregations != nil {
			aggs = slices.Clone(*doc.Aggregations)
		} else {
			note = "; the version now holds the aggregations (the ingesters' files' aggregations: no longer apply once it is promoted)"
		}
		for _, a := range s.Aggregations {
			if slices.ContainsFunc(aggs, func(r aggregate.RuleConfig) bool { return r.Name == a.Name }) {
				return nil, "", fmt.Errorf("the active version already has aggregation rule %s: suggestion %s is applied", a.Name, s.ID)
			}
		}
		aggs = append(aggs, s.Aggregations...)
		doc.Aggregations = &aggs
	case len(s.Rules) > 0:
		name := "suggestion-" + s.ID
		for _, r := range doc.Rules {
			if r.Name == name {
				return nil, "", fmt.Errorf("the active version already has rule %s: suggestion %s is applied", name, s.ID)
			}
		}
		y, err := yaml.Marshal(map[string]any{"name": name, "relabel_configs": s.Rules})
		if err != nil {
			return nil, "", err
		}
		var rc rules.RuleConfig
		if err := yaml.Unmarshal(y, &rc); err != nil {
			return nil, "", fmt.Errorf("suggestion %s: %w", s.ID, err)
		}
		doc.Rules = append(doc.Rules, rc)
	default:
		return nil, "", fmt.Errorf("suggestion %s (%s) has neither rules nor aggregations to propose", s.ID, s.Kind)
	}
	body, err = doc.Canonical()
	return body, note, err
}

func proposeError(w http.ResponseWriter, err error) {
	var pe *ProposeError
	var ce *govstore.ConflictError
	var ue *govstore.UnavailableError
	switch {
	case errors.As(err, &pe):
		reason := map[int]string{http.StatusNotFound: "not_found", http.StatusServiceUnavailable: "unavailable"}[pe.Status]
		if reason == "" {
			reason = "bad_data"
		}
		web.WriteError(w, pe.Status, reason, pe.Err)
	case errors.As(err, &ce):
		web.WriteErrorData(w, http.StatusConflict, "conflict", err, ce.Current)
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		web.WriteError(w, http.StatusServiceUnavailable, "unavailable", err)
	default:
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
	}
}
