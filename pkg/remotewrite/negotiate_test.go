package remotewrite

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseContentType(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		want    Protocol
		wantErr bool
	}{
		{name: "missing header assumes 1.0", header: "", want: ProtocolV1},
		{name: "blank header assumes 1.0", header: "  ", want: ProtocolV1},
		{name: "protobuf without proto", header: "application/x-protobuf", want: ProtocolV1},
		{name: "explicit v1", header: "application/x-protobuf;proto=prometheus.WriteRequest", want: ProtocolV1},
		{name: "explicit v2", header: "application/x-protobuf;proto=io.prometheus.write.v2.Request", want: ProtocolV2},
		{name: "v2 with spaces and charset", header: "application/x-protobuf; charset=utf-8; proto=io.prometheus.write.v2.Request", want: ProtocolV2},
		{name: "v1 with charset only", header: "application/x-protobuf; charset=utf-8", want: ProtocolV1},
		{name: "upper case media type and param", header: "Application/X-Protobuf;PROTO=io.prometheus.write.v2.Request", want: ProtocolV2},
		{name: "case-insensitive proto value", header: "application/x-protobuf;proto=IO.Prometheus.Write.V2.Request", want: ProtocolV2},
		{name: "quoted proto value", header: `application/x-protobuf;proto="prometheus.WriteRequest"`, want: ProtocolV1},
		{name: "wrong proto value", header: "application/x-protobuf;proto=io.prometheus.write.v3.Request", wantErr: true},
		{name: "empty proto value", header: "application/x-protobuf;proto=", wantErr: true},
		{name: "json", header: "application/json", wantErr: true},
		{name: "text plain", header: "text/plain; version=0.0.4", wantErr: true},
		{name: "malformed", header: "application/x-protobuf;;;=", wantErr: true},
		{name: "garbage", header: "???", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseContentType(tc.header)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrUnsupportedMediaType)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestCheckContentEncoding(t *testing.T) {
	tests := map[string]struct {
		header  string
		wantErr bool
	}{
		"empty":         {header: ""},
		"snappy":        {header: "snappy"},
		"upper snappy":  {header: "SNAPPY"},
		"padded snappy": {header: " snappy "},
		"gzip":          {header: "gzip", wantErr: true},
		"zstd":          {header: "zstd", wantErr: true},
		"identity":      {header: "identity", wantErr: true},
		"list":          {header: "snappy, gzip", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckContentEncoding(tc.header)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrUnsupportedMediaType)
				require.Contains(t, err.Error(), tc.header)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestProtocolStrings(t *testing.T) {
	require.Equal(t, "application/x-protobuf;proto=prometheus.WriteRequest", ProtocolV1.ContentType())
	require.Equal(t, "application/x-protobuf;proto=io.prometheus.write.v2.Request", ProtocolV2.ContentType())
	require.Equal(t, "Protocol(7)", Protocol(7).String())
	for _, p := range []Protocol{ProtocolV1, ProtocolV2} {
		got, err := ParseContentType(p.ContentType())
		require.NoError(t, err)
		require.Equal(t, p, got)
	}
}
