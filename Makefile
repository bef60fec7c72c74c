# Triggerline's two everyday commands: `make run` and `make test`.
# Both create the virtualenv on first use; everything else (Kafka, PostgreSQL, topics,
# migrations) is brought up by the project's own tooling.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint unit integration browser up down clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

## Set everything up and run the whole pipeline in the foreground (Ctrl-C stops it).
run: $(INSTALLED)
	$(BIN)/triggerline run

## Lint, type-check and run every test (unit, integration and browser, on real Kafka and
## PostgreSQL; the browser tests drive Debian's Chromium, installed on first use).
test: $(INSTALLED) lint
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(INSTALLED)
	$(BIN)/pytest -m unit

integration: $(INSTALLED)
	$(BIN)/pytest -m integration

browser: $(INSTALLED)
	$(BIN)/pytest -m browser

up: $(INSTALLED)
	$(BIN)/triggerline up

down: $(INSTALLED)
	$(BIN)/triggerline down

clean: down
	rm -rf .local $(VENV)
