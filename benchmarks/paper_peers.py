"""``benchmarks.paper_tables peers`` (issue 20): the planner against what users would run
instead, each seed running its own grid.

Per task and seed (runs under ``--work/runs/<task>-<network>-seed<n>/``, resumed when the
command is repeated): the planner with the default rule (``--min-rise-from-initial``) and
with the paper's rule (rise 0), the best hand-tuned schedule of the full grid, multigrid's
long cycle (``opplan baseline --schedule multigrid``; ``--multigrid-epochs`` epochs, default
the largest budget, ending at the longest clip and the full crop, on the sampling the grid
found best -- information a multigrid user would not have, in its favour), multigrid again
at the epochs of the planner (default rule) on that seed (accuracy at matched epochs), and the grid
under ASHA, Hyperband (Optuna's pruners) and top-k (``opplan grid --search``). Every final
model is tested with ``--views`` on the test split; costs are summed epochs, weighted epochs
and summed training seconds of everything each method trained.

The searches replay the seed's full grid (``run_search(recorded=...)``, in ``<search>-replay/``):
the same pruner decisions on the grid runs' recorded epochs, the cost of the epochs the search
would have trained, timed by the grid's own epochs; ``--train-searches`` trains them instead
(in ``<search>/``), which costs about another grid per seed.

Extra rows, beyond the paper, when asked for (not needed for a complete record, shown where
every record of the task has them): ``--branches``, the default-rule plan with
``planner.branches``, replayed exactly from that plan's recorded curves (trained in
``plan-rise<k>-branches`` only if the replay's path would change); ``--scored-starts``, the
default-rule plan with ``planner.score_start`` and ``trainer.optim.recalibrate_bn``, trained
(``plan-rise<k>-scored``).

Each task and seed's measurements are written to ``--records`` (one JSON with the command,
commit and options), method by method; a record with the same options is used as it is (or
completed, if a session ended mid-seed), one with other options is refused. A table whose
runs take several sessions or machines is committed as records and assembled with
``--from-records``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import json
import os
import shlex
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from benchmarks.paper_runs import (
    grid_dir,
    make_config,
    plan_dir,
    run_grid_for,
    run_name,
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
    parser.add_argument(
        "--branches",
        action="store_true",
        help="peers: add the default-rule plan with planner.branches (replayed exactly from "
        "its recorded curves; trained when the replay's path would change)",
    )
    parser.add_argument(
        "--scored-starts",
        action="store_true",
        help="peers: add the default-rule plan with planner.score_start and "
        "trainer.optim.recalibrate_bn (trained)",
    )
    parser.add_argument(
        "--records",
        type=Path,
        default=None,
        help="peers: one JSON per task and seed (default: --work/peers-records)",
    )
    parser.add_argument(
        "--from-records",
        action="store_true",
        help="peers: the table from --records alone (each task's own options), nothing run",
    )


def _multigrid(
    args: argparse.Namespace, config: Path, out: Path, sampling: str, epochs: int
) -> dict[str, Any]:
    from opplan.cli import main as opplan

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


def _branched(
    args: argparse.Namespace, config: Path, plan: Path, default: dict[str, Any]
) -> dict[str, Any]:
    """The default-rule plan with ``planner.branches``: its finished plan replayed exactly
    (the same models where the path is the same, so the same test top-1; the cost of the
    moves it keeps, seconds prorated), or, where dropping a branch would change the path,
    planned for real with the switch on (``<plan>-branches``)."""
    from benchmarks.pruning import PathChanged, replay_plan

    try:
        replayed, recorded, seconds = replay_plan(plan, {"branches": True})
        same = replayed.to_dict()["path"] == recorded["path"]
    except PathChanged:
        same = False
    if same:
        return {
            "test": default["test"],
            "epochs": replayed.epochs_total,
            "weighted": replayed.weighted_epochs,
            "seconds": seconds,
            "replayed": True,
        }
    variant = _variant(config, "branches", {"branches": True})
    run = run_plan(args, variant, plan.with_name(plan.name + "-branches"))
    return {**_measured(run["test"], run["cost"]), "replayed": False}


def _variant(config: Path, name: str, planner: dict[str, Any], optim: dict | None = None) -> Path:
    """``config`` with planner (and trainer.optim) keys set, beside it as ``<stem>-<name>``."""
    text = yaml.safe_load(config.read_text())
    text["planner"].update(planner)
    text["trainer"]["optim"].update(optim or {})
    variant = config.with_name(f"{config.stem}-{name}.yaml")
    variant.write_text(yaml.safe_dump(text, sort_keys=False))
    return variant


def _scored(args: argparse.Namespace, config: Path, plan: Path) -> dict[str, Any]:
    """The default-rule plan with ``planner.score_start`` and ``trainer.optim.recalibrate_bn``
    (beyond the paper: each move's y0 is its starting model scored in the new state, with
    fresh BN statistics), trained in ``<plan>-scored``."""
    variant = _variant(config, "scored", {"score_start": True}, {"recalibrate_bn": True})
    run = run_plan(args, variant, plan.with_name(plan.name + "-scored"))
    return _measured(run["test"], run["cost"])


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
        matched = ""
        if MATCHED in methods:
            same = 100 * (mean(planner, "test") - mean(MATCHED, "test"))
            time = mean(planner, "seconds") / max(mean(MATCHED, "seconds"), 1e-9)
            matched = f", {same:+.1f} points vs multigrid at its epochs ({time:.2f}x its time)"
        parts.append(
            f"{planner}: {gap:+.1f} points vs the best alternative ({best}), time "
            f"{asha:.2f}x ASHA's and {mg:.2f}x multigrid's{matched} -> "
            + ("target met" if ok else "target missed")
        )
    return f"`{task}`: " + "; ".join(parts) + "."


# the options that do not change what a seed's runs train (where they live, what is shown)
_NOT_OPTIONS = {
    "work", "tasks", "seeds", "networks", "argv", "table", "target", "grid_seeds", "rules",
    "step_epochs", "long_budgets", "long_grid", "records", "from_records", "branches",
    "scored_starts",
}  # fmt: skip


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """What decides a seed's runs: every option but where they live and what is shown."""
    options = {k: v for k, v in vars(args).items() if k not in _NOT_OPTIONS}
    as_json: dict[str, Any] = json.loads(json.dumps(options, default=str))
    return as_json


def records_dir(args: argparse.Namespace) -> Path:
    return Path(args.records) if args.records else Path(args.work) / "peers-records"


_REPO = Path(__file__).resolve().parent.parent


def _commit(repo: Path = _REPO) -> str:
    """HEAD, with ``-dirty`` if files other than the records changed: a record rewritten
    while its seed runs must not mark its own provenance dirty."""

    def git(*argv: str) -> str:
        run = subprocess.run(["git", *argv], capture_output=True, text=True, check=True, cwd=repo)
        return run.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".",
                      ":(exclude)benchmarks/records")  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if changed else "")


def _machine() -> str:
    """CPU model and torch version, kept in each record: CPU training repeats bit for bit in
    one session, but a re-run of relay seed 0's plan in another session gave 611 epochs, not
    594 (cause not established; the machine is the first suspect)."""
    import platform

    import torch

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # the kernels' ISA and the thread count change float reductions, and so the curves
    return (
        f"{model}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.backends.cpu.get_cpu_capability()} kernels, {torch.get_num_threads()} threads"
    )


GRID = "best hand-tuned (full grid)"
# extra rows (--branches, --scored-starts), not needed for a complete record
BRANCHED = "planner (branches)"
SCORED = "planner (scored starts)"


def extras(args: argparse.Namespace) -> list[str]:
    """The extra rows this command asks for."""
    flags = ((BRANCHED, "branches"), (SCORED, "scored_starts"))
    return [label for label, flag in flags if getattr(args, flag, False)]


MATCHED = "multigrid (planner's epochs)"
SEARCH_LABELS = ("ASHA over the grid", "Hyperband over the grid", "top-k")


def labels(args: argparse.Namespace) -> list[str]:
    """The table's methods, in its order."""
    planners = [f"planner (rise {args.min_rise_from_initial:g})", "planner (paper's rule)"]
    return [*planners, GRID, "multigrid", MATCHED, *SEARCH_LABELS]


def is_complete(record: dict[str, Any]) -> bool:
    """Every method of the table measured (read from the methods, not from the record's own
    flag: a record written before a method was added is completed by running just that)."""
    expected = labels(argparse.Namespace(**record["options"]))
    return all(label in record["methods"] for label in expected)


def _measured(test: float, cost: Any) -> dict[str, Any]:
    """A method's row from its test top-1 and its ``Cost``."""
    return {
        "test": test,
        "epochs": cost.epochs,
        "weighted": cost.weighted_epochs,
        "seconds": cost.training_seconds,
    }


def _seed_methods(
    args: argparse.Namespace,
    task: str,
    model: str,
    seed: int,
    record: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """Every method's test top-1 and cost on one task and seed (trained or resumed), each
    saved into ``record`` as soon as it is measured: a session that ends mid-seed keeps the
    methods it finished (the plans are ~half a seed's cost), and the next one runs the rest.
    The searches replay the grid right after it (seconds), so they never need a grid that a
    later session no longer has."""
    methods: dict[str, dict[str, Any]] = record["methods"]
    config = make_config(args, task, model, seed)
    root = run_root(args, task, model, seed)
    paper_rule = copy.copy(args)
    paper_rule.min_rise_from_initial = 0.0
    # the paper's rule plans its own config (rise 0): the default one has the default rule
    paper_config = _variant(config, "paper-rule", {"min_rise_from_initial": 0.0})
    for label, options, path in zip(
        labels(args)[:2], (args, paper_rule), (config, paper_config), strict=True
    ):
        if label in methods:
            continue
        plan = run_plan(options, path, plan_dir(options, root))
        methods[label] = _measured(plan["test"], plan["cost"])
        save()
    if getattr(args, "branches", False) and BRANCHED not in methods:
        methods[BRANCHED] = _branched(args, config, plan_dir(args, root), methods[labels(args)[0]])
        save()
    if getattr(args, "scored_starts", False) and SCORED not in methods:
        methods[SCORED] = _scored(args, config, plan_dir(args, root))
        save()
    if GRID not in methods or any(label not in methods for label in SEARCH_LABELS):
        grid = run_grid_for(args, config, grid_dir(args, root))
        methods[GRID] = _measured(grid["test"], grid["cost"])
        record["grid_sampling"] = grid["schedule"]["sampling"]
        for search, label in zip(SEARCHES, SEARCH_LABELS, strict=True):
            methods[label] = _search(args, config, grid_dir(args, root), search)
        save()
    sampling = record["grid_sampling"]
    if "multigrid" not in methods:
        epochs = args.multigrid_epochs or max(args.budgets)
        methods["multigrid"] = _multigrid(args, config, root / "multigrid", sampling, epochs)
        save()
    if MATCHED not in methods:  # the same long cycle, as many epochs as the planner's
        epochs = methods[labels(args)[0]]["epochs"]
        out = root / "multigrid-matched"
        methods[MATCHED] = _multigrid(args, config, out, sampling, epochs)
        save()


def seed_record(args: argparse.Namespace, task: str, model: str, seed: int) -> dict[str, Any]:
    """One task and seed's measurements, kept in ``--records`` (committed, so that a table
    whose runs take several sessions or machines is assembled from their records): an
    existing record with the same options is used as it is, and completed if some methods
    are missing; one with other options is refused (exit 2) before anything runs; a missing
    one is run (resuming its run directory) and written method by method."""
    path = records_dir(args) / f"{run_name(args, task, model, seed)}.json"
    options = _options(args)
    record: dict[str, Any]
    if path.exists():
        record = json.loads(path.read_text())
        if record["options"] != options:
            diff = sorted(
                k
                for k in {*options, *record["options"]}
                if options.get(k) != record["options"].get(k)
            )
            print(
                f"{path}: recorded with other options ({', '.join(diff)}); run with the same "
                "options, or delete the record to run these",
                file=sys.stderr,
            )
            raise SystemExit(2)
        if is_complete(record) and all(m in record["methods"] for m in extras(args)):
            return record
    else:
        record = {"task": task, "network": model, "seed": seed, "options": options}
        record["methods"] = {}
    command = "python -m benchmarks.paper_tables " + " ".join(map(shlex.quote, args.argv))

    def save() -> None:
        record.update(
            command=command,
            commit=_commit(),
            machine=_machine(),
            date=_dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            complete=is_complete(record),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")

    _seed_methods(args, task, model, seed, record, save)
    return record


def _load_records(
    args: argparse.Namespace, task: str, model: str
) -> tuple[list[dict[str, Any]], list[int]]:
    """``--from-records``: the task's complete records for ``--seeds``, whatever their
    options, and the seeds whose record is incomplete."""
    records: list[dict[str, Any]] = []
    for seed in args.seeds:
        matches = sorted(records_dir(args).glob(f"{task}-{model}*-seed{seed}.json"))
        records.extend(json.loads(m.read_text()) for m in matches[:1])
    return [r for r in records if is_complete(r)], [
        r["seed"] for r in records if not is_complete(r)
    ]


def peers(args: argparse.Namespace, header: list[str]) -> list[str]:
    model = args.networks[-1]
    searches = (
        "trained (`--train-searches`)"
        if getattr(args, "train_searches", False)
        else "replayed on the seed's grid (the same pruner decisions on its recorded epochs, "
        "timed by them)"
    )
    if getattr(args, "from_records", False):
        header = [
            *header[:2],
            f"Assembled from the records in `{records_dir(args)}`, each task with the options "
            "of its records' commands (listed below); nothing run.",
            "",
        ]
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
    verdicts, sources = [], []
    for task in args.tasks:
        partial: list[int] = []
        if getattr(args, "from_records", False):
            records, partial = _load_records(args, task, model)
        else:
            records = [seed_record(args, task, model, seed) for seed in args.seeds]
        if partial:
            sources.append(f"- `{task}` seeds {partial}: incomplete records, left out")
        if not records:
            verdicts.append(f"`{task}`: no complete record in {records_dir(args)} (not run).")
            continue
        order = labels(argparse.Namespace(**records[0]["options"]))
        for extra in (SCORED, BRANCHED):  # shown where every record of the task has it
            if all(extra in r["methods"] for r in records):
                order.insert(2, extra)
        methods = {label: [r["methods"][label] for r in records] for label in order}
        rows.extend(_row(task, label, runs) for label, runs in methods.items())
        verdicts.append(_verdict(task, methods))
        for command in dict.fromkeys(r["command"] for r in records):
            seeds = [r["seed"] for r in records if r["command"] == command]
            commits = sorted({r["commit"] for r in records if r["command"] == command})
            sources.append(f"- `{task}` seeds {seeds} (commit {', '.join(commits)}): `{command}`")
    return [*lines, *rows, "", *verdicts, "", "Records:", *sources]
