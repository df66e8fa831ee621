"""Training along a fixed path (``opplan train``): the paper trains the final model this way
once planning has found the path (§5.2). Resumable from the last epoch checkpoint.

A step may carry a per-epoch learning-rate list (``lrs``) instead of its state's constant lr:
that is how the cosine decay of the hand-tuned baselines (§5.3, ``opplan.baselines``) runs on
this same loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opplan.engine.distributed import ReplicaJournal
from opplan.engine.trainer import VideoTrainer
from opplan.errors import ConfigError
from opplan.fileio import atomic_write_bytes, atomic_write_json
from opplan.planning.journal import Journal, Op, read_journal
from opplan.planning.state import TrainingState

__all__ = ["RecipeStep", "read_recipe", "train_recipe"]


@dataclass(frozen=True)
class RecipeStep:
    """Train ``epochs`` epochs in ``state``.

    Args:
        lrs: optional learning rate of each epoch (length ``epochs``, at the reference batch
            like ``state.lr``); ``None`` keeps ``state.lr`` for the whole step.
    """

    state: TrainingState
    epochs: int
    lrs: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.lrs is None:
            return
        lrs = tuple(self.lrs)
        if len(lrs) != self.epochs:
            raise ValueError(f"lrs has {len(lrs)} values for {self.epochs} epochs")
        bad = [x for x in lrs if not (isinstance(x, int | float) and math.isfinite(x) and x > 0)]
        if bad:
            raise ValueError(f"lrs must be positive finite numbers, got {bad[0]!r}")
        object.__setattr__(self, "lrs", tuple(float(x) for x in lrs))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.state.to_dict(), "epochs": self.epochs}
        if self.lrs is not None:
            out["lrs"] = list(self.lrs)
        return out


def read_recipe(path: str | Path) -> list[RecipeStep]:
    """Steps of a ``recipe.yaml`` (as written by ``opplan plan``); errors name the step."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: recipe not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:  # syntax, or a tag the safe loader refuses (!!python/...)
        mark = getattr(err, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list) or not data["steps"]:
        raise ConfigError(f"{p}: expected a non-empty 'steps' list")
    steps = []
    for k, raw in enumerate(data["steps"]):
        try:
            extra = tuple(
                (key, v)
                for key, v in raw.items()
                if key not in ("sampling", "clip_length", "lr", "epochs", "lrs")
            )
            state = TrainingState(raw["sampling"], raw["clip_length"], raw["lr"], extra)
            epochs = raw["epochs"]
            if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
                raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
            lrs = raw.get("lrs")
            if lrs is not None and not isinstance(lrs, list):
                raise ValueError(f"lrs must be a list, got {lrs!r}")
            step = RecipeStep(state, epochs, None if lrs is None else tuple(lrs))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ConfigError(f"{p}: steps[{k}]: {err}") from None
        steps.append(step)
    return steps


def train_recipe(
    trainer: VideoTrainer,
    steps: Sequence[RecipeStep],
    run_dir: str | Path,
    on_epoch: Callable[[int, RecipeStep, int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train ``steps`` one after the other; continue where a killed run stopped.

    Each epoch ends with a checkpoint ``step<k>/e<epoch>`` and a journal event; the older
    epoch checkpoints of a step are released. Returns (and writes ``RUN/train.json``) the
    per-epoch validation scores and the final checkpoint id; the final model is copied to
    ``RUN/model.pt``. Data parallel (``trainer.dist``), every rank trains and only rank 0
    writes the journal, ``model.pt`` and ``train.json``.
    """
    run = Path(run_dir)
    is_main = trainer.dist.is_main
    done: dict[int, list[dict[str, Any]]] = {}
    for event in read_journal(run / "train_journal.jsonl"):
        if event["op"] == Op.EPOCH_SCORED.value:
            done.setdefault(int(event["step"]), []).append(event)
    previous: str | None = None
    history: list[dict[str, Any]] = []
    with Journal(run / "train_journal.jsonl") if is_main else ReplicaJournal() as journal:
        for k, step in enumerate(steps):
            events = done.get(k, [])
            history.extend(events)
            if len(events) >= step.epochs:
                previous = events[-1]["checkpoint"]
                continue
            if events:
                trainer.resume(step.state, events[-1]["checkpoint"])
            else:
                trainer.start(step.state, previous)
            for epoch in range(len(events) + 1, step.epochs + 1):
                tick = time.monotonic()
                if step.lrs is not None:
                    trainer.set_lr(step.lrs[epoch - 1])
                metrics = trainer.train_epoch()
                score = trainer.evaluate()
                checkpoint = f"step{k}/e{epoch:03d}"
                trainer.save(checkpoint)
                event = journal.append(
                    Op.EPOCH_SCORED,
                    step=k,
                    state=str(step.state),
                    epoch=epoch,
                    score=score,
                    checkpoint=checkpoint,
                    seconds=time.monotonic() - tick,
                    metrics=metrics,
                )
                history.append(event)
                if epoch > 1:
                    trainer.release(f"step{k}/e{epoch - 1:03d}")
                if on_epoch is not None:
                    on_epoch(k, step, epoch, {**metrics, "score": score})
            previous = f"step{k}/e{step.epochs:03d}"
            if k > 0:
                trainer.release(f"step{k - 1}/e{steps[k - 1].epochs:03d}")
    assert previous is not None
    final = trainer.checkpoint_dir / f"{previous}.pt"
    if is_main:
        atomic_write_bytes(run / "model.pt", final.read_bytes())  # a stable name for the result
    summary = {
        "steps": [s.to_dict() for s in steps],
        "model": str(run / "model.pt"),
        "final_checkpoint": previous,
        "final_state": str(steps[-1].state),
        "scores": [{"step": e["step"], "epoch": e["epoch"], "score": e["score"]} for e in history],
    }
    if is_main:
        atomic_write_json(run / "train.json", summary)
    return summary
