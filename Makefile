# The two commands: `make local` serves the product on loopback, `make test` passes the tests.
# Both set everything up themselves (virtualenv, Node + CDK CLI, Lambda assets) and are idempotent.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A supported Node (node@22 from npm) and the CDK CLI come first on PATH: jsii and cdk use them.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(BIN):$(PATH)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export AWS_EC2_METADATA_DISABLED := true
# No telemetry or notices fetched by the CDK CLI: builds run offline.
export CDK_DISABLE_CLI_TELEMETRY := true
PORT ?= 8080

.PHONY: help setup browser build synth local test test-unit test-integration test-infra test-e2e test-chaos lint typecheck openapi bench fuzz smoke clean

help:
	@echo "make local   - set up and serve the gateway on http://127.0.0.1:$(PORT) (moto + local runtime)"
	@echo "make test    - set up and run lint, type checks and every test (unit, integration, infra, chaos, e2e)"
	@echo "make bench   - benchmarks; JSON report under .bench/"
	@echo "make fuzz    - schemathesis against a local runtime, 100 examples per operation"
	@echo "make synth   - cdk synth into cdk.out (offline, no Docker)"
	@echo "make openapi - regenerate the webhooks API's part of the OpenAPI document (after changing its routes)"

# Stamps live inside what they describe: deleting .venv or node_modules also forgets the stamp.
$(VENV)/.installed: requirements/dev.txt requirements/lambda.txt requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: $(VENV)/.installed node_modules/.installed

# Debian's Chromium, which Playwright drives in tests/e2e/test_swagger_ui.py (Playwright's own
# browser builds cannot be downloaded here). Installed once when missing; CI's machines run as root.
browser:
	@command -v chromium >/dev/null || { mkdir -p .test-logs; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
	    > .test-logs/chromium-install.log 2>&1 \
	  || { echo "make: could not install Debian's chromium (apt-get install chromium, as root) for the browser test; see .test-logs/chromium-install.log" >&2; exit 1; }; }

build: setup
	$(BIN)/python -m infra.build

synth: build
	cdk synth --quiet --no-notices

local: build
	$(BIN)/python -m infra.local --port $(PORT)

# BASE=<API URL> ADMIN_KEY=<admin key> [UPSTREAM=https://...]: read from the environment, never echoed.
smoke: setup
	@$(BIN)/python -m infra.smoke

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The webhooks API's operations in the document /api/v1/docs serves: the management function cannot
# import the webhooks routers (its asset is functions/routes alone), so they are generated into
# functions/routes/api/openapi_webhooks.json (tests/integration/test_openapi_fragment.py: up to date).
openapi: $(VENV)/.installed
	PYTHONPATH=.:layers $(BIN)/python -m functions.webhooks.openapi

# Three independent runs at once (lint and types, the e2e suite, everything else): the e2e suite
# waits on its local runtimes and loopback servers much of the time, so on two cores this takes
# minutes off. Each run's output is kept and printed whole; any failure fails the target. The
# browser the e2e suite needs is installed (when missing; mostly a download) while the virtualenv
# and Node are set up (those two side by side too), and the e2e run waits for it.
test:
	@mkdir -p .test-logs; rm -f .test-logs/browser.rc; \
	( $(MAKE) --no-print-directory -s browser; echo $$? > .test-logs/browser.rc ) > .test-logs/browser.log 2>&1 & \
	$(MAKE) --no-print-directory -j2 build || exit 1; \
	( $(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy ) > .test-logs/static.log 2>&1 & static=$$!; \
	( while [ ! -s .test-logs/browser.rc ]; do sleep 1; done; \
	  test "$$(cat .test-logs/browser.rc)" = 0 || { cat .test-logs/browser.log; exit 1; }; \
	  $(BIN)/python -m pytest tests/e2e ) > .test-logs/e2e.log 2>&1 & e2e=$$!; \
	$(BIN)/python -m pytest tests/unit tests/integration tests/infra tests/chaos; rest=$$?; \
	wait $$static; static_rc=$$?; wait $$e2e; e2e_rc=$$?; \
	echo "== ruff, ruff format, mypy (exit $$static_rc) =="; cat .test-logs/static.log; \
	echo "== tests/e2e (exit $$e2e_rc) =="; cat .test-logs/e2e.log; \
	echo "== exit: unit/integration/infra/chaos $$rest, lint/types $$static_rc, e2e $$e2e_rc =="; \
	test $$rest -eq 0 -a $$static_rc -eq 0 -a $$e2e_rc -eq 0

test-unit test-integration test-infra test-e2e test-chaos: build
	$(BIN)/python -m pytest tests/$(subst test-,,$@)
test-e2e: browser

bench: build
	$(BIN)/python -m tests.bench

# The schemathesis contract test, deeper: the coverage phase too (boundary and negative cases of
# every parameter), and 100 examples per operation and phase (README, "API contract").
fuzz: build
	CONTRACT_PHASES=examples,coverage,fuzzing,stateful CONTRACT_MAX_EXAMPLES=100 \
	  $(BIN)/python -m pytest tests/e2e/test_api_contract.py

clean:
	rm -rf build cdk.out .local .bench .test-logs
