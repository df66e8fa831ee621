"""``benchmarks.paper_tables peers`` (issue 20): the planner against what users would run
instead, each seed running its own grid.

Per task and seed (runs under ``--work/runs/<task>-<network>-seed<n>/``, resumed when the
command is repeated): the planner with the default rule (``--min-rise-from-initial``) and
with the paper's rule (rise 0), the best hand-tuned schedule of the full grid, multigrid's
long cycle (``opplan baseline --schedule multigrid``; ``--multigrid-epochs`` epochs, default
the largest budget, ending at the longest clip and the full crop, on the sampling the grid
found best -- information a multigrid user would not have, in its favour), and the grid
under ASHA, Hyperband (Optuna's pruners) and top-k (``opplan grid --search``). Every final
model is tested with ``--views`` on the test split; costs are summed epochs, weighted epochs
and summed training seconds of everything each method trained.

The searches replay the seed's full grid (``run_search(recorded=...)``, in ``<search>-replay/``):
the same pruner decisions on the grid runs' recorded epochs, the cost of the epochs the search
would have trained, timed by the grid's own epochs; ``--train-searches`` trains them instead
(in ``<search>/``), which costs about another grid per seed.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path
from typing import Any

from benchmarks.paper_runs import (
    grid_dir,
    make_config,
    plan_dir,
    run_grid_for,
    run_plan,
    run_root,
    views_arg,
)

__all__ = ["add_arguments", "peers"]

SEARCHES = ("asha", "hyperband", "topk")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--multigrid-epochs", type=int, default=None, help="peers (default: largest budget)"
    )
    parser.add_argument("--keep", type=int, default=3, help="peers: top-k's k")
    parser.add_argument("--probe-epochs", type=int, default=2, help="peers: top-k's probe")
    parser.add_argument(
        "--train-searches",
        action="store_true",
        help="peers: train ASHA/Hyperband/top-k (default: replay the seed's grid)",
    )


def _multigrid(args: argparse.Namespace, config: Path, out: Path, sampling: str) -> dict[str, Any]:
    from opplan.cli import main as opplan

    epochs = args.multigrid_epochs or max(args.budgets)
    argv = ["baseline", str(config), "--schedule", "multigrid", "--sampling", sampling]
    argv += ["--epochs", str(epochs), "--views", args.views, "--out", str(out), "--resume"]
    if opplan(argv) != 0:
        raise SystemExit(f"opplan {' '.join(argv)} failed")
    result = json.loads((out / "result.json").read_text())
    test = json.loads((out / f"test_{args.views}.json").read_text())
    return {
        "test": test["top1"],
        "epochs": result["epochs"],
        "weighted": result["weighted_epochs"],
        "seconds": result["seconds"],
    }


def _search(
    args: argparse.Namespace, config_path: Path, grid: Path, search: str
) -> dict[str, Any]:
    from opplan.baselines import GridSpec
    from opplan.baselines._search import run_search
    from opplan.config import load_config

    config = load_config(config_path)
    spec = GridSpec.from_config(config, budgets=args.budgets, decays=args.decays)
    trained = getattr(args, "train_searches", False)
    out = grid.with_name(search if trained else f"{search}-replay")
    results = run_search(
        config,
        spec,
        out,
        search,
        recorded=None if trained else grid,
        resume=True,
        views=views_arg(args),
        keep=min(args.keep, len(spec.schedules)),
        probe_epochs=args.probe_epochs,
        log=print,
    )
    cost = results["cost"]
    return {
        "test": results["tests"][results["best"]]["top1"],
        "epochs": cost["epochs"],
        "weighted": cost["weighted_epochs"],
        "seconds": cost["wall_seconds"],
    }


def _row(task: str, label: str, runs: list[dict[str, Any]]) -> str:
    tests = [r["test"] for r in runs]
    spread = f"{100 * statistics.mean(tests):.1f}"
    if len(tests) > 1:
        spread += f" ± {100 * statistics.stdev(tests):.1f}"
    spread += " (" + " / ".join(f"{100 * t:.1f}" for t in tests) + ")"
    return (
        f"| {task} | {label} | {spread} | {statistics.mean(r['epochs'] for r in runs):.0f} | "
        f"{statistics.mean(r['weighted'] for r in runs):.0f} | "
        f"{statistics.mean(r['seconds'] for r in runs) / 60:.1f} min |"
    )


def _verdict(task: str, methods: dict[str, list[dict[str, Any]]]) -> str:
    """Whether each planner row is the most accurate, at <= ASHA's cost and <= 2x
    multigrid's (summed training seconds), with the gaps."""

    def mean(label: str, key: str) -> float:
        return float(statistics.mean(r[key] for r in methods[label]))

    others = [m for m in methods if not m.startswith("planner")]
    best = max(others, key=lambda m: mean(m, "test"))
    parts = []
    for planner in (m for m in methods if m.startswith("planner")):
        gap = 100 * (mean(planner, "test") - mean(best, "test"))
        asha = mean(planner, "seconds") / max(mean("ASHA over the grid", "seconds"), 1e-9)
        mg = mean(planner, "seconds") / max(mean("multigrid", "seconds"), 1e-9)
        ok = gap >= 0 and asha <= 1 and mg <= 2
        parts.append(
            f"{planner}: {gap:+.1f} points vs the best alternative ({best}), time "
            f"{asha:.2f}x ASHA's and {mg:.2f}x multigrid's -> "
            + ("target met" if ok else "target missed")
        )
    return f"`{task}`: " + "; ".join(parts) + "."


def peers(args: argparse.Namespace, header: list[str]) -> list[str]:
    model = args.networks[-1]
    searches = (
        "trained (`--train-searches`)"
        if getattr(args, "train_searches", False)
        else "replayed on the seed's grid (the same pruner decisions on its recorded epochs, "
        "timed by them)"
    )
    lines = [
        *header,
        f"Network `{model}`; each seed runs its own grid; ASHA, Hyperband and top-k {searches}.",
        "",
    ]
    rows = [
        "| task | method | test top-1 (mean ± std; per seed) | epochs | weighted epochs "
        "| training time (summed) |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    paper_rule = copy.copy(args)
    paper_rule.min_rise_from_initial = 0.0
    for task in args.tasks:
        methods: dict[str, list[dict[str, Any]]] = {}

        def add(label: str, run: dict[str, Any], methods: dict[str, Any] = methods) -> None:
            methods.setdefault(label, []).append(run)

        for seed in args.seeds:
            config = make_config(args, task, model, seed)
            root = run_root(args, task, model, seed)
            for label, options in (
                (f"planner (rise {args.min_rise_from_initial:g})", args),
                ("planner (paper's rule)", paper_rule),
            ):
                plan = run_plan(options, config, plan_dir(options, root))
                cost = plan["cost"]
                add(
                    label,
                    {
                        "test": plan["test"],
                        "epochs": cost.epochs,
                        "weighted": cost.weighted_epochs,
                        "seconds": cost.training_seconds,
                    },
                )
            grid = run_grid_for(args, config, grid_dir(args, root))
            add(
                "best hand-tuned (full grid)",
                {
                    "test": grid["test"],
                    "epochs": grid["cost"].epochs,
                    "weighted": grid["cost"].weighted_epochs,
                    "seconds": grid["cost"].training_seconds,
                },
            )
            sampling = grid["schedule"]["sampling"]
            add("multigrid", _multigrid(args, config, root / "multigrid", sampling))
            for search, label in zip(
                SEARCHES, ("ASHA over the grid", "Hyperband over the grid", "top-k"), strict=True
            ):
                add(label, _search(args, config, grid_dir(args, root), search))
        rows.extend(_row(task, label, runs) for label, runs in methods.items())
        verdicts.append(_verdict(task, methods))
    return [*lines, *rows, "", *verdicts]
