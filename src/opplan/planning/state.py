"""Training states (§3.1): a state fixes the frame sampling, clip length and learning rate.

A :class:`TrainingState` is a frozen, hashable value. Extra ordered axes (spatial size,
dropout, ...) ride along in ``extra`` so that explicit graphs can plan over more than the
paper's three hyper-parameters.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["INITIAL", "SAMPLINGS", "Sampling", "TrainingState"]

Sampling = Literal["consecutive", "uniform"]
SAMPLINGS: tuple[Sampling, ...] = ("consecutive", "uniform")
_INITIAL_SAMPLING = "initial"

ExtraValue = int | float | str


@dataclass(frozen=True)
class TrainingState:
    """One node of the transition graph.

    Args:
        sampling: ``"consecutive"`` or ``"uniform"`` frame sampling (§3.1).
        clip_length: frames per input clip.
        lr: learning rate (at the reference batch size).
        extra: further ordered axes as ``(name, value)`` pairs, e.g. ``(("size", 160),)``.

    Example:
        >>> s = TrainingState("uniform", 32, 0.001)
        >>> str(s)
        'uniform 32f lr=0.001'
        >>> TrainingState.parse(str(s)) == s
        True
    """

    sampling: str
    clip_length: int
    lr: float
    extra: tuple[tuple[str, ExtraValue], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.sampling == _INITIAL_SAMPLING:
            return
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if isinstance(self.clip_length, bool) or not isinstance(self.clip_length, int):
            raise ValueError(f"clip_length must be an int, got {self.clip_length!r}")
        if self.clip_length < 1:
            raise ValueError(f"clip_length must be >= 1, got {self.clip_length}")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "extra", tuple((str(k), v) for k, v in self.extra))

    # -- the virtual initial state ------------------------------------------------------
    @classmethod
    def initial(cls) -> TrainingState:
        """The virtual initial state: the initialization (random or pretrained weights)."""
        return cls(_INITIAL_SAMPLING, 0, 0.0)

    @property
    def is_initial(self) -> bool:
        return self.sampling == _INITIAL_SAMPLING

    # -- naming -------------------------------------------------------------------------
    def __str__(self) -> str:
        if self.is_initial:
            return "initial"
        text = f"{self.sampling} {self.clip_length}f lr={self.lr!r}"
        return text + "".join(f" {k}={v}" for k, v in self.extra)

    @property
    def slug(self) -> str:
        """A file-name-safe identifier, unique to the exact name: a readable prefix and a
        short hash of ``str(self)``, e.g. ``uniform-32f-lr0.001-5d41402abc``.

        The prefix alone would merge states whose names differ only in characters it drops
        (``aug=a+b`` / ``aug=a*b``); the hash keeps their checkpoint folders apart. Run
        directories of older versions (prefix only) still resume: the planner reads every
        existing checkpoint id from the journal and only names new epochs this way.
        """
        prefix = re.sub(r"[^A-Za-z0-9.=_-]+", "-", str(self).replace(" lr=", "-lr").strip())
        digest = hashlib.sha256(str(self).encode("utf-8")).hexdigest()[:10]
        return f"{prefix[:80]}-{digest}"

    @classmethod
    def parse(cls, text: str) -> TrainingState:
        """Inverse of ``str()``: ``"uniform 32f lr=0.001 size=160"`` or ``"initial"``."""
        parts = text.split()
        if parts == ["initial"]:
            return cls.initial()
        if len(parts) < 3 or not parts[1].endswith("f") or not parts[2].startswith("lr="):
            raise ValueError(
                f"cannot parse state {text!r}: expected '<sampling> <N>f lr=<lr> [k=v ...]'"
            )
        try:
            clip_length = int(parts[1][:-1])
            lr = float(parts[2][3:])
        except ValueError as err:
            raise ValueError(f"cannot parse state {text!r}: {err}") from None
        extra: list[tuple[str, ExtraValue]] = []
        for item in parts[3:]:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"cannot parse state {text!r}: extra axis {item!r} lacks '='")
            extra.append((key, _parse_scalar(raw)))
        return cls(parts[0], clip_length, lr, tuple(extra))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sampling": self.sampling,
            "clip_length": self.clip_length,
            "lr": self.lr,
        }
        out.update(dict(self.extra))
        return out

    def sort_key(self) -> tuple[Any, ...]:
        """Deterministic order: sampling, shorter clips first, higher lr first, extras."""
        return (
            not self.is_initial,
            self.sampling,
            self.clip_length,
            -self.lr,
            tuple((k, str(v)) for k, v in self.extra),
        )


def _parse_scalar(raw: str) -> ExtraValue:
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            continue
    return raw


INITIAL = TrainingState.initial()
