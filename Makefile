# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
# uv from PATH, else the copy `make tools` installs into .tools/ (read when used, so it is found
# once installed).
TOOLS := $(CURDIR)/.tools
UV = $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
PY_SRC := shared/te_shared services/catalog/catalog services/registration/registration \
          services/zoom-bridge/zoom_bridge services/zoom-sim/zoom_sim \
          services/integrations/integrations
# Type-checked with the product as one program: the test kit (testing/te_testing, no part of the
# product: no service depends on it), the system tests, the benchmarks, deploy/'s scripts.
PY_TYPED := testing/te_testing conftest.py tests bench deploy
# Each suite whose modules import their own conftest (`from conftest import Reg`) is checked on
# its own, with itself as the import root.
PY_TEST_SUITES := shared/tests services/catalog/tests services/registration/tests \
                  services/zoom-bridge/tests services/zoom-sim/tests services/integrations/tests
# The unit layer: pure tests (no database, no broker, no processes), run first by `make test`.
# tests/unit/ of every service mirrors its package; the shared ones still sit in shared/tests.
UNIT_TESTS = $(wildcard services/*/tests/unit shared/tests/unit shared/tests/test_auth.py \
             shared/tests/test_errors.py shared/tests/test_logging.py shared/tests/test_rules.py \
             shared/tests/test_text.py shared/tests/test_conditional.py)
COMPANY ?= acme
ROLE ?= admin
EMAIL ?=
# USER is always in a login shell's environment (the login name), so `USER ?= u1` never applied:
# the token's user is USER only when given on the make command line (`make token USER=u2`).
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),u1)

.PHONY: help tools env run test test-unit test-infra test-faults test-sqlite lint typecheck token \
        migrate docs bench soak images clean

help:
	@echo "make run        - start catalog :8001, registration :8002, zoom-bridge :8003, integrations :8004, zoom-sim :8099"
	@echo "make test       - unit tests, lint, type-check, then the whole test suite"
	@echo "make test-unit  - the unit layer alone (no RabbitMQ, PostgreSQL or processes)"
	@echo "make token COMPANY=acme USER=u1 ROLE=admin EMAIL=a@x.io - print a dev JWT"
	@echo "make soak       - 10 min of mixed load and random faults, then the invariants (SOAK_SECONDS, SOAK_SEED)"
	@echo "CONTRIBUTING.md says which test goes where, and how to add a rule or a message"

# uv itself: from PATH, else into .tools/ (a small venv; `pip install` into the system Python is
# refused on PEP 668 distributions such as Debian 12), else `pip install --user` linked there.
tools:
	@command -v uv >/dev/null 2>&1 || test -x "$(TOOLS)/bin/uv" || { \
	  echo "installing uv into .tools/" >&2; \
	  if python3 -m venv "$(TOOLS)" >/dev/null 2>&1 && "$(TOOLS)/bin/pip" install --quiet uv; then :; \
	  elif python3 -m pip install --quiet --user uv; then \
	    mkdir -p "$(TOOLS)/bin" && ln -sf "$$(python3 -m site --user-base)/bin/uv" "$(TOOLS)/bin/uv"; \
	  else echo "cannot install uv: install it (https://docs.astral.sh/uv/) and retry" >&2; exit 1; fi; }

# Create the virtual environment and install every workspace package, compiled to bytecode: where
# PYTHONDONTWRITEBYTECODE is set (this project's CI machines, most images) nothing is cached on
# import, and every process the tests start compiled some 1,000 modules again (3.6 s of CPU to
# import registration, 1.4 s compiled). compileall skips what is up to date.
env: tools
	@$(UV) sync --locked --all-packages --quiet --compile-bytecode
	@$(UV) run --no-sync python -m compileall -q -j 0 $(PY_SRC) testing/te_testing >/dev/null

run: env
	@$(UV) run --no-sync python deploy/local/run.py

migrate: env
	@for m in catalog registration zoom_bridge integrations; do $(UV) run --no-sync python -m $$m migrate; done

token: env
	@$(UV) run --no-sync python -m te_shared.cli --company "$(COMPANY)" --user "$(TOKEN_USER)" --role "$(ROLE)" $(if $(EMAIL),--email "$(EMAIL)")

lint: env
	@$(UV) run --no-sync ruff check .
	@$(UV) run --no-sync ruff format --check .

typecheck: env
	@$(UV) run --no-sync mypy $(PY_SRC) $(PY_TYPED)
	@for suite in $(PY_TEST_SUITES); do \
	  MYPYPATH=$$suite $(UV) run --no-sync mypy $$suite || exit 1; done

# RabbitMQ and PostgreSQL for the tests: TEST_AMQP_URL / TEST_POSTGRES_URL, else the servers on
# 127.0.0.1:5672 and :5432, else testcontainers (Docker); with none of them, one message saying what
# to start, at once (deploy/local/infra.py, which the root conftest.py asks too).
test-infra: env
	@$(UV) run --no-sync python deploy/local/infra.py >/dev/null

# The unit layer, pointed at no broker and no database, so that it stays pure.
test-unit: env
	@TEST_AMQP_URL=amqp://unit-tests-use-no-broker.invalid/ \
	 TEST_POSTGRES_URL=postgresql://unit-tests-use-no-database.invalid/x \
	 $(UV) run --no-sync pytest -p no:cacheprovider -q $(UNIT_TESTS)

# The whole suite: first what is quick to fail, then everything but the unit layer.
test: test-infra test-unit lint typecheck
	@$(UV) run --no-sync pytest -p no:cacheprovider $(addprefix --ignore=,$(UNIT_TESTS)) \
	  $(PYTEST_ARGS)

# Faults that restart the machine's RabbitMQ and PostgreSQL (not part of `make test`).
test-faults: env
	@$(UV) run --no-sync pytest -p no:cacheprovider -m faults -s tests/faults $(PYTEST_ARGS)

test-sqlite: env
	@TEST_DB=sqlite $(UV) run --no-sync pytest -p no:cacheprovider $(PYTEST_ARGS)

# OpenAPI + AsyncAPI of every service and the configuration reference, into docs/.
docs: env
	@$(UV) run --no-sync python -m te_shared.docs .

bench: env
	@$(UV) run --no-sync python bench/run.py

# Mixed load over the real processes while faults are injected (kill -9, RabbitMQ stop, PostgreSQL
# restart, Zoom 429/500 bursts), then the invariants; restarts the machine's RabbitMQ and
# PostgreSQL, so not part of `make test`. SOAK_SECONDS (600), SOAK_SEED (printed, to replay).
SOAK_SECONDS ?= 600
soak: env
	@SOAK_SECONDS=$(SOAK_SECONDS) $(UV) run --no-sync python bench/soak.py

# Every image from the one recipe, deploy/Dockerfile (docker-compose.yml passes the same
# arguments): `make images REGISTRY=registry.example.com/training-events TAG=0.1.0`.
IMAGES := catalog:catalog:8001 registration:registration:8002 zoom-bridge:zoom_bridge:8003 \
          integrations:integrations:8004 \
          zoom-sim:zoom_sim:8099
REGISTRY ?= training-events
TAG ?= dev
images:
	@for image in $(IMAGES); do \
	  IFS=: read -r service package port <<< "$$image"; \
	  docker build -f deploy/Dockerfile --build-arg SERVICE=$$service --build-arg PACKAGE=$$package \
	    --build-arg PORT=$$port -t $(REGISTRY)/$$service:$(TAG) . || exit 1; done

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .tools
