"""Cost accounting: the planner's epochs and wall time against a grid search's (Table 4).

Both sides count every epoch trained to reach their answer: all explored transitions for the
planner, every run for the grid (the final training of the chosen recipe is left out on both
sides). Epochs are also given weighted by clip length, ``epochs * length / reference`` with
the smallest candidate length as the reference, since an epoch of a 3D ConvNet costs about
linearly more with more frames per clip. Time is compared on one footing: the summed
per-epoch seconds (training + internal validation + checkpoint, as recorded in the journals)
on both sides; the plan's wall time (less than its summed seconds with parallel workers) is
reported separately and not compared.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opplan.errors import ConfigError
from opplan.planning.journal import Op, read_journal
from opplan.planning.state import TrainingState

__all__ = ["Cost", "compare_costs", "grid_cost", "plan_cost"]


@dataclass(frozen=True)
class Cost:
    """Epochs, clip-length-weighted epochs, summed training seconds and wall seconds of a
    plan or a grid (a grid's runs are sequential: its wall time is its summed seconds)."""

    epochs: int
    weighted_epochs: float
    wall_seconds: float
    units: int  # transitions of a plan, runs of a grid
    training_seconds: float = 0.0  # summed per-epoch seconds: the comparable time

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_cost(run_dir: str | Path, reference_length: int | None = None) -> Cost:
    """The cost of a plan from ``plan.json`` (``cost`` and ``transitions``), or, for a plan
    still running or written before ``cost`` existed, from its journal's epoch events.

    ``reference_length`` defaults to the smallest clip length among the plan's states.
    """
    run = Path(run_dir)
    plan_path = run / "plan.json"
    rows: list[tuple[int, int, float]] = []  # (clip length, epochs, seconds)
    totals: dict[str, Any] = {}
    if plan_path.is_file():
        plan = json.loads(plan_path.read_text())
        for t in plan["transitions"]:
            length = TrainingState.parse(t["to"]).clip_length
            rows.append((length, int(t["epochs_trained"]), float(t.get("seconds", 0.0))))
        totals = plan.get("cost") or {}
        units = len(plan["transitions"])
    else:
        events = read_journal(run / "journal.jsonl")
        if not events:
            raise ConfigError(f"{run}: neither plan.json nor journal.jsonl -- not a plan run")
        for e in events:
            if e["op"] == Op.EPOCH_SCORED.value:
                length = TrainingState.parse(e["dst"]).clip_length
                rows.append((length, 1, float(e.get("seconds", 0.0))))
        units = sum(1 for e in events if e["op"] == Op.TRANSITION_STARTED.value)
    ref = reference_length or min((r[0] for r in rows), default=1)
    epochs = sum(r[1] for r in rows)
    seconds = sum(r[2] for r in rows)
    return Cost(
        epochs=int(totals.get("epochs", totals.get("epochs_total", epochs))),
        weighted_epochs=sum(r[0] * r[1] for r in rows) / ref,
        wall_seconds=float(totals.get("wall_seconds", seconds)),
        units=units,
        training_seconds=float(totals.get("compute_seconds", seconds)),
    )


def grid_cost(results: dict[str, Any]) -> Cost:
    """The cost of a grid from its ``results.json`` dict."""
    cost = results["cost"]
    return Cost(
        epochs=int(cost["epochs"]),
        weighted_epochs=float(cost["weighted_epochs"]),
        wall_seconds=float(cost["wall_seconds"]),
        units=int(cost["runs"]),
        training_seconds=float(cost["wall_seconds"]),  # summed per-run seconds (_grid.py)
    )


def compare_costs(plan: Cost, grid: Cost) -> dict[str, Any]:
    """Both costs and the planner's share of the grid's (0.1 = a tenth): epochs, weighted
    epochs and summed training seconds; ``wall_seconds`` compares the plan's wall time with
    the grid's summed seconds (sequential runs), kept for older readers -- prefer
    ``training_seconds``."""

    def ratio(a: float, b: float) -> float | None:
        return a / b if b else None

    return {
        "plan": plan.to_dict(),
        "grid": grid.to_dict(),
        "plan_over_grid": {
            "epochs": ratio(plan.epochs, grid.epochs),
            "weighted_epochs": ratio(plan.weighted_epochs, grid.weighted_epochs),
            "training_seconds": ratio(plan.training_seconds, grid.training_seconds),
            "wall_seconds": ratio(plan.wall_seconds, grid.wall_seconds),
        },
    }
