// Package integration drives the real promgov binaries against a real
// Prometheus 3.16 backend, everything on 127.0.0.1:
//
//	test sender ──RW 1.0/2.0──► distributor ──gRPC Push──► ingester-1..N ──RW──► Prometheus 3.16
//	(HTTP client, loadgen,            ▲                         │             (query API is
//	 Prometheus agent)                └──── memberlist gossip ──┘              the oracle)
//
// `make test` builds Prometheus once and sets PROMGOV_PROMETHEUS; without it
// the tests skip and say why, unless PROMGOV_REQUIRE_INTEGRATION is set, in
// which case they fail.
//
// Most tests call t.Parallel: they spend their time waiting for processes,
// scrapes, gossip and flush intervals rather than computing, so they run
// two at a time (go test's -parallel, GOMAXPROCS by default). Run alone
// that way, the package took 870 s and kept 2 cores 16 % busy on average;
// inside make test, one after another, it had taken 1,441 s. Each has its
// own ports (internal/testport), directories and processes. The tests that
// stay serial run first, alone: those that bound a process's peak memory
// or fill a disk (hostile_test.go), drive make run (which builds into the
// repository's bin/), watch the harness's own processes die, measure rates
// or run under load, or start a browser.
//
// When a test fails, each process it started prints the tail of its log. A
// process that stalled (still running but never ready, or not exiting when
// told to) is sent SIGQUIT first, and the goroutine stacks it prints follow
// its log. PROMGOV_DEBUG_DUMP=dir dumps every running process and keeps the
// whole logs in dir (process.report).
package integration
