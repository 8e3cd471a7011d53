package querylog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const line1 = `{"httpRequest":{"clientIP":"127.0.0.1","method":"GET","path":"/api/v1/query_range"},"params":{"end":"2020-02-08T14:59:50.368Z","query":"up == 0","start":"2020-02-08T13:59:50.368Z","step":5},"stats":{"timings":{"evalTotalTime":0.000447452}},"ts":"2020-02-08T14:59:50.387Z"}`
const ruleLine = `{"params":{"end":"2020-02-08T14:59:50.368Z","query":"sum(x)","start":"2020-02-08T14:59:50.368Z","step":0},"ruleGroup":{"file":"rules.yml","name":"g"},"ts":"2020-02-08T14:59:51Z"}`

func TestTailer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "query.log")
	require.NoError(t, os.WriteFile(path, []byte(line1+"\n"+"not json\n"+ruleLine+"\n"+`{"params":{"query":"partial`), 0o600))
	tl := NewTailer(path)
	var got []Entry
	bad, err := tl.ReadNew(func(e Entry) { got = append(got, e) })
	require.NoError(t, err)
	require.Equal(t, 1, bad)
	require.Len(t, got, 2)
	require.Equal(t, "up == 0", got[0].Query)
	require.Equal(t, "/api/v1/query_range", got[0].Path)
	require.Equal(t, time.Date(2020, 2, 8, 14, 59, 50, 387000000, time.UTC), got[0].Time)
	require.Equal(t, "g", got[1].RuleGroup)

	// Completing the partial line delivers it once.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`_x"},"ts":"2020-02-08T15:00:00Z"}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	got = nil
	_, err = tl.ReadNew(func(e Entry) { got = append(got, e) })
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "partial_x", got[0].Query)

	// Nothing new: nothing delivered.
	got = nil
	_, err = tl.ReadNew(func(e Entry) { got = append(got, e) })
	require.NoError(t, err)
	require.Empty(t, got)

	// Truncation (rotation) restarts from the beginning.
	require.NoError(t, os.WriteFile(path, []byte(line1+"\n"), 0o600))
	_, err = tl.ReadNew(func(e Entry) { got = append(got, e) })
	require.NoError(t, err)
	require.Len(t, got, 1)
}

func TestTailerLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "query.log")
	long := `{"params":{"query":"` + strings.Repeat("a", 200<<10) + `"}}`
	require.NoError(t, os.WriteFile(path, []byte(long+"\n"+line1+"\n"), 0o600))
	var got []Entry
	bad, err := NewTailer(path).ReadNew(func(e Entry) { got = append(got, e) })
	require.NoError(t, err)
	require.Equal(t, 1, bad)
	require.Len(t, got, 1)
}

func TestTailerMissingFile(t *testing.T) {
	_, err := NewTailer(filepath.Join(t.TempDir(), "nope")).ReadNew(func(Entry) {})
	require.Error(t, err)
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(line1))
	f.Add([]byte(ruleLine))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseLine(b)
	})
}
