# Two commands for a fresh machine with Python 3.11+: `make run` and `make test`.
# Each creates the virtual environment it needs on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: run test seed lint bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

run: $(VENV)/.installed
	$(PY) -m bot

# Three workers on two cores: most of the suite's time is real-time calls waiting on audio.
test: $(VENV)/.installed
	$(PY) -m pytest -n 3 --dist loadfile

seed: $(VENV)/.installed
	$(PY) -m crm init
	$(PY) -m crm seed

# The benchmark report (bench/report/); `make bench BENCH_ARGS=--quick` for the short run.
bench: $(VENV)/.installed
	$(PY) -m bench $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
