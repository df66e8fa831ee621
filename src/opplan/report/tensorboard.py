"""TensorBoard scalars of a plan, one run per transition (``RUN/tensorboard/<from>__<to>``).

Uses tensorboard's own event writer, so the simulated planner stays torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opplan.planning.progress import PlanState
from opplan.planning.state import TrainingState

__all__ = ["TensorBoardCallback"]


class TensorBoardCallback:
    """Writes ``val/score``, ``train/*`` metrics and ``knee/*`` estimates per epoch."""

    def __init__(self, log_dir: str | Path):
        self.log_dir = Path(log_dir)
        self._writers: dict[str, Any] = {}

    def _writer(self, event: dict[str, Any]) -> Any:
        from tensorboard.summary import Writer

        name = (
            f"{TrainingState.parse(event['src']).slug}__{TrainingState.parse(event['dst']).slug}"
        )
        if name not in self._writers:
            self._writers[name] = Writer(str(self.log_dir / name))
        return self._writers[name]

    def on_event(self, event: dict[str, Any], progress: PlanState) -> None:
        op = event["op"]
        if op == "epoch_scored":
            writer = self._writer(event)
            step = int(event["epoch"])
            writer.add_scalar("val/score", float(event["score"]), step=step)
            for key, value in event.get("metrics", {}).items():
                writer.add_scalar(f"train/{key}", float(value), step=step)
            writer.flush()
        elif op == "fit" and event["fit"]["success"]:
            writer = self._writer(event)
            step = int(event["epoch"])
            writer.add_scalar("knee/epoch", float(event["fit"]["knee_epoch"]), step=step)
            writer.add_scalar("knee/fitted_peak", float(event["fit"]["peak"]), step=step)
            writer.flush()
        elif op == "transition_finished":
            name = f"{TrainingState.parse(event['src']).slug}__"
            name += TrainingState.parse(event["dst"]).slug
            writer = self._writers.pop(name, None)
            if writer is not None:
                writer.close()

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
