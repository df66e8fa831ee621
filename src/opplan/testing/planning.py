"""Reference implementations the tests check the planner against (brute force over paths)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from opplan.planning import (
    Journal,
    Plan,
    Planner,
    PlannerOptions,
    TrainingState,
    TransitionGraph,
)
from opplan.planning.simulate import Landscape, SimulatedTrainer, simulated_score

__all__ = ["brute_force", "run_plan", "simulate_edge"]


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
