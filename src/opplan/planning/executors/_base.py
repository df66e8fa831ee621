"""What runs a transition's training: the executor interface shared by local and Ray.

The planner (the *driver*) owns every decision and is the only writer of the journal; an
executor only runs the three trainer operations a transition needs, for up to
``max_parallel`` transitions at once, and reports their outcomes:

- ``start``: ``trainer.start(dst, from_checkpoint)`` then ``trainer.save(first_id)`` (and,
  with ``planner.score_start``, ``evaluate()``: the starting model's score in ``dst``);
- ``resume``: ``trainer.resume(dst, checkpoint_id)`` (a transition continued after a crash);
- ``epoch``: ``train_epoch()``, ``evaluate()``, then ``save(checkpoint_id)`` if the score is
  finite; given the transition's knee stopper (executors with ``fits_in_worker``), the worker
  also observes the score with it -- the knee fit runs in the worker, off the driver's
  critical path -- and ships the updated stopper back with the score. The fit is a pure
  function of the scores, so the driver replaying a journal takes the same decisions.

A worker that dies or stalls surfaces as :class:`WorkerLost` (the planner retries the
transition from its last journaled epoch); a non-finite loss as ``FloatingPointError`` (the
transition diverged). Any other exception is a bug or an environment failure (a full disk):
it stops the plan with the journal intact, so ``--resume`` continues it.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from opplan.planning.knee import KneeStopper
from opplan.planning.protocol import Trainer
from opplan.planning.state import TrainingState

__all__ = [
    "Edge",
    "EpochResult",
    "Executor",
    "Outcome",
    "TrainerFactory",
    "TransitionWorker",
    "WorkerLost",
]

Edge = tuple[TrainingState, TrainingState]
TrainerFactory = Callable[[], Trainer]
OpName = Literal["start", "resume", "epoch"]


class WorkerLost(RuntimeError):
    """The process running a transition died, or made no progress for ``stall_timeout``."""


@dataclass(frozen=True)
class EpochResult:
    """One trained and scored epoch (``saved`` is false for a non-finite score)."""

    score: float
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    saved: bool = True
    stopper: KneeStopper | None = None  # observed in the worker (fits_in_worker)


@dataclass(frozen=True)
class Outcome:
    """A finished operation: ``result`` for an epoch, ``error`` if it failed."""

    edge: Edge
    op: OpName
    result: EpochResult | None = None
    error: BaseException | None = None


class TransitionWorker:
    """Runs the operations of one transition at a time on a trainer (in any process)."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer

    def start(
        self, state: TrainingState, from_checkpoint: str | None, first_id: str, score: bool = False
    ) -> EpochResult | None:
        """Start (and with ``score`` evaluate the starting model in ``state``: its y0)."""
        tick = time.monotonic()
        self.trainer.start(state, from_checkpoint)
        self.trainer.save(first_id)
        if not score:
            return None
        y0 = float(self.trainer.evaluate())
        return EpochResult(y0, {}, time.monotonic() - tick, math.isfinite(y0))

    def resume(self, state: TrainingState, checkpoint_id: str) -> None:
        self.trainer.resume(state, checkpoint_id)

    def epoch(self, checkpoint_id: str, stopper: KneeStopper | None = None) -> EpochResult:
        tick = time.monotonic()
        metrics = self.trainer.train_epoch() or {}
        score = float(self.trainer.evaluate())
        saved = math.isfinite(score)
        if saved:  # a diverged model is never written
            self.trainer.save(checkpoint_id)
        clean = {k: float(v) for k, v in metrics.items()}
        seconds = time.monotonic() - tick  # the fit is not training time
        if stopper is not None and saved:
            stopper.observe(score)  # the knee fit (§3.3), here instead of in the driver
        return EpochResult(score, clean, seconds, saved, stopper if saved else None)

    def release(self, checkpoint_id: str) -> None:
        self.trainer.release(checkpoint_id)


class Executor(ABC):
    """Runs transition operations for the planner; see the module docstring."""

    max_parallel: int = 1
    fits_in_worker: bool = False  # send the stopper with each epoch (see the module doc)

    @abstractmethod
    def submit(self, edge: Edge, op: OpName, *args: object) -> None:
        """Queue ``op`` (``start``/``resume``/``epoch`` with the worker method's args)."""

    @abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one submitted operation ended; return every ended one."""

    @abstractmethod
    def finish(self, edge: Edge) -> None:
        """The transition ended: its worker is free for another one."""

    @abstractmethod
    def release(self, checkpoint_id: str) -> None:
        """Delete a checkpoint nobody needs any more."""

    def close(self) -> None:
        """Free the workers (called once the plan ends or fails); nothing to do by default."""
        return None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
