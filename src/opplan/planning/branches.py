"""Beyond the paper (issue 20): drop a whole branch of the graph that its first moves rule out.

The paper's graphs never mix samplings (§3.2, Fig. 1): below the virtual initial state they
fall apart into one *branch* per sampling -- in general, the connected components of the
graph without the initial state -- each with its own final state, and Eq. 2 only compares
them at the very end. Every move of a losing branch is then spent for nothing: on the peers
tasks (issue 20) that is 40-45 % of a plan's epochs (order: consecutive 132-145 of 338-360;
tempo: uniform 139-170 of 312-404), and it is why the planner costs more than ASHA over the
grid.

``planner.branches`` (off by default): moves out of non-initial states wait until every
move from the initial state has ended; then a branch whose best first-move value is below
the best branch's by more than ``branch_margin`` is dropped -- each of its other moves is
journaled as skipped (reason ``branch``, value -inf), so its states resolve without a model
and its finals cannot win. Unlike ASHA's or top-k's early rungs, the evidence is each first
move trained to its knee (``min_epochs_from_initial``, ``min_rise_from_initial``), not a
few epochs of a schedule. A pure function of journaled values: the same decision on every
executor and on resume. It is a heuristic, not a bound: a branch that starts worse and ends
better is lost when the gap exceeds the margin (measure with ``benchmarks.pruning replay
--branches``, which replays finished plans exactly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from opplan.planning.graph import TransitionGraph
from opplan.planning.progress import TransitionRecord
from opplan.planning.state import TrainingState

__all__ = ["BRANCH", "branch_of", "dropped_branches"]

BRANCH = "branch"  # the reason of a move skipped with its branch
Edge = tuple[TrainingState, TrainingState]


def branch_of(graph: TransitionGraph) -> dict[TrainingState, int]:
    """Each non-initial state's branch: connected components without the initial state,
    numbered in the order of the graph's states (deterministic)."""
    neighbours: dict[TrainingState, set[TrainingState]] = {
        s: set() for s in graph.states if not s.is_initial
    }
    for src, dst in graph.edges:
        if not src.is_initial:
            neighbours[src].add(dst)
            neighbours[dst].add(src)
    branch: dict[TrainingState, int] = {}
    for seed in neighbours:
        if seed in branch:
            continue
        label, stack = len(set(branch.values())), [seed]
        while stack:
            state = stack.pop()
            if state not in branch:
                branch[state] = label
                stack.extend(neighbours[state])
    return branch


def dropped_branches(
    graph: TransitionGraph,
    branch: Mapping[TrainingState, int],
    transitions: Mapping[Edge, TransitionRecord],
    margin: float,
) -> tuple[dict[int, float], set[int]] | None:
    """``(best first-move value per branch, dropped branches)`` once every move from the
    initial state has ended, else None. A branch is dropped when its best value is below
    the leader's minus ``margin``; a branch whose first moves all failed has -inf."""
    firsts = [(dst, transitions.get((src, dst))) for src, dst in graph.edges if src.is_initial]
    if any(r is None or not r.finished for _, r in firsts):
        return None
    best: dict[int, float] = {b: -math.inf for b in sorted(set(branch.values()))}
    for dst, record in firsts:
        assert record is not None
        value = record.value if record.value is not None and not record.failed else -math.inf
        best[branch[dst]] = max(best[branch[dst]], value)
    leader = max(best.values())
    if not math.isfinite(leader):
        return best, set()  # nothing to compare with: the plan fails as it would anyway
    return best, {b for b, v in best.items() if v < leader - margin}
