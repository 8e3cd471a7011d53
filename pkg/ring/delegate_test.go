package ring

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLogBridgeLevels(t *testing.T) {
	tests := map[string]struct {
		line      string
		wantLevel string
		wantMsg   string
	}{
		"debug":                 {"[DEBUG] memberlist: Stream connection from=1.2.3.4", "DEBUG", "Stream connection from=1.2.3.4"},
		"info":                  {"[INFO] memberlist: Marking x as failed", "INFO", "Marking x as failed"},
		"warn":                  {"[WARN] memberlist: Refuting a suspect message", "WARN", "Refuting a suspect message"},
		"err":                   {"[ERR] memberlist: Failed to send ping", "ERROR", "Failed to send ping"},
		"shutdown race demoted": {"[ERR] memberlist: Failed to send UDP ping: use of closed network connection", "DEBUG", "Failed to send UDP ping"},
		"no level":              {"something else", "INFO", "something else"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			b := logBridge{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
			n, err := b.Write([]byte(tc.line + "\n"))
			require.NoError(t, err)
			require.Equal(t, len(tc.line)+1, n)
			out := buf.String()
			require.Contains(t, out, "level="+tc.wantLevel)
			require.Contains(t, out, tc.wantMsg)
			require.Contains(t, out, "component=memberlist")
			require.False(t, strings.Contains(out, "memberlist: "), out)
		})
	}
}
