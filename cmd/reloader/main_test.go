package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"testing"

	"github.com/promgov/promgov/internal/cli"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	tests := map[string]struct {
		args      []string
		wantUsage bool
		wantOut   string
	}{
		"version":        {args: []string{"--version"}, wantOut: "reloader, version "},
		"help":           {args: []string{"-h"}},
		"no file":        {args: []string{"--url=http://127.0.0.1:9500/-/reload"}, wantUsage: true},
		"bad url":        {args: []string{"--file=/x", "--url=localhost"}, wantUsage: true},
		"bad log level":  {args: []string{"--file=/x", "--url=http://a/-/reload", "--log.level=loud"}, wantUsage: true},
		"stray argument": {args: []string{"--file=/x", "--url=http://a/-/reload", "extra"}, wantUsage: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			var ue *cli.UsageError
			switch {
			case tc.wantUsage:
				require.ErrorAs(t, err, &ue)
			case tc.wantOut == "":
				require.True(t, errors.Is(err, flag.ErrHelp), "%v", err)
			default:
				require.NoError(t, err)
				require.Contains(t, stdout.String(), tc.wantOut)
			}
		})
	}
}
