package aggregate

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/promgov/promgov/pkg/record"
)

// TestParseLabels: parse takes labels through pkg/record's ParseLabel, both
// the short encoding it has a fast path for and long values, and the
// metadata type through record.MetaType; a malformed label is refused.
func TestParseLabels(t *testing.T) {
	long := strings.Repeat("v", 300)
	var s []byte
	s = record.AppendLabel(s, "__name__", "up")
	s = record.AppendLabel(s, "job", long)
	s = record.AppendMetadataField(s, 1, nil, nil) // counter
	var p parsed
	require.True(t, p.parse(s))
	require.Len(t, p.labels, 2)
	require.Equal(t, "up", string(p.labels[0].value))
	v, ok := p.value("job")
	require.True(t, ok)
	require.Equal(t, long, string(v))
	require.EqualValues(t, 1, p.typ)

	bad := protowire.AppendTag(nil, record.FieldLabels, protowire.BytesType)
	bad = protowire.AppendBytes(bad, protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), []byte("no name")))
	require.False(t, p.parse(bad))
}
