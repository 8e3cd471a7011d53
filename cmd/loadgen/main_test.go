package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/promgov/promgov/internal/cli"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRun(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		requests.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	tests := map[string]struct {
		args      []string
		wantUsage bool
		wantHelp  bool
		check     func(t *testing.T, out string)
	}{
		"json report": {
			args: []string{"-url=" + srv.URL + "/api/v1/write", "-protocol=2.0", "-metrics=2", "-series-per-metric=5",
				"-series-per-request=5", "-requests=4", "-report-interval=0", "-output=json"},
			check: func(t *testing.T, out string) {
				var rep map[string]any
				require.NoError(t, json.Unmarshal([]byte(out), &rep))
				require.Equal(t, float64(20), rep["accepted_samples"])
				require.Equal(t, float64(20), rep["sent_samples"])
				require.Equal(t, map[string]any{"204": float64(4)}, rep["status_counts"])
				require.Contains(t, rep, "latency_ms")
			},
		},
		"text report": {
			args: []string{"-url=" + srv.URL, "-requests=1", "-report-interval=0"},
			check: func(t *testing.T, out string) {
				require.Contains(t, out, "accepted samples:")
			},
		},
		"version": {
			args: []string{"-version"},
			check: func(t *testing.T, out string) {
				require.Contains(t, out, "loadgen, version ")
				require.Contains(t, out, "go version:")
			},
		},
		"unknown flag":      {args: []string{"-nope"}, wantUsage: true},
		"invalid value":     {args: []string{"-metrics=0"}, wantUsage: true},
		"bad protocol":      {args: []string{"-protocol=3"}, wantUsage: true},
		"stray argument":    {args: []string{"extra"}, wantUsage: true},
		"help is not error": {args: []string{"-h"}, wantHelp: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out)
			var ue *cli.UsageError
			switch {
			case tc.wantUsage:
				require.ErrorAs(t, err, &ue)
			case tc.wantHelp:
				require.True(t, errors.Is(err, flag.ErrHelp))
			default:
				require.NoError(t, err)
				tc.check(t, out.String())
			}
		})
	}
	require.Equal(t, int64(5), requests.Load())
}
