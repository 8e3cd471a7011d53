// Package forward is the ingester's sender to the storage backend
// (Prometheus, VictoriaMetrics, Mimir, ...) over Prometheus Remote Write 1.0
// or 2.0.
//
// It has two parts, kept separate so that the wire code knows nothing of
// the write-ahead log underneath the queue (WALForwarder, below), and one
// set of them runs per backend (Backends, from backend: or backends:):
//
//   - Client sends exactly one batch for one tenant and classifies the
//     outcome: nil (written), a *RecoverableError (retry later, possibly
//     after RetryAfter), a *PartialWriteError (the backend's
//     X-Prometheus-Remote-Write-*-Written headers say part was written and
//     the rest refused; read on every answer that carries them, 4xx
//     included) or another non-recoverable error such as *HTTPError (drop).
//     It speaks Remote Write 2.0 by default and falls back to 1.0 for the
//     rest of its life when the backend answers 415 Unsupported Media Type
//     to a 2.0 request, or answers 2xx without any Written header (a 1.0
//     receiver that decoded the 2.0 body as an empty 1.0 request; the 2.0
//     specification says to treat it as 415). Either way the batch that
//     revealed it is sent again as 1.0 within the same Send, before
//     anything else.
//   - Forwarder is the send queue: it accepts batches (from the WAL reader,
//     or from Append when used on its own), shards their series by a hash
//     of (tenant, series labels) so every series stays in timestamp order,
//     accumulates per-tenant requests and sends them through a Sender when
//     MaxSamplesPerSend is reached or BatchSendDeadline passes. The number
//     of shards starts at Config.MinShards and adapts to the load (backlog
//     and send latency) up to Config.MaxShards (see scaler.go); a reshard
//     moves queued data to the new shards in order and lets the new shards
//     send only after the old ones' requests in flight are answered.
//     Recoverable errors are retried until shutdown through one backoff
//     gate shared by all shards: while the backend fails only one request
//     at a time reaches it, the delay doubles from MinBackoff to MaxBackoff
//     with bounded jitter (BackoffJitter), a longer Retry-After wins, and
//     only a written answer resets it. Non-recoverable errors drop the
//     request, counted exactly (a partial write counts only what the
//     backend refused); a request refused whole with 400, 409, 413 or 422
//     is first split until the refused series are isolated, so that only
//     they are dropped (isolate.go).
//   - A backend's write_relabel_configs are applied by its WALForwarder's
//     reader to each record before the shards see it (relabel.go);
//     backends without them skip that step.
//
// Durability: the ingester runs a WALForwarder per backend (Backends),
// each with its own checkpoint in the same WAL. Every push is appended to
// the write-ahead log (pkg/wal) before it is acknowledged; the WALForwarder
// reads the log in order from its checkpoint, feeds the records to the
// Forwarder's shards and commits the checkpoint only past records whose
// every part was written (or rejected as non-recoverable) by the backend.
// A crash or kill loses nothing: on the next start everything after the
// checkpoint is sent again (at-least-once; backends accept identical
// re-sent samples). On a graceful shutdown Run flushes within
// Config.FlushDeadline; what is left stays in the WAL. Config.MaxPendingSamples
// then only bounds how far the reader runs ahead of the backend in memory.
// The WAL record payload is the marshalled ingesterv1.PushRequest (see
// EncodeRecord).
//
// A bare Forwarder (Append) is an in-memory queue: what it holds is LOST if
// the process dies, and on a graceful shutdown what it could not send
// within Config.FlushDeadline is counted as dropped with reason "shutdown".
// It is kept for tests and tools that do not need durability.
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
// record.FamilyName).
package forward
