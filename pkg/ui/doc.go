// Package ui is promgov's built-in web UI: server-rendered html/template
// pages, embedded in the binary with every asset (one stylesheet, one small
// script that sorts and filters tables; charts are inline SVG), so it works
// with no external service and no internet. A distributor serves the
// cluster's view at /, an ingester its own.
//
// Pages read promgov's own APIs under /promgov/api/v1 in-process (the
// binary's API handler is called directly, with the request's tenant and
// authorization headers), the usage classification through usage.Reader
// (the usage API has no lookup by name), and the process's own metrics
// through its prometheus.Gatherer. Cluster health on a distributor comes
// from each ingester's /promgov/api/v1/status/node answer, asked over the
// ingesters' GetNodeStatus cluster RPC (NodeStatusHandler, StatusSource, ClusterNodes).
//
// Time series (series and samples/s of the top metrics, the ingest rate)
// come from History, a small in-memory sampler: every --ui.history-interval
// it reads the top --ui.history-metrics metrics from the cardinality API
// and keeps --ui.history-points points of each (about 32 bytes per point:
// 200 metrics x 120 points is under 1 MiB). Label values, metric names and
// tenants are attacker-controlled input and only ever reach the page
// through html/template's contextual escaping.
package ui
