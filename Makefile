# Corridor: `make demo` runs the platform with a demo load; `make test` runs every test.
# Both install what is missing first (a uv bootstrap, the locked Python packages, Kafka from Maven).
SHELL := /bin/bash
PYTHON ?= python3
BOOT := .cache/bootstrap
UV := $(BOOT)/bin/uv
PY := .venv/bin/python
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
export UV_CACHE_DIR ?= $(CURDIR)/.cache/uv

.PHONY: setup demo up test test-unit test-integration lint format clean contracts contracts-check asyncapi bench

$(UV):
	$(PYTHON) -m venv $(BOOT)
	$(BOOT)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

# The dev group (uv's default) includes the tools group: typer and rich for the command-line tools.
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

.cache/kafka.ready: .venv/.synced deploy/kafka/pom.xml
	$(PY) -c "from devkit.devinfra.kafka import ensure_kafka_classpath as e; print('Kafka classpath:', e())"
	touch $@

# kcat is what many mission IT teams use to look at topics; the tests prove our records read
# correctly with it. Debian's package, installed when missing (needs root, as on CI).
.cache/tools.ready:
	@command -v kcat >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq kcat || (apt-get update -qq && apt-get install -y -qq kcat)) >/dev/null; \
	  else echo "kcat is missing: install Debian's package kcat" >&2; exit 1; fi; }
	@# pdftoppm renders a situation report's page to an image the reporting test keeps.
	@command -v pdftoppm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq poppler-utils || (apt-get update -qq && apt-get install -y -qq poppler-utils)) >/dev/null; \
	  else echo "pdftoppm is missing: install Debian's package poppler-utils" >&2; exit 1; fi; }
	@mkdir -p .cache && touch $@

# The official AsyncAPI parser validates the committed documents in the tests.
ASYNCAPI_TOOLS := tools/asyncapi/node_modules/.installed

$(ASYNCAPI_TOOLS): tools/asyncapi/package.json tools/asyncapi/package-lock.json
	npm ci --prefix tools/asyncapi --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

setup: .venv/.synced .cache/kafka.ready .cache/tools.ready $(ASYNCAPI_TOOLS)

demo: setup
	$(PY) -m devkit demo

up: setup
	$(PY) -m devkit up

test: setup lint contracts-check
	$(PY) -m pytest

test-unit: setup
	$(PY) -m pytest tests/unit

test-integration: setup
	$(PY) -m pytest tests/integration

# Event contracts: regenerate the committed JSON Schemas, and check them against every earlier
# committed version (BACKWARD_TRANSITIVE, required fields never removed; contracts/README.md).
contracts: .venv/.synced
	$(PY) -m devkit.contracts_gate export

contracts-check: .venv/.synced
	$(PY) -m devkit.contracts_gate check
	$(PY) -m devkit.contracts_gate compat

# AsyncAPI 3.0 documents generated from each service's code (docs/asyncapi/).
asyncapi: .venv/.synced
	$(PY) -m services.deployment asyncapi export

# Benchmarks (bench/README.md): start their own Kafka and PostgreSQL, print figures as ratios to
# baselines measured in the same run. Options through BENCH_ARGS, e.g. BENCH_ARGS="--events 20000".
bench: setup
	$(PY) -m bench $(BENCH_ARGS)

lint: .venv/.synced
	.venv/bin/ruff check .
	.venv/bin/mypy contracts corridor services opstools devkit bench

format: .venv/.synced
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
