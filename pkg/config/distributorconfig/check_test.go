package distributorconfig

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/promgov/promgov/pkg/config"
	"github.com/stretchr/testify/require"
)

// TestCheckFile: one check validates every section of the shared file for
// both binaries, so a file that passes starts a distributor and an
// ingester alike.
func TestCheckFile(t *testing.T) {
	for name, tc := range map[string]struct {
		file      string
		wantErr   string // "" for valid
		wantRules int
		wantNote  string
	}{
		"the example file": {file: "@../../../deploy/promgov.yml"},
		"rules are compiled": {
			file:      "rules:\n  - name: drop-debug\n    relabel_configs: [{source_labels: [__name__], regex: 'debug_.*', action: drop}]\n",
			wantRules: 1, wantNote: "backend.url is not set",
		},
		"an ingester-only section (wal)": {
			file:    "backend: {url: http://p:9090/api/v1/write}\nwal:\n  sync_policy: bogus\n",
			wantErr: `as an ingester loads it: invalid configuration: invalid wal config: sync_policy: "bogus" is unknown`,
		},
		"an ingester-only section (cardinality limits)": {
			file:    "cardinality:\n  limits:\n    exempt: ['(']\n",
			wantErr: "as an ingester loads it: invalid configuration: cardinality.limits: exempt[0]",
		},
		"an ingester-only section (backend)": {
			file:    "backend: {url: 'not a url', protocol: 1}\n",
			wantErr: "as an ingester loads it: invalid configuration: backend.url",
		},
		"a distributor-only section (rules)": {
			file:    "rules:\n  - name: x\n    action: explode\n    labels: {forbidden: [a]}\n",
			wantErr: `as a distributor loads it: invalid configuration: rules[0] ("x").action: unknown action "explode"`,
		},
		"a distributor-only section (usage)": {
			file:    "usage:\n  drop_unused: {mode: sometimes}\n",
			wantErr: "as a distributor loads it: invalid configuration: usage.drop_unused.mode",
		},
		"a shared section": {
			file:    "log_format: yaml\n",
			wantErr: `as a distributor loads it: invalid configuration: log_format "yaml": use logfmt or json`,
		},
		"an unknown section": {
			file:    "distributer: {}\n",
			wantErr: "field distributer not found",
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := strings.TrimPrefix(tc.file, "@")
			if path == tc.file {
				path = writeFile(t, tc.file)
			}
			rep, err := CheckFile(path)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantRules, rep.Rules)
			if tc.wantNote != "" {
				require.Len(t, rep.Notes, 1)
				require.Contains(t, rep.Notes[0], tc.wantNote)
			} else {
				require.Empty(t, rep.Notes)
			}
			// What passes the check starts both binaries (given the
			// --backend.url the note asks for).
			_, err = Parse([]string{"--config.file=" + path}, &bytes.Buffer{})
			require.NoError(t, err)
			args := []string{"--config.file=" + path}
			if len(rep.Notes) > 0 {
				args = append(args, "--backend.url=http://p:9090/api/v1/write")
			}
			_, err = config.ParseIngester(args, &bytes.Buffer{})
			require.NoError(t, err)
		})
	}
}

func TestCheckConfigCommand(t *testing.T) {
	good := writeFile(t, "backend: {url: http://p:9090/api/v1/write}\n")
	bad := writeFile(t, "wal: {sync_policy: bogus}\n")
	var out bytes.Buffer
	require.NoError(t, CheckConfigCommand("distributor", []string{good}, &out))
	require.Equal(t, "SUCCESS "+good+": valid for distributors and ingesters, 0 rules\n", out.String())

	out.Reset()
	err := CheckConfigCommand("distributor", []string{good, bad}, &out)
	var ue *config.UsageError
	require.ErrorAs(t, err, &ue, "an invalid file exits with code 2")
	require.Contains(t, out.String(), "FAILED "+bad+": as an ingester loads it")

	out.Reset()
	require.ErrorAs(t, CheckConfigCommand("distributor", nil, &out), &ue)
	require.Contains(t, out.String(), "Usage: distributor check-config FILE...")
}

// TestDefaultAddresses: both binaries listen on every interface, each on
// ports of its own, so that they can share a host.
func TestDefaultAddresses(t *testing.T) {
	dist, err := Parse(nil, &bytes.Buffer{})
	require.NoError(t, err)
	ing, err := config.ParseIngester([]string{"--backend.url=http://p:9090/api/v1/write"}, &bytes.Buffer{})
	require.NoError(t, err)
	require.Equal(t, ":9500", dist.Web.ListenAddress)
	require.Equal(t, ":7946", dist.Memberlist.BindAddress)
	require.Equal(t, ":9501", ing.Web.ListenAddress)
	require.Equal(t, ":7947", ing.Memberlist.BindAddress)
	require.Equal(t, ":9095", ing.Ingester.ListenAddress)

	var help bytes.Buffer
	_, err = config.ParseIngester([]string{"-h"}, &help)
	require.Error(t, err)
	require.Contains(t, help.String(), `(default ":9501")`, "-h shows the ingester's own default")
}

func FuzzCheckFile(f *testing.F) {
	for _, p := range []string{"../../../deploy/promgov.yml", "../../../deploy/local/promgov.yml"} {
		b, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("wal: {sync_policy: bogus}\n"))
	f.Add([]byte("cardinality: {limits: {exempt: ['(']}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "promgov.yml")
		require.NoError(t, os.WriteFile(p, data, 0o644))
		_, _ = CheckFile(p) // must not panic
	})
}
