// Package forward is the ingester's sender to the storage backend
// (Prometheus, VictoriaMetrics, Mimir, ...) over Prometheus Remote Write 1.0
// or 2.0.
//
// It has two parts that are deliberately separate so that a durable
// write-ahead log can later be put underneath the queue without touching the
// wire code:
//
//   - Client sends exactly one batch for one tenant and classifies the
//     outcome: nil (written), a *RecoverableError (retry later, possibly
//     after RetryAfter) or a non-recoverable error such as *HTTPError (drop).
//     It speaks Remote Write 2.0 by default and falls back to 1.0 for the
//     rest of its life when the backend answers 415 Unsupported Media Type
//     to a 2.0 request, or answers 2xx without any
//     X-Prometheus-Remote-Write-*-Written header (a 1.0-only receiver).
//   - Forwarder is an in-memory queue: Append accepts batches from the
//     ingester, shards their series over Config.Concurrency senders by a hash
//     of (tenant, series labels) so every series stays in timestamp order,
//     accumulates per-tenant requests and sends them through a Sender when
//     MaxSamplesPerSend is reached or BatchSendDeadline passes. Recoverable
//     errors are retried until shutdown with exponential backoff and full
//     jitter; non-recoverable errors drop the request and are counted.
//
// Durability: the Forwarder holds pending data in memory only. Anything that
// has been accepted by Append but not yet written to the backend is LOST if
// the process dies (crash, OOM kill, SIGKILL). On a graceful shutdown Run
// tries to flush pending data within Config.FlushDeadline and counts what it
// could not send as dropped with reason "shutdown".
//
// Metadata: Remote Write 2.0 carries metadata only on series. Family-level
// (RW 1.0) metadata passed alongside a batch is attached to every series of
// that family in the request that carries no metadata of its own. Family
// metadata that matches no series in the request (including metadata-only
// batches) is delivered in a separate, metadata-only Remote Write 1.0 request
// to the same URL before the 2.0 request; metadata writes are idempotent so a
// retry of the whole batch is harmless. When that extra request is rejected
// with a non-recoverable error the metadata is counted as dropped and the
// series are still sent. When speaking 1.0, per-series 2.0 metadata is turned
// into WriteRequest.Metadata entries, deduplicated per metric family (see
// FamilyName).
package forward
