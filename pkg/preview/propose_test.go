package preview

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/thanos-io/objstore/providers/filesystem"

	"github.com/promgov/promgov/pkg/govstore"
	"github.com/promgov/promgov/pkg/usage"
	"github.com/promgov/promgov/pkg/usage/promqlx"
)

// TestPropose: an unused metric's suggestion becomes a shadow version
// whose preview drops exactly that metric; nothing is enforced.
func TestPropose(t *testing.T) {
	tf := knownTraffic(t)
	bkt, err := filesystem.NewBucket(t.TempDir())
	require.NoError(t, err)
	store := govstore.New(bkt)
	ctx := context.Background()
	_, err = store.Write(ctx, govstore.WriteRequest{Body: []byte("rules: []\n"), IfMatch: 0, Author: "seed"})
	require.NoError(t, err)

	costs := usage.StaticCosts{{Name: "debug_events_total", Series: 20, SamplesRate: 2, Labels: []usage.LabelCost{{Name: "instance"}}}}
	mgr, err := usage.NewManager(usage.DefaultConfig(), usage.Deps{Access: usage.NewAccessStats(10, 10), Costs: costs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	mgr.Refresh(ctx)
	sugs := usage.Suggest(mgr.Report())
	require.Len(t, sugs, 1)
	require.Equal(t, usage.SuggestDropMetrics, sugs[0].Kind)

	srv := httptest.NewServer(func() http.Handler {
		mux := http.NewServeMux()
		mux.Handle("POST "+PathPropose, ProposeHandler(ProposeDeps{Store: store, Usage: mgr, Cluster: local{NewIngester(tf.res, tf.tracker, nil)}, Rules: activeRules(t, ""), Timeout: 10 * time.Second}))
		return mux
	}())
	defer srv.Close()
	post := func(id string) (int, Proposal, string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/promgov/api/v1/suggestions/"+id+"/propose", nil)
		require.NoError(t, err)
		req.Header.Set("X-Promgov-User", "alice")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var env struct {
			Status string   `json:"status"`
			Data   Proposal `json:"data"`
			Error  string   `json:"error"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
		return resp.StatusCode, env.Data, env.Error
	}

	code, _, msg := post("000000000000")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, msg, "no suggestion")

	code, p, msg := post(sugs[0].ID)
	require.Equal(t, http.StatusOK, code, msg)
	require.EqualValues(t, 2, p.Version.Number)
	require.Equal(t, govstore.ModeShadow, p.Version.Mode)
	require.Equal(t, "alice", p.Version.Author)
	require.Equal(t, sugs[0].ID, p.Suggestion.ID)
	require.Equal(t, 20.0, p.Preview.Totals.SeriesDropped)
	require.Equal(t, 1, p.Preview.Totals.MetricsChanged)
	require.Equal(t, "debug_events_total", p.Preview.Metrics[0].Metric)

	st, err := store.Resolve(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 1, st.Active.Number, "a proposal is not enforced")
	require.EqualValues(t, 2, st.Shadow.Number)
	doc, err := govstore.ParseDocument([]byte(st.Shadow.Body))
	require.NoError(t, err)
	require.Len(t, doc.Rules, 1)
	require.Equal(t, "suggestion-"+sugs[0].ID, doc.Rules[0].Name)

	// The preview is kept beside the version for its review.
	kept, err := store.Proposal(ctx, 2)
	require.NoError(t, err)
	var back Proposal
	require.NoError(t, json.Unmarshal(kept, &back))
	require.Equal(t, p.Preview.Totals, back.Preview.Totals)
	require.Equal(t, sugs[0].ID, back.Suggestion.ID)
}

// TestProposeAggregation: a suggestion to aggregate an unused label away
// becomes a shadow version with its aggregation rule added to the
// document's aggregations (a list of its own when the active version had
// none), and is refused once the rule is there.
func TestProposeAggregation(t *testing.T) {
	tf := knownTraffic(t)
	ctx := context.Background()
	costs := usage.StaticCosts{{Name: "requests_total", Series: 300, SamplesRate: 30,
		Labels: []usage.LabelCost{{Name: "job", Values: 2}, {Name: "path", Values: 15, SeriesWithout: 20}}}}
	access := usage.NewAccessStats(10, 10)
	q, err := promqlx.Extract(`sum by (job) (rate(requests_total[5m]))`)
	require.NoError(t, err)
	access.RecordQuery("anonymous", q, "alice", time.Now())
	mgr, err := usage.NewManager(usage.DefaultConfig(), usage.Deps{Access: access, Costs: costs, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	mgr.Refresh(ctx)
	var sug usage.Suggestion
	for _, s := range usage.Suggest(mgr.Report()) {
		if s.Kind == usage.SuggestAggregation {
			sug = s
		}
	}
	require.Equal(t, []string{"path"}, sug.Labels, "the fixture suggests aggregating path away")
	rule := sug.Aggregations[0]

	for name, tc := range map[string]struct {
		active   string
		wantCode int
		wantAggs []string // rule names of the proposed version
		wantMsg  string   // in the version's message, or in the error
	}{
		"the files' aggregations in force": {active: "rules: []\n", wantCode: http.StatusOK,
			wantAggs: []string{rule.Name}, wantMsg: "the version now holds the aggregations"},
		"versioned aggregations": {active: "aggregations:\n  - {name: other, match: up, without: [instance], interval: 1m}\n", wantCode: http.StatusOK,
			wantAggs: []string{"other", rule.Name}},
		"already applied": {active: "aggregations:\n  - {name: " + rule.Name + ", match: requests_total, without: [path], interval: 1m}\n",
			wantCode: http.StatusBadRequest, wantMsg: "already has aggregation rule " + rule.Name},
	} {
		t.Run(name, func(t *testing.T) {
			bkt, err := filesystem.NewBucket(t.TempDir())
			require.NoError(t, err)
			store := govstore.New(bkt)
			_, err = store.Write(ctx, govstore.WriteRequest{Body: []byte(tc.active), IfMatch: 0, Author: "seed"})
			require.NoError(t, err)
			h := ProposeHandler(ProposeDeps{Store: store, Usage: mgr, Cluster: local{NewIngester(tf.res, tf.tracker, nil)}, Rules: activeRules(t, ""), Timeout: 10 * time.Second})
			req := httptest.NewRequest(http.MethodPost, "/promgov/api/v1/suggestions/"+sug.ID+"/propose", nil)
			req.SetPathValue("id", sug.ID)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			require.Equal(t, tc.wantCode, w.Code, w.Body.String())
			st, err := store.Resolve(ctx)
			require.NoError(t, err)
			require.EqualValues(t, 1, st.Active.Number, "a proposal is not enforced")
			if tc.wantCode != http.StatusOK {
				require.Contains(t, w.Body.String(), tc.wantMsg)
				require.Nil(t, st.Shadow, "nothing written")
				return
			}
			doc, err := govstore.ParseDocument([]byte(st.Shadow.Body))
			require.NoError(t, err)
			require.NotNil(t, doc.Aggregations)
			var names []string
			for _, a := range *doc.Aggregations {
				names = append(names, a.Name)
			}
			require.Equal(t, tc.wantAggs, names)
			require.Equal(t, rule, (*doc.Aggregations)[len(names)-1])
			require.Contains(t, st.Shadow.Message, "proposal from suggestion "+sug.ID)
			require.Contains(t, st.Shadow.Message, tc.wantMsg)
		})
	}
}
