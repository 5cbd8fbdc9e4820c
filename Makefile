# The README's commands. `make run` and `make test` work on a fresh machine with Python >= 3.11.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALL := $(BIN)/python -m pip install --disable-pip-version-check --quiet -c requirements.lock
PYTEST_ARGS ?=

.PHONY: run test lint format e2e fuzz bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet --upgrade "pip>=24"

$(VENV)/.installed: pyproject.toml requirements.lock | $(BIN)/python
	$(INSTALL) -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml requirements.lock $(VENV)/.installed
	$(INSTALL) -e ".[dev]"
	@touch $@

## run: migrate, create the admin and demo data, then serve web + worker + beat on http://127.0.0.1:8000
run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py seed_demo
	@echo "ReleaseHub on http://$${RELEASEHUB_BIND:-127.0.0.1:8000}  (Ctrl-C stops web, worker and beat)"
	PATH="$(abspath $(BIN)):$$PATH" exec $(BIN)/honcho --procfile Procfile start

## test: the whole suite (SQLite + file-system broker, or DATABASE_URL / CELERY_BROKER_URL when set)
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n auto --dist loadfile $(PYTEST_ARGS)

## e2e / fuzz: only the browser journeys, or only the schemathesis run
e2e: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

fuzz: $(VENV)/.installed-dev
	$(BIN)/python -m pytest tests/fuzz $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: every benchmark in bench/ (prints figures)
bench: $(VENV)/.installed-dev
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## lock: re-resolve requirements.lock from pyproject.toml's ranges (in a throw-away venv)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade "pip>=24"
	.lock-venv/bin/python -m pip install --quiet -e ".[dev]"
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v "^releasehub" > requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) var/static var/test*.sqlite3*
