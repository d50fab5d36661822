# Troubadour: `make run` (embedded defaults) and `make test` (the whole suite).
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
PORT   ?= 8000

.PHONY: run serve test bench lint install dev clean

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

## Start web + worker + beat + event consumer on SQLite and a serverless broker, with demo data.
run: $(VENV)/.installed
	PORT=$(PORT) $(PY) scripts/run.py

## The production web tier (what docker-compose's `web` runs): ASGI, HTTP + WebSocket + SSE,
## WEB_CONCURRENCY processes on PORT against DATABASE_URL / REDIS_URL / CELERY_BROKER_URL.
serve: $(VENV)/.installed
	PORT=$(PORT) $(VENV)/bin/gunicorn -c config/gunicorn.conf.py config.asgi:application

## Run the whole suite (against PostgreSQL/RabbitMQ/Redis when reachable).
test: $(VENV)/.dev-installed
	@eval "$$($(PY) scripts/test_env.py)" && $(VENV)/bin/pytest $(PYTEST_ARGS)

## Benchmarks (PostgreSQL + RabbitMQ required).
bench: $(VENV)/.dev-installed
	@eval "$$($(PY) scripts/test_env.py)" && $(PY) scripts/bench.py $(BENCH_ARGS)

## Lint and type-check (mypy with django-stubs; scope in pyproject.toml).
lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check .
	DEBUG=true TROUBADOUR_VAR_DIR=$${TROUBADOUR_VAR_DIR:-var} $(VENV)/bin/mypy

clean:
	rm -rf var .pytest_cache
