// Package retro runs retrospective reconfiguration jobs: it applies
// governance rules (compiled by pkg/rules, the engine distributors run) to
// series already stored in a backend.
//
// A job lists the stored series a selector matches in a time range
// (Prometheus /api/v1/series), runs every one through the rules and plans
// what would change: renamed, relabelled, dropped, and merged series (several
// originals that become one series, which a rewrite cannot do without
// aggregation, so execution refuses them). A dry run stops there. An
// execution works through the plan in batches of series, each in the order
// copy → verify → delete: read the originals (Prometheus remote read, or
// VictoriaMetrics /api/v1/export), write them under their new labels with
// remote write (pkg/forward's Client), read the new series back until every
// original sample is there with its timestamp and value, and only then delete
// the originals (/api/v1/admin/tsdb/delete_series). A checkpoint is written
// after every batch; a job that stopped (crash, cancel, backend error) resumes
// from it. Re-doing a batch is harmless: remote write of identical samples is
// idempotent and a batch whose originals are already deleted reads nothing.
//
// Safety: a job never deletes what it has not verified as copied; deletes can
// be disabled for the whole process (Config.DisableDelete); a backend whose
// admin API is off is refused before anything is written.
package retro
