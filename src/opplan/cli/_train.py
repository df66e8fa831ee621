"""``opplan train CONFIG --recipe RECIPE --out RUN`` and ``opplan evaluate CONFIG ...``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def _video_config(path: Path):  # type: ignore[no-untyped-def]
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
    with distributed(config.trainer.device) as dist:
        return _train(args, config, dist)


def _train(args: argparse.Namespace, config, dist) -> int:  # type: ignore[no-untyped-def]
    from rich.console import Console

    from opplan.config import dump_config
    from opplan.engine.build import build_video_trainer
    from opplan.engine.recipe import read_recipe, train_recipe
    from opplan.errors import OpplanError, RunDirError
    from opplan.fileio import atomic_write_text, disk_errors

    steps = read_recipe(args.recipe)
    console = Console(highlight=False, quiet=not dist.is_main)  # rank 0 reports
    run = args.out
    saved = run / "config.yaml"
    if (run / "train_journal.jsonl").exists() and not args.resume:
        raise RunDirError(f"{run} already holds a training; pass --resume to continue it")
    if saved.exists() and saved.read_text() != dump_config(config):
        raise RunDirError(f"{run} holds the config of another run ({saved})")
    trainer = build_video_trainer(
        config.trainer,
        run,
        console.print,
        purpose="train",
        strict=args.strict,
        clip_length=max(step.state.clip_length for step in steps),
        dist=dist,
    )
    if dist.is_main:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, dump_config(config))
        atomic_write_text(run / "recipe.yaml", args.recipe.read_text())
    if dist.enabled:
        console.print(f"data parallel: {dist.world_size} processes ({dist.backend})")

    def on_epoch(k, step, epoch, metrics):  # type: ignore[no-untyped-def]
        console.print(
            f"step {k + 1}/{len(steps)} {step.state}  epoch {epoch}/{step.epochs}  "
            f"loss {metrics['loss']:.4f}  val top-1 {metrics['score']:.4f}  "
            f"[dim](data {metrics['data_time']:.1f}s, compute {metrics['compute_time']:.1f}s)[/]"
        )

    try:
        with disk_errors():  # a full disk under the journal: one line, resumable
            summary = train_recipe(trainer, steps, run, on_epoch)
    except FloatingPointError as err:  # NaN/inf loss: the epochs before it stay resumable
        raise OpplanError(
            f"training diverged ({err}); lower that step's learning rate in {args.recipe}"
        ) from None
    console.print(f"final model: {summary['model']}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from opplan.engine.build import evaluate_checkpoint
    from opplan.engine.checkpoint import load_checkpoint
    from opplan.engine.evaluate import health_path, parse_views, save_evaluation
    from opplan.errors import ConfigError

    config = _video_config(args.config)
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
        cfg, checkpoint, views, args.split, strict=args.strict, health_file=health_path(out)
    )
    header = {"checkpoint": str(args.checkpoint), "state": str(state), "split": args.split}
    save_evaluation(out, result, header)
    excluded = f" ({result.num_excluded} unreadable excluded)" if result.num_excluded else ""
    Console(highlight=False).print(
        f"{args.split}: {result.num_videos} videos{excluded}, {views[0]} clips x {views[1]} "
        f"crops, {state}: top-1 {result.top1:.4f}  top-5 {result.top5:.4f}  -> {out}"
    )
    return 0
