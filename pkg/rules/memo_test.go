package rules

import (
	"strconv"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/relabel"
	"github.com/stretchr/testify/require"
)

// TestMemoGate: a full memo whose values never come back stops being
// looked up, and is looked up again once values repeat; outcomes are the
// regex's throughout.
func TestMemoGate(t *testing.T) {
	fm, err := labels.NewFastRegexMatcher("(.{3})[0-9]+")
	require.NoError(t, err)
	mm := newMatchMemo(fm)
	require.NotNil(t, mm, "the regex must be one the memo is for")
	rx, err := relabel.NewRegexp("(.{3})[0-9]+")
	require.NoError(t, err)
	rm := &replaceMemo{cfg: &relabel.Config{Action: relabel.Replace, Regex: rx, TargetLabel: "t", Replacement: "$1", NameValidationScheme: model.UTF8Validation}}

	check := func(v string) {
		require.Equal(t, fm.MatchString(v), mm.match(v), v)
		require.Equal(t, replaceOf(rm.cfg, v), rm.outcome(v), v)
	}
	unique := 0
	next := func() string { unique++; return "id-" + strconv.Itoa(unique) }

	for range maxMemoEntries {
		check(next())
	}
	require.False(t, mm.memo.gate.off.Load(), "a memo still filling is looked up")

	for range 2 * memoWindow {
		check(next())
	}
	require.True(t, mm.memo.gate.off.Load(), "a full memo of values that never come back is bypassed")
	require.True(t, rm.memo.gate.off.Load())

	// Values it holds come back: the sampled lookups hit, and it is on
	// again within two windows.
	for i := range 2 * memoWindow {
		check("id-" + strconv.Itoa(1+i%100))
	}
	require.False(t, mm.memo.gate.off.Load(), "a memo whose values repeat is looked up again")
	require.False(t, rm.memo.gate.off.Load())
}
