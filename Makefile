# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
# uv from PATH, else the copy `make tools` installs into .tools/ (read when used, so it is found
# once installed).
TOOLS := $(CURDIR)/.tools
UV = $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)
PY_SRC := shared/te_shared services/catalog/catalog services/registration/registration \
          services/zoom-bridge/zoom_bridge services/zoom-sim/zoom_sim \
          services/integrations/integrations
COMPANY ?= acme
ROLE ?= admin
EMAIL ?=
# USER is always in a login shell's environment (the login name), so `USER ?= u1` never applied:
# the token's user is USER only when given on the make command line (`make token USER=u2`).
TOKEN_USER := $(if $(filter command line,$(origin USER)),$(USER),u1)

.PHONY: help tools env run test test-faults test-sqlite lint typecheck token migrate docs bench clean

help:
	@echo "make run    - start catalog :8001, registration :8002, zoom-bridge :8003, integrations :8004, zoom-sim :8099"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make token COMPANY=acme USER=u1 ROLE=admin EMAIL=a@x.io - print a dev JWT"

# uv itself: from PATH, else into .tools/ (a small venv; `pip install` into the system Python is
# refused on PEP 668 distributions such as Debian 12), else `pip install --user` linked there.
tools:
	@command -v uv >/dev/null 2>&1 || test -x "$(TOOLS)/bin/uv" || { \
	  echo "installing uv into .tools/" >&2; \
	  if python3 -m venv "$(TOOLS)" >/dev/null 2>&1 && "$(TOOLS)/bin/pip" install --quiet uv; then :; \
	  elif python3 -m pip install --quiet --user uv; then \
	    mkdir -p "$(TOOLS)/bin" && ln -sf "$$(python3 -m site --user-base)/bin/uv" "$(TOOLS)/bin/uv"; \
	  else echo "cannot install uv: install it (https://docs.astral.sh/uv/) and retry" >&2; exit 1; fi; }

# Create the virtual environment and install every workspace package.
env: tools
	@$(UV) sync --locked --all-packages --quiet

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
	@$(UV) run --no-sync mypy $(PY_SRC)

# The whole suite: PostgreSQL and RabbitMQ from TEST_POSTGRES_URL / TEST_AMQP_URL, or testcontainers.
test: lint typecheck
	@$(UV) run --no-sync pytest -p no:cacheprovider $(PYTEST_ARGS)

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

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .tools
