"""Search over the hand-tuned grid with early stopping: what users run instead of the full
grid (beyond the paper). ``asha`` and ``hyperband`` go through Optuna's pruners
(:class:`optuna.pruners.SuccessiveHalvingPruner`, the asynchronous successive halving of
Li et al. 2020, and :class:`optuna.pruners.HyperbandPruner`); ``topk`` is the plain baseline
HPO papers keep finding strong: every schedule for its first ``probe`` epochs, the ``keep``
best then finished. Ray Tune's schedulers would need ``ray[tune]``; Optuna is the library
used here (the ``hpo`` extra).

Each schedule of the grid is one trial, in grid order; its internal-validation score after
every epoch is reported to the trial (step = epochs trained so far) and the trial stops
when ``trial.should_prune()`` says so (never at its last epoch). The study lives in
``RUN/study.journal`` (Optuna's ``JournalStorage``); a killed search reattaches to its
running trial, replays the epochs already in the schedule's recipe journal and continues
from its last epoch checkpoint, so a resumed search takes the same decisions as an
uninterrupted one. Run directory, beside the grid's ``runs/<name>/``::

    RUN/search.json  RUN/study.journal  RUN/results.json
    RUN/runs/<name>/stopped.json   (a pruned or dropped run: its epochs, scores, seconds)

Costs count every epoch trained, stopped runs included (:mod:`opplan.baselines._cost`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from opplan.baselines._grid import GridSpec, summarize_grid
from opplan.baselines._run import (
    RUN_KEYS,
    EpochCallback,
    _locked,
    cached_test,
    prepare_run_dir,
    results_payload,
)
from opplan.baselines._run import run_schedule as _run_schedule
from opplan.baselines._schedule import HandTunedSchedule
from opplan.config import PlanConfig, VideoTrainerConfig
from opplan.fileio import atomic_write_json
from opplan.planning.journal import Op, read_journal

if TYPE_CHECKING:
    import optuna

    from opplan.engine.trainer import VideoTrainer

__all__ = ["SEARCHES", "Search", "run_search"]

Search = Literal["asha", "hyperband", "topk"]
SEARCHES: tuple[str, ...] = ("asha", "hyperband", "topk")
STUDY_NAME = "opplan-grid-search"


class _Stopped(Exception):
    """Raised from the epoch callback to stop a schedule early (pruned or probed)."""


def _epoch_events(run_dir: Path) -> list[dict[str, Any]]:
    events = read_journal(run_dir / "train_journal.jsonl")
    return [e for e in events if e["op"] == Op.EPOCH_SCORED.value]


def train_until(
    trainer: VideoTrainer,
    schedule: HandTunedSchedule,
    run_dir: Path,
    reference_length: int,
    stop: Callable[[int, float], bool],
    on_epoch: EpochCallback | None = None,
) -> bool:
    """Train ``schedule`` in ``run_dir`` until ``stop(epochs, score)`` is true after an
    epoch, the epochs already journaled replayed first; True if it ran to its end (then
    ``result.json`` is written as by :func:`~opplan.baselines._run.run_schedule`)."""
    if not (run_dir / "result.json").is_file():
        for n, event in enumerate(_epoch_events(run_dir), start=1):
            if stop(n, float(event["score"])):
                return False
    offsets = [0]
    for step in schedule.steps():
        offsets.append(offsets[-1] + step.epochs)

    def callback(k: int, step: Any, epoch: int, metrics: dict[str, float]) -> None:
        if on_epoch is not None:
            on_epoch(k, step, epoch, metrics)
        if stop(offsets[k] + epoch, metrics["score"]):
            raise _Stopped

    try:
        _run_schedule(trainer, schedule, run_dir, reference_length, callback)
    except _Stopped:
        return False
    return True


def _stopped_result(
    schedule: HandTunedSchedule, run_dir: Path, reference_length: int, status: str
) -> dict[str, Any]:
    """The cost and scores of a schedule stopped early (``stopped.json``); its checkpoints
    are removed."""
    path = run_dir / "stopped.json"
    if path.is_file():
        saved: dict[str, Any] = json.loads(path.read_text())
        return saved
    events = _epoch_events(run_dir)
    steps = schedule.steps()
    result = {
        "schedule": schedule.to_dict(),
        "status": status,
        "val_score": float(events[-1]["score"]),
        "epochs": len(events),
        "weighted_epochs": sum(steps[e["step"]].state.clip_length for e in events)
        / reference_length,
        "seconds": sum(float(e.get("seconds", 0.0)) for e in events),
        "scores": [float(e["score"]) for e in events],
    }
    atomic_write_json(path, result)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return result


def make_pruner(
    search: str, min_resource: int, max_resource: int, reduction_factor: int
) -> optuna.pruners.BasePruner:
    """The library's scheduler: ASHA (successive halving) or Hyperband over epochs."""
    import optuna

    if search == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=min_resource, reduction_factor=reduction_factor
        )
    if search == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=min_resource,
            max_resource=max_resource,
            reduction_factor=reduction_factor,
        )
    raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")


def open_study(run: Path, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(run / "study.journal")))
    return optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        direction="maximize",
        pruner=pruner,
        load_if_exists=True,
    )


def _pruned_search(
    trainer: VideoTrainer,
    spec: GridSpec,
    run: Path,
    options: dict[str, Any],
    log: Callable[[str], None],
    on_epoch: EpochCallback | None,
) -> list[dict[str, Any]]:
    """ASHA or Hyperband: one Optuna trial per schedule, in grid order (ask and tell)."""
    import optuna
    from optuna.trial import Trial, TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budgets = [s.epochs for s in spec.schedules]
    pruner = make_pruner(
        options["search"], options["min_resource"], max(budgets), options["reduction_factor"]
    )
    study = open_study(run, pruner)
    trials = study.get_trials(deepcopy=False)
    by_name = {t.user_attrs["schedule"]: t for t in trials if "schedule" in t.user_attrs}
    # a trial asked for but killed before it was named: the next schedule takes it over
    orphans = [
        t for t in trials if t.state == TrialState.RUNNING and "schedule" not in t.user_attrs
    ]
    results = []
    for k, schedule in enumerate(spec.schedules):
        run_dir = run / "runs" / schedule.name
        frozen = by_name.get(schedule.name)
        finished = frozen is not None and frozen.state.is_finished()
        log(f"[{k + 1}/{len(spec.schedules)}] {schedule.name}" + (" (done)" * finished))
        if frozen is not None and frozen.state == TrialState.PRUNED:
            results.append(_stopped_result(schedule, run_dir, spec.reference_length, "pruned"))
            continue
        if frozen is not None and frozen.state == TrialState.COMPLETE:
            results.append(_run_schedule(trainer, schedule, run_dir, spec.reference_length))
            continue
        if frozen is not None:
            trial = Trial(study, frozen._trial_id)
            reported = set(frozen.intermediate_values)
        else:
            trial = Trial(study, orphans.pop(0)._trial_id) if orphans else study.ask()
            trial.set_user_attr("schedule", schedule.name)
            reported = set()

        def stop(
            epochs: int,
            score: float,
            trial: Trial = trial,
            total: int = schedule.epochs,
            reported: set[int] = reported,
        ) -> bool:
            if epochs not in reported:
                trial.report(score, step=epochs)
                reported.add(epochs)
            return epochs < total and trial.should_prune()

        if train_until(trainer, schedule, run_dir, spec.reference_length, stop, on_epoch):
            result = _run_schedule(trainer, schedule, run_dir, spec.reference_length)
            study.tell(trial, result["val_score"])
            log(f"    val {result['val_score']:.4f}, {result['epochs']} epochs")
        else:
            result = _stopped_result(schedule, run_dir, spec.reference_length, "pruned")
            study.tell(trial, state=TrialState.PRUNED)
            log(f"    pruned after {result['epochs']} epochs (val {result['val_score']:.4f})")
        results.append(result)
    return results


def _topk_search(
    trainer: VideoTrainer,
    spec: GridSpec,
    run: Path,
    options: dict[str, Any],
    log: Callable[[str], None],
    on_epoch: EpochCallback | None,
) -> list[dict[str, Any]]:
    """Every schedule for its first ``probe`` epochs; the ``keep`` best (by the score after
    them; ties: grid order) finished, the others dropped."""
    probe, keep = options["probe_epochs"], options["keep"]
    ref = spec.reference_length
    probed: list[float] = []
    for k, schedule in enumerate(spec.schedules):
        run_dir = run / "runs" / schedule.name
        log(f"[probe {k + 1}/{len(spec.schedules)}] {schedule.name}")
        n = min(probe, schedule.epochs)
        scores: dict[int, float] = {}

        def stop(epochs: int, score: float, n: int = n, scores: dict[int, float] = scores) -> bool:
            scores[epochs] = score
            return epochs >= n

        if (run_dir / "result.json").is_file() or (run_dir / "stopped.json").is_file():
            path = run_dir / (
                "result.json" if (run_dir / "result.json").is_file() else "stopped.json"
            )
            probed.append(float(json.loads(path.read_text())["scores"][n - 1]))
            continue
        train_until(trainer, schedule, run_dir, ref, stop, on_epoch)
        probed.append(scores[n])
    order = sorted(range(len(probed)), key=lambda i: (-probed[i], i))
    kept = set(order[:keep])
    results = []
    for i, schedule in enumerate(spec.schedules):
        run_dir = run / "runs" / schedule.name
        if i in kept:
            log(f"[finish] {schedule.name} (probe val {probed[i]:.4f})")
            result = _run_schedule(trainer, schedule, run_dir, ref, on_epoch)
        elif (run_dir / "result.json").is_file():  # a schedule no longer than the probe
            result = _run_schedule(trainer, schedule, run_dir, ref)
            result = {**result, "status": "dropped"}
        else:
            result = _stopped_result(schedule, run_dir, ref, "dropped")
        results.append({**result, "probe_score": probed[i]})
    return results


def run_search(
    config: PlanConfig,
    spec: GridSpec,
    out: str | Path,
    search: str,
    *,
    resume: bool = False,
    views: tuple[int, int] | None = (10, 3),
    min_resource: int = 1,
    reduction_factor: int = 3,
    probe_epochs: int = 2,
    keep: int = 3,
    log: Callable[[str], None] = print,
    on_epoch: EpochCallback | None = None,
    trainer: VideoTrainer | None = None,
) -> dict[str, Any]:
    """Search ``spec``'s schedules with ``search`` (asha, hyperband or topk), pick the best
    finished run on the internal validation split, test it with ``views``; write and return
    ``results.json`` (the grid's format plus each run's ``status`` and the search)."""
    from opplan.engine.build import build_video_trainer, load_lists

    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    for name, value in (("min_resource", min_resource), ("probe_epochs", probe_epochs)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if reduction_factor < 2:
        raise ValueError(f"reduction_factor must be at least 2, got {reduction_factor}")
    if not 1 <= keep <= len(spec.schedules):
        raise ValueError(f"keep must be 1..{len(spec.schedules)} (the grid's runs), got {keep}")
    run = Path(out)
    cfg = config.trainer
    assert isinstance(cfg, VideoTrainerConfig)
    if trainer is None:  # first: a bad data path fails before anything is written to RUN
        trainer = build_video_trainer(cfg, run, log, purpose="plan")
    if views is not None:
        load_lists(cfg.data, "test")
    options: dict[str, Any] = {"search": search, "min_resource": min_resource}
    options["reduction_factor"] = reduction_factor
    if search == "topk":
        options = {"search": search, "probe_epochs": probe_epochs, "keep": keep}
    with _locked(run):
        prepare_run_dir(run, config, "search.json", {**spec.to_dict(), **options}, resume)
        if search == "topk":
            results = _topk_search(trainer, spec, run, options, log, on_epoch)
        else:
            results = _pruned_search(trainer, spec, run, options, log, on_epoch)
        return _finish(cfg, run, spec, options, results, views, log)


def _finish(
    cfg: VideoTrainerConfig,
    run: Path,
    spec: GridSpec,
    options: dict[str, Any],
    results: Sequence[dict[str, Any]],
    views: tuple[int, int] | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    complete = [r for r in results if r.get("status", "complete") == "complete"]
    summary = summarize_grid(complete)
    summary["cost"] = summarize_grid(results)["cost"]  # every epoch trained counts
    tests: dict[str, Any] = {}
    if views is not None:
        torch.manual_seed(0)
        log(f"testing {summary['best']} with {views[0]}x{views[1]} views")
        tests[summary["best"]] = cached_test(cfg, run / "runs" / summary["best"], views)
    runs = [
        {
            **{k: r[k] for k in RUN_KEYS},
            "status": r.get("status", "complete"),
            **({"probe_score": r["probe_score"]} if "probe_score" in r else {}),
        }
        for r in results
    ]
    payload = {
        "search": options,
        **results_payload(runs, summary, spec.reference_length, views, tests),
    }
    atomic_write_json(run / "results.json", payload)
    return payload
