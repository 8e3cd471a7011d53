package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promgov/promgov/internal/proc"
)

func TestSubcommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	valid := write("valid.yml", "distributor:\n  push_timeout: 5s\nrules:\n  - name: drop-debug\n    relabel_configs:\n      - source_labels: [__name__]\n        regex: debug_.*\n        action: drop\n")
	invalid := write("invalid.yml", "rules:\n  - name: x\n    action: explode\n    labels: {forbidden: [a]}\n")
	typo := write("typo.yml", "distributer: {}\n")
	walBogus := write("wal.yml", "wal:\n  sync_policy: bogus\n")
	passing := write("pass_test.yml", "rule_files: [valid.yml]\ntests:\n  - name: debug dropped\n    series:\n      - input: 'debug_x{a=\"1\"}'\n        expect: {action: dropped, rule: drop-debug}\n")
	failing := write("fail_test.yml", "rule_files: [valid.yml]\ntests:\n  - name: debug kept (wrong)\n    series:\n      - input: 'debug_x{a=\"1\"}'\n        expect: {action: kept}\n")
	for name, tc := range map[string]struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		"check-config accepts a valid file":       {[]string{"check-config", valid}, 0, "SUCCESS " + valid + ": valid for distributors and ingesters, 1 rules"},
		"check-config checks ingester sections":   {[]string{"check-config", walBogus}, 2, `as an ingester loads it: invalid configuration: invalid wal config: sync_policy: "bogus" is unknown`},
		"check-config names the invalid field":    {[]string{"check-config", valid, invalid}, 2, `rules[0] ("x").action: unknown action "explode"`},
		"check-config rejects unknown sections":   {[]string{"check-config", typo}, 2, "field distributer not found"},
		"check-config needs a file":               {[]string{"check-config"}, 2, "Usage: distributor check-config"},
		"test-rules passes":                       {[]string{"test-rules", passing}, 0, "SUCCESS"},
		"test-rules fails with the trace":         {[]string{"test-rules", passing, failing}, 1, "1. drop-debug [relabel, enforce]: dropped"},
		"test-rules rejects an invalid test file": {[]string{"test-rules", invalid}, 2, "INVALID"},
	} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			require.Equal(t, tc.wantCode, proc.ExitCode(err, &stderr), "stdout: %s\nstderr: %s", stdout.String(), stderr.String())
			require.Contains(t, stdout.String(), tc.wantOut)
			if tc.wantCode == 1 {
				require.True(t, errors.Is(err, errChecksFailed))
			}
		})
	}
}
