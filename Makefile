# Backup Job Tracker: `make demo` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
AZURITE := node_modules/.bin/azurite
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

.PHONY: setup test demo azurite lint checkov clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(AZURITE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov pins pycep-parser 0.5.1, older than the 0.7.1 the template tests use: it gets a venv of its own.
$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==3.3.30
	touch $@

setup: $(VENV)/.installed $(AZURITE)

lint: $(VENV)/.installed
	$(PY) -m ruff check .

checkov: $(CHECKOV_VENV)/.installed
	BC_SKIP_MAPPING=TRUE $(CHECKOV) -d infra --framework bicep --skip-download --compact --quiet

test: setup $(CHECKOV_VENV)/.installed lint
	CHECKOV_BIN=$(CURDIR)/$(CHECKOV) $(PY) -m pytest

demo: setup
	$(PY) -m jobs demo

# Azurite in the foreground on 10000-10002 (AzureWebJobsStorage=UseDevelopmentStorage=true), with the flags the
# pinned SDKs need (--skipApiVersionCheck); Ctrl-C stops it.
azurite: setup
	$(PY) -m jobs azurite

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .pytest_cache .ruff_cache .hypothesis
