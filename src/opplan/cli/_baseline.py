"""``opplan baseline CONFIG ...`` (one hand-tuned schedule) and ``opplan grid CONFIG ...``
(the paper's grid search over them, §5.3). Both train with the planner's trainer on the
planning split, score on the internal validation split and test the final (best) model with
the final protocol on the test split; both resume with ``--resume``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from opplan.cli._plan import check_video_states
from opplan.cli._train import _video_config
from opplan.fileio import check_out_dir

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    one = sub.add_parser("baseline", help="train one hand-tuned schedule (§5.3)")
    one.add_argument("config", type=Path, help="YAML config with a video trainer")
    one.add_argument(
        "--schedule",
        choices=("hand-tuned", "multigrid"),
        default="hand-tuned",
        help="hand-tuned (§5.3, the default) or multigrid (Wu et al. 2020, the long cycle; "
        "with --short-cycle also the short cycle)",
    )
    one.add_argument(
        "--lengths",
        help="clip lengths in order, e.g. 16,64 (multigrid: the final length, default the "
        "graph's longest)",
    )
    one.add_argument("--decay", help="3step or cosine (hand-tuned; multigrid is 3-step)")
    one.add_argument("--epochs", required=True, help="total epochs over all lengths")
    one.add_argument("--sampling", required=True, help="consecutive or uniform")
    one.add_argument("--lrs", help="lrs, highest first (default: the config's graph lrs)")
    one.add_argument("--size", help="multigrid: the final crop side (default: the run's crop)")
    one.add_argument(
        "--batch", help="multigrid: the final effective batch (default: optim.effective_batch)"
    )
    one.add_argument(
        "--short-cycle",
        action="store_true",
        help="multigrid: also the short cycle (PySlowFast's MULTIGRID.SHORT_CYCLE): "
        "iterations cycle through crops of 1/2, 1/sqrt(2) of the final side and the shape's, "
        "with 4x, 2x, 1x the batch at the full shape",
    )
    _common(one)
    one.set_defaults(func=run_baseline)

    grid = sub.add_parser("grid", help="grid-search the hand-tuned schedules (§5.3)")
    grid.add_argument("config", type=Path, help="YAML config with a video trainer")
    grid.add_argument(
        "--budgets",
        help="total epochs to try, e.g. 12,24,36,48,60 (default: the paper's 128..384 "
        "rescaled to end at planner.max_epochs)",
    )
    grid.add_argument("--samplings", help="default: the config's graph samplings")
    grid.add_argument("--decays", help="default: 3step,cosine")
    grid.add_argument(
        "--test-cells", action="store_true", help="also test every cell's best budget"
    )
    grid.add_argument("--plan", type=Path, help="a plan run directory to compare costs with")
    grid.add_argument(
        "--search",
        choices=("asha", "hyperband", "topk"),
        help="early-stopping search over the grid instead of every run in full: Optuna's "
        "SuccessiveHalvingPruner (asha) or HyperbandPruner, or top-k (every run for "
        "--probe-epochs, the --keep best finished); needs the 'hpo' extra for asha/hyperband",
    )
    grid.add_argument(
        "--min-resource", default="1", help="asha/hyperband: epochs of the first rung (1)"
    )
    grid.add_argument(
        "--reduction-factor", default="3", help="asha/hyperband: the halving rate eta (3)"
    )
    grid.add_argument("--probe-epochs", default="2", help="topk: epochs of every run (2)")
    grid.add_argument("--keep", default="3", help="topk: runs finished (3)")
    _common(grid)
    grid.set_defaults(func=run_grid_command)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="run directory")
    parser.add_argument("--resume", action="store_true", help="continue a run in --out")
    parser.add_argument(
        "--views", default="10x3", help="final test: clips x crops (default 10x3); 'none' skips"
    )


def _ints(option: str, text: str) -> list[int]:
    from opplan.errors import ConfigError

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected integers like 8,16, got {text!r}") from None
    if not values or min(values) < 1:
        raise ConfigError(f"{option}: expected positive integers, got {text!r}")
    return values


def _floats(option: str, text: str) -> list[float]:
    from opplan.errors import ConfigError

    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{option}: expected numbers like 0.1,0.01, got {text!r}") from None
    if not values:
        raise ConfigError(f"{option}: expected at least one value")
    return values


def _words(option: str, text: str, allowed: tuple[str, ...]) -> list[str]:
    from opplan.errors import ConfigError

    values = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ConfigError(f"{option}: expected some of {', '.join(allowed)}, got {text!r}")
    return values


def _views(text: str) -> tuple[int, int] | None:
    from opplan.engine.evaluate import parse_views
    from opplan.errors import ConfigError

    if text.lower() == "none":
        return None
    try:
        return parse_views(text)
    except ValueError as err:
        raise ConfigError(f"--views: {err}") from None


def run_baseline(args: argparse.Namespace) -> int:
    from rich.console import Console

    from opplan.baselines import HandTunedSchedule, parse_decay
    from opplan.baselines._run import _locked, cached_test, prepare_run_dir, run_schedule
    from opplan.engine.build import build_video_trainer, load_lists
    from opplan.errors import ConfigError

    config = _video_config(args.config)
    assert config.trainer.kind == "video"  # _video_config checked it
    check_out_dir(args.out)
    views = _views(args.views)
    lrs = tuple(
        _floats("--lrs", args.lrs) if args.lrs else sorted(config.graph.axes()[2], reverse=True)
    )
    try:
        if args.schedule == "multigrid":
            schedule: Any = _multigrid_schedule(args, config, lrs)
        else:
            if args.short_cycle:
                raise ConfigError("--short-cycle goes with --schedule multigrid")
            for option in ("lengths", "decay"):
                if getattr(args, option) is None:
                    raise ConfigError(f"--{option} is required for a hand-tuned schedule")
            schedule = HandTunedSchedule(
                tuple(_ints("--lengths", args.lengths)),
                parse_decay(args.decay),
                args.sampling,
                _ints("--epochs", args.epochs)[0],
                lrs,
            )
    except ValueError as err:  # ConfigError included
        raise ConfigError(f"{args.config}: baseline: {err}") from None
    check_video_states(config, [step.state for step in schedule.steps()], "--lengths")
    console = Console(highlight=False)
    run = args.out
    # the trainer first: a bad data path fails before anything is written to RUN
    trainer = build_video_trainer(config.trainer, run, console.print, purpose="plan")
    if views is not None:
        load_lists(config.trainer.data, "test")  # a missing test list fails before training
    with _locked(run):
        prepare_run_dir(run, config, "schedule.json", schedule.to_dict(), args.resume)
        steps = schedule.steps()
        console.print(f"[bold]opplan baseline[/] {schedule.name}: {len(steps)} steps")
        lengths = [step.state.clip_length for step in steps]
        reference = min(min(config.graph.axes()[1]), *lengths)
        result = run_schedule(trainer, schedule, run, reference, _printer(console, len(steps)))
        console.print(
            f"{schedule.name}: internal val top-1 {result['val_score']:.4f} after "
            f"{result['epochs']} epochs ({result['seconds']:.0f} s)"
        )
        if views is not None:
            test = cached_test(config.trainer, run, views)
            console.print(
                f"test ({views[0]}x{views[1]} views, {test['num_videos']} videos): "
                f"top-1 {test['top1']:.4f}  top-5 {test['top5']:.4f}"
            )
    return 0


def _run_search(
    args: argparse.Namespace, config: Any, spec: Any, views: Any, console: Any
) -> dict[str, Any]:
    """``opplan grid --search``: the grid's schedules under ASHA, Hyperband or top-k."""
    from opplan.baselines import grid_table
    from opplan.baselines._search import run_search
    from opplan.errors import ConfigError

    if args.search != "topk":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"--search {args.search} needs Optuna: pip install 'opplan[hpo]'"
            ) from None
    options = {
        "min_resource": _ints("--min-resource", args.min_resource)[0],
        "reduction_factor": _ints("--reduction-factor", args.reduction_factor)[0],
        "probe_epochs": _ints("--probe-epochs", args.probe_epochs)[0],
        "keep": _ints("--keep", args.keep)[0],
    }
    if options["reduction_factor"] < 2:
        raise ConfigError(f"--reduction-factor: must be at least 2, got {args.reduction_factor}")
    if options["keep"] > len(spec.schedules):
        raise ConfigError(
            f"--keep: {options['keep']} is more than the grid's {len(spec.schedules)} runs"
        )
    console.print(f"search: {args.search}")
    results = run_search(
        config,
        spec,
        args.out,
        args.search,
        resume=args.resume,
        views=views,
        log=console.print,
        reduction_factor=options["reduction_factor"],
        probe_epochs=options["probe_epochs"],
        keep=options["keep"],
    )
    console.print(grid_table(results))
    statuses = [r["status"] for r in results["runs"]]
    console.print(
        f"{statuses.count('complete')} runs finished, "
        f"{len(statuses) - statuses.count('complete')} stopped early"
    )
    return results


def _multigrid_schedule(args: argparse.Namespace, config: Any, lrs: tuple[float, ...]) -> Any:
    """The multigrid long cycle of ``opplan baseline --schedule multigrid`` (its defaults:
    the graph's longest clip, the run's crop side and effective batch)."""
    from opplan.baselines import MultigridSchedule
    from opplan.engine.build import transform_config
    from opplan.errors import ConfigError

    if args.decay is not None and args.decay.strip().lower().replace("-", "") != "3step":
        raise ConfigError("--decay: multigrid runs the 3-step decay (PySlowFast's stepwise lr)")
    lengths = _ints("--lengths", args.lengths) if args.lengths else [max(config.graph.axes()[1])]
    if len(lengths) != 1:
        raise ConfigError(f"--lengths: multigrid takes the final clip length only, got {lengths}")
    trainer = config.trainer
    size = _ints("--size", args.size)[0] if args.size else None
    batch = _ints("--batch", args.batch)[0] if args.batch else trainer.optim.effective_batch
    return MultigridSchedule(
        lengths[0],
        size or transform_config(trainer.data).crop_size,
        batch,
        args.sampling,
        _ints("--epochs", args.epochs)[0],
        lrs,
        trainer.optim.reference_batch,
        short_cycle=args.short_cycle,
    )


def _printer(console: Any, n_steps: int | None = None) -> Any:
    def on_epoch(k: int, step: Any, epoch: int, metrics: dict[str, float]) -> None:
        console.print(
            f"  step {k + 1}{f'/{n_steps}' if n_steps else ''} {step.state}  epoch "
            f"{epoch}/{step.epochs}  lr {metrics['lr']:.3g}  loss {metrics['loss']:.4f}  "
            f"val {metrics['score']:.4f}"
        )

    return on_epoch


def run_grid_command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from opplan.baselines import (
        DECAYS,
        GridSpec,
        compare_costs,
        grid_cost,
        grid_table,
        parse_decay,
        plan_cost,
    )
    from opplan.baselines._run import run_grid
    from opplan.errors import ConfigError
    from opplan.fileio import atomic_write_json
    from opplan.planning.state import SAMPLINGS

    config = _video_config(args.config)
    assert config.trainer.kind == "video"  # _video_config checked it
    check_out_dir(args.out)
    views = _views(args.views)
    if args.plan is not None and not args.plan.is_dir():
        raise ConfigError(f"--plan: {args.plan} is not a run directory")
    try:
        spec = GridSpec.from_config(
            config,
            budgets=_ints("--budgets", args.budgets) if args.budgets else None,
            samplings=_words("--samplings", args.samplings, SAMPLINGS) if args.samplings else None,
            decays=[parse_decay(d) for d in args.decays.split(",")] if args.decays else DECAYS,
        )
    except ValueError as err:
        raise ConfigError(f"{args.config}: grid: {err}") from None
    states = [step.state for schedule in spec.schedules for step in schedule.steps()]
    check_video_states(config, states, f"{args.config}: grid")
    console = Console(highlight=False)
    console.print(f"[bold]opplan grid[/] {args.config} -> {args.out}: {len(spec.schedules)} runs")
    if args.search is not None:
        if args.test_cells:
            raise ConfigError("--test-cells goes with the full grid, not with --search")
        results = _run_search(args, config, spec, views, console)
    else:
        results = run_grid(
            config,
            spec,
            args.out,
            resume=args.resume,
            views=views,
            test_cells=args.test_cells,
            log=console.print,
        )
        console.print(grid_table(results))
    if args.plan is not None:
        comparison = compare_costs(plan_cost(args.plan, spec.reference_length), grid_cost(results))
        atomic_write_json(args.out / "cost_vs_plan.json", comparison)
        ratio = comparison["plan_over_grid"]
        console.print(
            f"plan {args.plan}: {comparison['plan']['epochs']} epochs "
            f"({100 * (ratio['epochs'] or 0):.1f} % of the grid's), "
            f"{comparison['plan']['training_seconds']:.0f} s of training "
            f"({100 * (ratio['training_seconds'] or 0):.1f} %), "
            f"{comparison['plan']['wall_seconds']:.0f} s wall"
        )
    return 0
