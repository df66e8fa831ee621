"""Multigrid training (Wu et al., 2020; PySlowFast's ``slowfast/utils/multigrid.py``) as a
schedule of recipe steps: what a user would run instead of planning (beyond the paper).

The long cycle trains on coarse (time, space) shapes first, ``LONG_CYCLE`` factors
(0.25, 0.707), (0.5, 0.707), (0.5, 1), (1, 1) of the final clip length and crop side, with
the batch scaled to keep ``B * T * H * W`` constant and the learning rate scaled linearly
with it (the trainer's linear-scaling rule, ``lr * batch / reference_batch``). As in
PySlowFast's ``get_long_cycle_schedule``: the long cycle repeats within every learning-rate
stage but the last (3-step decay), each shape getting epochs proportional to its batch
factor (equal iterations per shape); the last stage fine-tunes at the full shape with the
same iteration saving; all epochs are then rescaled to the requested total and cut at the
rounded cumulative epoch, so a shape whose share rounds to 0 epochs is dropped (only at
budgets too small for 4 shapes per stage); the last epoch is always at the full shape.

With ``short_cycle`` (PySlowFast's ``MULTIGRID.SHORT_CYCLE``), iterations within every
shape also cycle through the crop sides ``S/2``, ``S/sqrt(2)`` (of the final side ``S``) and
the shape's own, with batches ``round((side/crop)**-2)`` times the shape's: 4B, 2B, B at the
full shape (:mod:`opplan.engine.short_cycle`, through the trainer's data loader), at the
shape's lr throughout. As PySlowFast's ``get_long_cycle_schedule`` then does, a shape's
batch factor is the mean over its three short-cycle shapes (their batches from
``B * T * S**2`` at the unrounded sides), which sets the epoch split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opplan.baselines._schedule import _boundaries, check_sampling_and_lrs
from opplan.engine.recipe import RecipeStep
from opplan.engine.short_cycle import SHORT_CYCLE_FACTORS, ShortCycle
from opplan.planning.state import TrainingState

__all__ = ["LONG_CYCLE", "MultigridEpochs", "MultigridSchedule"]

#: (time, space) factors of the long cycle, coarse to fine (PySlowFast's defaults)
LONG_CYCLE: tuple[tuple[float, float], ...] = (
    (0.25, 0.5**0.5),
    (0.5, 0.5**0.5),
    (0.5, 1.0),
    (1.0, 1.0),
)


@dataclass(frozen=True)
class MultigridEpochs:
    """A run of epochs at one shape: clip length, crop side, effective batch, the lr at the
    reference batch (``lr``, the state's) and the lr the optimizer uses (``scaled_lr``)."""

    stage: int
    clip_length: int
    size: int
    batch: int
    lr: float
    scaled_lr: float
    epochs: int


@dataclass(frozen=True)
class MultigridSchedule:
    """The multigrid long cycle over ``epochs`` epochs ending at ``clip_length`` x ``size``
    with ``batch`` clips per step; ``lrs`` are the 3-step decay's learning rates at
    ``reference_batch`` (the trainer's ``optim.reference_batch``), highest first.

    Example:
        >>> s = MultigridSchedule(16, 32, 16, "uniform", 24, (0.1, 0.01, 0.001))
        >>> [(e.clip_length, e.size, e.batch, e.epochs) for e in s.expand()][:4]
        [(4, 23, 124, 6), (8, 23, 62, 2), (8, 32, 32, 2), (16, 32, 16, 1)]
        >>> s.name
        'multigrid-uniform-16f-32px-b16-e24'
    """

    clip_length: int
    size: int
    batch: int
    sampling: str
    epochs: int
    lrs: tuple[float, ...]
    reference_batch: int = 16
    short_cycle: bool = False

    def __post_init__(self) -> None:
        for field in ("clip_length", "size", "batch", "epochs", "reference_batch"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if self.size < 12:  # the coarsest shape's side, size / sqrt(2), must stay >= 8 px
            raise ValueError(f"size must be at least 12 pixels, got {self.size}")
        if self.short_cycle not in (False, True):
            raise ValueError(f"short_cycle must be true or false, got {self.short_cycle!r}")
        if self.short_cycle and self.size < 15:  # the short cycle's side S/2 must be >= 8
            raise ValueError(
                f"size must be at least 15 pixels with the short cycle, got {self.size}"
            )
        lrs = check_sampling_and_lrs(self.sampling, self.lrs)
        if len(lrs) < 2:
            raise ValueError("multigrid needs at least 2 lrs (long cycles, then fine-tuning)")
        if self.epochs < len(lrs):
            raise ValueError(f"epochs must be at least {len(lrs)} (one per lr), got {self.epochs}")
        object.__setattr__(self, "lrs", lrs)

    @property
    def name(self) -> str:
        return (
            f"multigrid-{self.sampling}-{self.clip_length}f-{self.size}px-b{self.batch}"
            f"-e{self.epochs}" + "-short" * self.short_cycle
        )

    def shapes(self) -> list[tuple[int, int, int]]:
        """(clip length, size, batch) of each long-cycle shape: ``B * T * S**2`` kept."""
        volume = self.batch * self.clip_length * self.size**2
        out = []
        for t_factor, s_factor in LONG_CYCLE:
            t = max(1, round(self.clip_length * t_factor))
            s = round(self.size * s_factor)
            out.append((t, s, max(1, round(volume / (t * s * s)))))
        return out

    def batch_factors(self) -> list[float]:
        """Each shape's mean batch over the final batch (PySlowFast's ``avg_bs``): its own
        batch's, or with the short cycle the mean over the sides ``f * size`` and its own."""
        volume = self.batch * self.clip_length * self.size**2
        out = []
        for t, _, b in self.shapes():
            batches = [b]
            if self.short_cycle:
                batches += [
                    round(volume / (t * (f * self.size) ** 2)) for f in SHORT_CYCLE_FACTORS
                ]
            out.append(sum(batches) / len(batches) / self.batch)
        return out

    def cycle(self, run: MultigridEpochs) -> ShortCycle | None:
        """The short cycle of a run of epochs (None without the short cycle)."""
        return ShortCycle(self.size, run.size, run.batch) if self.short_cycle else None

    def expand(self) -> list[MultigridEpochs]:
        """The schedule: PySlowFast's long-cycle epochs, rescaled to ``epochs``."""
        shapes = self.shapes()
        factors = self.batch_factors()  # avg_bs there
        bounds = _boundaries(self.epochs, len(self.lrs))
        raw: list[tuple[int, tuple[int, int, int], float]] = []
        iterations = 0.0
        for stage in range(len(self.lrs) - 1):
            stage_epochs = bounds[stage + 1] - bounds[stage]
            for shape, factor in zip(shapes, factors, strict=True):
                epochs = stage_epochs * factor / sum(factors)
                iterations += epochs / factor
                raw.append((stage, shape, epochs))
        saving = bounds[-2] / iterations  # iterations of full-shape epochs / multigrid's
        final = len(self.lrs) - 1
        raw.append((final, shapes[-1], (bounds[-1] - bounds[-2]) / saving * factors[-1]))
        scale = self.epochs / sum(r[2] for r in raw)
        out: list[MultigridEpochs] = []
        total, done = 0.0, 0
        for k, (stage, (t, s, b), epochs) in enumerate(raw):
            total += epochs * scale
            # the last epoch always fine-tunes at the full shape and the last lr
            end = round(total) if k == len(raw) - 1 else min(round(total), self.epochs - 1)
            if end > done:
                lr = self.lrs[stage]
                scaled = float(f"{lr * b / self.reference_batch:.6g}")
                out.append(MultigridEpochs(stage, t, s, b, lr, scaled, end - done))
                done = end
        return out

    def steps(self) -> list[RecipeStep]:
        """One recipe step per shape run: state (sampling, length, lr, size), epochs, batch."""
        return [
            RecipeStep(
                TrainingState(self.sampling, e.clip_length, e.lr, (("size", e.size),)),
                e.epochs,
                batch=e.batch,
                short_cycle=self.size if self.short_cycle else None,
            )
            for e in self.expand()
        ]

    def weighted_epochs(self, reference_length: int, num_clips: int | None = None) -> float:
        """Epochs weighted by clip length and area, ``epochs * T/ref * (S/size)**2``: the
        compute of an epoch at a smaller crop shrinks with its pixels (for the full size
        this is the hand-tuned schedules' clip-length weighting). With the short cycle the
        area is the epoch's mean over its iterations' crops, for an epoch of ``num_clips``
        clips (``None``: the cycle's own 3-iteration mix; the last iteration may differ)."""
        total = 0.0
        for e in self.expand():
            cycle = self.cycle(e)
            area = (e.size / self.size) ** 2 if cycle is None else cycle.pixel_fraction(num_clips)
            total += e.epochs * e.clip_length / reference_length * area
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "multigrid",
            "clip_length": self.clip_length,
            "size": self.size,
            "batch": self.batch,
            "sampling": self.sampling,
            "epochs": self.epochs,
            "lrs": list(self.lrs),
            "reference_batch": self.reference_batch,
            **({"short_cycle": True} if self.short_cycle else {}),  # older runs: no key
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MultigridSchedule:
        return cls(
            int(data["clip_length"]),
            int(data["size"]),
            int(data["batch"]),
            data["sampling"],
            int(data["epochs"]),
            tuple(data["lrs"]),
            int(data.get("reference_batch", 16)),
            bool(data.get("short_cycle", False)),
        )
