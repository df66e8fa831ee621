"""The default executor: one trainer in the planner's process, one transition at a time."""

from __future__ import annotations

from opplan.planning.executors._base import (
    Edge,
    Executor,
    OpName,
    Outcome,
    TransitionWorker,
)
from opplan.planning.protocol import Trainer

__all__ = ["LocalExecutor"]


class LocalExecutor(Executor):
    """Runs each operation as it is submitted, in this process (the paper's sequential order).

    A crash of this process is a crash of the planner: ``--resume`` continues from the
    journal. Divergence (``FloatingPointError``) is reported as an outcome; every other
    exception propagates.
    """

    max_parallel = 1

    def __init__(self, trainer: Trainer, fits_in_worker: bool = False):
        self.worker = TransitionWorker(trainer)
        self.fits_in_worker = fits_in_worker  # a test of the worker-side fit path
        self._done: list[Outcome] = []

    def submit(self, edge: Edge, op: OpName, *args: object) -> None:
        try:
            result = getattr(self.worker, op)(*args)
        except FloatingPointError as error:
            self._done.append(Outcome(edge, op, error=error))
        else:
            self._done.append(Outcome(edge, op, result=result))

    def wait(self) -> list[Outcome]:
        done, self._done = self._done, []
        return done

    def finish(self, edge: Edge) -> None:
        pass

    def release(self, checkpoint_id: str) -> None:
        self.worker.release(checkpoint_id)
