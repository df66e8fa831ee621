"""Optimization planning (§3): states, transition graphs, knee stopping, dynamic programming.

numpy + scipy only -- this package never imports torch, so planning logic is testable in
seconds and any training loop that implements :class:`Trainer` can be planned.
"""

from __future__ import annotations

from opplan.planning.curves import FAMILIES, CurveFamily
from opplan.planning.graph import GraphError, TransitionGraph
from opplan.planning.journal import Journal, Op, read_journal
from opplan.planning.knee import KneeFit, KneeStopper, fit_curve
from opplan.planning.plan import Plan, PlanStep
from opplan.planning.planner import Planner, PlannerCallback, PlannerOptions
from opplan.planning.progress import PlanState, Progress, StateRecord, TransitionRecord
from opplan.planning.protocol import Trainer
from opplan.planning.state import INITIAL, SAMPLINGS, TrainingState

__all__ = [
    "FAMILIES",
    "INITIAL",
    "SAMPLINGS",
    "CurveFamily",
    "GraphError",
    "Journal",
    "KneeFit",
    "KneeStopper",
    "Op",
    "Plan",
    "PlanState",
    "PlanStep",
    "Planner",
    "PlannerCallback",
    "PlannerOptions",
    "Progress",  # the former name of PlanState
    "StateRecord",
    "Trainer",
    "TrainingState",
    "TransitionGraph",
    "TransitionRecord",
    "fit_curve",
    "read_journal",
]
