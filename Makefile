# TierCare — the two commands of the README, plus helpers.
# Only Python 3.11+, make and git are needed; everything else is installed into .venv.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: demo test serve bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip setuptools wheel
	$(PIP) -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e '.[test]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed-test
	$(PIP) -e '.[test,bench]'
	touch $@

## demo: build the demo county into the database (default var/tiercare.db), write out/
demo: $(VENV)/.installed
	$(BIN)/tiercare demo --reset --out out

## test: the whole test suite (SQLite and PostgreSQL, browser tests in Chromium)
test: $(VENV)/.installed-test
	$(BIN)/pytest

## serve: the web app on http://127.0.0.1:8000 (database: TIERCARE_DATABASE_URL or var/tiercare.db)
serve: $(VENV)/.installed
	$(BIN)/tiercare serve

## bench: the benchmarks (not part of the tests); see benchmarks/README.md
bench: $(VENV)/.installed-bench
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b --small || exit 1; done

clean:
	rm -rf $(VENV) var out .pytest_cache
