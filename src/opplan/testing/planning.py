"""Reference implementations the tests check the planner against (brute force over paths)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from opplan.planning import (
    Journal,
    Plan,
    Planner,
    PlannerOptions,
    PlanState,
    TrainingState,
    TransitionGraph,
    read_journal,
)
from opplan.planning.simulate import Landscape, SimulatedTrainer, simulated_score

__all__ = ["brute_force", "cut_plan", "run_plan", "simulate_edge", "untimed"]


Steps = list[tuple[TrainingState, int]]  # (state, knee epoch) per step


def simulate_edge(
    landscape: Landscape,
    src: TrainingState,
    dst: TrainingState,
    y0: float,
    opts: PlannerOptions,
) -> tuple[int, float, float]:
    """(knee, observed, value) of one transition, computed directly from the landscape."""
    stopper = opts.stopper(src, y0)
    epoch = 0
    while True:
        epoch += 1
        if stopper.observe(simulated_score(landscape, src, dst, y0, epoch)):
            break
    knee = stopper.knee_epoch
    assert knee is not None and stopper.value is not None  # set once observe() says stop
    observed = stopper.scores[knee]
    value = stopper.value if (opts.value == "fitted" and stopper.from_fit) else observed
    return knee, observed, value


def brute_force(
    graph: TransitionGraph, landscape: Landscape, opts: PlannerOptions
) -> list[tuple[float, Steps]]:
    """Every path from the initial state to a final state, with its simulated value."""
    memo: dict[tuple[TrainingState, TrainingState, float], tuple[int, float, float]] = {}
    finals = set(graph.finals)

    def edge(src: TrainingState, dst: TrainingState, y0: float) -> tuple[int, float, float]:
        key = (src, dst, y0)
        if key not in memo:
            memo[key] = simulate_edge(landscape, src, dst, y0, opts)
        return memo[key]

    def walk(state: TrainingState, y0: float, path: Steps) -> Iterator[tuple[float, Steps]]:
        for nxt in graph.successors(state):
            knee, observed, value = edge(state, nxt, y0)
            step = [*path, (nxt, knee)]
            if nxt in finals:
                yield value, step
            yield from walk(nxt, observed, step)

    return list(walk(graph.initial, 0.0, []))


def run_plan(
    run: Path,
    graph: TransitionGraph,
    landscape: Landscape,
    opts: PlannerOptions,
    epoch_delay: float = 0.0,
) -> Plan:
    with Journal(run / "journal.jsonl") as journal:
        return Planner(
            graph, SimulatedTrainer(run / "ck", landscape, epoch_delay), journal, opts
        ).run()


def cut_plan(source: Path, run: Path, cut: float) -> PlanState:
    """A crash: ``source``'s checkpoints and the first ``cut`` of its journal copied to
    ``run``; returns the progress a resume replays from it."""
    shutil.copytree(source / "ck", run / "ck")
    lines = (source / "journal.jsonl").read_text().splitlines(keepends=True)
    (run / "journal.jsonl").write_text("".join(lines[: int(cut * len(lines))]))
    return PlanState.replay(read_journal(run / "journal.jsonl"))


def untimed(plan: dict[str, Any]) -> dict[str, Any]:
    """``plan`` (a ``Plan.to_dict()``) without its seconds, which differ between runs."""
    plan["cost"].pop("wall_seconds"), plan["cost"].pop("compute_seconds")
    for t in plan["transitions"]:
        t.pop("seconds")
    return plan
