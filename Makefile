# Every target creates .venv on first use; re-runs are quiet and skip the install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_RUN ?= runs/demo
# test processes (pytest-xdist): one per core; TEST_WORKERS=0 runs the suite in this process
TEST_WORKERS ?= auto

.PHONY: demo demo-simulated test test-all lint bench clean

$(PY):
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	@echo "installing opplan into $(VENV) (first run only)..."
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

OPPLAN := $(VENV)/bin/opplan

# The main job on the built-in data: plan, train the found path, test it (resumable).
demo: $(STAMP)
	@$(OPPLAN) plan configs/demo.yaml --out $(DEMO_RUN) --resume
	@$(OPPLAN) train configs/demo.yaml --recipe $(DEMO_RUN)/recipe.yaml --out $(DEMO_RUN)/final --resume
	@$(OPPLAN) evaluate configs/demo.yaml --checkpoint $(DEMO_RUN)/final/model.pt --out $(DEMO_RUN)/final/test.json
	@echo "report: $(DEMO_RUN)/report/README.md   test: $(DEMO_RUN)/final/test.json"

# The planner alone on the simulated trainer (seconds).
demo-simulated: $(STAMP)
	@$(OPPLAN) plan configs/simulated.yaml --out runs/simulated --resume

test: $(STAMP)
	@$(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS)

test-all: $(STAMP)
	@$(PY) -m pytest -q -n $(TEST_WORKERS)

lint: $(STAMP)
	@$(VENV)/bin/ruff check src tests benchmarks
	@$(VENV)/bin/ruff format --check src tests benchmarks
	@$(VENV)/bin/mypy

bench: $(STAMP)
	@$(PY) -m benchmarks.knee_families
	@$(PY) -m benchmarks.plan_cost

clean:
	rm -rf $(VENV) runs .pytest_cache
