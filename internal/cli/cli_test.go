package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExitCode(t *testing.T) {
	for name, tc := range map[string]struct {
		err    error
		code   int
		stderr string
	}{
		"success":         {err: nil, code: 0},
		"help":            {err: flag.ErrHelp, code: 0},
		"usage":           {err: Usage(errors.New("bad flag")), code: 2, stderr: "x: bad flag\n"},
		"wrapped usage":   {err: fmt.Errorf("config: %w", Usage(errors.New("bad"))), code: 2, stderr: "x: config: bad\n"},
		"any other error": {err: errors.New("disk full"), code: 1, stderr: "x: disk full\n"},
	} {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			require.Equal(t, tc.code, ExitCode("x", tc.err, &stderr))
			require.Equal(t, tc.stderr, stderr.String())
		})
	}
}
