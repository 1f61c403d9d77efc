# Every target creates the virtualenv and installs what it needs, so a fresh clone
# needs only `make run` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,deploy]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The header-only extraction benchmark (a few minutes): prints a table, writes
# bench/results/extract.json, fails when a target of issue 4 is missed. BENCH_ARGS=--help lists options.
bench: $(STAMP)
	$(PY) bench/extract.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache
