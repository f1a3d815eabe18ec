# Two commands matter on a fresh machine: `make run` and `make test`.
# Everything runs from backend/ in a virtualenv built from the hashed lock files.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKEND := backend
HOST ?= 127.0.0.1
PORT ?= 8000
# Scripts beside the service, linted with it (run from backend/).
TOOLS := ../tools
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.DEFAULT_GOAL := help
.PHONY: help run test migrate revision lint format typecheck up down lock compose-check clean bench bench-copy bench-activity fuzz faults

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalled whenever a lock file changes.
$(VENV)/.runtime: $(BACKEND)/requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(BACKEND)/requirements.txt
	touch $@

$(VENV)/.dev: $(BACKEND)/requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(BACKEND)/requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime migrate ## Serve on http://127.0.0.1:8000 with reload (embedded SQLite unless configured)
	cd $(BACKEND) && ../$(BIN)/uvicorn --factory app.main:create_app --reload --loop asyncio --host $(HOST) --port $(PORT)

test: $(VENV)/.dev ## Run the suite on SQLite, PostgreSQL and MariaDB (DUALBASE_TEST_BACKENDS picks)
	cd $(BACKEND) && ../$(BIN)/pytest $(PYTEST_ARGS)

migrate: $(VENV)/.runtime ## Upgrade both databases to head
	cd $(BACKEND) && ../$(BIN)/alembic -n auth upgrade head && ../$(BIN)/alembic -n app upgrade head

revision: $(VENV)/.runtime ## New migration: make revision db=auth|app m="what changed"
	@test "$(db)" = auth -o "$(db)" = app || { echo 'usage: make revision db=auth|app m="message"'; exit 2; }
	@test -n "$(m)" || { echo 'usage: make revision db=auth|app m="message"'; exit 2; }
	cd $(BACKEND) && ../$(BIN)/alembic -n $(db) revision --autogenerate -m "$(m)"

lint: $(VENV)/.dev ## ruff (lint and format check), mypy, and the import layers (lint-imports)
	cd $(BACKEND) && ../$(BIN)/ruff check . $(TOOLS) && ../$(BIN)/ruff format --check . $(TOOLS) && ../$(BIN)/mypy app tests $(TOOLS) && ../$(BIN)/lint-imports

format: $(VENV)/.dev ## Apply ruff's fixes and formatting
	cd $(BACKEND) && ../$(BIN)/ruff check --fix . $(TOOLS) && ../$(BIN)/ruff format . $(TOOLS)

up: ## docker compose up: PostgreSQL with both databases, and the backend
	$(COMPOSE) up --build -d

down: ## docker compose down (the data volumes stay)
	$(COMPOSE) down

compose-check: ## Validate docker-compose.yml
	$(COMPOSE) config -q

lock: ## Recompile the hashed lock files from requirements*.in (needs uv)
	cd $(BACKEND) && UV_PYTHON_DOWNLOADS=never uv pip compile --quiet --python-version 3.11 --generate-hashes requirements.in -o requirements.txt
	cd $(BACKEND) && UV_PYTHON_DOWNLOADS=never uv pip compile --quiet --python-version 3.11 --generate-hashes requirements-dev.in -o requirements-dev.txt

clean: ## Remove the virtualenv, caches and the embedded databases
	rm -rf $(VENV) $(BACKEND)/data $(BACKEND)/.pytest_cache $(BACKEND)/.mypy_cache $(BACKEND)/.ruff_cache

bench: $(VENV)/.dev ## Benchmark on PostgreSQL with one uvicorn worker (needs wrk; not part of make test)
	@command -v wrk >/dev/null || apt-get install -y -qq wrk
	$(BIN)/python -m tools.bench.run
	$(BIN)/python -m tools.bench.notifications

bench-copy: $(VENV)/.dev ## Time copy-database: 100,000 rows, SQLite -> PostgreSQL (not part of make test)
	$(BIN)/python -m tools.bench.copy_database

bench-activity: $(VENV)/.dev ## What auditing costs POST /api/v1/projects, audited vs not, on PostgreSQL (not part of make test)
	$(BIN)/python -m tools.bench.activity

fuzz: $(VENV)/.dev ## Schemathesis against the OpenAPI schema, on PostgreSQL (also in CI)
	$(BIN)/python -m tools.fuzz.run

faults: $(VENV)/.dev ## Database outages under load on two PostgreSQL clusters, then the races (also in CI)
	$(BIN)/python -m tools.faults.run
	cd $(BACKEND) && DUALBASE_TEST_BACKENDS=postgresql ../$(BIN)/pytest -v -p no:cacheprovider \
		-k "concurrent or racing" tests/test_attacks.py tests/test_auth.py tests/test_orders.py
