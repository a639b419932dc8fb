# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps .venv from PyPI first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-fast lint bench bench-sites clean install

$(STAMP): pyproject.toml
	rm -f $(VENV)/.installed-*
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[local,dev,cdk]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/webordinary demo --state-dir .webordinary/demo

test: $(STAMP)
	$(BIN)/python -m pytest

# Everything that needs neither the embedded stack, nor the CLI as a subprocess, nor a CDK synth.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration and not e2e and not infra"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy workflows lambdas container cdk

bench: $(STAMP)
	$(BIN)/webordinary bench --state-dir .webordinary/bench
	$(BIN)/webordinary bench-sites

# What real sites cost: a 1,000-file site's git + upload against plain git and boto3, installs, pictures.
bench-sites: $(STAMP)
	$(BIN)/webordinary bench-sites

clean:
	rm -rf $(VENV) .webordinary .pytest_cache .mypy_cache .ruff_cache
