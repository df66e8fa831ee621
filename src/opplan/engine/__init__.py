"""The torch side of the planner's protocol: the video trainer and its checkpoints."""

from __future__ import annotations

from opplan.engine.checkpoint import load_checkpoint, save_checkpoint
from opplan.engine.metrics import plan_score, topk_correct
from opplan.engine.settings import OptimSettings
from opplan.engine.trainer import VideoTrainer

__all__ = [
    "OptimSettings",
    "VideoTrainer",
    "load_checkpoint",
    "plan_score",
    "save_checkpoint",
    "topk_correct",
]
