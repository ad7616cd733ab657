# billportal: `make demo` runs the product with demo data; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: demo dist messages test lint typecheck unit browser-deps interop-deps localstripe-deps bench bench-deps fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# `make demo PORT=8001` when port 8000 is taken.
demo: $(STAMP)
	$(BIN)/billportal demo $(if $(PORT),--port $(PORT))

# The sdist and the wheel in dist/, checked (the SDK installs from the wheel without the server extra).
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --no-isolation --outdir dist .
	$(BIN)/twine check --strict dist/*

# localstripe (a fake Stripe server, GPL-3.0) for the Stripe tests only: its own venv, run as a
# process (`localstripe --port P`), never imported by billportal nor shipped with it.
LOCALSTRIPE := .venv-localstripe
$(LOCALSTRIPE)/.installed:
	test -x $(LOCALSTRIPE)/bin/python || $(PYTHON) -m venv $(LOCALSTRIPE)
	$(LOCALSTRIPE)/bin/python -m pip install --quiet 'localstripe==1.15.10'
	touch $(LOCALSTRIPE)/.installed

localstripe-deps: $(LOCALSTRIPE)/.installed

# Debian's chromium for the browser tests (Playwright drives it; it downloads no browser), and npm's
# axe-core for their accessibility checks (into tests/browser/node_modules, pinned by its package-lock.json).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@command -v npm >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null)
	@test -d tests/browser/node_modules/axe-core || npm --prefix tests/browser ci --no-audit --no-fund --loglevel=error

# Other languages' JWT libraries for tests/interop: Node's jsonwebtoken (npm, into
# tests/interop/node_modules, pinned by its package-lock.json) and Ruby's jwt gem (Debian's ruby-jwt).
interop-deps:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null)
	@ruby -e 'require "jwt"' >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ruby ruby-jwt >/dev/null)
	@test -d tests/interop/node_modules/jsonwebtoken || npm --prefix tests/interop ci --no-audit --no-fund --loglevel=error

# Extracts the portal's strings (babel.cfg) into the template and merges them into every catalog
# (src/billportal/locale/<locale>/LC_MESSAGES/messages.po), then compiles each into the messages.mo beside
# it, which the server reads; tests/unit/core/test_i18n.py then names what is missing, and fails while a .mo
# is stale. The dashboard's strings (babel-dashboard.cfg) go into their own template, dashboard.pot:
# English only for now, no catalog to merge.
LOCALE_DIR := src/billportal/locale
messages: $(STAMP)
	$(BIN)/pybabel extract --mapping-file babel.cfg --keywords N_ --no-location --sort-output \
		--width 120 --project billportal --output-file $(LOCALE_DIR)/messages.pot .
	$(BIN)/pybabel extract --mapping-file babel-dashboard.cfg --keywords N_ --no-location --sort-output \
		--width 120 --project billportal --output-file $(LOCALE_DIR)/dashboard.pot .
	for po in $(LOCALE_DIR)/*/LC_MESSAGES/messages.po; do \
		$(BIN)/pybabel update --input-file $(LOCALE_DIR)/messages.pot --output-file $$po \
			--locale $$(basename $$(dirname $$(dirname $$po))) --no-fuzzy-matching --ignore-obsolete --width 120; \
	done
	$(BIN)/pybabel compile --directory $(LOCALE_DIR) --domain messages

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# The whole suite twice: embedded, then on PostgreSQL + Redis (scripts/test-suites).
test: $(STAMP) browser-deps interop-deps localstripe-deps lint typecheck
	scripts/test-suites

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

# Debian's wrk drives the closed-loop runs (bench/requests.lua).
bench-deps:
	@command -v wrk >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)

# Speed against a bare reference, load and crash: writes docs/benchmarks.md and docs/bench-*.png.
# BENCH_QUICK=1 for a two-minute check; BENCH_PROFILE=1 records every py-spy profile. Not part of `make test`.
bench: $(BENCH_STAMP) bench-deps
	$(BIN)/python -m bench

# A long property-based run of the verifier and /login: 20,000 fresh examples per property
# (hypothesis profile "fuzz"; make test runs the same properties on a fixed sample). Not part of `make test`.
fuzz: $(STAMP)
	BILLPORTAL_FUZZ_PROFILE=fuzz $(BIN)/pytest tests/security/test_fuzz.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
