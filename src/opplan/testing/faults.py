"""A simulated trainer that misbehaves on cue, for the executor and reliability tests.

A fault fires at the start of a given epoch of a given transition, at most ``times`` times
over all processes (counted with marker files, so a restarted worker sees how often it
already fired): ``exit`` kills the worker process (``os._exit``), ``hang`` sleeps far past
any stall timeout, ``diverge`` raises ``FloatingPointError`` like a non-finite loss, ``nan``
makes the evaluation return NaN.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from opplan.planning.simulate import Landscape, SimulatedTrainer

__all__ = ["Fault", "FaultyTrainer", "faulty_trainer"]


@dataclass(frozen=True)
class Fault:
    """``kind`` at ``epoch`` of the transition ``src -> dst`` (state strings), ``times`` times
    (``-1``: every time)."""

    src: str
    dst: str
    epoch: int
    kind: Literal["exit", "hang", "diverge", "nan"]
    times: int = 1

    @property
    def key(self) -> str:
        return f"{self.src}->{self.dst}@{self.epoch}".replace(" ", "_").replace("/", "_")


class FaultyTrainer(SimulatedTrainer):
    def __init__(
        self,
        checkpoint_dir: str | Path,
        landscape: Landscape | None,
        faults: tuple[Fault, ...],
        marker_dir: str | Path,
        epoch_delay: float = 0.0,
    ):
        super().__init__(checkpoint_dir, landscape, epoch_delay)
        self.faults = faults
        self.marker_dir = Path(marker_dir)
        self._nan = False

    def _fire(self, fault: Fault) -> bool:
        self.marker_dir.mkdir(parents=True, exist_ok=True)
        marker = self.marker_dir / fault.key
        fired = len(marker.read_text()) if marker.exists() else 0
        if fault.times >= 0 and fired >= fault.times:
            return False
        with marker.open("a") as f:  # one character per firing
            f.write("x")
            f.flush()
            os.fsync(f.fileno())
        return True

    def train_epoch(self) -> dict[str, float]:
        self._nan = False
        for fault in self.faults:
            here = (str(self._src), str(self._dst), self._epoch + 1)
            if here == (fault.src, fault.dst, fault.epoch) and self._fire(fault):
                if fault.kind == "exit":
                    os._exit(17)
                if fault.kind == "hang":
                    time.sleep(3600)
                if fault.kind == "diverge":
                    raise FloatingPointError(f"loss is nan at epoch {fault.epoch}")
                self._nan = True
        return super().train_epoch()

    def evaluate(self) -> float:
        return math.nan if self._nan else super().evaluate()


def faulty_trainer(
    checkpoint_dir: str,
    landscape: Landscape | None,
    faults: tuple[Fault, ...],
    marker_dir: str,
    epoch_delay: float = 0.0,
) -> FaultyTrainer:
    """A picklable factory (use with ``functools.partial``) for Ray workers."""
    return FaultyTrainer(checkpoint_dir, landscape, faults, marker_dir, epoch_delay)
