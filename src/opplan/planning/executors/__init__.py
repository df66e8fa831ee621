"""Executors run transitions for the planner: ``local`` (sequential) or ``ray`` (parallel)."""

from __future__ import annotations

from opplan.planning.executors._base import (
    Edge,
    EpochResult,
    Executor,
    Outcome,
    TrainerFactory,
    TransitionWorker,
    WorkerLost,
)
from opplan.planning.executors._local import LocalExecutor
from opplan.planning.executors._ray import RayExecutor

__all__ = [
    "Edge",
    "EpochResult",
    "Executor",
    "LocalExecutor",
    "Outcome",
    "RayExecutor",
    "TrainerFactory",
    "TransitionWorker",
    "WorkerLost",
]
