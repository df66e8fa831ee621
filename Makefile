# Every target creates .venv on first use; re-runs are quiet and skip the install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_RUN ?= runs/demo

.PHONY: demo test test-all lint bench clean

$(PY):
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	@echo "installing opplan into $(VENV) (first run only)..."
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	@$(VENV)/bin/opplan plan configs/demo.yaml --out $(DEMO_RUN) --resume

test: $(STAMP)
	@$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	@$(PY) -m pytest -q

lint: $(STAMP)
	@$(VENV)/bin/ruff check src tests benchmarks
	@$(VENV)/bin/ruff format --check src tests benchmarks
	@$(VENV)/bin/mypy

bench: $(STAMP)
	@$(PY) -m benchmarks.knee_families
	@$(PY) -m benchmarks.plan_cost

clean:
	rm -rf $(VENV) runs .pytest_cache
