# Two commands do all set-up: `make demo` and `make test`. Each creates .venv when missing and
# installs the exact lock (requirements.lock) before it runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The environment is ~8.5 GB (torch's CUDA libraries are most of it): no pip cache beside it, and
# torch in a step of its own so that its downloaded wheels are freed before the rest arrive.
PIP    := $(BIN)/python -m pip --no-cache-dir

.PHONY: demo test env lock ui clean servers

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "emostore needs Python 3.11 (found %d.%d)" % sys.version_info[:2]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade "pip>=24"
	$(PIP) install --quiet -c requirements.lock torch torchvision
	$(PIP) install --quiet -r requirements.lock
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
	touch $(STAMP)

demo: env
	$(BIN)/emostore demo

test: env servers
	$(BIN)/python -m pytest -q

# The servers the suite starts on 127.0.0.1 (Redis for Celery, PostgreSQL for the Dagster
# instance): installed from Debian's packages when missing and this runs as root; elsewhere the
# tests that need them skip, saying why.
servers:
	@tests/install_servers.sh

ui: env
	$(BIN)/emostore ui

# Re-resolve the lock from pyproject's ranges (needs the package registry).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade "pip>=24"
	.venv-lock/bin/python -m pip install --quiet -e ".[test]"
	.venv-lock/bin/python -m pip freeze --all --exclude-editable | grep -v -e '^emostore' -e '^pip==' > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) store store.dagster demo
