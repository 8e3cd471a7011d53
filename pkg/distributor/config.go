// Package distributor is the stateless front door of a promgov cluster. It
// receives Remote Write 1.0 and 2.0, validates it, splits every request by
// (tenant, metric name) over the ring and pushes one gRPC batch to each
// owning ingester, answering the sender only once every part is accepted.
package distributor

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/promgov/promgov/pkg/remotewrite"
)

// Config configures the distributor. The remote-write decoding limits are
// inlined, so the YAML section `distributor:` holds both.
type Config struct {
	RemoteWrite remotewrite.Config `yaml:",inline"`

	// PushTimeout is the deadline of each gRPC Push to an ingester.
	PushTimeout time.Duration `yaml:"push_timeout"`
	// RetryAfter is sent with 429 answers when an ingester applies
	// backpressure.
	RetryAfter time.Duration `yaml:"retry_after"`
	// MaxSendMsgSize bounds one gRPC Push; it must not exceed the ingesters'
	// grpc_max_recv_msg_size.
	MaxSendMsgSize int `yaml:"grpc_max_send_msg_size"`
	// SeriesCacheBytes bounds the series cache (what a series seen before
	// turns into: validation, rule outcome, output labels, owner), in bytes
	// of keys and values. 0 takes the default; a negative value turns the
	// cache off.
	SeriesCacheBytes int `yaml:"series_cache_bytes"`
	// MaxInflightPushRequests bounds the remote-write requests this
	// distributor serves at once (reading, decoding, pushing); more are
	// answered 503 with Retry-After before their body is read. 0: no bound.
	MaxInflightPushRequests int `yaml:"max_inflight_push_requests"`
	// MaxInflightPushBytes bounds the bytes requests hold while they are
	// read and decoded (compressed bodies as they arrive, decompressed
	// payloads before they are allocated); a request that would pass it is
	// answered 503 with Retry-After. 0: no bound.
	MaxInflightPushBytes int64 `yaml:"max_inflight_push_bytes"`
}

// Defaults of the instance limits.
const (
	DefaultMaxInflightPushRequests = 2000
	DefaultMaxInflightPushBytes    = 256 << 20
)

// DefaultSeriesCacheBytes is the default bound of the series cache: about
// 250,000 series of a few labels.
const DefaultSeriesCacheBytes = 64 << 20

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{
		RemoteWrite: remotewrite.DefaultConfig(), PushTimeout: 10 * time.Second, RetryAfter: 5 * time.Second,
		MaxSendMsgSize: 100 << 20, SeriesCacheBytes: DefaultSeriesCacheBytes,
		MaxInflightPushRequests: DefaultMaxInflightPushRequests, MaxInflightPushBytes: DefaultMaxInflightPushBytes,
	}
}

// FlagPrefix is the prefix the binary registers Config's flags under; the
// remote write limit errors name their flags with it.
const FlagPrefix = "distributor."

// RegisterFlags registers the flags under prefix (the binary uses
// FlagPrefix), with c's values as defaults (start from DefaultConfig).
func (c *Config) RegisterFlags(prefix string, fs *flag.FlagSet) {
	c.RemoteWrite.RegisterFlags(prefix, fs)
	fs.DurationVar(&c.PushTimeout, prefix+"push-timeout", c.PushTimeout, "Deadline of each Push to an ingester; a timeout answers the sender 503 so it retries.")
	fs.DurationVar(&c.RetryAfter, prefix+"retry-after", c.RetryAfter, "Retry-After sent with 429 when an ingester applies backpressure.")
	fs.IntVar(&c.MaxSendMsgSize, prefix+"grpc-max-send-msg-size", c.MaxSendMsgSize, "Largest Push the distributor sends to one ingester, in bytes.")
	fs.IntVar(&c.MaxInflightPushRequests, prefix+"max-inflight-push-requests", c.MaxInflightPushRequests, "Most remote-write requests served at once; more are answered 503 with Retry-After before their body is read. 0 means no bound.")
	fs.Int64Var(&c.MaxInflightPushBytes, prefix+"max-inflight-push-bytes", c.MaxInflightPushBytes, "Most bytes remote-write requests hold at once while read and decoded (compressed bodies as they arrive, decompressed payloads before allocation); a request that would pass it is answered 503 with Retry-After. 0 means no bound.")
	fs.IntVar(&c.SeriesCacheBytes, prefix+"series-cache-bytes", c.SeriesCacheBytes, "Bytes of the cache of what each series seen before turns into (validation, rules, output labels, owner); a series found there is placed without decoding it or running the rules again. Negative turns it off.")
}

// Validate reports a configuration error naming the field and the fix.
func (c *Config) Validate() error {
	if err := c.RemoteWrite.Validate(); err != nil {
		return err
	}
	if c.PushTimeout <= 0 {
		return errors.New("distributor.push_timeout: must be positive, e.g. 10s")
	}
	if c.RetryAfter < time.Second {
		return errors.New("distributor.retry_after: must be at least 1s (Retry-After has second resolution)")
	}
	if c.MaxSendMsgSize <= 0 {
		return errors.New("distributor.grpc_max_send_msg_size: must be positive")
	}
	if c.MaxInflightPushRequests < 0 {
		return fmt.Errorf("distributor.max_inflight_push_requests: %d is negative; set a positive bound or 0 for none", c.MaxInflightPushRequests)
	}
	if c.MaxInflightPushBytes < 0 {
		return fmt.Errorf("distributor.max_inflight_push_bytes: %d is negative; set a positive bound or 0 for none", c.MaxInflightPushBytes)
	}
	// One request holds at most about twice its compressed and decoded
	// sizes (buffers come in power-of-two sizes).
	if need := 2 * (c.RemoteWrite.MaxDecodedBytes + c.RemoteWrite.MaxCompressedBytes); c.MaxInflightPushBytes > 0 && c.MaxInflightPushBytes < need {
		return fmt.Errorf("distributor.max_inflight_push_bytes: %d is less than one request of the largest accepted size may hold, 2*(max_decoded_bytes+max_compressed_bytes) = %d; raise it to at least that or lower those limits", c.MaxInflightPushBytes, need)
	}
	return nil
}
