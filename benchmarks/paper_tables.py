"""Regenerate the paper-table analogues of docs/results.md on the built-in synthetic tasks.

    nice -n 10 .venv/bin/python -m benchmarks.paper_tables TABLE [options] --work runs/pt

TABLE is one of
  table1    Table 1 / App. A.1: the four curve families' mean RMSE and R² on the 9 per-step
            validation curves of real training runs (3 lengths x 3-step lrs, each step
            ``--step-epochs`` epochs) for several networks on both tasks;
  table3    Table 3: P3D / G-P3D / DG-P3D tiny x the hand-tuned grid vs the planner on one task;
  table4    Table 4: DG-P3D tiny, planner vs best hand-tuned, accuracy and cost, on both tasks;
  transfer  §5.4: the path the planner found with DG-P3D trains a torchvision video network,
            against that network's own best hand-tuned schedule;
  longer    is it only the budget? Table 4's best hand-tuned schedule retrained with the
            larger budgets ``--long-budgets`` (a grid scaled up to them would cost that
            much more per cell), against the planner; with ``--long-grid BUDGETS`` also the
            whole grid at those budgets on the task's own sampling;
  rules     issue 17: the planner alone under each stopping rule of ``--rules`` on Table 4's
            setting, per seed (no grid);
  peers     issue 20: the planner (default and paper's rule) against the best hand-tuned
            schedule, multigrid, and ASHA / Hyperband / top-k over the grid, each seed its
            own grid (``benchmarks/paper_peers.py``).

Every run (plan, grid run, table-1 run) lives under ``--work/runs/<task>-<network>-seed<n>``
and resumes when the command is repeated, so a cut table continues where it stopped, and
tables that need the same run share it (Table 3's DG-P3D row is Table 4's run, §5.4 starts
from Table 4's plan; the run layer is ``benchmarks/paper_runs.py``). Each prints a
Markdown block (the command, sizes, seeds, a table) and writes it to ``--work/<table>.md``.
Sizes default to what keeps one table near an hour on a 2-core CPU; the planner and the grid
both train on the planning split, select on the internal validation split (1 clip x 1 crop),
and their final models are tested with ``--views`` on the test split.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.paper_runs import (
    BUDGETS,
    DECAYS,
    NETWORKS,
    SAMPLINGS,
    WINNING_SAMPLING,
    csv_arg,
    grid_dir,
    make_config,
    plan_dir,
    run_grid_for,
    run_plan,
    run_root,
    task_data,
    views_arg,
)

__all__ = ["main"]


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _spread(values: list[float]) -> str:
    if len(values) == 1:
        return _pct(values[0])
    return f"{_pct(statistics.mean(values))} ± {_pct(statistics.stdev(values))}"


def _header(args: argparse.Namespace) -> list[str]:
    from opplan.video.synthetic import TASKS

    command = " ".join(shlex.quote(a) for a in args.argv)
    data = {t: task_data(args, t) for t in args.tasks}
    classes = ", ".join(
        f"`{t}` ({TASKS[t]} classes, {data[t][0]} videos per class, {data[t][1][0]}-"
        f"{data[t][1][-1]} frames)"
        for t in args.tasks
    )
    return [
        f"`nice -n 10 .venv/bin/python -m benchmarks.paper_tables {command}`",
        "",
        f"Data: synthetic tasks {classes}, {args.size}x{args.size} px; "
        f"clip lengths {args.lengths}, lrs {args.lrs}; "
        f"samplings {args.samplings}; batch {args.batch} (lrs given at 16, scaled linearly); "
        f"seeds {args.seeds}; test protocol {args.views} views. Planner: T = {args.delay}, "
        f"at most {args.max_epochs} epochs per transition, from-scratch floor "
        f"{args.min_epochs_from_initial}, min rise from scratch {args.min_rise_from_initial:g} "
        f"fit RMSEs; stopping rule {getattr(args, 'rule', 'paper')}.",
        "",
    ]


# -- issue 17: the stopping rules side by side ------------------------------------------
def rules(args: argparse.Namespace) -> list[str]:
    """The planner alone under each of ``--rules`` on Table 4's setting (no grid): explored
    epochs, clip-length-weighted epochs, epochs on the path, val and test top-1 per seed."""
    import copy

    model = args.networks[-1]
    lines = [*_header(args), f"Network `{model}`; rules {args.rules}.", ""]
    rows = [
        "| task | rule | val top-1 | test top-1 | explored epochs (per seed) "
        "| weighted epochs | epochs on path | explored / first rule's |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in args.tasks:
        first: list[float] = []
        for rule in args.rules:
            ruled = copy.copy(args)
            ruled.rule = rule
            runs = []
            for seed in args.seeds:
                config = make_config(ruled, task, model, seed)
                root = run_root(ruled, task, model, seed)
                runs.append(run_plan(ruled, config, plan_dir(ruled, root)))
            epochs = [float(r["cost"].epochs) for r in runs]
            first = first or epochs
            ratio = statistics.mean(e / f for e, f in zip(epochs, first, strict=True))
            rows.append(
                f"| {task} | {rule} | {_spread([r['val'] for r in runs])} | "
                f"{_spread([r['test'] for r in runs])} | "
                f"{statistics.mean(epochs):.0f} ({' / '.join(f'{e:.0f}' for e in epochs)}) | "
                f"{statistics.mean(r['cost'].weighted_epochs for r in runs):.0f} | "
                f"{' / '.join(str(r['path_epochs']) for r in runs)} | {ratio:.2f} |"
            )
            for seed, run in zip(args.seeds, runs, strict=True):
                lines.append(f"- `{task}` {rule} seed {seed}: {_path(run)}")
        lines.append("")
    return [*lines, *rows]


# -- Table 1 ----------------------------------------------------------------------------
def table1(args: argparse.Namespace) -> list[str]:
    import numpy as np

    from opplan.config import load_config
    from opplan.engine.build import build_video_trainer
    from opplan.engine.recipe import RecipeStep, train_recipe
    from opplan.planning import FAMILIES, TrainingState, fit_curve

    curves: list[tuple[str, str, list[float]]] = []
    for task in args.tasks:
        for model in args.networks:
            for seed in args.seeds:
                config = load_config(make_config(args, task, model, seed))
                sampling = WINNING_SAMPLING[task]
                lrs = sorted(args.lrs, reverse=True)
                # App. A.1: 3-step lrs on l1, then fine-tuned (3-step again) on l2 and l3
                steps = [
                    RecipeStep(TrainingState(sampling, length, lr), args.step_epochs)
                    for length in sorted(args.lengths)
                    for lr in lrs
                ]
                out = run_root(args, task, model, seed) / f"table1-e{args.step_epochs}"
                trainer = build_video_trainer(config.trainer, out, print, purpose="plan")
                print(f"table1: {task} {model} seed {seed}: {len(steps)} steps")
                summary = train_recipe(trainer, steps, out)
                for k in range(len(steps)):
                    scores = [s["score"] for s in summary["scores"] if s["step"] == k]
                    curves.append((task, model, scores))
    lines = [*_header(args)]
    lines += [
        f"{len(curves)} curves of {args.step_epochs} epochs (internal-validation top-1 after "
        "each epoch of each step; networks " + ", ".join(args.networks) + ").",
        "",
        "| family | mean RMSE | mean R² | median R² | failed fits |",
        "|---|---|---|---|---|",
    ]
    for name in FAMILIES:
        fits = [fit_curve(np.array(c), name) for _, _, c in curves]
        ok = [f for f in fits if f.success]
        nan = float("nan")
        rmse = statistics.mean(f.rmse for f in ok) if ok else nan
        r2 = [f.r2 for f in ok]
        lines.append(
            f"| {name} | {rmse:.3e} | {statistics.mean(r2) if r2 else nan:.3f} | "
            f"{statistics.median(r2) if r2 else nan:.3f} | {len(fits) - len(ok)} |"
        )
    return lines


# -- Table 3 ----------------------------------------------------------------------------
def table3(args: argparse.Namespace) -> list[str]:
    from opplan.baselines import grid_markdown

    task = args.tasks[0]
    lines = [*_header(args), f"Task `{task}`.", ""]
    summary = [
        "| network | grid best (val) | grid best test | grid epochs | OP val | OP test "
        "| OP epochs on path | OP epochs explored |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in args.networks:
        grids, plans = [], []
        for seed in args.seeds:
            config = make_config(args, task, model, seed)
            root = run_root(args, task, model, seed)
            if args.grid_seeds is None or seed in args.grid_seeds:
                grids.append(run_grid_for(args, config, grid_dir(args, root)))
            plans.append(run_plan(args, config, plan_dir(args, root)))
        first = grids[0]["results"]
        lines += [
            f"**{model}**, seed {args.seeds[0]}: hand-tuned cells, internal-val top-1 % "
            f"(best budget), * = best; OP (planner): {_pct(plans[0]['val'])} val "
            f"({plans[0]['path_epochs']} epochs on the path, "
            f"best final state {plans[0]['plan']['best_final_state']})",
            "",
            grid_markdown(first),
            "",
        ]
        summary.append(
            f"| {model} | {_spread([g['val'] for g in grids])} | "
            f"{_spread([g['test'] for g in grids])} | {grids[0]['cost'].epochs} | "
            f"{_spread([p['val'] for p in plans])} | {_spread([p['test'] for p in plans])} | "
            f"{'/'.join(str(p['path_epochs']) for p in plans)} | "
            f"{'/'.join(str(p['cost'].epochs) for p in plans)} |"
        )
    grid_seeds = args.seeds if args.grid_seeds is None else args.grid_seeds
    return [
        *lines,
        f"Over the seeds (mean ± std; grids: seeds {grid_seeds}, plans: seeds {args.seeds}):",
        "",
        *summary,
    ]


# -- Table 4 ----------------------------------------------------------------------------
def table4(args: argparse.Namespace) -> list[str]:
    from opplan.baselines import compare_costs

    model = args.networks[-1]
    lines = [*_header(args), f"Network `{model}`.", ""]
    rows = [
        "| task | strategy | val top-1 | test top-1 | epochs | weighted epochs "
        "| training time (summed) | plan/grid epochs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task in args.tasks:
        grids, plans = [], []
        for seed in args.seeds:
            config = make_config(args, task, model, seed)
            root = run_root(args, task, model, seed)
            grids.append(run_grid_for(args, config, grid_dir(args, root)))
            plans.append(run_plan(args, config, plan_dir(args, root)))
        ratios = [
            compare_costs(p["cost"], g["cost"])["plan_over_grid"]["epochs"]
            for p, g in zip(plans, grids, strict=True)
        ]
        for label, runs in (("hand-tuned (grid best)", grids), ("planner", plans)):
            costs = [r["cost"] for r in runs]
            rows.append(
                f"| {task} | {label} | {_spread([r['val'] for r in runs])} | "
                f"{_spread([r['test'] for r in runs])} | "
                f"{statistics.mean(c.epochs for c in costs):.0f} | "
                f"{statistics.mean(c.weighted_epochs for c in costs):.0f} | "
                f"{statistics.mean(c.training_seconds for c in costs) / 60:.1f} min | "
                + (f"{statistics.mean(ratios):.2f} |" if label == "planner" else "1 |")
            )
        lines.append(f"Path found on `{task}` (seed {args.seeds[0]}): " + _path(plans[0]))
        lines.append(f"graph: `{plans[0]['graph']}`")
        lines.append("")
    return [*lines, *rows]


def _path(plan: dict[str, Any]) -> str:
    steps = plan["plan"]["path"]
    return " → ".join(
        f"{s['sampling']} {s['clip_length']}f lr={s['lr']:g} ({s['epochs']})"
        for s in steps
        if s["epochs"] > 0
    )


# -- §5.4 transfer ----------------------------------------------------------------------
def transfer(args: argparse.Namespace) -> list[str]:
    from opplan.baselines import test_checkpoint
    from opplan.config import load_config
    from opplan.engine.build import build_video_trainer
    from opplan.engine.recipe import RecipeStep, train_recipe
    from opplan.fileio import atomic_write_json
    from opplan.planning.plan import step_state

    task = args.tasks[0]
    seed = args.seeds[0]
    source = make_config(args, task, "dg_p3d_tiny", seed)
    plan = run_plan(args, source, plan_dir(args, run_root(args, task, "dg_p3d_tiny", seed)))
    steps = [RecipeStep(step_state(s), s["epochs"]) for s in plan["plan"]["path"] if s["epochs"]]
    target = make_config(args, task, args.target, seed)
    config = load_config(target)
    root = run_root(args, task, args.target, seed)
    out = root / "path-from-dg_p3d_tiny"
    trainer = build_video_trainer(config.trainer, out, print, purpose="plan")
    summary = train_recipe(trainer, steps, out)
    cached = out / f"test_{args.views}.json"
    if not cached.is_file():
        atomic_write_json(
            cached, test_checkpoint(config.trainer, out / "model.pt", views_arg(args))
        )
    path_test = json.loads(cached.read_text())["top1"]
    sampling = [WINNING_SAMPLING[task]]
    grid = run_grid_for(args, target, grid_dir(args, root, sampling), sampling)
    return [
        *_header(args),
        f"Task `{task}`, seed {seed}. DG-P3D tiny path: {_path(plan)}.",
        "",
        f"| {args.target} trained with | val top-1 | test top-1 | epochs |",
        "|---|---|---|---|",
        f"| the DG-P3D tiny path | {_pct(summary['scores'][-1]['score'])} | {_pct(path_test)} "
        f"| {sum(s.epochs for s in steps)} |",
        f"| its best hand-tuned schedule ({grid['results']['best']}) | {_pct(grid['val'])} | "
        f"{_pct(grid['test'])} | {grid['epochs']} (grid: {grid['cost'].epochs}) |",
    ]


# -- the best hand-tuned schedule with larger budgets ------------------------------------
def longer(args: argparse.Namespace) -> list[str]:
    """The first seed's grid picks the schedule; every seed trains it with each longer
    budget and plans, so the planner and the longer schedule are compared seed by seed."""
    from opplan.baselines import GridSpec, HandTunedSchedule, run_grid
    from opplan.config import load_config

    model = args.networks[-1]
    rows = [
        "| task | schedule | epochs | val top-1 | test top-1 | seeds |",
        "|---|---|---|---|---|---|",
    ]
    for task in args.tasks:
        first = args.seeds[0]
        root = run_root(args, task, model, first)
        grid = run_grid_for(args, make_config(args, task, model, first), grid_dir(args, root))
        best = grid["schedule"]
        found: dict[str, list[tuple[float, float]]] = {}
        epochs = {"planner (explored)": 0}
        for seed in args.seeds:
            config_path = make_config(args, task, model, seed)
            root = run_root(args, task, model, seed)
            plan = run_plan(args, config_path, plan_dir(args, root))
            found.setdefault("planner (explored)", []).append((plan["val"], plan["test"]))
            epochs["planner (explored)"] += plan["cost"].epochs
            config = load_config(config_path)
            for budget in args.long_budgets:
                schedule = HandTunedSchedule.from_dict({**best, "epochs": budget})
                out = root / "longer" / schedule.name
                spec = GridSpec((schedule,), min(args.lengths))
                result = run_grid(config, spec, out, resume=True, views=views_arg(args), log=print)
                test = result["tests"][schedule.name]["top1"]
                found.setdefault(schedule.name, []).append((result["runs"][0]["val_score"], test))
                epochs[schedule.name] = budget
        epochs["planner (explored)"] //= len(args.seeds)
        rows.append(
            f"| {task} | grid best {best['name']} | {grid['epochs']} | {_pct(grid['val'])} | "
            f"{_pct(grid['test'])} | {first} |"
        )
        if args.long_grid:
            rows.append(_long_grid_row(args, task, model, first, grid))
        for name, scores in found.items():
            rows.append(
                f"| {task} | {name} | {epochs[name]} | {_spread([v for v, _ in scores])} | "
                f"{_spread([t for _, t in scores])} | {','.join(map(str, args.seeds))} |"
            )
    return [*_header(args), f"Network `{model}`; the grid (seed {args.seeds[0]}).", "", *rows]


def _long_grid_row(
    args: argparse.Namespace, task: str, model: str, seed: int, grid: dict[str, Any]
) -> str:
    """Every length schedule and decay at the ``--long-grid`` budgets, on the task's sampling
    (the other one stays near chance in every grid cell): the best cell of the default grid
    and of this one together is the hand-tuned best of a grid with those budgets added."""
    sampling = [WINNING_SAMPLING[task]]
    long_args = argparse.Namespace(**{**vars(args), "budgets": args.long_grid})
    root = run_root(args, task, model, seed)
    config = make_config(args, task, model, seed)
    extra = run_grid_for(long_args, config, grid_dir(long_args, root, sampling), sampling)
    top = max((grid, extra), key=lambda g: g["val"])  # picked on the internal split (§5.3)
    budgets = sorted({*args.budgets, *args.long_grid})
    return (
        f"| {task} | best of the grids with budgets {'/'.join(map(str, budgets))} "
        f"({extra['cost'].epochs} more epochs on {sampling[0]}): {top['results']['best']} "
        f"| {top['epochs']} | {_pct(top['val'])} | {_pct(top['test'])} | {seed} |"
    )


def peers(args: argparse.Namespace) -> list[str]:
    from benchmarks.paper_peers import peers as peers_table

    return peers_table(args, _header(args))


TABLES = {
    "peers": peers,
    "rules": rules,
    "table1": table1,
    "table3": table3,
    "table4": table4,
    "transfer": transfer,
    "longer": longer,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--work", type=Path, default=Path("runs/paper_tables"))
    parser.add_argument("--tasks", type=csv_arg(str), default=["order", "tempo"])
    parser.add_argument("--networks", type=csv_arg(str), default=list(NETWORKS))
    parser.add_argument("--target", default="mc3_18", help="transfer: torchvision network")
    parser.add_argument("--seeds", type=csv_arg(int), default=[0])
    parser.add_argument(
        "--grid-seeds",
        type=csv_arg(int),
        default=None,
        help="table3: the seeds that also run the grid (default: all of --seeds)",
    )
    parser.add_argument(
        "--videos-per-class", type=int, default=None, help="default: 30 (relay: its config's)"
    )
    parser.add_argument("--samplings", type=csv_arg(str), default=SAMPLINGS)
    parser.add_argument("--batch", type=int, default=8, help="effective batch (lrs at 16)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--lengths", type=csv_arg(int), default=[4, 8, 16])
    parser.add_argument("--lrs", type=csv_arg(float), default=[0.1, 0.01, 0.001])
    parser.add_argument("--budgets", type=csv_arg(int), default=BUDGETS)
    parser.add_argument("--decays", type=csv_arg(str), default=DECAYS)
    parser.add_argument("--long-budgets", type=csv_arg(int), default=[48, 72], help="longer")
    parser.add_argument(
        "--long-grid",
        type=csv_arg(int),
        default=[],
        help="longer: also the whole grid with these budgets on the task's sampling (first seed)",
    )
    parser.add_argument("--delay", type=int, default=4)
    parser.add_argument(
        "--rule",
        choices=["paper", "noise"],
        default="paper",
        help="planner.rule (noise: beyond the paper, plans kept in plan*-noise/)",
    )
    parser.add_argument(
        "--rules", type=csv_arg(str), default=["paper", "noise"], help="rules: the rules compared"
    )
    parser.add_argument("--max-epochs", type=int, default=24)
    parser.add_argument("--min-epochs-from-initial", type=int, default=10)
    parser.add_argument(
        "--min-rise-from-initial",
        type=float,
        default=3.0,
        help="planner.min_rise_from_initial (0: the paper's rule, plans kept in plan/)",
    )
    parser.add_argument("--step-epochs", type=int, default=10, help="table1: epochs per step")
    parser.add_argument("--views", default="10x3")
    parser.add_argument(
        "--frames", type=csv_arg(int), default=None,
        help="min,max per video (default: 64,192; relay: its config's)",
    )  # fmt: skip
    from benchmarks.paper_peers import add_arguments

    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.grid_seeds is not None and args.seeds[0] not in args.grid_seeds:
        parser.error("--grid-seeds must include the first of --seeds (its grid is shown)")
    import torch

    torch.set_num_threads(1)
    lines = TABLES[args.table](args)
    text = "\n".join(lines) + "\n"
    out = Path(args.work) / f"{args.table}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
