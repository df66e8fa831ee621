"""Hand-tuned baselines (§5.3): clip-length schedules x lr decays x samplings x epoch budgets,
trained with the planner's own trainer, their grid search, and cost accounting against a
plan (Table 3, Table 4)."""

from __future__ import annotations

from opplan.baselines._cost import Cost, compare_costs, grid_cost, plan_cost
from opplan.baselines._grid import GridSpec, default_budgets, summarize_grid
from opplan.baselines._multigrid import LONG_CYCLE, MultigridEpochs, MultigridSchedule
from opplan.baselines._run import prepare_run_dir, run_grid, run_schedule, test_checkpoint
from opplan.baselines._schedule import (
    DECAYS,
    Decay,
    HandTunedSchedule,
    length_schedules,
    parse_decay,
)
from opplan.baselines._tables import grid_markdown, grid_table

__all__ = [
    "DECAYS",
    "LONG_CYCLE",
    "Cost",
    "Decay",
    "GridSpec",
    "HandTunedSchedule",
    "MultigridEpochs",
    "MultigridSchedule",
    "compare_costs",
    "default_budgets",
    "grid_cost",
    "grid_markdown",
    "grid_table",
    "length_schedules",
    "parse_decay",
    "plan_cost",
    "prepare_run_dir",
    "run_grid",
    "run_schedule",
    "summarize_grid",
    "test_checkpoint",
]
