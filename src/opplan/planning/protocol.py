"""The one seam between the planner and training code.

The planner owns the graph, the knee decisions, the dynamic programming and the journal;
a trainer owns tensors. Anything that implements :class:`Trainer` can be planned: the video
trainer (``opplan.engine``), the simulated trainer (:mod:`opplan.planning.simulate`) or a
user's own training loop.

For a transition ``Si -> Sj`` the planner calls::

    trainer.start(Sj, from_checkpoint=<Si's best checkpoint id, or None = initialization>)
    trainer.save("<edge>/e000")            # the starting model, kept if the knee is epoch 0
    for t in 1, 2, ...:                    # until the knee stopper says stop (§3.3)
        trainer.train_epoch()
        score = trainer.evaluate()         # higher is better (e.g. top-1 on the internal split)
        trainer.save(f"<edge>/e{t:03d}")
    trainer.release(<every epoch checkpoint but the knee's>)

After a crash the planner continues a transition with ``trainer.resume(Sj, last_epoch_id)``,
which must restore everything ``save`` wrote (weights, optimizer, RNG states, epoch count),
so that a resumed transition scores exactly like an uninterrupted one.

States may carry extra axes (``size=160``, :mod:`opplan.planning.axes`). A trainer says
which it acts on with an attribute ``extra_axes`` (names; ``"*"``: every axis); planning
states with an axis it does not name is refused at start-up (:func:`unused_axes`), since it
would train the same thing under two labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable

from opplan.planning.state import TrainingState

__all__ = ["Trainer", "unused_axes"]


@runtime_checkable
class Trainer(Protocol):
    """What the planner needs from training code. Checkpoint ids are relative POSIX paths."""

    def start(self, state: TrainingState, from_checkpoint: str | None) -> None:
        """Begin a transition: load the weights of ``from_checkpoint`` (``None``: the
        initialization) and set a fresh optimizer with ``state``'s hyper-parameters."""

    def resume(self, state: TrainingState, checkpoint_id: str) -> None:
        """Continue a transition cut by a crash from a checkpoint this transition saved."""

    def train_epoch(self) -> Mapping[str, float] | None:
        """Train one epoch with the current state's hyper-parameters; may return metrics."""

    def evaluate(self) -> float:
        """Score the current model on the planning validation split (higher is better)."""

    def save(self, checkpoint_id: str) -> None:
        """Persist the current model, optimizer and RNG states under ``checkpoint_id``."""

    def release(self, checkpoint_id: str) -> None:
        """Delete a checkpoint the planner no longer needs (a no-op if it is gone)."""


def unused_axes(trainer: object, states: Iterable[TrainingState]) -> list[str]:
    """The extra axes of ``states`` that ``trainer`` does not act on (its ``extra_axes``)."""
    acts_on = set(getattr(trainer, "extra_axes", ()))
    names = dict.fromkeys(name for state in states for name, _ in state.extra)
    return [] if "*" in acts_on else [name for name in names if name not in acts_on]
