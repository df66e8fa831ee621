"""Train hand-tuned schedules and grids with the planner's trainer (§5.3).

A schedule is trained by :func:`opplan.engine.recipe.train_recipe` (the loop of
``opplan train``) on the planning split and scored, like the planner, on the internal
validation split with one centre clip and crop (§5.1-5.2); the final model of the best one is
tested with the final protocol (N clips x M crops, §5.2) on the test split.

Run directory of a grid::

    RUN/config.yaml  RUN/grid.json  RUN/results.json
    RUN/runs/<schedule name>/{train_journal.jsonl, train.json, model.pt, result.json,
                              test_<views>.json}

A run with ``result.json`` is finished and never retrained; a run cut mid-way continues from
its last epoch checkpoint (the recipe journal).
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from opplan.baselines._grid import GridSpec, summarize_grid
from opplan.baselines._multigrid import MultigridSchedule
from opplan.baselines._schedule import HandTunedSchedule
from opplan.config import PlanConfig, VideoTrainerConfig, dump_config
from opplan.engine.build import (
    load_lists,
)
from opplan.engine.checkpoint import load_checkpoint
from opplan.engine.recipe import train_recipe
from opplan.engine.trainer import VideoTrainer
from opplan.errors import RunDirError
from opplan.fileio import atomic_write_json, atomic_write_text
from opplan.planning.journal import Op, read_journal

__all__ = ["prepare_run_dir", "run_grid", "run_schedule", "test_checkpoint"]

EpochCallback = Callable[[int, Any, int, dict[str, float]], None]


def run_schedule(
    trainer: VideoTrainer,
    schedule: HandTunedSchedule | MultigridSchedule,
    run_dir: str | Path,
    reference_length: int,
    on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train ``schedule`` in ``run_dir`` (continuing a cut run) and return its result.

    The result (also ``run_dir/result.json``) holds the final internal-validation score,
    the epochs, the clip-length-weighted epochs and the wall seconds of every epoch.
    """
    run = Path(run_dir)
    done = run / "result.json"
    if done.is_file():
        result: dict[str, Any] = json.loads(done.read_text())
        if result["schedule"] != schedule.to_dict():
            raise RunDirError(f"{run} holds another schedule ({result['schedule']['name']})")
        return result
    trainer.checkpoint_dir = run / "checkpoints"
    summary = train_recipe(trainer, schedule.steps(), run, on_epoch)
    events = [e for e in read_journal(run / "train_journal.jsonl") if e["op"] == Op.EPOCH_SCORED]
    scores = [e["score"] for e in events]
    result = {
        "schedule": schedule.to_dict(),
        "val_score": scores[-1],  # the model at the end of the schedule (§5.3)
        "best_epoch_score": max(scores),
        "epochs": schedule.epochs,
        "weighted_epochs": _weighted_epochs(schedule, reference_length, trainer),
        "seconds": sum(float(e.get("seconds", 0.0)) for e in events),
        "final_state": summary["final_state"],
        "model": "model.pt",
        "scores": scores,
    }
    atomic_write_json(done, result)
    shutil.rmtree(run / "checkpoints", ignore_errors=True)  # model.pt holds the final model
    return result


def _weighted_epochs(
    schedule: HandTunedSchedule | MultigridSchedule, reference_length: int, trainer: VideoTrainer
) -> float:
    """The schedule's weighted epochs; multigrid's short cycle counts the pixels of every
    iteration of an epoch over the trainer's training clips."""
    if isinstance(schedule, MultigridSchedule):
        return schedule.weighted_epochs(reference_length, len(trainer.train_records))
    return schedule.weighted_epochs(reference_length)


def test_checkpoint(
    config: VideoTrainerConfig,
    checkpoint: str | Path,
    views: tuple[int, int] = (10, 3),
    split: str = "test",
) -> dict[str, Any]:
    """The final protocol (§5.2) on ``split`` for a checkpoint of the trainer or planner."""
    from opplan.engine.build import evaluate_checkpoint

    state, result = evaluate_checkpoint(config, load_checkpoint(checkpoint), views, split)
    return {"checkpoint": str(checkpoint), "state": str(state), "split": split, **result.to_dict()}


def cached_test(
    config: VideoTrainerConfig, run_dir: Path, views: tuple[int, int]
) -> dict[str, Any]:
    """``test_checkpoint`` of ``run_dir/model.pt``, kept in ``test_<C>x<M>.json`` with its
    per-video scores (``.scores.npz``) and unreadable videos (``.data_health.json``)."""
    from opplan.engine.build import evaluate_checkpoint
    from opplan.engine.evaluate import health_path, save_evaluation

    path = run_dir / f"test_{views[0]}x{views[1]}.json"
    if path.is_file():
        cached: dict[str, Any] = json.loads(path.read_text())
        return cached
    checkpoint = run_dir / "model.pt"
    state, result = evaluate_checkpoint(
        config, load_checkpoint(checkpoint), views, "test", health_file=health_path(path)
    )
    header = {"checkpoint": str(checkpoint), "state": str(state), "split": "test"}
    return save_evaluation(path, result, header)


@contextmanager
def _locked(run: Path) -> Iterator[None]:
    run.mkdir(parents=True, exist_ok=True)
    with open(run / ".grid.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"{run} is in use by another opplan process") from None
        yield


def _differs(saved: Any, current: Any) -> bool:
    """Whether a saved setting differs from the current one; keys the saved config lacks
    (fields added to the schema since, at their defaults) are not a difference."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return any(k not in current or _differs(v, current[k]) for k, v in saved.items())
    return bool(saved != current)


def prepare_run_dir(
    run: Path, config: PlanConfig, spec_name: str, spec: dict[str, Any], resume: bool
) -> None:
    """Refuse to mix runs: another trainer config or spec in ``run`` is an error; an existing
    run needs ``resume``. Writes ``config.yaml`` and ``<spec_name>`` on a fresh run. Only the
    ``trainer`` part of the config matters to a baseline (the spec holds the rest)."""
    saved_spec = run / spec_name
    text = dump_config(config)
    saved_config = run / "config.yaml"
    if saved_config.exists():
        saved = (yaml.safe_load(saved_config.read_text()) or {}).get("trainer")
        if _differs(saved, yaml.safe_load(text)["trainer"]):
            raise RunDirError(f"{run} holds the config of another run ({saved_config})")
    if saved_spec.exists():
        if not resume:
            raise RunDirError(f"{run} already holds a run; pass --resume to continue it")
        if json.loads(saved_spec.read_text()) != spec:
            raise RunDirError(f"{run} holds another {spec_name} (see {saved_spec})")
        return
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(saved_config, text)
    atomic_write_json(saved_spec, spec)


RUN_KEYS = ("schedule", "val_score", "epochs", "weighted_epochs", "seconds")


def results_payload(
    runs: list[dict[str, Any]],
    summary: dict[str, Any],
    reference_length: int,
    views: tuple[int, int] | None,
    tests: dict[str, Any],
) -> dict[str, Any]:
    """``results.json`` of a grid or a search: its runs, the grid summary and the tests."""
    return {
        "runs": runs,
        **summary,
        "reference_length": reference_length,
        "views": None if views is None else f"{views[0]}x{views[1]}",
        "tests": {
            name: {"top1": t["top1"], "top5": t["top5"], "num_videos": t["num_videos"]}
            for name, t in tests.items()
        },
    }


def run_grid(
    config: PlanConfig,
    spec: GridSpec,
    out: str | Path,
    *,
    resume: bool = False,
    views: tuple[int, int] | None = (10, 3),
    test_cells: bool = False,
    log: Callable[[str], None] = print,
    on_epoch: EpochCallback | None = None,
    trainer: VideoTrainer | None = None,
) -> dict[str, Any]:
    """Train every schedule of ``spec`` (skipping finished runs), pick the best on the
    internal validation split, test it (and, with ``test_cells``, every cell's best budget)
    with ``views`` on the test split; write and return ``results.json``."""
    from opplan.engine.build import build_video_trainer

    run = Path(out)
    cfg = config.trainer
    assert isinstance(cfg, VideoTrainerConfig)
    if trainer is None:  # first: a bad data path fails before anything is written to RUN
        trainer = build_video_trainer(cfg, run, log, purpose="plan")
    if views is not None:
        load_lists(cfg.data, "test")  # a missing test list fails before training
    with _locked(run):
        prepare_run_dir(run, config, "grid.json", spec.to_dict(), resume)
        results = []
        for k, schedule in enumerate(spec.schedules):
            run_dir = run / "runs" / schedule.name
            finished = (run_dir / "result.json").is_file()
            log(f"[{k + 1}/{len(spec.schedules)}] {schedule.name}" + (" (done)" * finished))
            result = run_schedule(trainer, schedule, run_dir, spec.reference_length, on_epoch)
            results.append(result)
            if not finished:
                log(
                    f"    val {result['val_score']:.4f}, {result['epochs']} epochs, "
                    f"{result['seconds']:.0f} s"
                )
        summary = summarize_grid(results)
        tested = {summary["best"]}
        if test_cells:
            tested |= {c["best"] for c in summary["cells"]}
        tests: dict[str, Any] = {}
        if views is not None:
            torch.manual_seed(0)
            for name in sorted(tested):
                log(f"testing {name} with {views[0]}x{views[1]} views")
                tests[name] = cached_test(cfg, run / "runs" / name, views)
        runs = [{k: r[k] for k in RUN_KEYS} for r in results]
        payload = results_payload(runs, summary, spec.reference_length, views, tests)
        atomic_write_json(run / "results.json", payload)
    return payload
