"""``opplan plan CONFIG --out RUN [--resume]`` and ``opplan show RUN``."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from opplan.config import PlanConfig
    from opplan.config._executor import ExecutorConfig
    from opplan.engine.distributed import DistributedContext
    from opplan.engine.trainer import VideoTrainer
    from opplan.planning import Trainer, TrainingState
    from opplan.planning.executors import Executor
    from opplan.rundir import RunDir

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser("plan", help="plan the optimal training path (dynamic programming)")
    plan.add_argument("config", type=Path, help="YAML config (see configs/)")
    plan.add_argument("--out", type=Path, required=True, help="run directory")
    plan.add_argument("--resume", action="store_true", help="continue a plan in --out")
    plan.add_argument("--verbose", "-v", action="store_true", help="a line per epoch")
    plan.add_argument("--strict", action="store_true", help="stop at the first unreadable video")
    plan.add_argument(
        "--executor",
        choices=["local", "ray"],
        help="where transitions run (default: the config's executor.kind, local)",
    )
    plan.add_argument("--ray-address", help="join this Ray cluster (default: a local instance)")
    plan.add_argument("--max-parallel", type=int, help="cap on transitions running at once")
    plan.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep every epoch's checkpoint (default: a finished transition keeps its knee "
        "and its latest epoch)",
    )
    plan.set_defaults(func=run_plan)

    show = sub.add_parser("show", help="show a plan (finished or running) as tables")
    show.add_argument("run", type=Path, help="run directory")
    show.set_defaults(func=run_show)


def _make_trainer(
    config: PlanConfig,
    run: RunDir,
    strict: bool = False,
    clip_length: int | None = None,
    dist: DistributedContext | None = None,
) -> Trainer:
    trainer_cfg = config.trainer
    if trainer_cfg.kind == "simulated":
        from opplan.planning.simulate import DefaultLandscape, RandomLandscape, SimulatedTrainer

        landscape: RandomLandscape | DefaultLandscape
        if trainer_cfg.landscape == "random":
            landscape = RandomLandscape(trainer_cfg.seed, trainer_cfg.noise)
        else:
            landscape = DefaultLandscape(
                trainer_cfg.seed, trainer_cfg.noise, dict(trainer_cfg.sampling_gain.items())
            )
        reference = min(config.graph.axes()[1])
        return SimulatedTrainer(run.checkpoints, landscape, trainer_cfg.epoch_delay, reference)
    if trainer_cfg.kind == "python":  # your own loop (opplan.config._python)
        from opplan.cli._python_trainer import load_python_trainer

        return load_python_trainer(trainer_cfg, run.checkpoints)
    from opplan.engine.build import build_video_trainer

    return build_video_trainer(
        trainer_cfg, run.root, strict=strict, clip_length=clip_length, dist=dist
    )


def _executor_config(args: argparse.Namespace, config: PlanConfig) -> ExecutorConfig:
    """The config's ``executor:`` with the command line's overrides."""
    from opplan.errors import ConfigError

    update = {
        key: value
        for key, value in (
            ("kind", args.executor),
            ("address", args.ray_address),
            ("max_parallel", args.max_parallel),
        )
        if value is not None
    }
    if args.max_parallel is not None and args.max_parallel < 1:
        raise ConfigError(f"--max-parallel: must be at least 1, got {args.max_parallel}")
    if args.ray_address is not None and update.get("kind", config.executor.kind) != "ray":
        raise ConfigError("--ray-address needs --executor ray (or executor.kind: ray)")
    cfg = config.executor.model_copy(update=update)
    if cfg.kind == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigError("executor ray: Ray is not installed (pip install 'opplan[ray]')")
    return cfg


def _make_executor(
    cfg: ExecutorConfig,
    config: PlanConfig,
    run: RunDir,
    strict: bool,
    longest: int,
    trainer: Trainer,
) -> Executor:
    """``local``: the trainer built here; ``ray``: each actor builds its own trainer."""
    from opplan.planning.executors import LocalExecutor, RayExecutor

    if cfg.kind == "local":
        return LocalExecutor(trainer)
    if cfg.ranks_per_transition > 1 and config.trainer.kind != "video":
        from opplan.errors import ConfigError

        raise ConfigError("executor.ranks_per_transition > 1 needs trainer.kind video (DDP)")
    factory = partial(_trainer_in_actor, config, run, strict, longest)
    return RayExecutor(
        factory,
        address=cfg.address,
        max_parallel=cfg.max_parallel,
        num_cpus=cfg.num_cpus,
        num_gpus=cfg.num_gpus,
        stall_timeout=cfg.stall_timeout,
        ranks_per_transition=cfg.ranks_per_transition,
    )


def _trainer_in_actor(config: PlanConfig, run: RunDir, strict: bool, longest: int) -> Trainer:
    """A Ray actor's trainer; in a data-parallel group it first joins the process group."""
    dist = None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from opplan.engine.distributed import init_distributed

        assert config.trainer.kind == "video"  # _make_executor: DDP needs the video trainer
        dist = init_distributed(config.trainer.device)
    return _make_trainer(config, run, strict, longest, dist)


def check_video_states(config: PlanConfig, states: Sequence[TrainingState], where: str) -> None:
    """States a video trainer cannot train, refused at start-up: clips shorter than the
    model accepts (``min_input`` of the registry), extra axes other than the ones it acts on
    (``size``, :mod:`opplan.engine.state_axes`), which it would ignore, and bad sizes."""
    from opplan.engine.state_axes import VIDEO_AXES, check_size
    from opplan.errors import ConfigError
    from opplan.models import get_model_entry

    assert config.trainer.kind == "video"
    name = config.trainer.model.name
    shortest = get_model_entry(name).min_input[0]
    check_size(states, where)
    for state in states:
        if state.is_initial:
            continue
        ignored = [k for k, _ in state.extra if k not in VIDEO_AXES]
        if ignored:
            raise ConfigError(
                f"{where}: state '{state}' has extra axis {ignored[0]!r}; the video trainer "
                f"acts on sampling, clip length, lr and {', '.join(VIDEO_AXES)} only and "
                "would ignore it"
            )
        if state.clip_length < shortest:
            raise ConfigError(
                f"{where}: clip length {state.clip_length} is shorter than model {name} "
                f"accepts (at least {shortest} frames)"
            )


def _check_axes(trainer: Trainer, states: Sequence[TrainingState], where: object) -> None:
    """An extra axis the trainer does not act on (its ``extra_axes``) exits 2 naming it."""
    from opplan.errors import ConfigError
    from opplan.planning.protocol import unused_axes

    unused = unused_axes(trainer, states)
    if unused:
        acts_on = ", ".join(getattr(trainer, "extra_axes", ())) or "none"
        raise ConfigError(
            f"{where}: graph: trainer {type(trainer).__name__} does not act on extra axis "
            f"{unused[0]!r} (it acts on: {acts_on})"
        )


def _data_fingerprint(config: PlanConfig) -> dict[str, Any] | None:
    """The videos a video plan uses (None for the simulated trainer, which has none)."""
    if config.trainer.kind != "video":
        return None
    from opplan.engine.fingerprint import data_fingerprint

    return data_fingerprint(config.trainer.data, config.trainer.seed)


def run_plan(args: argparse.Namespace) -> int:
    """Plan; under ``torchrun --nproc-per-node N`` every transition trains with DDP on N
    processes: all ranks plan alike (scores are all-reduced), rank 0 alone writes RUN."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from opplan.config import load_config
        from opplan.engine.distributed import distributed
        from opplan.errors import ConfigError

        config = load_config(args.config)
        if config.trainer.kind != "video":
            raise ConfigError(f"{args.config}: torchrun data parallel needs trainer.kind video")
        if _executor_config(args, config).kind != "local":
            raise ConfigError("torchrun data parallel runs the local executor, not Ray")
        with distributed(config.trainer.device) as dist:
            return _plan(args, dist)
    return _plan(args, None)


def _plan(args: argparse.Namespace, dist: DistributedContext | None) -> int:
    from rich.console import Console

    from opplan.config import config_hash, config_identity, load_config
    from opplan.fileio import check_out_dir, disk_errors
    from opplan.planning import Journal, Planner, read_journal
    from opplan.planning.progress import PlanState
    from opplan.report import RichPlanProgress, caveat_lines, path_table
    from opplan.report.figures import write_report
    from opplan.report.tensorboard import TensorBoardCallback
    from opplan.rundir import RunDir

    config = load_config(args.config)  # exits 2 on a bad config, before any work
    check_out_dir(args.out)
    executor_cfg = _executor_config(args, config)
    graph = config.graph.build()
    if config.trainer.kind == "video":
        where = "graph.edges" if config.graph.kind == "explicit" else "graph.clip_lengths"
        check_video_states(config, graph.states, f"{args.config}: {where}")
    run = RunDir(args.out)
    replica = dist is not None and not dist.is_main  # ranks > 0 of torchrun write nothing
    console = Console(highlight=False, quiet=replica)
    # build the trainer first: a bad data path fails before anything is written to RUN
    longest = max(s.clip_length for s in graph.states)
    trainer = _make_trainer(config, run, strict=args.strict, clip_length=longest, dist=dist)
    _check_axes(trainer, graph.states, args.config)
    sizes = [int(dict(s.extra)["size"]) for s in graph.states if "size" in dict(s.extra)]
    video = cast("VideoTrainer", trainer)  # read only when trainer.kind is video
    if config.trainer.kind == "video" and sizes and max(sizes) > video.transform.crop_size:
        video.check_memory(longest, crop=max(sizes))  # the largest state's clips fit too
    # journaled at plan start: a resume refuses another config or other data (rundir.py)
    identity = {"config": config_identity(config), "data": _data_fingerprint(config)}
    if replica:  # rank 0's journal as it was before this session (rank 0 waits below)
        progress = PlanState.replay(read_journal(run.journal)) if args.resume else PlanState()
    else:
        progress = run.prepare(config, resume=args.resume, data=identity["data"])
    if dist is not None:
        dist.barrier()
    if progress.finished is None:
        console.print(
            f"[bold]opplan plan[/] {args.config} -> {run.root}: {graph!r}, "
            f"trainer {config.trainer.kind}"
        )
    options = replace(
        config.planner_options(eval_count=int((identity["data"] or {}).get("val", 0))),
        max_retries=executor_cfg.max_retries,
        keep_checkpoints=config.planner.keep_checkpoints or args.keep_checkpoints,
    )
    if replica:  # the same planner loop, local executor, nothing written
        from opplan.engine.distributed import ReplicaJournal

        with ReplicaJournal() as journal:
            Planner(
                graph,
                trainer,
                journal,
                options,
                config_hash=config_hash(config),
                progress=progress,
                identity=identity,
            ).run()
        return 0
    executor = _make_executor(executor_cfg, config, run, args.strict, longest, trainer)
    live = RichPlanProgress(console, verbose=args.verbose)
    board = TensorBoardCallback(run.root / "tensorboard")
    if hasattr(trainer, "on_batch"):
        trainer.on_batch = live.on_batch
    with disk_errors(), Journal(run.journal) as journal, live, executor:
        planner = Planner(
            graph,
            None,
            journal,
            options,
            config_hash=config_hash(config),
            callbacks=[live, board],
            progress=progress,
            executor=executor,
            identity=identity,
        )
        try:
            plan = planner.run()
        finally:
            board.close()
    plan.write(run.root)
    report = write_report(plan.to_dict(), run.root)
    console.print(path_table(plan.to_dict()))
    for line in caveat_lines(plan.to_dict()):
        console.print(line)
    console.print(f"report: {report / 'README.md'}")
    console.print(f"plan: {run.plan}   recipe: {run.root / 'recipe.yaml'}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from rich.console import Console

    from opplan.errors import RunDirError
    from opplan.planning import read_journal
    from opplan.report import caveat_lines, path_table, transitions_table
    from opplan.rundir import RunDir

    run = RunDir(args.run)
    console = Console(highlight=False)
    if run.plan.exists():
        try:
            plan = json.loads(run.plan.read_text(encoding="utf-8"))
            tables = [transitions_table(plan), path_table(plan), *caveat_lines(plan)]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
            if isinstance(err, json.JSONDecodeError):
                why = f"invalid JSON at line {err.lineno} ({err.msg})"
            elif isinstance(err, UnicodeDecodeError):
                why = "not UTF-8 text"
            else:
                why = f"missing or malformed field {err}"
            raise RunDirError(
                f"{run.plan}: not a plan.json ({why}); `opplan plan ... --resume` rewrites it"
            ) from None
        for table in tables:
            console.print(table)
        return 0
    events = read_journal(run.journal)
    if not events:
        raise RunDirError(f"{run.root}: no plan.json and no journal -- not a plan run directory")
    from opplan.planning.plan import transition_dict
    from opplan.rundir import replay_journal

    progress = replay_journal(events, run.journal)
    partial = {"transitions": [transition_dict(t) for t in progress.transitions.values()]}
    console.print(transitions_table(partial, chosen=set()))
    running = [t for t in progress.transitions.values() if not t.finished]
    for t in running:
        console.print(f"running: {t.src} -> {t.dst}, epoch {t.epochs_trained}")
    console.print(f"{len(progress.states)} states resolved")
    return 0
