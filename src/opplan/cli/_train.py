"""``opplan train CONFIG --recipe RECIPE --out RUN`` and ``opplan evaluate CONFIG ...``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from opplan.config import PlanConfig
    from opplan.engine.distributed import DistributedContext
    from opplan.engine.recipe import RecipeStep

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = sub.add_parser("train", help="train from the initialization through a recipe")
    train.add_argument("config", type=Path, help="YAML config with a video trainer")
    train.add_argument("--recipe", type=Path, required=True, help="recipe.yaml of a plan")
    train.add_argument("--out", type=Path, required=True, help="run directory")
    train.add_argument("--resume", action="store_true", help="continue a training in --out")
    train.add_argument("--strict", action="store_true", help="stop at the first bad video")
    train.set_defaults(func=run_train)

    ev = sub.add_parser("evaluate", help="final test: N clips x M crops, top-1/top-5, per class")
    ev.add_argument("config", type=Path, help="YAML config with a video trainer")
    ev.add_argument("--checkpoint", type=Path, required=True, help="a .pt checkpoint")
    ev.add_argument("--views", default="10x3", help="clips x crops per video (default 10x3)")
    ev.add_argument("--split", choices=["test", "val"], default="test")
    ev.add_argument(
        "--out",
        type=Path,
        help="result JSON OUT.json (default: next to the checkpoint); OUT.scores.npz and "
        "OUT.data_health.json go beside it",
    )
    ev.add_argument("--strict", action="store_true", help="stop at the first unreadable video")
    ev.set_defaults(func=run_evaluate)


def _video_config(path: Path) -> PlanConfig:
    from opplan.config import load_config
    from opplan.errors import ConfigError

    config = load_config(path)
    if config.trainer.kind != "video":
        raise ConfigError(f"{path}: trainer.kind must be 'video' for this command")
    return config


def run_train(args: argparse.Namespace) -> int:
    """Train a recipe; under ``torchrun --nproc-per-node N`` with DDP on N processes."""
    from opplan.engine.distributed import distributed

    config = _video_config(args.config)
    assert config.trainer.kind == "video"  # _video_config checked it
    with distributed(config.trainer.device) as dist:
        return _train(args, config, dist)


def _train(args: argparse.Namespace, config: PlanConfig, dist: DistributedContext) -> int:
    assert config.trainer.kind == "video"  # _video_config checked it
    from rich.console import Console

    from opplan.cli._plan import check_video_states
    from opplan.config import config_hash, dump_config
    from opplan.engine.build import build_video_trainer, load_lists
    from opplan.engine.distributed import ReplicaJournal
    from opplan.engine.fingerprint import records_hash
    from opplan.engine.recipe import read_recipe, recipe_hash, train_recipe
    from opplan.errors import OpplanError, RunDirError
    from opplan.fileio import atomic_write_text, check_out_dir, disk_errors
    from opplan.planning.journal import Journal

    check_out_dir(args.out)
    steps = read_recipe(args.recipe)
    check_video_states(config, [step.state for step in steps], f"{args.recipe}: steps")
    console = Console(highlight=False, quiet=not dist.is_main)  # rank 0 reports
    run = args.out
    if (run / "train_journal.jsonl").exists() and not args.resume:
        raise RunDirError(f"{run} already holds a training; pass --resume to continue it")
    # kept with every journaled epoch: a resume must train the same config and recipe
    identity = {"config_hash": config_hash(config), "recipe_hash": recipe_hash(steps)}
    keep_saved = _check_resume(run, config, steps, identity)
    trainer = build_video_trainer(
        config.trainer,
        run,
        console.print,
        purpose="train",
        strict=args.strict,
        clip_length=max(step.state.clip_length for step in steps),
        dist=dist,
    )
    # the videos too: another training or validation list would mix two datasets' epochs
    num_classes = load_lists(config.trainer.data, "train")[1]
    identity["data_hash"] = records_hash(trainer.train_records, trainer.val_records, num_classes)
    _check_data(run, config, identity["data_hash"])
    # the journal's lock first: a run in use elsewhere is refused before anything is written
    journal = Journal(run / "train_journal.jsonl") if dist.is_main else ReplicaJournal()
    if dist.is_main:
        try:
            if not keep_saved:  # else it is what proves the older epochs' config
                atomic_write_text(run / "config.yaml", dump_config(config))
            atomic_write_text(run / "recipe.yaml", args.recipe.read_text())
        except BaseException:
            journal.close()
            raise
    if dist.enabled:
        console.print(f"data parallel: {dist.world_size} processes ({dist.backend})")

    def on_epoch(k: int, step: RecipeStep, epoch: int, metrics: dict[str, float]) -> None:
        console.print(
            f"step {k + 1}/{len(steps)} {step.state}  epoch {epoch}/{step.epochs}  "
            f"loss {metrics['loss']:.4f}  val top-1 {metrics['score']:.4f}  "
            f"[dim](data {metrics['data_time']:.1f}s, compute {metrics['compute_time']:.1f}s)[/]"
        )

    try:
        with disk_errors():  # a full disk under the journal: one line, resumable
            summary = train_recipe(trainer, steps, run, on_epoch, journal, identity)
    except FloatingPointError as err:  # NaN/inf loss: the epochs before it stay resumable
        raise OpplanError(
            f"training diverged ({err}); lower that step's learning rate in {args.recipe}"
        ) from None
    console.print(f"final model: {summary['model']}")
    return 0


def _check_resume(
    run: Path, config: PlanConfig, steps: Sequence[RecipeStep], identity: dict[str, Any]
) -> bool:
    """Refuse to continue a training with another config or recipe (cosmetic config fields
    aside): its journaled epochs would be mixed with the new schedule's, and train.json
    would claim a schedule that model.pt was not trained with."""
    from opplan.config import config_hash, dump_config, legacy_config_data, parse_config
    from opplan.errors import ConfigError, RunDirError
    from opplan.planning.journal import Op, read_journal

    journal = run / "train_journal.jsonl"
    events = [e for e in read_journal(journal) if e.get("op") == Op.EPOCH_SCORED.value]
    saved = run / "config.yaml"
    if not events:  # nothing trained yet: only a config of another run is refused
        if saved.exists():
            try:
                data = legacy_config_data(yaml.safe_load(saved.read_text(encoding="utf-8")))
                same = (
                    config_hash(parse_config(data, source=str(saved))) == identity["config_hash"]
                )
            except (ConfigError, yaml.YAMLError):
                same = False
            if not same:
                raise RunDirError(f"{run} holds the config of another run ({saved})")
        return False
    kept = False  # whether RUN/config.yaml must stay as the older opplan wrote it
    hashes = {e["config_hash"] for e in events if "config_hash" in e}
    older = hashes - {identity["config_hash"]}
    if older and _older_schema(saved, older, identity["config_hash"]):
        older = set()  # options added since, at their defaults: the same training
        kept = True
    if older or (not hashes and saved.exists() and saved.read_text() != dump_config(config)):
        raise RunDirError(
            f"{run} was trained with another config (the one journaled in {journal}); "
            "resume it with that config, or choose another --out"
        )
    recipes = {e["recipe_hash"] for e in events if "recipe_hash" in e}
    if recipes - {identity["recipe_hash"]} or (not recipes and _legacy_mismatch(events, steps)):
        raise RunDirError(
            f"{run} was trained with another recipe ({run / 'recipe.yaml'} is the one it "
            "follows); resume with that recipe, or choose another --out"
        )
    return kept


def _older_schema(saved: Path, older: set[str], current: str) -> bool:
    """Whether the epochs journaled under ``older`` are this config, dumped by an opplan
    that had fewer options: RUN/config.yaml (kept as the training first wrote it) hashes
    to the journaled hash by itself (it is that config), and read with today's schema --
    the options added since at their defaults -- it hashes to ``current``."""
    from opplan.config import config_hash, dumped_config_hash, legacy_config_data, parse_config
    from opplan.errors import ConfigError

    try:
        data = yaml.safe_load(saved.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or {dumped_config_hash(data)} != older:
            return False
        return config_hash(parse_config(legacy_config_data(data), source=str(saved))) == current
    except (ConfigError, OSError, yaml.YAMLError):
        return False


def _check_data(run: Path, config: PlanConfig, data_hash: str) -> None:
    """Refuse to continue a training whose training or validation records changed."""
    from opplan.errors import RunDirError
    from opplan.planning.journal import read_journal

    kept = {e["data_hash"] for e in read_journal(run / "train_journal.jsonl") if "data_hash" in e}
    if kept - {data_hash}:
        assert config.trainer.kind == "video"  # _video_config checked it
        data = config.trainer.data
        raise RunDirError(
            f"{run}: cannot resume: the videos of data.train_list ({data.train_list}) or "
            f"data.val_list ({data.val_list}) under {data.root} changed since the training "
            "started; restore them, or train into another --out"
        )


def _legacy_mismatch(events: list[dict[str, Any]], steps: Sequence[RecipeStep]) -> bool:
    """A journal without recipe hashes (older opplan): its epochs must fit the recipe."""
    for event in events:
        k = int(event["step"])
        if k >= len(steps) or event["state"] != str(steps[k].state):
            return True
        if int(event["epoch"]) > steps[k].epochs:
            return True
    return False


def run_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from opplan.engine.build import evaluate_checkpoint
    from opplan.engine.checkpoint import load_checkpoint
    from opplan.engine.evaluate import health_path, parse_views, save_evaluation
    from opplan.errors import ConfigError

    config = _video_config(args.config)
    assert config.trainer.kind == "video"  # _video_config checked it
    try:
        views = parse_views(args.views)
    except ValueError as err:
        raise ConfigError(f"--views: {err}") from None
    cfg = config.trainer
    try:
        checkpoint = load_checkpoint(args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        raise ConfigError(f"--checkpoint: {err}") from None
    out = args.out or args.checkpoint.with_name(f"eval_{args.split}_{args.views}.json")
    # an unreadable video is excluded (never replaced) and listed in OUT.data_health.json
    state, result = evaluate_checkpoint(
        cfg, checkpoint, views, args.split, strict=args.strict, health_file=health_path(out),
        source=f"--checkpoint {args.checkpoint}",
    )  # fmt: skip
    header = {"checkpoint": str(args.checkpoint), "state": str(state), "split": args.split}
    save_evaluation(out, result, header)
    excluded = f" ({result.num_excluded} unreadable excluded)" if result.num_excluded else ""
    Console(highlight=False).print(
        f"{args.split}: {result.num_videos} videos{excluded}, {views[0]} clips x {views[1]} "
        f"crops, {state}: top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  -> {out}"
    )
    if result.class_names is not None:  # the weakest classes, by the dataset's own names
        scored = [(a, n) for a, n in zip(result.per_class_accuracy, result.class_names,
                                         strict=True) if a is not None]  # fmt: skip
        worst = ", ".join(f"{n} {a:.2f}" for a, n in sorted(scored)[:5])
        Console(highlight=False).print(f"weakest classes: {worst}")
    return 0
