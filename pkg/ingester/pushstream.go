package ingester

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/status"

	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// dataService is what the gRPC server registers as the IngesterService:
// the Service's Push, and PushStream, which carries pushes on a long-lived
// stream. PushStream needs what the server wraps around a unary Push (the
// codec's buffer release, the instance limits), per message.
type dataService struct {
	*Service
	codec ingesterv1.Codec
	lim   *inflightLimits
}

// PushStream answers each PushRequest of the stream, in order, with what
// Push would have returned for it, status code included (see the proto).
// A push is handled as a unary Push is: the instance limits admit it or
// answer RESOURCE_EXHAUSTED, and its buffer goes back to the codec's pool
// once answered. The stream's context is every push's: a distributor
// whose push times out cancels the stream it was on.
func (d *dataService) PushStream(stream ingesterv1.IngesterService_PushStreamServer) error {
	ctx := stream.Context()
	req := &ingesterv1.PushRequest{}
	for {
		if err := stream.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the distributor closed the stream
			}
			return err
		}
		if err := d.answer(ctx, stream, req); err != nil {
			return err
		}
	}
}

// answer handles one push of the stream and sends its answer. The push
// counts as in flight until the answer is sent, so a stopping server
// (Server.Run) does not cut the stream before it. The push's buffer goes
// back to the codec's pool on return, even on a panic.
func (d *dataService) answer(ctx context.Context, stream ingesterv1.IngesterService_PushStreamServer, req *ingesterv1.PushRequest) error {
	defer d.codec.Release(req)
	out := &ingesterv1.PushStreamResponse{}
	done, err := d.lim.admit(req)
	if err == nil {
		defer done()
		out.Response, err = d.Push(ctx, req)
	}
	if err != nil {
		st := status.Convert(err)
		out.Code, out.Message, out.Response = uint32(st.Code()), st.Message(), nil
	}
	return stream.Send(out)
}
