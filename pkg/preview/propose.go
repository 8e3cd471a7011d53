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

// ProposeDeps are what proposals are made from; all are required.
type ProposeDeps struct {
	Store   *govstore.Store
	Usage   usage.Reader
	Cluster Cluster
	Rules   Baseline
	Timeout time.Duration
	Logger  *slog.Logger
}

// ProposeHandler serves POST PathPropose: the suggestion's rules are
// added as one rule (named suggestion-<id>) to the active version's
// document (an aggregation suggestion's rules to its aggregations), the result is previewed on live traffic and written as a
// shadow version (If-Match: the newest version), with the proposal (the
// suggestion and the preview) kept beside it in the store. Nothing is
// enforced: a person promotes it (POST .../versions/{n}/promote) or
// rejects it (POST .../versions/{n}/reject).
func ProposeHandler(d ProposeDeps) http.Handler {
	if d.Store == nil || d.Usage == nil || d.Cluster == nil || d.Rules == nil {
		panic("preview.ProposeHandler: Store, Usage, Cluster and Rules are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d.Timeout)
		defer cancel()
		id := r.PathValue("id")
		rep := d.Usage.Report()
		if rep == nil {
			web.WriteError(w, http.StatusServiceUnavailable, "unavailable", errors.New("usage not classified yet: no suggestions to propose"))
			return
		}
		var sug *usage.Suggestion
		for _, s := range usage.Suggest(rep) {
			if s.ID == id {
				sug = &s
				break
			}
		}
		if sug == nil {
			web.WriteError(w, http.StatusNotFound, "not_found", fmt.Errorf("no suggestion %q now (GET %s lists the current ones)", id, usage.PathSuggestions))
			return
		}
		st, err := d.Store.Resolve(ctx)
		if err != nil {
			proposeStoreError(w, err)
			return
		}
		body, note, err := proposedBody(st, sug)
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", err)
			return
		}
		req, err := DecodeRequest(body, url.Values{}, "")
		if err != nil {
			web.WriteError(w, http.StatusBadRequest, "bad_data", fmt.Errorf("the proposed version is invalid: %w", err))
			return
		}
		data, err := ask(ctx, d.Cluster, d.Rules, req)
		if err != nil {
			web.WriteError(w, http.StatusServiceUnavailable, "unavailable", err)
			return
		}
		author := strings.TrimSpace(r.Header.Get("X-Promgov-User"))
		if author == "" {
			author = "anonymous"
		}
		v, err := d.Store.Write(ctx, govstore.WriteRequest{Body: body, IfMatch: st.Head, Author: author, Mode: govstore.ModeShadow,
			Message: fmt.Sprintf("proposal from suggestion %s: %s %s (saves %d series)%s", id, sug.Kind, strings.Join(sug.Metrics, ","), sug.SeriesSaved, note)})
		if err != nil {
			proposeStoreError(w, err)
			return
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
		d.Logger.Info("suggestion proposed", "suggestion", id, "kind", sug.Kind, "version", v.Number, "author", author,
			"series_saved_preview", data.Totals.SeriesSaved)
		w.Header().Set("X-Promgov-Version", strconv.FormatUint(v.Number, 10))
		web.WriteJSON(w, prop)
	})
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

func proposeStoreError(w http.ResponseWriter, err error) {
	var ce *govstore.ConflictError
	var ue *govstore.UnavailableError
	switch {
	case errors.As(err, &ce):
		web.WriteErrorData(w, http.StatusConflict, "conflict", err, ce.Current)
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		web.WriteError(w, http.StatusServiceUnavailable, "unavailable", err)
	default:
		web.WriteError(w, http.StatusBadRequest, "bad_data", err)
	}
}
