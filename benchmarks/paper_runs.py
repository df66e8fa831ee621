"""The runs the paper tables share (``benchmarks.paper_tables``): where each run lives, the
config of a synthetic task scaled by the command's options, and running (or resuming) a plan
or a grid and reading back its scores and cost.

A run folder is named by what it trains (task, network, samplings, seed); the plan and grid
folders inside it by what differs from the default planner rule and grid, so tables that
need the same run share it and runs of other settings are kept side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

NETWORKS = ("p3d_tiny", "g_p3d_tiny", "dg_p3d_tiny")
SAMPLINGS = ["consecutive", "uniform"]
BUDGETS = [8, 12, 16, 20, 24]
DECAYS = ["3step", "cosine"]
WINNING_SAMPLING = {"order": "uniform", "tempo": "consecutive"}


# tasks whose data defaults (videos per class, frames; used when --videos-per-class or
# --frames is not given) are their config's data.synthetic: relay's validated design
TASK_CONFIGS = {"relay": Path(__file__).resolve().parents[1] / "configs" / "synthetic-relay.yaml"}
DEFAULT_DATA = (30, [64, 192])


def task_data(args: argparse.Namespace, task: str) -> tuple[int, list[int]]:
    """(videos per class, [min, max] frames) of ``task``: the options, else its defaults."""
    videos, frames = DEFAULT_DATA
    if task in TASK_CONFIGS:
        syn = yaml.safe_load(TASK_CONFIGS[task].read_text())["trainer"]["data"]["synthetic"]
        videos = syn["videos_per_class"]
        frames = [syn.get("min_frames", frames[0]), syn.get("max_frames", frames[1])]
    videos = videos if args.videos_per_class is None else args.videos_per_class
    return videos, list(frames if args.frames is None else args.frames)


def csv_arg(cast):  # type: ignore[no-untyped-def]
    return lambda text: [cast(x) for x in text.split(",") if x.strip()]


def run_name(args: argparse.Namespace, task: str, model: str, seed: int) -> str:
    """The name of a config and of its runs' folder (the samplings when not both)."""
    samplings = "" if args.samplings == SAMPLINGS else "-" + "+".join(args.samplings)
    return f"{task}-{model}{samplings}-seed{seed}"


def run_root(args: argparse.Namespace, task: str, model: str, seed: int) -> Path:
    """Where the plan, grid and table-1 runs of one config live, shared by every table."""
    return Path(args.work) / "runs" / run_name(args, task, model, seed)


def grid_dir(args: argparse.Namespace, root: Path, samplings: list[str] | None = None) -> Path:
    """The grid's folder under ``root``, named by what differs from the default grid."""
    name = "grid"
    if args.budgets != BUDGETS:
        name += "-b" + "+".join(map(str, args.budgets))
    if args.decays != DECAYS:
        name += "-" + "+".join(args.decays)
    if samplings is not None and samplings != args.samplings:
        name += "-" + "+".join(samplings)
    return root / name


def plan_dir(args: argparse.Namespace, root: Path) -> Path:
    """The plan's folder under ``root``: ``plan`` for the paper's knee rule with the warm-up
    floor, ``plan-rise<k>`` with ``min_rise_from_initial`` k (plans of other rules kept);
    ``-noise`` appended for ``planner.rule: noise``."""
    rise = args.min_rise_from_initial
    name = "plan" if rise == 0 else f"plan-rise{rise:g}"
    return root / (name + ("-noise" if getattr(args, "rule", "paper") == "noise" else ""))


def make_config(args: argparse.Namespace, task: str, model: str, seed: int) -> Path:
    """A config of the synthetic ``task`` scaled by the command's options."""
    work = Path(args.work)
    videos, frames = task_data(args, task)
    config = {
        "name": run_name(args, task, model, seed),
        "graph": {
            "kind": "extended",
            "samplings": args.samplings,
            "clip_lengths": args.lengths,
            "learning_rates": args.lrs,
        },
        "planner": {
            "family": "exponential",
            "delay": args.delay,
            "max_epochs": args.max_epochs,
            "min_epochs_from_initial": args.min_epochs_from_initial,
            "min_rise_from_initial": args.min_rise_from_initial,
            "rule": getattr(args, "rule", "paper"),
        },
        "trainer": {
            "kind": "video",
            "seed": seed,
            "device": "auto",
            "threads": 1,
            "data": {
                "root": str(
                    work / "data" / f"{task}-v{videos}-s{args.size}-f{frames[0]}-{frames[-1]}"
                ),
                "synthetic": {
                    "task": task,
                    "videos_per_class": videos,
                    "size": args.size,
                    "seed": 0,
                    "min_frames": frames[0],
                    "max_frames": frames[-1],
                },
                "frame_size": args.size,
                "cache": "memory",
            },
            "model": {"name": model},
            "optim": {
                "effective_batch": args.batch,
                "reference_batch": 16,  # lrs are given for batch 16, scaled linearly
                "base_micro_batch": args.batch,
                "base_clip_length": min(args.lengths),
            },
        },
    }
    from opplan.fileio import atomic_write_text

    # a noise-rule config beside the paper rule's: both may be planned at once
    suffix = "-noise" if getattr(args, "rule", "paper") == "noise" else ""
    path = work / "configs" / f"{config['name']}{suffix}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    # atomic: another table's process may be reading this config to start a plan
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))
    return path


def views_arg(args: argparse.Namespace) -> tuple[int, int]:
    from opplan.engine.evaluate import parse_views

    return parse_views(args.views)


def run_plan(args: argparse.Namespace, config_path: Path, out: Path) -> dict[str, Any]:
    """Plan (resuming a cut plan), test its final checkpoint; plan.json + test result."""
    from opplan.baselines import plan_cost, test_checkpoint
    from opplan.cli import main as opplan
    from opplan.config import load_config
    from opplan.fileio import atomic_write_json

    if opplan(["plan", str(config_path), "--out", str(out), "--resume"]) != 0:
        raise SystemExit(f"opplan plan {config_path} failed")
    plan = json.loads((out / "plan.json").read_text())
    views = views_arg(args)
    cached = out / f"test_{args.views}.json"
    if not cached.is_file():
        config = load_config(config_path)
        checkpoint = out / "checkpoints" / f"{plan['final_checkpoint']}.pt"
        atomic_write_json(cached, test_checkpoint(config.trainer, checkpoint, views))
    best = plan["states"][plan["best_final_state"]]
    return {
        "plan": plan,
        "val": best["observed"],
        "value": plan["value"],
        "path_epochs": sum(s["epochs"] for s in plan["path"]),
        "test": json.loads(cached.read_text())["top1"],
        "cost": plan_cost(out, min(args.lengths)),
        "graph": out / "report" / "graph.png",
    }


def run_grid_for(
    args: argparse.Namespace, config_path: Path, out: Path, samplings: list[str] | None = None
) -> dict[str, Any]:
    from opplan.baselines import GridSpec, grid_cost, run_grid
    from opplan.config import load_config

    config = load_config(config_path)
    spec = GridSpec.from_config(
        config, budgets=args.budgets, samplings=samplings, decays=args.decays
    )
    results = run_grid(
        config, spec, out, resume=True, views=views_arg(args), test_cells=False, log=print
    )
    best = next(r for r in results["runs"] if r["schedule"]["name"] == results["best"])
    return {
        "results": results,
        "schedule": best["schedule"],
        "val": best["val_score"],
        "epochs": best["epochs"],
        "test": results["tests"][results["best"]]["top1"],
        "cost": grid_cost(results),
    }
