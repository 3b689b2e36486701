# pier build tooling (GNU make >= 4.3). `make help` lists the targets.
#
# Everything this Makefile produces (tools, the Consul agent, benchmark runs, coverage,
# staticcheck's cache) lives under .cache/, which is git-ignored. Go's own build and
# module caches stay where `go env GOCACHE GOMODCACHE` put them, so checkouts share them.
# GOFLAGS, GOTOOLCHAIN, GOWORK, ... from the environment or the command line pass through.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

GO ?= go
CACHE := $(CURDIR)/.cache
BIN := $(CACHE)/bin

# -race needs cgo (gcc). GOFLAGS is exported so `make test GOFLAGS=-v` reaches go.
export CGO_ENABLED := 1
export GOFLAGS

# Packages of every module in go.work (the root module and examples/), as ./... patterns.
# Under go.work, `./...` from the root does NOT reach into examples/ (a nested module is
# never matched by its parent's ./...), so each workspace module gets its own pattern:
# "./... ./examples/...". A module with no packages only makes go print
# `warning: "./examples/..." matched no packages`; that is not an error as long as some
# pattern matches. (Running `go test ./...` inside an empty examples/ alone would fail
# with "no packages to test".)
MODULE_DIRS := $(shell $(GO) list -m -f '{{.Dir}}' 2>/dev/null)
PKGS ?= $(or $(strip $(patsubst $(CURDIR)/%,./%/...,$(patsubst $(CURDIR),./...,$(MODULE_DIRS)))),./...)

TESTFLAGS ?= -shuffle=on
BENCH ?= .
PKG ?= ./...
BENCHCOUNT ?= 6

STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck
STATICCHECK_STAMP := $(BIN)/.staticcheck-$(STATICCHECK_VERSION)
export STATICCHECK_CACHE := $(CACHE)/staticcheck

CONSUL_VERSION ?= v1.22.0

.PHONY: help test postgres-check lint fmt-check vet staticcheck bench cover consul tools clean FORCE

help: ## list the targets
	@echo 'usage: make <target> [VAR=value]'
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  %-12s %s\n", $$1, $$2}'
	@echo 'variables: PKGS="$(PKGS)" TESTFLAGS="$(TESTFLAGS)" BENCH=$(BENCH) PKG=$(PKG) BENCHCOUNT=$(BENCHCOUNT) GOFLAGS=...'

# The Consul tests start a real agent (consul agent -dev) from .cache/bin; with
# PIER_REQUIRE_CONSUL=1 a missing agent fails them instead of skipping them.
# The PostgreSQL tests use a throwaway cluster (scripts/start-postgres.sh, which installs
# Debian's postgresql package when no server is installed), started before go test and
# stopped after it, on failure and on Ctrl-C too; or the server at PIER_POSTGRES_URL
# when that is set. With PIER_REQUIRE_POSTGRES=1 a cluster that did not start fails
# them instead of skipping them.
test: consul ## build the Consul agent, start PostgreSQL, go test -race -count=1 over both modules, stop PostgreSQL
	@if [[ -n "$${PIER_POSTGRES_URL:-}" ]]; then \
		echo "make test: PostgreSQL at PIER_POSTGRES_URL from the environment"; \
	elif pg_env="$$(PIER_POSTGRES_OWNER=$$$$ scripts/start-postgres.sh)"; then \
		eval "$$pg_env"; \
		trap 'scripts/stop-postgres.sh "$$PIER_POSTGRES_DIR"' EXIT; \
		trap 'exit 130' INT TERM HUP; \
	else \
		echo 'make test: PostgreSQL did not start (see above): the tests that need it will fail' >&2; \
	fi; \
	echo 'PATH="$(BIN):$$PATH" PIER_REQUIRE_CONSUL=1 PIER_REQUIRE_POSTGRES=1 $(GO) test -race -count=1 $(TESTFLAGS) $(PKGS)'; \
	PATH="$(BIN):$$PATH" PIER_REQUIRE_CONSUL=1 PIER_REQUIRE_POSTGRES=1 $(GO) test -race -count=1 $(TESTFLAGS) $(PKGS)

postgres-check: ## start the throwaway PostgreSQL cluster, query it, stop it (scripts/start-postgres.sh)
	@pg_env="$$(PIER_POSTGRES_OWNER=$$$$ scripts/start-postgres.sh)" || exit 1; \
	eval "$$pg_env"; \
	trap 'scripts/stop-postgres.sh "$$PIER_POSTGRES_DIR"' EXIT; \
	"$$(cat "$$PIER_POSTGRES_DIR/bindir")/psql" "$$PIER_POSTGRES_URL" -Atc 'SELECT version()'

lint: ## gofmt check, go vet and staticcheck over both modules (all run; fails if any fails)
	@$(MAKE) --no-print-directory --keep-going fmt-check vet staticcheck

fmt-check: ## fail listing the Go files gofmt would change
	@files=$$(find . -mindepth 1 -type d \( -name '.*' -o -name '_*' -o -name testdata \) -prune \
		-o -type f -name '*.go' -print); \
	bad=$$( [ -z "$$files" ] || gofmt -l $$files ); \
	if [ -n "$$bad" ]; then echo 'gofmt: these files need `gofmt -w`:'; echo "$$bad"; exit 1; fi; \
	echo 'gofmt: ok'

vet: ## go vet over both modules
	$(GO) vet $(PKGS)

staticcheck: $(STATICCHECK_STAMP) ## staticcheck (pinned, installed into .cache/bin) over both modules
	$(STATICCHECK) $(PKGS)

tools: $(STATICCHECK_STAMP) ## install the pinned tools into .cache/bin

# Installed when the binary is missing or the pinned version changed (the stamp is
# named after the version). The install runs outside the workspace and without the
# caller's GOFLAGS, which are meant for pier's packages, not for the tool's build.
$(STATICCHECK_STAMP): $(if $(wildcard $(STATICCHECK)),,FORCE)
	@mkdir -p $(BIN)
	GOWORK=off GOFLAGS= GOBIN=$(BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@rm -f $(BIN)/.staticcheck-*
	@touch $@

bench: ## benchmarks of the root module into .cache/bench/<date>.txt (BENCH=regexp PKG=packages)
	@mkdir -p $(CACHE)/bench
	@out=$(CACHE)/bench/$$(date +%Y-%m-%dT%H%M%S).txt; \
	echo "# $$($(GO) version) bench=$(BENCH) pkg=$(PKG)" >"$$out"; \
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count=$(BENCHCOUNT) $(PKG) | tee -a "$$out"; \
	echo "benchmark results: $${out#$(CURDIR)/}"

cover: ## coverage over both modules into .cache/cover/ (cover.out, cover.html)
	@mkdir -p $(CACHE)/cover
	$(GO) test -count=1 -covermode=atomic -coverprofile=$(CACHE)/cover/cover.out $(PKGS)
	$(GO) tool cover -html=$(CACHE)/cover/cover.out -o $(CACHE)/cover/cover.html
	@$(GO) tool cover -func=$(CACHE)/cover/cover.out | tail -n1

consul: ## build the pinned Consul agent into .cache/bin/consul (scripts/build-consul.sh)
	CONSUL_VERSION=$(CONSUL_VERSION) scripts/build-consul.sh

clean: ## remove .cache (tools, Consul agent, bench and coverage results)
	rm -rf $(CACHE)

FORCE:
