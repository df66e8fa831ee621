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


def simulate_edge(landscape: Landscape, src, dst, y0: float, opts: PlannerOptions):
    """(knee, observed, value) of one transition, computed directly from the landscape."""
    stopper = opts.stopper(src, y0)
    epoch = 0
    while True:
        epoch += 1
        if stopper.observe(simulated_score(landscape, src, dst, y0, epoch)):
            break
    knee = stopper.knee_epoch
    observed = stopper.scores[knee]
    value = stopper.value if (opts.value == "fitted" and stopper.from_fit) else observed
    return knee, observed, value


def brute_force(graph: TransitionGraph, landscape: Landscape, opts: PlannerOptions):
    """Every path from the initial state to a final state, with its simulated value."""
    memo: dict = {}
    finals = set(graph.finals)

    def edge(src, dst, y0):
        key = (src, dst, y0)
        if key not in memo:
            memo[key] = simulate_edge(landscape, src, dst, y0, opts)
        return memo[key]

    def walk(state: TrainingState, y0: float, path: list) -> Iterator[tuple[float, list]]:
        for nxt in graph.successors(state):
            knee, observed, value = edge(state, nxt, y0)
            step = [*path, (nxt, knee)]
            if nxt in finals:
                yield value, step
            yield from walk(nxt, observed, step)

    return list(walk(graph.initial, 0.0, []))


def run_plan(run: Path, graph, landscape, opts, epoch_delay: float = 0.0) -> Plan:
    with Journal(run / "journal.jsonl") as journal:
        return Planner(
            graph, SimulatedTrainer(run / "ck", landscape, epoch_delay), journal, opts
        ).run()
