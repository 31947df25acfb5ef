# Portico's one entry point for building, testing and running. `make help` lists targets.
#
# Tools are installed with `go install` at the pinned versions below into ./bin, so a
# fresh machine needs only Go, make and (for Redis) apt-get.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)

# Pinned tool versions.
BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
GRPC_GATEWAY_VERSION       := v2.33.0
HELM_VERSION               := v3.22.0
PEBBLE_VERSION             := v2.10.3

# Every Go module in the repository, discovered (never a hand-kept list).
MODULES := $(sort $(patsubst ./%/go.mod,%,$(shell find . -name go.mod -not -path './bin/*' -not -path '*/testdata/*' -not -path './.git/*')))
SERVICES := gateway certstore notary controlapi

# Redis for tests: TEST_REDIS_ADDR if set, otherwise the local default.
TEST_REDIS_ADDR ?= 127.0.0.1:6379
export TEST_REDIS_ADDR

GO_TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- tools -------------------------------------------------------------------------

TOOL_STAMPS := \
	$(BIN)/.buf-$(BUF_VERSION) \
	$(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) \
	$(BIN)/.grpc-gateway-$(GRPC_GATEWAY_VERSION) \
	$(BIN)/.helm-$(HELM_VERSION) \
	$(BIN)/.pebble-$(PEBBLE_VERSION)

.PHONY: tools
tools: $(TOOL_STAMPS) ## Install the pinned tools into ./bin.

$(BIN)/.buf-$(BUF_VERSION):
	go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	@touch $@
$(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION):
	go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@
$(BIN)/.protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION):
	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@
$(BIN)/.grpc-gateway-$(GRPC_GATEWAY_VERSION):
	go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION) \
		github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	@touch $@
$(BIN)/.helm-$(HELM_VERSION):
	go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $@
$(BIN)/.pebble-$(PEBBLE_VERSION):
	go install github.com/letsencrypt/pebble/v2/cmd/pebble@$(PEBBLE_VERSION) \
		github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@$(PEBBLE_VERSION)
	@touch $@

# --- code generation ---------------------------------------------------------------

GEN_DIRS := pkg/gen pkg/apidocs/portico

.PHONY: generate
generate: $(TOOL_STAMPS) ## Regenerate Go, grpc-gateway and OpenAPI code from proto/.
	rm -rf $(GEN_DIRS)
	buf generate

.PHONY: check-generate
check-generate: $(TOOL_STAMPS) ## Fail when the committed generated code is stale.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	buf generate -o "$$tmp"; \
	for d in $(GEN_DIRS); do \
		if ! diff -r "$$tmp/$$d" "$$d" >/dev/null; then \
			diff -r "$$tmp/$$d" "$$d" | head -40; \
			echo "generated code in $$d is stale: run make generate and commit" >&2; exit 1; \
		fi; \
	done; \
	echo "generated code is up to date"

# --- build and lint ----------------------------------------------------------------

EXAMPLES := example-upstream:upstream devcerts:devcerts runlocal:runlocal demo:demo

.PHONY: build
build: ## Build the four service binaries and the examples (upstream, devcerts, run, demo) into ./bin.
	@for s in $(SERVICES); do (cd services/$$s && go build -o $(BIN)/portico-$$s .); done
	@for e in $(EXAMPLES); do (cd examples && go build -o $(BIN)/portico-$${e%%:*} ./$${e##*:}); done
	@echo "built $(addprefix bin/portico-,$(SERVICES)) and the examples"

.PHONY: build-alone
build-alone: ## Build every module on its own (GOWORK=off), as a Dockerfile would.
	@for m in $(MODULES); do echo "GOWORK=off go build ./... in $$m"; (cd $$m && GOWORK=off go build -o /dev/null ./...); done

.PHONY: lint
lint: $(TOOL_STAMPS) ## gofmt, go vet and buf lint.
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...); done
	buf lint

# --- tests -------------------------------------------------------------------------

.PHONY: redis
redis: ## Make sure a Redis answers at TEST_REDIS_ADDR (installs and starts redis-server if needed).
	@scripts/ensure-redis.sh "$(TEST_REDIS_ADDR)"

# dynalite, the DynamoDB implementation the DynamoDB stores' tests and `make run
# PORTICO_STORE=dynamodb` use, pinned (with its dependencies) by tools/dynalite's lockfile.
DYNALITE_DIR := $(BIN)/dynalite

.PHONY: dynalite
dynalite: ## Install dynalite (npm, pinned) into bin/dynalite when missing or stale.
	@scripts/ensure-dynalite.sh "$(DYNALITE_DIR)"

.PHONY: test
test: check-generate check-docs lint build-alone redis dynalite chart-lint ## Everything CI runs: generated code, docs, lint, module builds, all tests.
	@for m in $(MODULES); do \
		echo "== go test $$m"; \
		(cd $$m && go test -race $(GO_TEST_FLAGS) ./...); \
	done

# The Helm chart: helm lint --strict with the defaults and every charts/portico/ci value set,
# then test/chart, which renders each set, decodes every object strictly and checks it.
CHART := charts/portico
CHART_KUBE_VERSION := 1.33.0

.PHONY: chart-lint chart-test
chart-lint: $(BIN)/.helm-$(HELM_VERSION) ## helm lint --strict the chart with every value set.
	helm lint --strict --kube-version $(CHART_KUBE_VERSION) $(CHART)
	@for f in $(CHART)/ci/*-values.yaml; do echo "helm lint --strict -f $$f"; helm lint --strict --quiet --kube-version $(CHART_KUBE_VERSION) -f $$f $(CHART); done

# make test runs test/chart in its module loop; this target is for working on the chart.
chart-test: chart-lint ## Lint the Helm chart and run its Go tests (test/chart).
	cd test/chart && go test -race $(GO_TEST_FLAGS) ./...

.PHONY: fuzz
fuzz: ## Run every fuzz target of every module for FUZZTIME (default 30s) each.
	@scripts/fuzz.sh $${FUZZTIME:-30s}

# --- running -----------------------------------------------------------------------

# PORTICO_STORE=dynamodb runs the services on DynamoDB (dynalite, started in place of Redis).
PORTICO_STORE ?= redis

.PHONY: run
run: $(BIN)/.pebble-$(PEBBLE_VERSION) build dynalite ## Bring the whole system up on this machine (Ctrl-C stops it); PORTICO_STORE=dynamodb for DynamoDB.
	@$(BIN)/portico-runlocal -bin $(BIN) -dir .run -store $(PORTICO_STORE)

.PHONY: demo
demo: build ## The walkthrough against `make run` (run it in another shell).
	@$(BIN)/portico-demo -run-dir .run

.PHONY: clean
clean: ## Remove built binaries (keeps the installed tools).
	rm -f $(addprefix $(BIN)/portico-,$(SERVICES))

# --- docs --------------------------------------------------------------------------

.PHONY: docs
docs: ## Regenerate docs/configuration.md from the services' flags.
	@scripts/config-reference.sh > docs/configuration.md
	@echo "wrote docs/configuration.md"

.PHONY: check-docs
check-docs: ## Fail when docs/configuration.md does not match the services' flags.
	@scripts/config-reference.sh | diff -u docs/configuration.md - || { echo "docs/configuration.md is stale: run make docs and commit" >&2; exit 1; }
