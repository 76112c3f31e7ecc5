# Two commands on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# the CPU build; a looser request lets pip fetch a CUDA build of several GB
TORCH_VERSION := 2.13.0

.PHONY: demo test bench lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet -e ".[all,torch,dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/modelyard demo

test: $(STAMP)
	$(BIN)/python -m pytest -v --durations=15

bench: $(STAMP)
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/registry.py
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/rollout.py
	$(BIN)/python bench/monitoring.py
	$(BIN)/python bench/features.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .modelyard bench/.venvs bench/.work
