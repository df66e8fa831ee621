"""A simulated trainer: score curves from known functions plus seeded noise.

Used by the tests (the planner's answer is compared with brute force over all paths) and
by the demo before a video trainer is at hand. A transition ``Si -> Sj`` that starts from
a model scoring ``y0`` follows the remaining-error model

    y(t) = y0 + (1 - y0) * (A (1 - exp(-k t)) - q t^2 + eps_t),   eps_0 = 0,

i.e. each step removes a fraction of the remaining error, converging at rate ``k`` and
over-fitting with ``q``; ``(A, k, q)`` depend on the move (the :class:`Landscape`) and
``eps_t ~ N(0, noise^2)`` is seeded by (seed, Si, Sj, t). The outcome of an edge is an
increasing affine function of ``y0``, so the best path is the one dynamic programming finds
(Eq. 2) -- which is what makes brute force a valid check.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from opplan.fileio import atomic_write_json
from opplan.planning.state import TrainingState

__all__ = [
    "CurveParams",
    "DefaultLandscape",
    "Landscape",
    "RandomLandscape",
    "SimulatedTrainer",
    "simulated_score",
]


@dataclass(frozen=True)
class CurveParams:
    """A: fraction of the remaining error removed at convergence; k: rate; q: over-fitting."""

    gain: float
    rate: float
    overfit: float


class Landscape(Protocol):
    """Curve parameters per move; ``seed`` and ``noise`` drive the evaluation noise."""

    @property
    def seed(self) -> int: ...

    @property
    def noise(self) -> float: ...

    def curve(self, src: TrainingState, dst: TrainingState) -> CurveParams: ...


def _unit_draws(*parts: object, n: int = 1) -> np.ndarray:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return np.random.default_rng(int.from_bytes(digest, "little")).random(n)


def simulated_score(
    landscape: Landscape, src: TrainingState, dst: TrainingState, y0: float, epoch: int
) -> float:
    """The score after ``epoch`` epochs of ``src -> dst`` starting from a ``y0`` model."""
    if epoch == 0:
        return y0
    p = landscape.curve(src, dst)
    eps = 0.0
    if landscape.noise > 0:
        u = _unit_draws(landscape.seed, "noise", src, dst, epoch, n=2)
        # Box-Muller from two seeded uniforms: a reproducible normal draw per epoch
        eps = landscape.noise * math.sqrt(-2 * math.log(1 - u[0])) * math.cos(2 * math.pi * u[1])
    shape = p.gain * (1 - math.exp(-p.rate * epoch)) - p.overfit * epoch**2 + eps
    return y0 + (1 - y0) * shape


@dataclass(frozen=True)
class DefaultLandscape:
    """A paper-like landscape: long clips and low learning rates help, one sampling fits
    the (imaginary) data better, fine-tuning converges faster than training from scratch.

    Args:
        seed, noise: noise of one evaluation (std, in score units of the remaining error).
        sampling_gain: extra gain per sampling (the data's temporal character).
        clip_gain: gain of one step longer clip; lr_gain: of one step lower learning rate.
    """

    seed: int = 0
    noise: float = 0.01
    sampling_gain: Mapping[str, float] = field(
        default_factory=lambda: {"consecutive": 0.03, "uniform": 0.0}
    )
    scratch_gain: float = 0.55
    clip_gain: float = 0.12
    lr_gain: float = 0.30

    def curve(self, src: TrainingState, dst: TrainingState) -> CurveParams:
        bonus = self.sampling_gain.get(dst.sampling, 0.0)
        longer = 1.0 + 0.4 * math.log2(max(dst.clip_length, 1) / 8)
        if src.is_initial:  # from scratch: slow, over-fits late
            return CurveParams(self.scratch_gain + bonus + 0.05 * longer, 0.08 / longer, 4e-5)
        if dst.lr < src.lr and dst.clip_length < src.clip_length:  # extended move
            gain = 0.6 * self.lr_gain
        elif dst.lr < src.lr:
            gain = self.lr_gain * (1 - 0.3 * math.log10(src.lr / dst.lr) + 0.3)
        else:
            gain = self.clip_gain * math.log2(dst.clip_length / src.clip_length)
        rate = 0.35 * (1 + math.log10(max(dst.lr, 1e-8) * 1e4) / 4) / longer
        return CurveParams(min(gain + bonus, 0.9), max(rate, 0.05), 2e-4 / longer)


@dataclass(frozen=True)
class RandomLandscape:
    """Curve parameters drawn per edge from a seed: random planning instances for tests."""

    seed: int = 0
    noise: float = 0.01

    def curve(self, src: TrainingState, dst: TrainingState) -> CurveParams:
        u = _unit_draws(self.seed, "curve", src, dst, n=3)
        return CurveParams(0.05 + 0.6 * u[0], 0.1 + 0.8 * u[1], 10 ** (-4 + 2 * u[2]))


class SimulatedTrainer:
    """Implements :class:`~opplan.planning.protocol.Trainer` on a :class:`Landscape`.

    A checkpoint is a small JSON file (state, score, epoch), so kill-and-resume works
    exactly as with a real trainer. ``epoch_delay`` seconds are slept per epoch (scaled by
    the clip length relative to ``reference_clip_length``) to make interruption testable.
    """

    extra_axes = ("*",)  # the landscape's curves see whole states, extra axes included

    def __init__(
        self,
        checkpoint_dir: str | Path,
        landscape: Landscape | None = None,
        epoch_delay: float = 0.0,
        reference_clip_length: int = 16,
    ):
        self.checkpoint_dir = Path(checkpoint_dir)
        self.landscape: Landscape = landscape or DefaultLandscape()
        self.epoch_delay = epoch_delay
        self.reference_clip_length = reference_clip_length
        self._src = TrainingState.initial()
        self._dst: TrainingState | None = None
        self._y0 = 0.0
        self._epoch = 0

    def _path(self, checkpoint_id: str) -> Path:
        return self.checkpoint_dir / f"{checkpoint_id}.json"

    def _load(self, checkpoint_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self._path(checkpoint_id).read_text())
        return data

    def start(self, state: TrainingState, from_checkpoint: str | None) -> None:
        if from_checkpoint is None:
            self._src, self._y0 = TrainingState.initial(), 0.0
        else:
            data = self._load(from_checkpoint)
            self._src = TrainingState.parse(str(data["state"]))
            self._y0 = float(data["score"])
        self._dst, self._epoch = state, 0

    def resume(self, state: TrainingState, checkpoint_id: str) -> None:
        data = self._load(checkpoint_id)
        if data["state"] != str(state):
            raise ValueError(
                f"checkpoint {checkpoint_id} was saved in {data['state']}, not {state}"
            )
        self._src = TrainingState.parse(str(data["src"]))
        self._y0 = float(data["y0"])
        self._dst, self._epoch = state, int(data["epoch"])

    def train_epoch(self) -> dict[str, float]:
        assert self._dst is not None, "start() first"
        if self.epoch_delay > 0:
            time.sleep(self.epoch_delay * self._dst.clip_length / self.reference_clip_length)
        self._epoch += 1
        return {"loss": 1.0 - self.evaluate()}

    def evaluate(self) -> float:
        assert self._dst is not None, "start() first"
        return simulated_score(self.landscape, self._src, self._dst, self._y0, self._epoch)

    def save(self, checkpoint_id: str) -> None:
        assert self._dst is not None, "start() first"
        atomic_write_json(
            self._path(checkpoint_id),
            {
                "state": str(self._dst),
                "src": str(self._src),
                "y0": self._y0,
                "epoch": self._epoch,
                "score": self.evaluate(),
            },
        )

    def release(self, checkpoint_id: str) -> None:
        self._path(checkpoint_id).unlink(missing_ok=True)
