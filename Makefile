# Sluice — the two commands are `make run` and `make test`; the rest are their parts.

SHELL := /bin/bash
.DEFAULT_GOAL := run

REDIS_PORT ?= 6379
# `make run-cluster`: 3 primaries and 3 replicas (cluster bus on PORT+10000).
CLUSTER_PORTS ?= 7001 7002 7003 7004 7005 7006
# Every crate under plugins/ is a policy; each builds to build/plugins/NAME.wasm.
PLUGINS := $(notdir $(patsubst %/Cargo.toml,%,$(wildcard plugins/*/Cargo.toml)))
# Test fixtures (misbehaving policies) build to build/fixtures/NAME.wasm.
FIXTURES := $(notdir $(patsubst %/Cargo.toml,%,$(wildcard tests/fixtures/*/Cargo.toml)))
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The Python and TypeScript SDKs, their toolchains and their policies.
include sdk/python/python.mk sdk/js/typescript.mk

.PHONY: run run-cluster test chaos bench bench-check deps plugins build lint ops-check schemathesis stop clean

# Debian packages a target needs, as COMMAND:PACKAGE (installed when COMMAND is
# missing). `make test` and `make ops-check` add the operations tools, and
# `make test` Chromium (a test reads the status page in it) and curl (the
# README's HTTP/2 answers), so one
# `apt-get update` serves a whole run.
APT_NEEDS := redis-server:redis-server
OPS_APT_NEEDS := docker-compose:docker-compose promtool:prometheus
TEST_APT_NEEDS := chromium:chromium curl:curl

# schemathesis (PyPI), in a virtualenv of its own under var/ (ignored by git):
# the OpenAPI test runs it against a live gateway (tests/e2e/openapi.rs).
VENV := var/venv
SCHEMATHESIS := $(VENV)/bin/schemathesis

## Install what is missing: the APT_NEEDS packages and the wasm32-wasip2 target (rustup).
deps:
	@missing=; for need in $(sort $(APT_NEEDS)); do \
	  command -v $${need%%:*} >/dev/null || missing="$$missing $${need#*:}"; done; \
	[ -z "$$missing" ] || { $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; }
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

## Build every policy plugin into build/plugins/ (copied atomically: a running
## gateway never sees half a file), and the test fixtures into build/fixtures/:
## the Rust crates here, the Python and TypeScript ones by their SDK's rules.
plugins: deps python-plugins typescript-plugins
	cargo build --profile plugin --target wasm32-wasip2 $(addprefix -p ,$(PLUGINS) $(FIXTURES))
	@mkdir -p build/plugins build/fixtures
	@for p in $(PLUGINS); do \
	  cp target/wasm32-wasip2/plugin/$${p//-/_}.wasm build/plugins/.$$p.wasm.tmp && \
	  mv build/plugins/.$$p.wasm.tmp build/plugins/$$p.wasm; done
	@for p in $(FIXTURES); do cp target/wasm32-wasip2/plugin/$${p//-/_}.wasm build/fixtures/$$p.wasm; done
	@ls build/plugins build/fixtures

build: deps
	cargo build --release -p sluice

## Start a local Redis (data in var/redis/) and the gateway with config/sluice.toml.
run: plugins build
	@mkdir -p var/redis
	@redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1 || redis-server $(CURDIR)/docker/redis/redis.conf \
	  --port $(REDIS_PORT) --bind 127.0.0.1 --dir $(CURDIR)/var/redis --daemonize yes \
	  --pidfile $(CURDIR)/var/redis/redis.pid --logfile $(CURDIR)/var/redis/redis.log
	@for i in $$(seq 50); do redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1 && break; sleep 0.1; done
	@echo "Redis on 127.0.0.1:$(REDIS_PORT) (stop it with 'make stop'). Try, from another terminal:"
	@echo "  curl -i -X PUT localhost:8080/v1/cache/cache/greeting -H 'content-type: application/json' -d '{\"hello\":\"world\"}'"
	@echo "  curl -i localhost:8080/v1/cache/cache/greeting"
	./target/release/sluice serve --config config/sluice.toml

## A local Redis Cluster like the tests' (tests/support: Cluster): 3 primaries
## and 3 replicas on 127.0.0.1:7001-7006, data and nodes.conf in var/cluster/PORT/
## (kept: the cluster is created once, then its nodes rejoin). Ready once every
## node says cluster_state:ok with all slots served, every replica's link is up
## and every node lists all six in CLUSTER SLOTS, which a cluster client reads
## (Redis leaves a replica out for a few seconds after its first sync). Only a
## failed primary's slots fail (cluster-require-full-coverage no). Then the
## gateway on it with config/sluice-cluster.toml.
run-cluster: plugins build
	@for p in $(CLUSTER_PORTS); do mkdir -p var/cluster/$$p; \
	  redis-cli -p $$p ping >/dev/null 2>&1 || redis-server $(CURDIR)/docker/redis/redis.conf \
	    --port $$p --bind 127.0.0.1 --dir $(CURDIR)/var/cluster/$$p --daemonize yes \
	    --pidfile $(CURDIR)/var/cluster/$$p/redis.pid --logfile $(CURDIR)/var/cluster/$$p/redis.log \
	    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
	    --cluster-require-full-coverage no --cluster-replica-validity-factor 0 || exit 1; done
	@for p in $(CLUSTER_PORTS); do for i in $$(seq 100); do redis-cli -p $$p ping >/dev/null 2>&1 && break; \
	  [ $$i = 100 ] && { echo "Redis on port $$p did not start: see var/cluster/$$p/redis.log" >&2; exit 1; }; \
	  sleep 0.1; done; done
	@if redis-cli -p $(firstword $(CLUSTER_PORTS)) cluster info | grep -q '^cluster_slots_assigned:0'; then \
	  redis-cli --cluster create $(foreach p,$(CLUSTER_PORTS),127.0.0.1:$(p)) --cluster-replicas 1 --cluster-yes \
	  >var/cluster/create.log || { cat var/cluster/create.log >&2; exit 1; }; fi
	@for i in $$(seq 600); do ok=1; for p in $(CLUSTER_PORTS); do \
	  redis-cli -p $$p cluster info | grep -q '^cluster_state:ok' && \
	  redis-cli -p $$p cluster info | grep -q '^cluster_slots_ok:16384' && \
	  { redis-cli -p $$p info replication | grep -q '^role:master' || \
	    redis-cli -p $$p info replication | grep -q '^master_link_status:up'; } && \
	  [ "$$(redis-cli -p $$p cluster slots | grep -cx 127.0.0.1)" = $(words $(CLUSTER_PORTS)) ] \
	  || ok=; done; \
	  [ -n "$$ok" ] && break; [ $$i = 600 ] && { echo "the cluster is not ok after 60 s:" >&2; \
	  redis-cli -p $(firstword $(CLUSTER_PORTS)) cluster nodes >&2; exit 1; }; sleep 0.1; done
	@redis-cli -p $(firstword $(CLUSTER_PORTS)) cluster nodes | sort -k2
	@echo "Redis Cluster on 127.0.0.1:$(firstword $(CLUSTER_PORTS))-$(lastword $(CLUSTER_PORTS)): cluster_state:ok (stop it with 'make stop'). Try, from another terminal:"
	@echo "  curl -i -X PUT localhost:8080/v1/cache/cache/greeting -H 'content-type: application/json' -d '{\"hello\":\"world\"}'"
	@echo "  curl -i localhost:8080/v1/cache/cache/greeting"
	@echo "  redis-cli -c -p $(firstword $(CLUSTER_PORTS)) pttl cache:greeting"
	./target/release/sluice serve --config config/sluice-cluster.toml

stop:
	-redis-cli -p $(REDIS_PORT) shutdown nosave
	@for p in $(CLUSTER_PORTS); do redis-cli -p $$p ping >/dev/null 2>&1 && redis-cli -p $$p shutdown nosave; done; true

## The whole suite: formatting, lints, unit tests (the SDKs and plugins
## natively: cargo, pytest, node's test runner) and end-to-end tests against
## real redis-server processes and real plugins.
test: APT_NEEDS += $(OPS_APT_NEEDS) $(TEST_APT_NEEDS)
test: plugins lint ops-check schemathesis python-test typescript-test
	cargo test --workspace

## schemathesis in var/venv, installed only when missing (Debian's python3
## needs python3-venv for a virtualenv; installed only when it is missing).
schemathesis: $(SCHEMATHESIS)
$(SCHEMATHESIS):
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv; }
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet 'schemathesis>=4,<5'

## kubernetes-validate (PyPI; its Kubernetes schemas ship inside it, so it
## validates offline) in a virtualenv of its own under var/, installed only when
## missing, python3-venv as for schemathesis. Pinned: the validator and what
## deploy/kubernetes/*.py import from its venv.
KUBE_VENV := var/kube-venv
KUBERNETES_VALIDATE := $(KUBE_VENV)/bin/kubernetes-validate
$(KUBERNETES_VALIDATE):
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv; }
	python3 -m venv $(KUBE_VENV)
	$(KUBE_VENV)/bin/pip install --quiet 'kubernetes-validate==1.37.0' 'jsonschema==4.26.0' 'PyYAML==6.0.4'

## The operations files: the compose file parses (docker-compose 1.29 too), the
## alert rules load and their unit tests pass, the Kubernetes manifests are valid
## (offline; deploy/kubernetes/check.py says what is checked) and their
## PrometheusRule holds exactly alerts.yml's groups.
ops-check: APT_NEEDS += $(OPS_APT_NEEDS)
ops-check: deps $(KUBERNETES_VALIDATE)
	docker-compose -f docker/compose.yaml config -q
	promtool check rules docker/prometheus/alerts.yml
	promtool test rules docker/prometheus/alerts.test.yml
	$(KUBE_VENV)/bin/python deploy/kubernetes/gen-rules.py --check
	$(KUBE_VENV)/bin/python deploy/kubernetes/check.py

## The chaos suite, long form (`make test` runs its short form): Redis killed
## and paused under load, SCRIPT FLUSH under rate-limit load, durability with
## appendfsync always, a plugin replaced every 200 ms for 30 s.
chaos: plugins
	SLUICE_CHAOS_LONG=1 cargo test -p sluice --test chaos -- --nocapture --test-threads=1

## Measurements (not part of `make test`): the gateway beside webdis and raw
## Redis, the analysis's claims and the plugin decision (all written to
## docs/benchmarks.md and .svg), then the pool shape.
bench bench-check: APT_NEEDS += webdis:webdis wrk:wrk h2load:nghttp2-client
bench: plugins build
	cargo build --release -p sluice --example ceiling
	python3 bench/harness.py
	cargo bench -p sluice --bench pool

## A regression guard, not part of `make test`: a short harness run that fails
## when a row's gateway/webdis ratio is more than 25% below docs/benchmarks.md.
bench-check: plugins build
	cargo build --release -p sluice --example ceiling
	python3 bench/harness.py --check

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean
	rm -rf build
