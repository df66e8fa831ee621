"""Training along a fixed path (``opplan train``): the paper trains the final model this way
once planning has found the path (§5.2). Resumable from the last epoch checkpoint.

A step may carry a per-epoch learning-rate list (``lrs``) instead of its state's constant lr:
that is how the cosine decay of the hand-tuned baselines (§5.3, ``opplan.baselines``) runs on
this same loop; a step may also carry its own effective ``batch`` (multigrid's long cycle,
``opplan.baselines``), its lr then scaled linearly to it by the trainer, and multigrid's
``short_cycle`` (:mod:`opplan.engine.short_cycle`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opplan.engine.distributed import ReplicaJournal
from opplan.engine.trainer import VideoTrainer
from opplan.errors import ConfigError
from opplan.fileio import atomic_write_bytes, atomic_write_json
from opplan.planning.journal import Journal, Op, read_journal
from opplan.planning.state import TrainingState

__all__ = ["RecipeStep", "read_recipe", "recipe_hash", "train_recipe"]


@dataclass(frozen=True)
class RecipeStep:
    """Train ``epochs`` epochs in ``state``.

    Args:
        lrs: optional learning rate of each epoch (length ``epochs``, at the reference batch
            like ``state.lr``); ``None`` keeps ``state.lr`` for the whole step.
        batch: optional effective batch of the step; ``None`` keeps the trainer's.
        short_cycle: multigrid's short cycle within the step: the default (final) crop side
            its factors apply to; ``None`` (the default): off.
    """

    state: TrainingState
    epochs: int
    lrs: tuple[float, ...] | None = None
    batch: int | None = None
    short_cycle: int | None = None

    def __post_init__(self) -> None:
        for name in ("batch", "short_cycle"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.short_cycle is not None and self.short_cycle < 15:  # its crops must be >= 8
            raise ValueError(f"short_cycle must be at least 15 pixels, got {self.short_cycle}")
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
        if self.batch is not None:
            out["batch"] = self.batch
        if self.short_cycle is not None:  # absent when off: older recipes keep their hash
            out["short_cycle"] = self.short_cycle
        return out


class _Step(BaseModel):
    """One step of a recipe file, validated as strictly as a config: an unknown key (an
    ``lr_schedule`` or ``weight_decay`` that would silently be ignored) is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sampling: Literal["consecutive", "uniform"]
    clip_length: Annotated[int, Field(strict=True, ge=1)]
    lr: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    epochs: Annotated[int, Field(strict=True, ge=1)]
    lrs: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        None, description="a learning rate per epoch (len == epochs); none: lr throughout"
    )
    size: Annotated[int, Field(strict=True, ge=8)] | None = Field(
        None, description="the step's crop side (opplan.engine.state_axes); none: the run's"
    )
    batch: Annotated[int, Field(strict=True, ge=1)] | None = Field(
        None, description="the step's effective batch (lr scaled to it); none: the run's"
    )
    short_cycle: Annotated[int, Field(strict=True, ge=15)] | None = Field(
        None, description="multigrid's short cycle: the default crop side; none: off"
    )


class _Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: Annotated[list[_Step], Field(min_length=1)]


def _where(loc: tuple[int | str, ...]) -> str:
    """``('steps', 0, 'lr')`` -> ``steps[0].lr``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "<root>"


def read_recipe(path: str | Path) -> list[RecipeStep]:
    """Steps of a ``recipe.yaml`` (as written by ``opplan plan``); errors name the field,
    e.g. ``steps[0].lr: Field required``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: recipe not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:  # syntax, or a tag the safe loader refuses (!!python/...)
        mark = getattr(err, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{where}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{p}: expected a mapping with a non-empty 'steps' list, got {type(data).__name__}"
        )
    try:
        recipe = _Recipe.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        got = "" if first["type"] == "missing" else f" (got {first['input']!r})"
        more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
        raise ConfigError(
            f"{p}: invalid recipe: {_where(first['loc'])}: {first['msg']}{got}{more}"
        ) from None
    steps = []
    for k, raw in enumerate(recipe.steps):
        try:
            extra = () if raw.size is None else (("size", raw.size),)
            state = TrainingState(raw.sampling, raw.clip_length, raw.lr, extra)
            lrs = None if raw.lrs is None else tuple(raw.lrs)
            step = RecipeStep(state, raw.epochs, lrs, raw.batch, raw.short_cycle)
        except ValueError as err:
            raise ConfigError(f"{p}: invalid recipe: steps[{k}]: {err}") from None
        steps.append(step)
    return steps


def recipe_hash(steps: Sequence[RecipeStep]) -> str:
    """Identity of a recipe's steps (states, epochs, per-epoch lrs), kept in the journal."""
    canonical = json.dumps([s.to_dict() for s in steps], sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _step_optim(base: Any, step: RecipeStep) -> Any:
    """The trainer's optimization settings with the step's effective batch (if it has one)."""
    return base if step.batch is None else base.model_copy(update={"effective_batch": step.batch})


@contextmanager
def _restored_optim(trainer: VideoTrainer, optim: Any) -> Iterator[None]:
    short_cycle = getattr(trainer, "short_cycle", None)  # a stand-in trainer may lack it
    try:
        yield
    finally:
        trainer.optim, trainer.short_cycle = optim, short_cycle


def train_recipe(
    trainer: VideoTrainer,
    steps: Sequence[RecipeStep],
    run_dir: str | Path,
    on_epoch: Callable[[int, RecipeStep, int, dict[str, float]], None] | None = None,
    journal: Journal | None = None,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``steps`` one after the other; continue where a killed run stopped.

    Each epoch ends with a checkpoint ``step<k>/e<epoch>`` and a journal event; the older
    epoch checkpoints of a step are released. Returns (and writes ``RUN/train.json``) the
    per-epoch validation scores and the final checkpoint id; the final model is copied to
    ``RUN/model.pt``. Data parallel (``trainer.dist``), every rank trains and only rank 0
    writes the journal, ``model.pt`` and ``train.json``. ``journal``: the run's journal,
    already open (locked) by the caller; ``identity``: fields journaled with every epoch
    (``opplan train`` keeps the config and recipe hashes there to check a resume).
    """
    run = Path(run_dir)
    is_main = trainer.dist.is_main
    done: dict[int, list[dict[str, Any]]] = {}
    for event in read_journal(run / "train_journal.jsonl"):
        if event["op"] == Op.EPOCH_SCORED.value:
            done.setdefault(int(event["step"]), []).append(event)
    previous: str | None = None
    history: list[dict[str, Any]] = []
    if journal is None:
        journal = Journal(run / "train_journal.jsonl") if is_main else ReplicaJournal()
    base_optim = trainer.optim
    with journal, _restored_optim(trainer, base_optim):
        for k, step in enumerate(steps):
            events = done.get(k, [])
            history.extend(events)
            if len(events) >= step.epochs:
                previous = events[-1]["checkpoint"]
                continue
            trainer.optim = _step_optim(base_optim, step)
            trainer.short_cycle = step.short_cycle
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
                    **(identity or {}),
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
