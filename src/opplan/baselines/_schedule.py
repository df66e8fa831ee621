"""Hand-tuned training strategies (§5.3) as schedules that expand to recipe steps.

The paper grid-searches four dimensions: the clip-length schedule (l1 -> l3, l2 -> l3,
l1 -> l2 -> l3, the same number of epochs for each length), the learning-rate decay (3-step:
the three learning rates for equal thirds; cosine), the frame sampling and the total number
of epochs ([128, 192, 256, 320, 384] on Kinetics). A :class:`HandTunedSchedule` is one point
of that grid; :meth:`HandTunedSchedule.steps` turns it into the
:class:`~opplan.engine.recipe.RecipeStep` list that ``opplan train`` already runs, so the
baselines and the planner's path go through the same training loop.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opplan.engine.recipe import RecipeStep
from opplan.planning.state import SAMPLINGS, TrainingState

__all__ = ["DECAYS", "Decay", "HandTunedSchedule", "length_schedules", "parse_decay"]

Decay = Literal["3step", "cosine"]
DECAYS: tuple[str, ...] = ("3step", "cosine")


def check_sampling_and_lrs(sampling: object, lrs: Sequence[float]) -> tuple[float, ...]:
    """A schedule's sampling and its lrs (positive, highest first), as floats."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    values = tuple(float(x) for x in lrs)
    if not values or any(not (math.isfinite(x) and x > 0) for x in values):
        raise ValueError(f"lrs must be positive numbers, got {lrs!r}")
    if list(values) != sorted(values, reverse=True):
        raise ValueError(f"lrs must be given highest first, got {values}")
    return values


def parse_decay(text: str) -> Decay:
    """``3step`` (also ``3-step``, ``step``) or ``cosine``."""
    key = text.strip().lower().replace("-", "").replace("_", "")
    if key in ("3step", "step"):
        return "3step"
    if key == "cosine":
        return "cosine"
    raise ValueError(f"decay must be '3step' or 'cosine', got {text!r}")


def length_schedules(clip_lengths: Sequence[int]) -> list[tuple[int, ...]]:
    """The paper's clip-length schedules over the candidate lengths (§5.3).

    With three lengths: l1 -> l3, l2 -> l3 and l1 -> l2 -> l3. With N lengths the same
    pattern (l1 -> lN, l2 -> lN, all of them), duplicates removed; one length: that length.

    Example:
        >>> length_schedules([8, 16, 32])
        [(8, 32), (16, 32), (8, 16, 32)]
    """
    lengths = sorted(set(clip_lengths))
    if not lengths:
        raise ValueError("no clip lengths")
    if len(lengths) == 1:
        return [(lengths[0],)]
    candidates = [(lengths[0], lengths[-1]), (lengths[1], lengths[-1]), tuple(lengths)]
    out: list[tuple[int, ...]] = []
    for c in candidates:
        c = tuple(dict.fromkeys(c))
        if c not in out:
            out.append(c)
    return out


def _boundaries(total: int, parts: int) -> list[int]:
    """Epoch boundaries of ``parts`` equal parts of ``total`` (the last parts take the rest)."""
    return [k * total // parts for k in range(parts + 1)]


def _round_lr(x: float) -> float:
    return float(f"{x:.6g}")


@dataclass(frozen=True)
class HandTunedSchedule:
    """One hand-tuned strategy of §5.3.

    Args:
        lengths: clip lengths, increasing; each gets the same number of epochs.
        decay: ``3step`` (``lrs`` for equal parts of the training, the paper's three steps)
            or ``cosine`` (per epoch, ``lrs[0] * (1 + cos(pi * e / epochs)) / 2``).
        sampling: ``consecutive`` or ``uniform`` frame sampling.
        epochs: total epochs over all lengths.
        lrs: learning rates at the reference batch, highest first (the graph's lrs).

    Example:
        >>> s = HandTunedSchedule((8, 32), "3step", "uniform", 12, (0.1, 0.01, 0.001))
        >>> [(st.state.clip_length, st.state.lr, st.epochs) for st in s.steps()]
        [(8, 0.1, 4), (8, 0.01, 2), (32, 0.01, 2), (32, 0.001, 4)]
        >>> s.name
        'uniform-8-32f-3step-e12'
    """

    lengths: tuple[int, ...]
    decay: Decay
    sampling: str
    epochs: int
    lrs: tuple[float, ...]

    def __post_init__(self) -> None:
        lengths = tuple(self.lengths)
        if not lengths or any(isinstance(n, bool) or not isinstance(n, int) for n in lengths):
            raise ValueError(f"lengths must be a non-empty list of integers, got {lengths!r}")
        if min(lengths) < 1 or list(lengths) != sorted(set(lengths)):
            raise ValueError(f"lengths must be positive and strictly increasing, got {lengths}")
        if self.decay not in DECAYS:
            raise ValueError(f"decay must be one of {DECAYS}, got {self.decay!r}")
        lrs = check_sampling_and_lrs(self.sampling, self.lrs)
        parts = max(len(lengths), len(lrs) if self.decay == "3step" else 1)
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int):
            raise ValueError(f"epochs must be an integer, got {self.epochs!r}")
        if self.epochs < parts:
            raise ValueError(
                f"epochs must be at least {parts} (one per length and lr step), got {self.epochs}"
            )
        object.__setattr__(self, "lengths", lengths)
        object.__setattr__(self, "lrs", lrs)

    @property
    def name(self) -> str:
        """A file-name-safe identifier, e.g. ``consecutive-8-16-32f-cosine-e24``."""
        lengths = "-".join(map(str, self.lengths))
        return f"{self.sampling}-{lengths}f-{self.decay}-e{self.epochs}"

    @property
    def label(self) -> str:
        """``l1 -> l3``-style length schedule, e.g. ``8→32``."""
        return "→".join(map(str, self.lengths))

    def lr_at(self, epoch: int) -> float:
        """Learning rate of 0-based ``epoch`` (at the reference batch)."""
        if not 0 <= epoch < self.epochs:
            raise ValueError(f"epoch {epoch} outside 0..{self.epochs - 1}")
        if self.decay == "cosine":
            # per-epoch cosine from lrs[0] towards 0 (Feichtenhofer et al., 2019; §5.3)
            return _round_lr(self.lrs[0] * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs)))
        bounds = _boundaries(self.epochs, len(self.lrs))
        return self.lrs[next(k for k in range(len(self.lrs)) if epoch < bounds[k + 1])]

    def length_at(self, epoch: int) -> int:
        bounds = _boundaries(self.epochs, len(self.lengths))
        return self.lengths[next(k for k in range(len(self.lengths)) if epoch < bounds[k + 1])]

    def steps(self) -> list[RecipeStep]:
        """The schedule as recipe steps: a step per (length, lr) segment for the 3-step decay,
        a step per length with a per-epoch ``lrs`` list for the cosine decay."""
        cuts = set(_boundaries(self.epochs, len(self.lengths)))
        if self.decay == "3step":
            cuts |= set(_boundaries(self.epochs, len(self.lrs)))
        edges = sorted(cuts)
        steps = []
        for start, end in itertools.pairwise(edges):
            lrs = [self.lr_at(e) for e in range(start, end)]
            state = TrainingState(self.sampling, self.length_at(start), lrs[0])
            cosine = self.decay == "cosine"
            steps.append(RecipeStep(state, end - start, tuple(lrs) if cosine else None))
        return steps

    def weighted_epochs(self, reference_length: int) -> float:
        """Epochs weighted by clip length: ``sum(epochs * length / reference_length)``.

        The compute of a 3D ConvNet epoch grows about linearly with the frames per clip
        (FLOPs and decoding), so this counts epochs in units of a ``reference_length`` epoch.
        """
        return sum(s.epochs * s.state.clip_length for s in self.steps()) / reference_length

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "lengths": list(self.lengths),
            "decay": self.decay,
            "sampling": self.sampling,
            "epochs": self.epochs,
            "lrs": list(self.lrs),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HandTunedSchedule:
        return cls(
            tuple(data["lengths"]),
            data["decay"],
            data["sampling"],
            int(data["epochs"]),
            tuple(data["lrs"]),
        )
