"""The grid of hand-tuned strategies (§5.3) and the summary of its results.

The paper grid-searches 3 clip-length schedules x 2 learning-rate decays x 2 samplings x 5
epoch budgets (60 runs), picks the best on validation data and reports it. Here the budgets
scale with the dataset: by default they are the paper's ratios 2:3:4:5:6 (128..384 epochs)
ending at the planner's ``max_epochs``. Pure Python: no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opplan.baselines._schedule import DECAYS, HandTunedSchedule, length_schedules
from opplan.config import PlanConfig

__all__ = ["GridSpec", "default_budgets", "summarize_grid"]


def default_budgets(max_epochs: int) -> list[int]:
    """The paper's budgets [128, 192, 256, 320, 384] = 64 x (2..6), rescaled so that the
    largest is ``max_epochs``.

    Example:
        >>> default_budgets(60)
        [20, 30, 40, 50, 60]
    """
    return sorted({max(1, round(max_epochs * k / 6)) for k in range(2, 7)})


@dataclass(frozen=True)
class GridSpec:
    """The schedules of a grid search and the clip length that weighs their epochs."""

    schedules: tuple[HandTunedSchedule, ...]
    reference_length: int

    def __post_init__(self) -> None:
        names = [s.name for s in self.schedules]
        if not names:
            raise ValueError("the grid has no schedule")
        if len(set(names)) != len(names):
            raise ValueError("the grid lists a schedule twice")

    @classmethod
    def paper(
        cls,
        clip_lengths: Sequence[int],
        learning_rates: Sequence[float],
        samplings: Sequence[str],
        budgets: Sequence[int],
        decays: Sequence[str] = DECAYS,
    ) -> GridSpec:
        """Length schedules x decays x samplings x budgets (§5.3), in that nesting order."""
        lrs = tuple(sorted((float(x) for x in learning_rates), reverse=True))
        schedules = tuple(
            HandTunedSchedule(lengths, decay, sampling, int(epochs), lrs)  # type: ignore[arg-type]
            for lengths in length_schedules(clip_lengths)
            for decay in decays
            for sampling in samplings
            for epochs in budgets
        )
        return cls(schedules, min(clip_lengths))

    @classmethod
    def from_config(
        cls,
        config: PlanConfig,
        budgets: Sequence[int] | None = None,
        samplings: Sequence[str] | None = None,
        decays: Sequence[str] | None = None,
    ) -> GridSpec:
        """The paper's grid over the config's graph axes (lengths, lrs, samplings); for an
        explicit graph, the values its states use."""
        graph_samplings, clip_lengths, learning_rates = config.graph.axes()
        return cls.paper(
            clip_lengths,
            learning_rates,
            samplings or graph_samplings,
            budgets or default_budgets(config.planner.max_epochs),
            decays or DECAYS,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_length": self.reference_length,
            "schedules": [s.to_dict() for s in self.schedules],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridSpec:
        schedules = tuple(HandTunedSchedule.from_dict(s) for s in data["schedules"])
        return cls(schedules, int(data["reference_length"]))


def _cell(schedule: dict[str, Any]) -> tuple[str, str, str]:
    lengths = "→".join(map(str, schedule["lengths"]))
    return lengths, schedule["decay"], schedule["sampling"]


def summarize_grid(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Best run, best budget of every (lengths, decay, sampling) cell, and the total cost.

    ``runs`` are the ``result.json`` dicts of finished runs. The best run has the highest
    final internal-validation score (ties: fewer weighted epochs, then grid order).
    """
    if not runs:
        raise ValueError("no finished run")

    def key(r: dict[str, Any]) -> tuple[float, float]:
        return (r["val_score"], -r["weighted_epochs"])

    best = max(runs, key=key)  # max keeps the first of equal keys
    cells: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in runs:
        c = _cell(r["schedule"])
        if c not in cells or key(r) > key(cells[c]):
            cells[c] = r
    return {
        "best": best["schedule"]["name"],
        "cells": [
            {
                "lengths": c[0],
                "decay": c[1],
                "sampling": c[2],
                "best": r["schedule"]["name"],
                "epochs": r["epochs"],
                "val_score": r["val_score"],
            }
            for c, r in cells.items()
        ],
        "cost": {
            "runs": len(runs),
            "epochs": sum(r["epochs"] for r in runs),
            "weighted_epochs": sum(r["weighted_epochs"] for r in runs),
            "wall_seconds": sum(r["seconds"] for r in runs),
        },
    }
