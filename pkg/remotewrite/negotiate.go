package remotewrite

import (
	"fmt"
	"mime"
	"strings"
)

// Protocol is a Remote Write protocol version.
type Protocol int

// Supported protocols.
const (
	// ProtocolV1 is Remote Write 1.0 (prometheus.WriteRequest).
	ProtocolV1 Protocol = 1
	// ProtocolV2 is Remote Write 2.0 (io.prometheus.write.v2.Request).
	ProtocolV2 Protocol = 2
)

// Proto message names used in the Content-Type proto= parameter.
const (
	ProtoMessageV1 = "prometheus.WriteRequest"
	ProtoMessageV2 = "io.prometheus.write.v2.Request"
)

const (
	mediaTypeProtobuf = "application/x-protobuf"
	encodingSnappy    = "snappy"
)

// String returns the proto message name of p.
func (p Protocol) String() string {
	switch p {
	case ProtocolV1:
		return ProtoMessageV1
	case ProtocolV2:
		return ProtoMessageV2
	default:
		return fmt.Sprintf("Protocol(%d)", int(p))
	}
}

// ContentType returns the canonical Content-Type header value for p.
func (p Protocol) ContentType() string {
	return mediaTypeProtobuf + ";proto=" + p.String()
}

// ParseContentType maps a Content-Type header value to a Protocol. An empty
// header means Remote Write 1.0 (the spec tells receivers to assume 1.0), as
// does application/x-protobuf without a proto parameter. Media type,
// parameter names and the proto value are matched case-insensitively; other
// parameters such as charset are ignored. Anything else returns an error
// wrapping ErrUnsupportedMediaType.
func ParseContentType(header string) (Protocol, error) {
	if strings.TrimSpace(header) == "" {
		return ProtocolV1, nil
	}
	mediaType, params, err := mime.ParseMediaType(header)
	if err != nil {
		return 0, fmt.Errorf("%w: parse Content-Type %q: %v", ErrUnsupportedMediaType, header, err)
	}
	if mediaType != mediaTypeProtobuf {
		return 0, fmt.Errorf("%w: Content-Type %q: media type must be %s", ErrUnsupportedMediaType, header, mediaTypeProtobuf)
	}
	proto, ok := params["proto"]
	switch {
	case !ok || strings.EqualFold(proto, ProtoMessageV1):
		return ProtocolV1, nil
	case strings.EqualFold(proto, ProtoMessageV2):
		return ProtocolV2, nil
	default:
		return 0, fmt.Errorf("%w: Content-Type %q: proto=%q is not one of %s, %s",
			ErrUnsupportedMediaType, header, proto, ProtoMessageV1, ProtoMessageV2)
	}
}

// CheckContentEncoding accepts an empty Content-Encoding or "snappy"
// (case-insensitive); anything else returns an error wrapping
// ErrUnsupportedMediaType. The body is always decoded as a snappy block.
func CheckContentEncoding(header string) error {
	enc := strings.TrimSpace(header)
	if enc == "" || strings.EqualFold(enc, encodingSnappy) {
		return nil
	}
	return fmt.Errorf("%w: Content-Encoding %q: only %q is supported", ErrUnsupportedMediaType, header, encodingSnappy)
}
