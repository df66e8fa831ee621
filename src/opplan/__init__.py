"""opplan: optimization planning for 3D ConvNets.

``opplan.plan(graph, runner, run_dir, **options)`` plans (or resumes) a training path over
any loop implementing :class:`opplan.Trainer`. The names below load on first use, so
``import opplan`` stays cheap and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from opplan.planning import Planner, PlannerOptions, Trainer, TrainingState, TransitionGraph
    from opplan.planning.api import plan

__all__ = [
    "Planner",
    "PlannerOptions",
    "Trainer",
    "TrainingState",
    "TransitionGraph",
    "__version__",
    "plan",
]

_LAZY = {
    "plan": "opplan.planning.api",
    "Planner": "opplan.planning",
    "PlannerOptions": "opplan.planning",
    "Trainer": "opplan.planning",
    "TrainingState": "opplan.planning",
    "TransitionGraph": "opplan.planning",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'opplan' has no attribute {name!r}")
