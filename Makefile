# Corridor: `make demo` runs the platform with a demo load; `make test` runs every test.
# Both install what is missing first (a uv bootstrap, the locked Python packages, Kafka from Maven).
SHELL := /bin/bash
PYTHON ?= python3
BOOT := .cache/bootstrap
UV := $(BOOT)/bin/uv
PY := .venv/bin/python
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
export UV_CACHE_DIR ?= $(CURDIR)/.cache/uv

.PHONY: setup jaeger helm demo up test test-unit test-integration lint format clean contracts contracts-check asyncapi asyncapi-viewer bench mutation

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

# MirrorMaker 2 (the cluster-per-mission shape): its own classpath, since connect-mirror is
# published only up to 4.3.1 (deploy/mirrormaker/pom.xml).
.cache/mirrormaker.ready: .venv/.synced deploy/mirrormaker/pom.xml
	$(PY) -c "from devkit.devinfra.mirrormaker import ensure_mirrormaker_classpath as e; print('MirrorMaker classpath:', e())"
	touch $@

# kcat is what many mission IT teams use to look at topics; the tests prove our records read
# correctly with it. Prometheus (server and promtool) scrapes the local stack and tests the alert
# rules. Manifests print names in every script with DejaVu Sans (fonts-dejavu-core).
# Debian's packages, installed when missing (needs root, as on CI); checked again whenever
# this file changes, so a tool added here reaches machines that set up before it.
.cache/tools.ready: Makefile
	@command -v kcat >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq kcat || (apt-get update -qq && apt-get install -y -qq kcat)) >/dev/null; \
	  else echo "kcat is missing: install Debian's package kcat" >&2; exit 1; fi; }
	@test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq fonts-dejavu-core || (apt-get update -qq && apt-get install -y -qq fonts-dejavu-core)) >/dev/null; \
	  else echo "DejaVu fonts are missing: install Debian's package fonts-dejavu-core" >&2; exit 1; fi; }
	@command -v promtool >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq --no-install-recommends prometheus \
	      || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)) >/dev/null; \
	  else echo "prometheus is missing: install Debian's package prometheus" >&2; exit 1; fi; }
	@# pdftoppm renders a situation report's page to an image the reporting test keeps.
	@command -v pdftoppm >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq poppler-utils || (apt-get update -qq && apt-get install -y -qq poppler-utils)) >/dev/null; \
	  else echo "pdftoppm is missing: install Debian's package poppler-utils" >&2; exit 1; fi; }
	@mkdir -p .cache && touch $@

# The operations page is tested in a real browser: Debian's Chromium and its chromedriver (never a
# downloaded browser build), installed when missing (needs root, as on CI).
.cache/browser.ready:
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get install -y -qq chromium chromium-driver || \
	      (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)) >/dev/null; \
	  else echo "chromium is missing: install Debian's packages chromium and chromium-driver" >&2; exit 1; fi; }
	@mkdir -p .cache && touch $@

# The official AsyncAPI parser validates the committed documents in the tests.
ASYNCAPI_TOOLS := tools/asyncapi/node_modules/.installed

$(ASYNCAPI_TOOLS): tools/asyncapi/package.json tools/asyncapi/package-lock.json
	npm ci --prefix tools/asyncapi --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# Jaeger (the local stack's trace backend) built from its Go module with the machine's Go: the
# version and every dependency's checksum are pinned in tools/jaeger/go.mod and go.sum. Go's module
# and build caches stay under .cache (deletable: -modcacherw), so a clean clone builds it once and
# nothing outside the work tree changes.
JAEGER := .cache/jaeger-1.76.0/jaeger
GO ?= $(shell command -v go || echo /usr/local/go/bin/go)
GO_ENV := GOPATH=$(CURDIR)/.cache/go GOMODCACHE=$(CURDIR)/.cache/go/mod GOCACHE=$(CURDIR)/.cache/go/build \
	GOTOOLCHAIN=local GOFLAGS="-mod=readonly -modcacherw"

$(JAEGER): tools/jaeger/go.mod tools/jaeger/go.sum
	cd tools/jaeger && $(GO_ENV) nice -n 10 $(GO) build -trimpath -o $(CURDIR)/$@ github.com/jaegertracing/jaeger/cmd/jaeger

jaeger: $(JAEGER)

# Helm, only for the suite (tests/unit/test_kubernetes_manifests.py runs `helm lint` and `helm
# template` on deploy/helm/corridor): built the same way, pinned by tools/helm/go.mod and go.sum.
HELM := .cache/helm-3.22.0/helm

$(HELM): tools/helm/go.mod tools/helm/go.sum
	cd tools/helm && $(GO_ENV) nice -n 10 $(GO) build -trimpath -o $(CURDIR)/$@ helm.sh/helm/v3/cmd/helm

helm: $(HELM)

# Not part of setup: `make demo` runs without traces; `make up` and the tests need it.
setup: .venv/.synced .cache/kafka.ready .cache/mirrormaker.ready .cache/tools.ready .cache/browser.ready $(ASYNCAPI_TOOLS)

demo: setup
	$(PY) -m devkit demo

# DEPLOYMENT=per-mission: a Kafka cluster and a PostgreSQL server per mission, linked by MirrorMaker 2.
up: setup $(JAEGER)
	$(PY) -m devkit up $(if $(DEPLOYMENT),--deployment $(DEPLOYMENT))

# Jaeger and Helm are not prerequisites: the suite builds them beside itself while its first tests
# run (devkit/devinfra/gotools.py), minutes of CPU the tests mostly leave idle.
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

# The AsyncAPI React component every service serves at /asyncapi (vendored: the page must work
# offline; corridor/static/asyncapi/README.md). Not needed by the tests or the demo.
VERSION ?= 2.6.5
asyncapi-viewer:
	rm -rf .cache/asyncapi-viewer && mkdir -p .cache/asyncapi-viewer
	cd .cache/asyncapi-viewer && npm pack --silent @asyncapi/react-component@$(VERSION) && tar xzf asyncapi-react-component-$(VERSION).tgz
	cp .cache/asyncapi-viewer/package/browser/standalone/index.js corridor/static/asyncapi/asyncapi-react.js
	cp .cache/asyncapi-viewer/package/browser/standalone/index.js.LICENSE.txt corridor/static/asyncapi/asyncapi-react.js.LICENSE.txt
	cp .cache/asyncapi-viewer/package/styles/default.min.css corridor/static/asyncapi/asyncapi-react.css
	cp .cache/asyncapi-viewer/package/LICENSE corridor/static/asyncapi/LICENSE
	sed -i 's/`@asyncapi\/react-component` \*\*[0-9.]*\*\*/`@asyncapi\/react-component` **$(VERSION)**/' corridor/static/asyncapi/README.md

# Benchmarks (bench/README.md): start their own Kafka and PostgreSQL, print figures as ratios to
# baselines measured in the same run. Options through BENCH_ARGS, e.g. BENCH_ARGS="--events 20000".
bench: setup
	$(PY) -m bench $(BENCH_ARGS)

# Mutation score of the domain rules against the unit tests (docs/mutation-report.md): slow (tens of
# minutes on two cores), so not part of `make test`. mutmut is the `mutation` dependency group.
mutation: .venv/.synced
	$(UV) sync --frozen --inexact --quiet --group mutation
	mkdir -p .cache/mutation-tmp
	PYTEST_DEBUG_TEMPROOT=$(CURDIR)/.cache/mutation-tmp nice -n 10 .venv/bin/mutmut run $(MUTATION_ARGS)
	$(PY) tests/mutation_report.py

lint: .venv/.synced
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy contracts corridor services opstools devkit bench

format: .venv/.synced
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache mutants
