// Package mixin is promgov's monitoring mixin, in the Prometheus-ecosystem
// layout: Grafana dashboards (dashboards/*.json), alerting rules
// (alerts.yaml) and recording rules (rules.yaml), all generated from the Go
// definitions in this package by `go generate ./deploy/mixin` (gen/), so one
// source holds every query. The package's tests check that the files are
// up to date, that promtool accepts the rules (`promtool check rules`) and
// that the alerts behave as tests/alerts_test.yaml says (`promtool test
// rules`); integration/mixin_test.go checks that every metric the mixin
// queries is exported by a running cluster. Each alert has a runbook
// section in docs/runbook.md.
package mixin

//go:generate go run ./gen
