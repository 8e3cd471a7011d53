# promgov — build, test, run.
#
#   make deps   every prerequisite beyond Go (Debian packages: make, gcc, curl, prometheus, ...)
#   make run    local cluster (1 distributor, 3 ingesters) + real Prometheus + real senders
#   make test   unit, fuzz-seed and integration tests (installs Prometheus 3.16 once, cached)

GO        ?= go
BIN       := bin
CACHE     ?= $(HOME)/.cache/promgov
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin

# Prometheus 3.16 is the RW 1.0 + 2.0 receiver the integration tests use.
# Built once from source with `go install` and cached between runs.
PROM_MODULE  := github.com/prometheus/prometheus/cmd/prometheus
PROM_VERSION := v0.316.0
PROMETHEUS   := $(CACHE)/bin/prometheus-$(PROM_VERSION)

# VictoriaMetrics single-node (a backend without the RW 2.0 Written headers)
# and vmagent (a real sender), built once like Prometheus.
VM_VERSION       := v1.151.0
VM_MODULE        := github.com/VictoriaMetrics/VictoriaMetrics/app
VICTORIAMETRICS  := $(CACHE)/bin/victoria-metrics-$(VM_VERSION)
VMAGENT          := $(CACHE)/bin/vmagent-$(VM_VERSION)

# staticcheck, pinned; built once with go install and cached like the peers.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(CACHE)/bin/staticcheck-$(STATICCHECK_VERSION)

BUF_VERSION                := v1.50.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1

.PHONY: all deps build test test-unit run bench bench-e2e proto lint clean prometheus test-peers

all: build

# Every prerequisite of make run and make test beyond Go, from Debian
# packages (the list and why: .ci/deps).
deps:
	./.ci/deps

build:
	$(GO) build -o $(BIN)/ ./cmd/...

prometheus: $(PROMETHEUS)

$(PROMETHEUS):
	@echo ">> building Prometheus $(PROM_VERSION) (first time only, ~5 min)"
	@mkdir -p $(CACHE)/bin $(CACHE)/gobin
	GOBIN=$(CACHE)/gobin $(GO) install $(PROM_MODULE)@$(PROM_VERSION)
	mv $(CACHE)/gobin/prometheus $@

$(VICTORIAMETRICS):
	@echo ">> building VictoriaMetrics $(VM_VERSION) (first time only)"
	@mkdir -p $(CACHE)/bin $(CACHE)/gobin
	GOBIN=$(CACHE)/gobin $(GO) install $(VM_MODULE)/victoria-metrics@$(VM_VERSION)
	mv $(CACHE)/gobin/victoria-metrics $@

$(VMAGENT):
	@echo ">> building vmagent $(VM_VERSION) (first time only)"
	@mkdir -p $(CACHE)/bin $(CACHE)/gobin
	GOBIN=$(CACHE)/gobin $(GO) install $(VM_MODULE)/vmagent@$(VM_VERSION)
	mv $(CACHE)/gobin/vmagent $@

# Every real peer the integration tests drive, built once and cached.
test-peers: $(PROMETHEUS) $(VICTORIAMETRICS) $(VMAGENT)

# Every test, including the integration tests that start real binaries and a
# real Prometheus. PROMGOV_REQUIRE_INTEGRATION turns a missing backend into a
# failure instead of a skip.
test: test-peers
	PROMGOV_PROMETHEUS=$(PROMETHEUS) PROMGOV_VICTORIAMETRICS=$(VICTORIAMETRICS) PROMGOV_VMAGENT=$(VMAGENT) \
	PROMGOV_REQUIRE_INTEGRATION=1 \
		$(GO) test -race -count=1 -timeout 20m ./...

# Unit tests only (no backend needed).
test-unit:
	$(GO) test -race -count=1 -short ./pkg/... ./cmd/... ./internal/...

# The local cluster; Ctrl-C stops it. Ports, rates and extra flags: README,
# "make run" (PORT_BASE, LOADGEN_RATE, INGESTER_FLAGS, ...).
run: build
	./deploy/local/run.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./pkg/...

# End-to-end samples per CPU-second of a local cluster against an in-repo
# null sink; VMAGENT=<path> runs vmagent on the same workload and prints the
# ratio. RUNS=3 for medians; see the script for the other knobs.
bench-e2e: build
	./deploy/local/bench-e2e.sh

proto:
	$(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH="$(GOBIN_DIR):$$PATH" buf lint
	PATH="$(GOBIN_DIR):$$PATH" buf generate

$(STATICCHECK):
	@mkdir -p $(CACHE)/bin $(CACHE)/gobin
	GOBIN=$(CACHE)/gobin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CACHE)/gobin/staticcheck $@

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...

clean:
	rm -rf $(BIN)
