package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIngesterLinksNoDistributorPackage pins the dependency rule of issue
// 13: the ingester links only what it runs. The distributor's packages
// (its write path, rate limits and configuration) must not reach it
// through a shared package (pkg/config, pkg/govstore, pkg/ui did). The
// rules engine is the ingester's too since the impact preview: an ingester
// runs a candidate's rules over its reservoir (pkg/preview).
func TestIngesterLinksNoDistributorPackage(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot list the ingester's dependencies")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	require.NoError(t, err, "go list -deps: %s", out)
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	require.True(t, deps["github.com/promgov/promgov/pkg/ingester"], "the listing is the ingester's: %s", out)
	for _, forbidden := range []string{
		"github.com/promgov/promgov/pkg/distributor",
		"github.com/promgov/promgov/pkg/ratelimit",
		"github.com/promgov/promgov/pkg/config/distributorconfig",
		// A test package: it registers a flag at init (pkg/ui used it
		// outside tests).
		"net/http/httptest",
	} {
		if deps[forbidden] {
			t.Errorf("cmd/ingester links %s; find the import with go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/ingester", forbidden)
		}
	}
}
