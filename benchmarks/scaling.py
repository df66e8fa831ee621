"""Planning wall time on W workers for the paper's Kinetics-400 setting (docs/scaling.md).

    python -m benchmarks.scaling [--config configs/paper/kinetics400.yaml] [--journal J]

Model of a plan run (every number is printed with the assumption it rests on):

* the transitions and their epochs: those of a finished plan's journal (``--journal``), or
  of planning the config's graph with the simulated trainer (its default landscape) under
  the config's planner options (T = 10, at most 100 epochs, §3.3);
* an epoch costs in proportion to its clip length (§5.2: same videos, longer clips), the
  one-clip evaluation after it being negligible next to training;
* calibration: run one after another, as the reference code does, the transitions take the
  paper's 288 hours on one 8-GPU data-parallel group (Table 4);
* dispatch (issue 7): a transition starts as soon as its source state is resolved, i.e. all
  transitions into the source have finished; W workers take ready transitions by list
  scheduling, in the planner's order (destination's topological index, then predecessor)
  or critical-path first (``--priority tail``);
* data parallel over g GPUs runs an epoch ``g * eff**log2(g)`` times faster than one GPU
  (``--ddp-efficiency``, per doubling of the GPUs).
"""

from __future__ import annotations

import argparse
import heapq
import math
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from opplan.config import load_config
from opplan.engine.settings import OptimSettings
from opplan.planning import Journal, Planner, TrainingState, TransitionGraph, read_journal
from opplan.planning.progress import PlanState
from opplan.planning.simulate import DefaultLandscape, SimulatedTrainer

__all__ = ["critical_path", "levels", "list_schedule", "main"]

Edge = tuple[TrainingState, TrainingState]


def transition_epochs(graph: TransitionGraph, options, journal: Path | None) -> dict[Edge, int]:  # type: ignore[no-untyped-def]
    """Epochs trained per transition (the knee epoch plus the delay T after it)."""
    if journal is not None:
        progress = PlanState.replay(read_journal(journal))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            trainer = SimulatedTrainer(Path(tmp) / "ck", DefaultLandscape(0, 0.01))
            with Journal(Path(tmp) / "journal.jsonl") as j:
                Planner(graph, trainer, j, options).run()
            progress = PlanState.replay(read_journal(Path(tmp) / "journal.jsonl"))
    return {key: rec.epochs_trained for key, rec in progress.transitions.items()}


def _edges(graph: TransitionGraph) -> list[Edge]:
    return [(src, dst) for dst in graph.states for src in graph.predecessors(dst)]


def levels(graph: TransitionGraph) -> dict[TrainingState, int]:
    """Depth of every state: 0 for the initial one, 1 + the deepest predecessor's."""
    depth = {graph.initial: 0}
    for state in graph.states:  # topological order
        depth[state] = 1 + max(depth[p] for p in graph.predecessors(state))
    return depth


def critical_path(graph: TransitionGraph, hours: Mapping[Edge, float]) -> tuple[float, list[Edge]]:
    """Wall time with unlimited workers and the chain of transitions that sets it."""
    resolved = {graph.initial: 0.0}
    via: dict[TrainingState, Edge] = {}
    for state in graph.states:
        finish = {(p, state): resolved[p] + hours[p, state] for p in graph.predecessors(state)}
        via[state] = max(finish, key=lambda e: finish[e])
        resolved[state] = finish[via[state]]
    end = max(graph.states, key=lambda s: resolved[s])
    chain, state = [], end
    while state != graph.initial:
        chain.append(via[state])
        state = via[state][0]
    return resolved[end], chain[::-1]


def _tails(graph: TransitionGraph, hours: Mapping[Edge, float]) -> dict[Edge, float]:
    """Longest chain of transitions from each transition to the end (itself included)."""
    tail: dict[Edge, float] = {}
    for dst in reversed(graph.states):
        after = max((tail[dst, n] for n in graph.successors(dst)), default=0.0)
        for src in graph.predecessors(dst):
            tail[src, dst] = hours[src, dst] + after
    return tail


def list_schedule(
    graph: TransitionGraph,
    hours: Mapping[Edge, float],
    workers: int,
    priority: Callable[[Edge], object],
    demand: Mapping[Edge, int] | None = None,
) -> tuple[float, int]:
    """Makespan of the dispatch rule; also the most transitions running at once.

    ``workers`` slots (GPUs when ``demand`` gives each transition's GPU count): whenever
    slots free up, ready transitions start in priority order, skipping those that do not
    fit (a smaller one behind them may start: first fit).
    """
    need = demand or dict.fromkeys(hours, 1)
    waiting = {s: len(graph.predecessors(s)) for s in graph.states}
    ready: list[tuple[object, Edge]] = []

    def release(state: TrainingState) -> None:
        ready.extend((priority((state, nxt)), (state, nxt)) for nxt in graph.successors(state))
        ready.sort(key=lambda item: item[0])  # type: ignore[arg-type, return-value]

    release(graph.initial)
    running: list[tuple[float, int, Edge]] = []
    now, peak, free, started = 0.0, 0, workers, 0
    while ready or running:
        for item in list(ready):
            edge = item[1]
            if need[edge] <= free:
                ready.remove(item)
                free -= need[edge]
                heapq.heappush(running, (now + hours[edge], started, edge))
                started += 1
        peak = max(peak, len(running))
        now, _, edge = heapq.heappop(running)
        free += need[edge]
        waiting[edge[1]] -= 1
        if waiting[edge[1]] == 0:  # the destination resolved: its transitions may start
            release(edge[1])
    return now, peak


def ddp_speedup(gpus: int, efficiency: float) -> float:
    return gpus * efficiency ** math.log2(gpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/paper/kinetics400.yaml")
    parser.add_argument("--journal", type=Path, help="epochs from this plan's journal")
    parser.add_argument("--paper-hours", type=float, default=288.0)
    parser.add_argument("--paper-gpus", type=int, default=8)
    parser.add_argument("--ddp-efficiency", type=float, default=0.9)
    parser.add_argument("--priority", choices=["planner", "tail"], default="planner")
    args = parser.parse_args()
    config = load_config(args.config)
    graph = config.graph.build()
    epochs = transition_epochs(graph, config.planner.options(), args.journal)
    reference = min(s.clip_length for s in graph.states)
    cost = {e: epochs[e] * e[1].clip_length / reference for e in _edges(graph)}
    unit = args.paper_hours / sum(cost.values())  # hours of a reference epoch, 8 GPUs
    hours = {e: c * unit for e, c in cost.items()}
    total = sum(hours.values())
    depth = levels(graph)
    topo = {s: k for k, s in enumerate(graph.states)}
    tails = _tails(graph, hours)
    ranks: dict[str, Callable[[Edge], object]] = {
        "planner": lambda e: (topo[e[1]], graph.predecessors(e[1]).index(e[0])),
        "tail": lambda e: -tails[e],  # critical-path first
    }
    rank = ranks[args.priority]
    span, chain = critical_path(graph, hours)

    print(f"graph: {graph!r}; {len(hours)} transitions, {sum(epochs.values())} epochs")
    print(
        f"calibration: 1 epoch of {reference}f clips on {args.paper_gpus} GPUs = {unit:.3f} h "
        f"(sum of transitions = {total:.0f} h)"
    )
    print(f"critical path: {span:.1f} h over {len(chain)} transitions:")
    for src, dst in chain:
        print(f"  {src} -> {dst}: {epochs[src, dst]} epochs, {hours[src, dst]:.1f} h")
    print("\n| level (source depth) | transitions | epochs | hours |\n|---|---|---|---|")
    for level in sorted({depth[e[0]] for e in hours}):
        mine = [e for e in hours if depth[e[0]] == level]
        print(
            f"| {level} | {len(mine)} | {sum(epochs[e] for e in mine)} | "
            f"{sum(hours[e] for e in mine):.1f} |"
        )
    other = "tail" if args.priority == "planner" else "planner"
    print(
        f"\n| workers ({args.paper_gpus} GPUs each) | wall (h) | speed-up | most running | "
        f"lower bound max(path, sum/W) | wall, {other} order (h) |\n|---|---|---|---|---|---|"
    )
    for workers in (1, 2, 4, 8, 16, 32, len(hours)):
        wall, peak = list_schedule(graph, hours, workers, rank)
        alt, _ = list_schedule(graph, hours, workers, ranks[other])
        bound = max(span, total / workers)
        print(
            f"| {workers} | {wall:.1f} | {total / wall:.2f}x | {peak} | {bound:.1f} | {alt:.1f} |"
        )
    one_gpu = {e: h * ddp_speedup(args.paper_gpus, args.ddp_efficiency) for e, h in hours.items()}
    budgets = (8, 32, 64, 256)
    print(
        f"\nwall hours for a GPU budget G = g GPUs per transition x G/g transitions at once "
        f"(DDP efficiency {args.ddp_efficiency} per doubling)\n"
    )
    print("| g \\ G | " + " | ".join(str(b) for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for g in (1, 2, 4, 8, 16, 32):
        cells = []
        for budget in budgets:
            if g > budget:
                cells.append("")
                continue
            speed = ddp_speedup(g, args.ddp_efficiency)
            scaled = {e: h / speed for e, h in one_gpu.items()}
            wall, _ = list_schedule(graph, scaled, budget // g, rank)
            cells.append(f"{wall:.0f}")
        print(f"| {g} | " + " | ".join(cells) + " |")
    # exact DDP (whole micro-batches) uses up to `accumulation steps` GPUs: 4 / 8 / 32 for
    # 16f / 32f / 128f clips at the config's batch settings -- cost-proportional shares
    optim = OptimSettings(**config.trainer.optim.model_dump())
    cells = []
    for budget in budgets:
        gpus = {e: min(optim.accumulation_steps(e[1].clip_length), budget) for e in hours}
        scaled = {e: h / ddp_speedup(gpus[e], args.ddp_efficiency) for e, h in one_gpu.items()}
        wall, _ = list_schedule(graph, scaled, budget, rank, demand=gpus)
        cells.append(f"{wall:.0f}")
    shares = sorted({(c, optim.accumulation_steps(c)) for c in (e[1].clip_length for e in hours)})
    label = " / ".join(f"{g} at {c}f" for c, g in shares)
    print(f"| accumulation steps ({label}) | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
