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

``recorded=GRID_RUN`` replays a finished grid of the same config instead of training: every
epoch's score and seconds are read from the grid's runs (CPU training is deterministic, so a
schedule's first n epochs are the grid run's first n), the same pruner decides, the cost is
what the search would have trained, and the best run's model is the grid's. A benchmark's
shortcut (``benchmarks/paper_peers.py``), tested equal to a trained search.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import yaml

from opplan.baselines._grid import GridSpec, summarize_grid
from opplan.baselines._run import (
    RUN_KEYS,
    EpochCallback,
    _differs,
    _locked,
    cached_test,
    prepare_run_dir,
    results_payload,
)
from opplan.baselines._run import run_schedule as _run_schedule
from opplan.baselines._schedule import HandTunedSchedule
from opplan.config import PlanConfig, VideoTrainerConfig, dump_config
from opplan.errors import RunDirError
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
    schedule: HandTunedSchedule,
    run_dir: Path,
    reference_length: int,
    status: str,
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The cost and scores of a schedule stopped early (``stopped.json``; ``events``: its
    epochs, default the run's journal); its checkpoints are removed."""
    path = run_dir / "stopped.json"
    if path.is_file():
        saved: dict[str, Any] = json.loads(path.read_text())
        return saved
    if events is None:
        events = _epoch_events(run_dir)
    if not events:
        raise RunDirError(f"{run_dir}: a stopped run without a scored epoch")
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
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, result)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return result


class _Training:
    """The epochs of a search: trained (the default)."""

    def __init__(
        self, trainer: VideoTrainer, reference_length: int, on_epoch: EpochCallback | None
    ) -> None:
        self.trainer, self.ref, self.on_epoch = trainer, reference_length, on_epoch

    def until(
        self, schedule: HandTunedSchedule, run_dir: Path, stop: Callable[[int, float], bool]
    ) -> bool:
        return train_until(self.trainer, schedule, run_dir, self.ref, stop, self.on_epoch)

    def finish(self, schedule: HandTunedSchedule, run_dir: Path, hook: bool = False) -> Any:
        on_epoch = self.on_epoch if hook else None
        return _run_schedule(self.trainer, schedule, run_dir, self.ref, on_epoch)

    def stopped(self, schedule: HandTunedSchedule, run_dir: Path, status: str) -> Any:
        return _stopped_result(schedule, run_dir, self.ref, status)

    def model_dir(self, run: Path, name: str) -> Path:
        return run / "runs" / name


class _Recorded(_Training):
    """The epochs of a search read from a finished grid (``recorded``): nothing trains."""

    def __init__(self, grid: Path, config: PlanConfig, reference_length: int) -> None:
        saved = grid / "config.yaml"
        if not saved.is_file():
            raise RunDirError(f"recorded grid {grid} has no config.yaml (not a grid run)")
        if _differs(yaml.safe_load(saved.read_text()).get("trainer"), _trainer_dict(config)):
            raise RunDirError(f"recorded grid {grid} was trained with another config ({saved})")
        self.grid, self.ref = grid, reference_length
        self.stops: dict[str, int] = {}

    def _events(self, schedule: HandTunedSchedule) -> list[dict[str, Any]]:
        cell = self.grid / "runs" / schedule.name
        done = cell / "result.json"
        if not done.is_file():
            raise RunDirError(f"recorded grid {self.grid} has not finished {schedule.name}")
        if json.loads(done.read_text())["schedule"] != schedule.to_dict():
            raise RunDirError(f"{cell} holds another schedule than {schedule.name}")
        return _epoch_events(cell)

    def until(
        self, schedule: HandTunedSchedule, run_dir: Path, stop: Callable[[int, float], bool]
    ) -> bool:
        for n, event in enumerate(self._events(schedule), start=1):
            if stop(n, float(event["score"])):
                self.stops[schedule.name] = n
                return False
        return True

    def finish(self, schedule: HandTunedSchedule, run_dir: Path, hook: bool = False) -> Any:
        self._events(schedule)  # checks the grid's run
        result = json.loads((self.grid / "runs" / schedule.name / "result.json").read_text())
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(run_dir / "result.json", result)
        return result

    def stopped(self, schedule: HandTunedSchedule, run_dir: Path, status: str) -> Any:
        n = self.stops.get(schedule.name)
        events = None if n is None else self._events(schedule)[:n]
        if events is None and not (run_dir / "stopped.json").is_file():
            raise RunDirError(f"{run_dir}: stopped, but where is not recorded; start afresh")
        return _stopped_result(schedule, run_dir, self.ref, status, events)

    def model_dir(self, run: Path, name: str) -> Path:
        return self.grid / "runs" / name


def _trainer_dict(config: PlanConfig) -> Any:
    return yaml.safe_load(dump_config(config))["trainer"]


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
    runner: _Training,
    spec: GridSpec,
    run: Path,
    options: dict[str, Any],
    log: Callable[[str], None],
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
            results.append(runner.stopped(schedule, run_dir, "pruned"))
            continue
        if frozen is not None and frozen.state == TrialState.COMPLETE:
            results.append(runner.finish(schedule, run_dir))
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

        if runner.until(schedule, run_dir, stop):
            result = runner.finish(schedule, run_dir)
            study.tell(trial, result["val_score"])
            log(f"    val {result['val_score']:.4f}, {result['epochs']} epochs")
        else:
            result = runner.stopped(schedule, run_dir, "pruned")
            study.tell(trial, state=TrialState.PRUNED)
            log(f"    pruned after {result['epochs']} epochs (val {result['val_score']:.4f})")
        results.append(result)
    return results


def _topk_search(
    runner: _Training,
    spec: GridSpec,
    run: Path,
    options: dict[str, Any],
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Every schedule for its first ``probe`` epochs; the ``keep`` best (by the score after
    them; ties: grid order) finished, the others dropped."""
    probe, keep = options["probe_epochs"], options["keep"]
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
        runner.until(schedule, run_dir, stop)
        probed.append(scores[n])
    order = sorted(range(len(probed)), key=lambda i: (-probed[i], i))
    kept = set(order[:keep])
    results = []
    for i, schedule in enumerate(spec.schedules):
        run_dir = run / "runs" / schedule.name
        if i in kept:
            log(f"[finish] {schedule.name} (probe val {probed[i]:.4f})")
            result = runner.finish(schedule, run_dir, hook=True)
        elif (run_dir / "result.json").is_file():  # a schedule no longer than the probe
            result = {**runner.finish(schedule, run_dir), "status": "dropped"}
        else:
            result = runner.stopped(schedule, run_dir, "dropped")
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
    recorded: str | Path | None = None,
) -> dict[str, Any]:
    """Search ``spec``'s schedules with ``search`` (asha, hyperband or topk), pick the best
    finished run on the internal validation split, test it with ``views``; write and return
    ``results.json`` (the grid's format plus each run's ``status`` and the search).
    ``recorded``: a finished grid of ``config`` whose epochs are replayed, not trained."""
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
    runner: _Training
    if recorded is not None:  # first: a missing or other grid fails before RUN is written
        runner = _Recorded(Path(recorded), config, spec.reference_length)
    else:  # first: a bad data path fails before anything is written to RUN
        if trainer is None:
            trainer = build_video_trainer(cfg, run, log, purpose="plan")
        runner = _Training(trainer, spec.reference_length, on_epoch)
    if views is not None:
        load_lists(cfg.data, "test")
    options: dict[str, Any] = {"search": search, "min_resource": min_resource}
    options["reduction_factor"] = reduction_factor
    if search == "topk":
        options = {"search": search, "probe_epochs": probe_epochs, "keep": keep}
    saved = {**spec.to_dict(), **options}
    if recorded is not None:
        saved["recorded"] = str(Path(recorded).resolve())
    with _locked(run):
        prepare_run_dir(run, config, "search.json", saved, resume)
        if search == "topk":
            results = _topk_search(runner, spec, run, options, log)
        else:
            results = _pruned_search(runner, spec, run, options, log)
        return _finish(cfg, run, spec, options, results, views, log, runner)


def _finish(
    cfg: VideoTrainerConfig,
    run: Path,
    spec: GridSpec,
    options: dict[str, Any],
    results: Sequence[dict[str, Any]],
    views: tuple[int, int] | None,
    log: Callable[[str], None],
    runner: _Training,
) -> dict[str, Any]:
    complete = [r for r in results if r.get("status", "complete") == "complete"]
    summary = summarize_grid(complete)
    summary["cost"] = summarize_grid(results)["cost"]  # every epoch trained counts
    tests: dict[str, Any] = {}
    if views is not None:
        torch.manual_seed(0)
        log(f"testing {summary['best']} with {views[0]}x{views[1]} views")
        tests[summary["best"]] = cached_test(cfg, runner.model_dir(run, summary["best"]), views)
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
