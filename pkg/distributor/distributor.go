package distributor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/promgov/promgov/pkg/ingester"
	"github.com/promgov/promgov/pkg/remotewrite"
	"github.com/promgov/promgov/pkg/ring"
	"github.com/promgov/promgov/pkg/rules"
	ingesterv1 "github.com/promgov/promgov/proto/promgov/ingester/v1"
)

// Placer gives the ring's current placement. Safe for concurrent use; the
// returned snapshot is immutable and never nil.
type Placer interface {
	Placement() *ring.Placement
}

var _ Placer = (*ring.Ring)(nil)

// PushSender sends each owning ingester its batch, sending a push and
// reading its answer apart (Clients does): a request to several ingesters
// sends all its pushes before it waits for any, so they proceed together
// without a goroutine each. Send returns once the push is handed to the
// transport (one larger than the ingester's stream window, 4 MiB, waits
// there for the ingester to read it). Send is safe for concurrent use; a
// PendingPush is waited on once, by the goroutine that sent it.
type PushSender interface {
	Send(ctx context.Context, addr string, req *ingesterv1.PushRequest) PendingPush
}

// PendingPush is a push sent whose answer is not read yet. Wait returns
// the ingester's answer, or why there is none.
type PendingPush interface {
	Wait(ctx context.Context) (*ingesterv1.PushResponse, error)
}

var _ PushSender = (*Clients)(nil)

// Distributor serves POST /api/v1/write.
type Distributor struct {
	cfg     Config
	decoder *remotewrite.Decoder
	ring    Placer
	pusher  PushSender
	logger  *slog.Logger
	m       *metrics

	rules      RulesSource      // nil: no governance rules
	types      *rules.TypeCache // RW 1.0 family metadata for type-dependent rules
	govPool    governorPool
	cache      *seriesCache
	intakePool intakePool

	// perSeriesRules resolves missed series one at a time even when the
	// rules have batch stages (tests compare the two paths).
	perSeriesRules bool
	limiter        RateLimiter // nil: no per-tenant rate limit
	usageDropped   prometheus.Counter

	// Samples and histograms of valid series received, and those the
	// governance dropped (GovernanceDrops).
	govReceived, govDropped atomic.Uint64

	// Instance limits (Config.MaxInflightPush*).
	inflight atomic.Int64
	budget   *remotewrite.ByteBudget
}

// Deps are what a Distributor works with, all given at construction: a
// Distributor has no setters. Ring and Pusher are required; the others are
// optional, nil meaning the feature is off. What changes at run time
// (reloaded rules, a reloaded drop policy or rate limits) changes behind
// these interfaces, never by replacing them.
type Deps struct {
	// Ring gives the placement every request is split by.
	Ring Placer
	// Pusher sends each owning ingester its batch: the cluster's
	// connections (NewClients) in production; tests inject faults with it.
	Pusher PushSender
	// Rules gives the active governance ruleset, read once per request, so
	// a reload (rules.Manager.Reload) applies from the next request on.
	Rules RulesSource
	// Types remembers RW 1.0 family metadata for the rules that read a
	// series' type or unit; nil: RW 1.0 series have no type.
	Types *rules.TypeCache
	// RateLimiter checks every request's samples and histograms against its
	// tenant's rate before anything is pushed.
	RateLimiter RateLimiter
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
}

// New builds a distributor from its configuration and dependencies. It
// panics without the required ones (a wiring error).
func New(cfg Config, d Deps) *Distributor {
	if d.Ring == nil || d.Pusher == nil {
		panic("distributor.New: Ring and Pusher are required")
	}
	dist := &Distributor{
		cfg:     cfg,
		decoder: remotewrite.NewDecoder(cfg.RemoteWrite, FlagPrefix),
		ring:    d.Ring,
		pusher:  d.Pusher,
		logger:  d.Logger,
		m:       newMetrics(d.Registerer),

		rules:   d.Rules,
		types:   d.Types,
		limiter: d.RateLimiter,

		usageDropped: newUsageDropped(d.Registerer),
		cache:        newSeriesCache(cacheBytes(cfg.SeriesCacheBytes)),
	}
	dist.budget = remotewrite.NewByteBudget(cfg.MaxInflightPushBytes, func(used, n, max int64) error {
		dist.m.overloaded.WithLabelValues("max_inflight_push_bytes").Inc()
		return fmt.Errorf("%w: this distributor holds %d bytes of requests in flight and this one needs %d more, over -distributor.max-inflight-push-bytes=%d; retry later or at another distributor",
			remotewrite.ErrOverloaded, used, n, max)
	})
	promauto.With(d.Registerer).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promgov_distributor_inflight_bytes",
		Help: "Bytes remote-write requests hold while read and decoded (what -distributor.max-inflight-push-bytes bounds).",
	}, func() float64 { return float64(dist.budget.Used()) })
	return dist
}

// cacheBytes resolves Config.SeriesCacheBytes (0: default, < 0: off).
func cacheBytes(n int) int {
	switch {
	case n == 0:
		return DefaultSeriesCacheBytes
	case n < 0:
		return 0
	}
	return n
}

// Ready reports nil once at least one ingester is ACTIVE in the ring.
func (d *Distributor) Ready() error {
	if len(d.ring.Placement().Ingesters()) == 0 {
		return errors.New("no ACTIVE ingester in the ring")
	}
	return nil
}

// ServeHTTP implements the remote-write receiver.
func (d *Distributor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	d.m.inflight.Inc()
	defer d.m.inflight.Dec()
	code, proto := d.serve(w, r)
	d.m.requests.WithLabelValues(proto, strconv.Itoa(code)).Inc()
	d.m.duration.WithLabelValues(proto).Observe(time.Since(start).Seconds())
}

func (d *Distributor) serve(w http.ResponseWriter, r *http.Request) (code int, proto string) {
	proto = "unknown"
	n := d.inflight.Add(1)
	defer d.inflight.Add(-1)
	if limit := d.cfg.MaxInflightPushRequests; limit > 0 && n > int64(limit) {
		d.m.overloaded.WithLabelValues("max_inflight_push_requests").Inc()
		return d.overloaded(w, fmt.Sprintf("%v: this distributor serves %d requests, its limit (-distributor.max-inflight-push-requests); retry later or at another distributor",
			remotewrite.ErrOverloaded, limit)), proto
	}
	tenant, err := d.decoder.Tenant(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return http.StatusBadRequest, proto
	}
	body, err := d.decoder.ReadWithin(r, d.budget)
	if errors.Is(err, remotewrite.ErrOverloaded) {
		return d.overloaded(w, err.Error()), proto
	}
	if err != nil {
		code = decodeStatus(err)
		http.Error(w, err.Error(), code)
		return code, proto
	}
	defer body.Release()
	proto = body.Protocol.String()

	in := d.intakePool.get()
	defer d.intakePool.put(in)
	in.d, in.tenant, in.proto, in.placement = d, tenant, body.Protocol, d.ring.Placement()
	in.gov = d.governance()
	if in.gov != nil {
		defer d.govPool.put(in.gov.g)
	}
	in.gen = d.cache.acquire(in.gov.engine())
	err = in.run(body.Payload)
	// What the request read from the cache is copied into its parts: the
	// generation is let go before the push waits on the ingesters.
	in.gen.release()
	in.gen = nil
	if err != nil {
		if errors.Is(err, errNoIngesters) {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable, proto
		}
		code = decodeStatus(err)
		http.Error(w, err.Error(), code)
		return code, proto
	}
	if in.sorted > 0 {
		d.m.sortedSeries.WithLabelValues(proto, senderFamily(r.UserAgent())).Add(float64(in.sorted))
	}

	if d.rateLimited(w, in) {
		return http.StatusTooManyRequests, proto
	}
	written, pushErr := d.push(r.Context(), in)
	if body.Protocol == remotewrite.ProtocolV2 {
		h := w.Header()
		h.Set("X-Prometheus-Remote-Write-Samples-Written", strconv.FormatInt(written.GetSamplesWritten(), 10))
		h.Set("X-Prometheus-Remote-Write-Histograms-Written", strconv.FormatInt(written.GetHistogramsWritten(), 10))
		h.Set("X-Prometheus-Remote-Write-Exemplars-Written", strconv.FormatInt(written.GetExemplarsWritten(), 10))
	}
	if pushErr != nil {
		code = pushErr.status
		if code == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", strconv.Itoa(int(d.cfg.RetryAfter.Seconds())))
		}
		d.logger.Warn("push to ingesters failed", "tenant", tenant, "status", code, "err", pushErr.msg)
		http.Error(w, pushErr.msg, code)
		return code, proto
	}
	if in.rejected > 0 {
		d.m.invalidSeries.Add(float64(in.rejected))
		msg := fmt.Sprintf("%d invalid series rejected, first: %s; the other %d series in the request were written",
			in.rejected, in.firstInvalid, in.valid)
		d.logger.Debug("rejected invalid series", "tenant", tenant, "rejected", in.rejected, "first", in.firstInvalid)
		http.Error(w, msg, http.StatusBadRequest)
		return http.StatusBadRequest, proto
	}
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent, proto
}

// overloaded answers a request refused by an instance limit: 503, which
// every Remote Write sender retries, with Retry-After.
func (d *Distributor) overloaded(w http.ResponseWriter, msg string) int {
	w.Header().Set("Retry-After", strconv.Itoa(int(d.cfg.RetryAfter.Seconds())))
	// The body is not read: the connection is closed after the answer
	// rather than drained.
	w.Header().Set("Connection", "close")
	http.Error(w, msg, http.StatusServiceUnavailable)
	return http.StatusServiceUnavailable
}

// decodeStatus maps decoding errors onto HTTP status codes.
func decodeStatus(err error) int {
	switch {
	case errors.Is(err, remotewrite.ErrUnsupportedMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, remotewrite.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	default:
		return http.StatusBadRequest
	}
}

// GovernanceDrops returns, since start, the samples and histograms of the
// valid series this distributor received and those the governance (rules
// and the usage drop policy) dropped. Safe for concurrent use; both only
// grow.
func (d *Distributor) GovernanceDrops() (received, dropped uint64) {
	return d.govReceived.Load(), d.govDropped.Load()
}

// pushError is the merged outcome of a failed fan-out.
type pushError struct {
	status int
	msg    string
}

// push sends every part of in, together (sendParts). It returns what the ingesters
// wrote, and an error unless every part was accepted.
func (d *Distributor) push(ctx context.Context, in *intake) (*ingesterv1.PushResponse, *pushError) {
	// Series dropped by rules count as written: the sender must not retry
	// them, and the rules did what the operator configured.
	total := &ingesterv1.PushResponse{}
	d.govReceived.Add(uint64(in.received.samples + in.received.histograms))
	if gov := in.gov; gov != nil {
		d.govDropped.Add(uint64(gov.stats.droppedSamples + gov.stats.droppedHistograms + gov.usage.droppedSamples + gov.usage.droppedHistograms))
		d.logRules(ctx, in.tenant, in.valid, &gov.stats)
		total.SamplesWritten = int64(gov.stats.droppedSamples)
		total.HistogramsWritten = int64(gov.stats.droppedHistograms)
		total.ExemplarsWritten = int64(gov.stats.droppedExemplars)
		// Series dropped by the usage policy count as written too.
		total.SamplesWritten += int64(gov.usage.droppedSamples)
		total.HistogramsWritten += int64(gov.usage.droppedHistograms)
		total.ExemplarsWritten += int64(gov.usage.droppedExemplars)
		d.usageDropped.Add(float64(gov.usage.dropped))
	}
	parts := in.nonEmptyParts()
	if len(parts) == 0 {
		return total, nil
	}
	d.m.samples.Add(float64(in.received.samples + in.received.histograms + in.received.exemplars))
	tenant := in.tenant

	errs := d.sendParts(ctx, tenant, parts, total)
	if len(errs) == 0 {
		// Series refused by a cardinality limit answer 400; the rest was
		// written and is counted in total.
		return total, refusedError(total)
	}
	return total, mergeErrors(errs)
}

// governance prepares the rules and the usage drop policy for one request,
// or returns nil when there are neither.
func (d *Distributor) governance() *governance {
	var eng *rules.Engine
	withMeta := false
	if d.rules != nil {
		eng = d.rules.Active().Engine
		if eng.Len() == 0 {
			eng = nil
		} else {
			withMeta = eng.UsesMetadata()
		}
	}
	if eng == nil {
		return nil
	}
	batch := eng != nil && eng.HasBatchStages() && !d.perSeriesRules
	return &governance{eng: eng, types: d.types, withMeta: withMeta, batch: batch, g: d.govPool.get()}
}

// engine is gov's rules engine; nil for none (or a nil gov).
func (gov *governance) engine() *rules.Engine {
	if gov == nil {
		return nil
	}
	return gov.eng
}

// logRules logs once per request what the rules dropped and changed.
func (d *Distributor) logRules(ctx context.Context, tenant string, series int, st *ruleStats) {
	if st.dropped+st.changed == 0 || !d.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	d.logger.DebugContext(ctx, "governance rules applied", "tenant", tenant, "series", series,
		"dropped", st.dropped, "changed", st.changed, "by_rule", st.summary(), "first_drop", st.firstDrop)
}

// sendParts sends every part, then reads the answers in turn: the pushes
// proceed together on the ingesters while this goroutine waits, and none
// needs a goroutine of its own (a fresh goroutine grew its stack through
// gRPC's on every push: 7 % of a distributor's CPU with 3 ingesters). One
// deadline bounds them all. A part's push duration ends when its answer
// is read.
func (d *Distributor) sendParts(ctx context.Context, tenant string, parts []*part, total *ingesterv1.PushResponse) []error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PushTimeout)
	defer cancel() // also ends the streams of pushes not waited on (a panic)
	start := time.Now()
	var buf [8]PendingPush
	sent := buf[:0]
	for _, p := range parts {
		sent = append(sent, d.pusher.Send(ctx, p.owner.GRPCAddress, pushRequest(tenant, p)))
	}
	var errs []error
	for i, p := range parts {
		resp, err := sent[i].Wait(ctx)
		d.pushed(p, start, err)
		if err != nil {
			errs = append(errs, partError(p, err))
			continue
		}
		addWritten(total, resp)
	}
	return errs
}

func pushRequest(tenant string, p *part) *ingesterv1.PushRequest {
	return &ingesterv1.PushRequest{
		Tenant:   tenant,
		Series:   p.batch,
		Metadata: ingester.MetadataToProto(p.metadata),
	}
}

// pushed records the end of p's push, begun at start.
func (d *Distributor) pushed(p *part, start time.Time, err error) {
	d.m.pushDuration.WithLabelValues(status.Code(err).String()).Observe(time.Since(start).Seconds())
	if err != nil {
		// The transport may still hold the batch (ingesterv1.Codec): it is
		// not reused.
		p.batch = nil
	}
}

func partError(p *part, err error) error {
	return fmt.Errorf("ingester %s (%s): %w", p.owner.Name, p.owner.GRPCAddress, err)
}

// addWritten adds what an ingester wrote to total.
func addWritten(total, resp *ingesterv1.PushResponse) {
	total.SamplesWritten += resp.GetSamplesWritten()
	total.HistogramsWritten += resp.GetHistogramsWritten()
	total.ExemplarsWritten += resp.GetExemplarsWritten()
	total.RefusedSeries += resp.GetRefusedSeries()
	if total.RefusedMessage == "" {
		total.RefusedMessage = resp.GetRefusedMessage()
	}
}

// mergeErrors picks the answer for the sender from the parts that failed:
// anything that a retry may fix wins (5xx), then backpressure (429), then
// the ingesters' refusal of the data itself (400).
func mergeErrors(errs []error) *pushError {
	code := http.StatusBadRequest
	msgs := make([]string, 0, len(errs))
	for _, err := range errs {
		msgs = append(msgs, err.Error())
		c := grpcToHTTP(status.Code(err))
		if rank(c) > rank(code) {
			code = c
		}
	}
	return &pushError{status: code, msg: strings.Join(msgs, "; ")}
}

func grpcToHTTP(c codes.Code) int {
	switch c {
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Aborted:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func rank(code int) int {
	switch {
	case code >= 500:
		return 3
	case code == http.StatusTooManyRequests:
		return 2
	default:
		return 1
	}
}
