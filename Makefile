# Quita — the two front-door commands are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench install services-stop clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	@touch $(STAMP)

install: $(STAMP)

## The whole platform with demo data (embedded Postgres/Redis unless QUITA_DATABASE_URL/QUITA_REDIS_URL are set)
run: $(STAMP)
	$(BIN)/quita run

## The whole suite against real Postgres and Redis (127.0.0.1 if they answer, else embedded ones)
test: $(STAMP)
	$(BIN)/pytest -n $${QUITA_TEST_WORKERS:-2} $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check shared services tests bench
	$(BIN)/mypy shared services

bench: $(STAMP)
	$(BIN)/python -m bench

services-stop: $(STAMP)
	$(BIN)/quita services stop

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
