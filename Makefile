# promgov — build, test, run.
#
#   make deps   every prerequisite beyond Go (Debian packages: make, gcc, curl, prometheus, ...)
#   make run    local cluster (1 distributor, 3 ingesters) + real Prometheus + real senders
#   make test   unit, fuzz-seed and integration tests, image and chart checks
#               (builds Prometheus 3.16, VictoriaMetrics, vmagent, helm, SeaweedFS, fake-gcs-server and Azurite once, cached)
#   make build-cloud  the binaries with the gcs and azure governance stores (the cloud SDKs)
#   make image  the container image as a tarball, without a container engine

GO        ?= go
BIN       := bin
CACHE     ?= $(HOME)/.cache/promgov
GOBIN_DIR := $(shell $(GO) env GOPATH)/bin

# Prometheus 3.16 is the RW 1.0 + 2.0 receiver the integration tests use.
# Built once from source with `go install` and cached between runs. The
# tests scrape static targets only, so it is built without its service
# discovery plugins (Prometheus's remove_all_sd tag): they bring the cloud
# SDKs and client-go, and take most of the build's time on a fresh machine.
PROM_MODULE  := github.com/prometheus/prometheus/cmd/prometheus
PROM_VERSION := v0.316.0
PROM_TAGS    := remove_all_sd
PROMETHEUS   := $(CACHE)/bin/prometheus-$(PROM_VERSION)-$(PROM_TAGS)

# VictoriaMetrics single-node (a backend without the RW 2.0 Written headers)
# and vmagent (a real sender), built once like Prometheus.
VM_VERSION       := v1.151.0
VM_MODULE        := github.com/VictoriaMetrics/VictoriaMetrics/app
VICTORIAMETRICS  := $(CACHE)/bin/victoria-metrics-$(VM_VERSION)
VMAGENT          := $(CACHE)/bin/vmagent-$(VM_VERSION)

# promtool checks and unit-tests the monitoring mixin's rules (deploy/mixin,
# run by its Go tests in make test): Debian's prometheus package ships it
# (make deps).
PROMTOOL ?= $(shell command -v promtool 2>/dev/null)
# SeaweedFS (weed server -s3), the real S3-compatible server the governance
# store's S3 path is tested against. Its module has replace directives, so
# `go install weed@version` refuses it: the module is downloaded at the
# pinned version and built inside its own module directory, once, cached.
WEED_VERSION := v0.0.0-20261109003541-7506e5f91cd6
WEED_MODULE  := github.com/seaweedfs/seaweedfs
WEED         := $(CACHE)/bin/weed-$(WEED_VERSION)

# The cloud governance stores (-tags cloudstores: objstore's gcs and azure
# providers, which bring the Google and Azure SDKs) are tested against real
# emulators: fake-gcs-server (built once with go install) and Azurite (npm,
# installed once into the cache; needs node and npm, make deps).
FAKE_GCS_VERSION := v1.56.1
FAKE_GCS         := $(CACHE)/bin/fake-gcs-server-$(FAKE_GCS_VERSION)
AZURITE_VERSION  := 3.35.0
AZURITE          := $(CACHE)/azurite-$(AZURITE_VERSION)/node_modules/.bin/azurite-blob
# Build tags of `make build` (CLOUD=1: with the gcs and azure stores).
TAGS := $(if $(CLOUD),cloudstores,)
# staticcheck, pinned; built once with go install and cached like the peers.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(CACHE)/bin/staticcheck-$(STATICCHECK_VERSION)

# Version information printed by --version and exported as promgov_build_info
# (github.com/prometheus/common/version, set with -ldflags). The build date is
# the commit's date (UTC), so the same commit builds the same binaries.
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
REVISION   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BRANCH     ?= $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
BUILD_USER ?= $(shell id -un 2>/dev/null || echo unknown)@$(shell hostname 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d-%H:%M:%S 2>/dev/null || echo unknown)
VERSION_PKG := github.com/prometheus/common/version
# The Go runtime settings the distributor and the ingester start with (the
# GODEBUG environment variable overrides them one by one); the other
# binaries are short-lived and get none. schedtrace=2147483647 keeps the
# runtime's monitor thread (sysmon) out of its deep sleep, from which every
# system call after an idle moment woke it into a 20 us polling loop: that
# loop cost about a sixth of each process's CPU under load
# (docs/benchmarks.md, "The runtime's monitor"). Its only other effects: a
# one-line scheduler summary on stderr every 2^31 ms (24.8 days) of host
# uptime, and a scheduler dump in a crash report. GODEBUG_DEFAULT= builds
# without it.
GODEBUG_DEFAULT ?= schedtrace=2147483647
LDFLAGS = -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
	-X $(VERSION_PKG).Branch=$(BRANCH) -X $(VERSION_PKG).BuildUser=$(BUILD_USER) -X $(VERSION_PKG).BuildDate=$(BUILD_DATE)
SERVER_LDFLAGS = $(LDFLAGS) $(if $(GODEBUG_DEFAULT),-X runtime.godebugDefault=$(GODEBUG_DEFAULT) \
	-X github.com/promgov/promgov/internal/proc.godebugDefault=$(GODEBUG_DEFAULT))
SERVER_CMDS := ./cmd/distributor ./cmd/ingester
OTHER_CMDS   = $(filter-out $(SERVER_CMDS),$(patsubst %/,./%,$(wildcard cmd/*/)))

# helm for the chart's tests (helm lint, helm template), built once like
# Prometheus.
HELM_VERSION := v3.22.0
HELM         := $(CACHE)/bin/helm-$(HELM_VERSION)

# The container image, built without a container engine (deploy/image): static
# linux binaries in a scratch-based, non-root image written as a `docker save`
# tarball. Reproducible: file times are the commit's time and the build user
# is fixed, so one commit gives one image digest.
IMAGE             ?= promgov/promgov:$(VERSION)
# What the image holds: the binaries an operator runs (not the bench tools).
IMAGE_CMDS        := $(addprefix ./cmd/,distributor ingester loadgen reloader promgovctl)
IMAGE_TARBALL     ?= $(BIN)/promgov-image.tar
IMAGE_ARCH        ?= $(shell $(GO) env GOARCH)
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

BUF_VERSION                := v1.50.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1

.PHONY: all deps build build-cloud plugins image test test-unit run bench bench-e2e bench-cpu proto lint clean prometheus test-peers mixin

all: build

# Every prerequisite of make run and make test beyond Go, from Debian
# packages (the list and why: .ci/deps).
deps:
	./.ci/deps

build: plugins
	$(GO) build -tags "$(TAGS)" -ldflags "$(SERVER_LDFLAGS)" -o $(BIN)/ $(SERVER_CMDS)
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN)/ $(OTHER_CMDS)

# The binaries with the gcs and azure governance stores (about 35 MB more
# each: the cloud SDKs).
build-cloud:
	$(MAKE) build CLOUD=1

# The example WebAssembly governance plugins (docs/plugins.md), built as
# WASI reactors with the standard toolchain: bin/plugins/<name>.wasm.
PLUGINS := $(notdir $(wildcard examples/plugins/*))
plugins:
	@mkdir -p $(BIN)/plugins
	for p in $(PLUGINS); do \
		GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -o $(BIN)/plugins/$$p.wasm ./examples/plugins/$$p || exit 1; \
	done

image: BUILD_USER = promgov@image
image:
	rm -rf $(BIN)/image
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags "-s -w $(SERVER_LDFLAGS)" -o $(BIN)/image/ $(SERVER_CMDS)
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags "-s -w $(LDFLAGS)" -o $(BIN)/image/ $(filter-out $(SERVER_CMDS),$(IMAGE_CMDS))
	$(GO) run ./deploy/image -bin-dir=$(BIN)/image -config=deploy/promgov.yml -out=$(IMAGE_TARBALL) \
		-tag=$(IMAGE) -arch=$(IMAGE_ARCH) -created=$(SOURCE_DATE_EPOCH) -version=$(VERSION) -revision=$(REVISION)

prometheus: $(PROMETHEUS)

$(PROMETHEUS):
	@echo ">> building Prometheus $(PROM_VERSION) -tags $(PROM_TAGS) (first time only, ~3 min)"
	@mkdir -p $(CACHE)/bin $(CACHE)/gobin
	GOBIN=$(CACHE)/gobin $(GO) install -tags $(PROM_TAGS) $(PROM_MODULE)@$(PROM_VERSION)
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

$(HELM):
	@echo ">> building helm $(HELM_VERSION) (first time only, ~5 min)"
	@mkdir -p $(CACHE)/bin $(CACHE)/gobin
	GOBIN=$(CACHE)/gobin $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	mv $(CACHE)/gobin/helm $@

$(WEED):
	@echo ">> building SeaweedFS $(WEED_VERSION) (first time only, ~10 min)"
	@mkdir -p $(CACHE)/bin
	cd "$$($(GO) mod download -json $(WEED_MODULE)@$(WEED_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')" && \
		$(GO) build -o $@ ./weed

$(FAKE_GCS):
	@echo ">> building fake-gcs-server $(FAKE_GCS_VERSION) (first time only)"
	@mkdir -p $(CACHE)/bin $(CACHE)/gobin
	GOBIN=$(CACHE)/gobin $(GO) install github.com/fsouza/fake-gcs-server@$(FAKE_GCS_VERSION)
	mv $(CACHE)/gobin/fake-gcs-server $@

$(AZURITE):
	@echo ">> installing Azurite $(AZURITE_VERSION) (first time only)"
	@mkdir -p $(CACHE)/azurite-$(AZURITE_VERSION)
	npm install --prefix $(CACHE)/azurite-$(AZURITE_VERSION) --no-audit --no-fund azurite@$(AZURITE_VERSION)

# Every real peer the integration tests drive, built once and cached.
test-peers: $(PROMETHEUS) $(VICTORIAMETRICS) $(VMAGENT) $(HELM) $(WEED) $(FAKE_GCS) $(AZURITE)

# Every test, including the integration tests that start real binaries and a
# real Prometheus. PROMGOV_REQUIRE_INTEGRATION turns a missing backend into a
# failure instead of a skip. The integration package alone takes about a
# quarter of an hour under -race on 2 cores (its tests run two at a time;
# integration/doc.go), so the per-package timeout is well above that (CI's
# own limit is 90 minutes).
test: test-peers
	PROMGOV_PROMETHEUS=$(PROMETHEUS) PROMGOV_VICTORIAMETRICS=$(VICTORIAMETRICS) PROMGOV_VMAGENT=$(VMAGENT) \
	PROMGOV_HELM=$(HELM) PROMGOV_PROMTOOL=$(PROMTOOL) PROMGOV_WEED=$(WEED) PROMGOV_REQUIRE_INTEGRATION=1 \
		$(GO) test -race -count=1 -timeout 40m ./...
	PROMGOV_FAKE_GCS=$(FAKE_GCS) PROMGOV_AZURITE=$(AZURITE) PROMGOV_REQUIRE_INTEGRATION=1 \
		$(GO) test -tags cloudstores -count=1 -run 'TestGCSStore|TestAzureStore|TestCloudStoresConfig' ./pkg/govstore/

# Unit tests only (no backend needed).
test-unit:
	$(GO) test -race -count=1 -short ./pkg/... ./cmd/... ./internal/...

# The local cluster; Ctrl-C stops it. Ports, rates and extra flags: README,
# "make run" (PORT_BASE, LOADGEN_RATE, INGESTER_FLAGS, ...).
# On a terminal the script runs as a job of its own (bash -m): Ctrl-C then
# reaches the script and what it started, not make, so make does not
# re-raise it and `make run` exits 0 after a clean stop. bash takes the
# terminal through its stderr, so the script's stderr goes back to make's
# (fd 3), which may be a pipe (`make run 2>&1 | tee run.log`).
run: build
	@if [ -t 0 ] && { : >/dev/tty; } 2>/dev/null; then \
		exec bash -mc './deploy/local/run.sh 2>&3' 3>&2 2>/dev/tty; \
	else \
		exec ./deploy/local/run.sh; \
	fi

# The monitoring mixin's dashboards and rules, generated from deploy/mixin/*.go.
mixin:
	$(GO) generate ./deploy/mixin

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 1s ./pkg/...

# End-to-end samples per CPU-second of a local cluster against an in-repo
# null sink; VMAGENT=<path> runs vmagent on the same workload and prints the
# ratio. RUNS=3 for medians; see the script for the other knobs.
bench-e2e: build
	./deploy/local/bench-e2e.sh

# A paired A/B of CPU per sample: this tree against BASELINE (default HEAD:
# the uncommitted change), interleaved run by run, the steady state only
# (after WARMUP), 5 runs. Prints the ratio and the WAL and push counters
# that explain it (docs/benchmarks.md).
bench-cpu: build
	BASELINE=$${BASELINE:-HEAD} WARMUP=$${WARMUP:-5s} DURATION=$${DURATION:-20s} RUNS=$${RUNS:-5} ./deploy/local/bench-e2e.sh

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
	$(GO) vet -tags cloudstores ./pkg/govstore/
	$(STATICCHECK) ./...

clean:
	rm -rf $(BIN)
