# Every target creates the virtualenv and installs what it needs, so a fresh clone
# needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# GraphiQL's browser assets (package.json), served under /static/graphiql/. Without npm
# the app falls back to Strawberry's CDN page and says so in its log.
NODE_STAMP := node_modules/.installed
ASSETS := $(if $(shell command -v npm 2>/dev/null),$(NODE_STAMP))
# The OHIF viewer tests/test_ohif_browser.py drives (see `make ohif` below), where npm is.
VIEWER := $(if $(shell command -v npm 2>/dev/null),build/ohif/package/dist/index.html)

.PHONY: run serve load lint test docs fuzz bench index ohif clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,deploy]"
	touch $(STAMP)

# --loglevel=error: graphiql-explorer (bundled inside the explorer plugin) still declares
# React 16 / graphql 15 peers, and npm's warnings about it would drown real messages.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

run: $(STAMP) $(ASSETS)
	$(PY) app.py

# The app under gunicorn: PORT (5000), GUNICORN_WORKERS (2), GUNICORN_THREADS (8); on the local
# backend gunicorn.conf.py starts one embedded AWS (LOCAL_AWS_PORT, 4566) for all workers.
serve: $(STAMP) $(ASSETS)
	$(VENV)/bin/gunicorn -c gunicorn.conf.py 'wsgi:served_app()'

# A bounded load test: it serves the app itself (free ports unless PORT/LOCAL_AWS_PORT are set),
# runs LOAD_USERS clients for LOAD_SECONDS, prints throughput, p50, p99 and errors, stops it.
LOAD_USERS ?= 50
LOAD_SECONDS ?= 60
load: $(STAMP)
	$(PY) bench/load.py --users $(LOAD_USERS) --seconds $(LOAD_SECONDS)

# Index every object under S3_PREFIX (s3://data-apps-ex/<prefix>/) from this machine, with
# INDEX_WORKERS header reads at once; INDEX_ARGS passes more (--report PATH, --on-aws). On the
# local backend it talks to a running `make run`'s embedded AWS (LOCAL_AWS_PORT).
S3_PREFIX ?=
INDEX_WORKERS ?= 32
INDEX_ARGS ?=
index: $(STAMP)
	$(PY) -m indexer "$(S3_PREFIX)" --workers $(INDEX_WORKERS) $(INDEX_ARGS)

# OHIF, the web viewer, in front of a running `make run` (PORT, 5000): http://127.0.0.1:3000
# (OHIF_PORT). The pinned @ohif/app ships its built viewer in dist/; `npm pack` fetches that
# one package (its build-time dependencies are not needed, and not all are on the registry).
OHIF_VERSION := 3.13.2
OHIF_DIST := build/ohif/package/dist/index.html
$(OHIF_DIST):
	mkdir -p build/ohif
	cd build/ohif && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null && tar xzf ohif-app-$(OHIF_VERSION).tgz && rm ohif-app-$(OHIF_VERSION).tgz
	touch $@
ohif: $(STAMP) $(OHIF_DIST)
	$(PY) -m local.ohif

# Lint (ruff), format check (ruff) and types (mypy), configured in pyproject.toml. `make test`
# runs it first, so a change that fails it fails CI.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The GraphQL schema's SDL, docs/schema.graphql (tests/test_docs.py fails while it is stale).
docs: $(STAMP)
	$(PY) -m schema.export

test: lint $(ASSETS) $(VIEWER)
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks of bench/ (BENCH, default "extract index"): each prints a table, writes bench/results/<name>.json,
# fails when a target is missed. BENCH_ARGS=--help lists options.
#   extract  header-only extraction against whole-object reads (a few minutes)
#   search   items read and latency of a search page at 10,000 and 100,000 records (BENCH_ARGS=--sizes=...)
#   index    the bulk indexer at 1, 8 and 32 workers, its re-run and peak memory (a few minutes)
#   frames   WADO-RS frames against a ranged GET, a 300-slice series 25 at once, rendered JPEGs, a 1 GB study's API memory (a few minutes)
#   embedded what the embedded AWS costs at archive size: listing pages at 1,000-10,000 instances, on-arrival and make index rates, reads while indexing, its memory (a few minutes; BENCH_ARGS=--sizes=...)
# BENCH takes several names (BENCH="extract index"); BENCH_ARGS go to each script run.
BENCH ?= extract index
bench: $(STAMP)
	@for name in $(BENCH); do $(PY) bench/$$name.py $(BENCH_ARGS) || exit 1; done

# The long fuzz run: thousands of generated requests (FUZZ_MAX_EXAMPLES per operation and
# mode) and FUZZ_DICOM_CASES mutated DICOM files (tests/managers/dicom/test_fuzz_header.py), new ones each
# time (the DICOM seed is printed; FUZZ_DICOM_SEED replays it); `make test` runs the same
# tests with 25 requests per operation and 300 files, with fixed seeds.
FUZZ_MAX_EXAMPLES ?= 500
FUZZ_DICOM_CASES ?= 5000
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) FUZZ_DICOM_CASES=$(FUZZ_DICOM_CASES) FUZZ_RANDOM=1 \
		$(PY) -m pytest -s -q tests/test_fuzz.py tests/managers/dicom/test_fuzz_header.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache node_modules
