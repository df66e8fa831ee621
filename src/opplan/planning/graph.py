"""Candidate transition graphs (§3.2, Fig. 1).

Rules of the paper's graphs, for each sampling separately (samplings never mix):

* the virtual initial state moves to the highest learning rate with the two shortest clips
  ("training only starts from high learning rate and short input clips");
* basic moves: one step longer clip (same lr) or one step lower lr (same clip);
* the extended graph adds one step shorter clip *and* one step lower lr at once;
* the final state of a sampling is (longest clip, lowest lr).

Any other DAG can be given as an explicit edge list (:meth:`TransitionGraph.from_edges`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from opplan.errors import ConfigError
from opplan.planning.axes import ExtraAxis, as_axes, grid_edges
from opplan.planning.state import INITIAL, SAMPLINGS, ExtraValue, TrainingState

__all__ = ["Edge", "GraphError", "GraphKind", "TransitionGraph"]

GraphKind = Literal["basic", "extended"]
Edge = tuple[TrainingState, TrainingState]


class GraphError(ConfigError):
    """The graph is not a valid plan space; the message names the offending state."""


class TransitionGraph:
    """A validated DAG of training states rooted at the virtual initial state.

    Example:
        >>> g = TransitionGraph.build("extended", ["uniform"], [16, 32, 64], [0.01, 0.001, 1e-4])
        >>> len(g.edges), [str(s) for s in g.finals]
        (18, ['uniform 64f lr=0.0001'])
    """

    def __init__(self, edges: Iterable[Edge], finals: Iterable[TrainingState] | None = None):
        edge_list: list[Edge] = []
        seen: set[Edge] = set()
        for src, dst in edges:
            if dst.is_initial:
                raise GraphError(f"no transition may lead into the initial state (from {src})")
            if src == dst:
                raise GraphError(f"state {src} has a transition to itself")
            if (src, dst) not in seen:
                seen.add((src, dst))
                edge_list.append((src, dst))
        if not edge_list:
            raise GraphError("the graph has no transitions")
        self._successors: dict[TrainingState, list[TrainingState]] = {INITIAL: []}
        self._predecessors: dict[TrainingState, list[TrainingState]] = {INITIAL: []}
        for src, dst in edge_list:
            for s in (src, dst):
                self._successors.setdefault(s, [])
                self._predecessors.setdefault(s, [])
            self._successors[src].append(dst)
            self._predecessors[dst].append(src)
        if finals is None:
            final_set = [s for s, succ in self._successors.items() if not succ and s != INITIAL]
        else:
            final_set = list(dict.fromkeys(finals))
            for f in final_set:
                if f not in self._successors:
                    raise GraphError(f"final state {f} is not in the graph")
        self._finals = tuple(sorted(final_set, key=TrainingState.sort_key))
        self._order = self._topological_sort()
        self._edges = tuple(
            (src, dst)
            for src in self._order
            for dst in sorted(self._successors[src], key=TrainingState.sort_key)
        )
        self._validate_reachability()

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        kind: GraphKind,
        samplings: Sequence[str],
        clip_lengths: Sequence[int],
        learning_rates: Sequence[float],
        *,
        extra_axes: Sequence[ExtraAxis] | Mapping[str, Sequence[ExtraValue]] = (),
    ) -> TransitionGraph:
        """The paper's basic or extended graph over the given grid (§3.2, Fig. 1), with
        ``extra_axes`` (:mod:`opplan.planning.axes`, beyond the paper) as further moves."""
        if kind not in ("basic", "extended"):
            raise GraphError(f"graph kind must be 'basic' or 'extended', got {kind!r}")
        for name, values in (
            ("samplings", samplings),
            ("clip_lengths", clip_lengths),
            ("learning_rates", learning_rates),
        ):
            if len(values) == 0:
                raise GraphError(f"{name} must not be empty")
            if len(set(values)) != len(values):
                raise GraphError(f"{name} has duplicates: {list(values)}")
        for sampling in samplings:
            if sampling not in SAMPLINGS:
                raise GraphError(f"unknown sampling {sampling!r}; expected one of {SAMPLINGS}")
        lengths = sorted(int(x) for x in clip_lengths)
        lrs = sorted((float(x) for x in learning_rates), reverse=True)
        axes = as_axes(extra_axes)
        edges: list[Edge] = []
        finals: list[TrainingState] = []
        for sampling in samplings:
            grid, final = grid_edges(kind == "extended", sampling, lengths, lrs, axes)
            edges.extend(grid)
            finals.append(final)
        return cls(edges, finals)

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[Sequence[str | TrainingState] | Mapping[str, str | TrainingState]],
        finals: Iterable[str | TrainingState] | None = None,
    ) -> TransitionGraph:
        """An explicit graph, e.g. parsed from YAML.

        Each edge is ``[src, dst]`` or ``{"from": src, "to": dst}`` where a state is a
        :class:`TrainingState` or its text form (``"uniform 32f lr=0.001"``, ``"initial"``).
        ``finals`` defaults to the states without outgoing transitions.
        """
        parsed: list[Edge] = []
        for k, edge in enumerate(edges):
            if isinstance(edge, Mapping):
                if set(edge) != {"from", "to"}:
                    raise GraphError(
                        f"edges[{k}]: expected keys 'from' and 'to', got {sorted(edge)}"
                    )
                pair: Sequence[str | TrainingState] = (edge["from"], edge["to"])
            else:
                pair = edge
            if isinstance(pair, str) or len(pair) != 2:
                raise GraphError(f"edges[{k}]: expected a [from, to] pair, got {edge!r}")
            try:
                parsed.append((_as_state(pair[0]), _as_state(pair[1])))
            except ValueError as err:
                raise GraphError(f"edges[{k}]: {err}") from None
        final_states = None
        if finals is not None:
            try:
                final_states = [_as_state(f) for f in finals]
            except ValueError as err:
                raise GraphError(f"finals: {err}") from None
        return cls(parsed, final_states)

    # -- properties ---------------------------------------------------------------------
    @property
    def initial(self) -> TrainingState:
        return INITIAL

    @property
    def states(self) -> tuple[TrainingState, ...]:
        """All real states (not the virtual initial one), in topological order."""
        return tuple(s for s in self._order if not s.is_initial)

    @property
    def edges(self) -> tuple[Edge, ...]:
        return self._edges

    @property
    def finals(self) -> tuple[TrainingState, ...]:
        return self._finals

    def topological_order(self) -> tuple[TrainingState, ...]:
        """All states, the initial one first; deterministic (ties broken by state order)."""
        return self._order

    def predecessors(self, state: TrainingState) -> tuple[TrainingState, ...]:
        return tuple(sorted(self._predecessors[state], key=TrainingState.sort_key))

    def successors(self, state: TrainingState) -> tuple[TrainingState, ...]:
        return tuple(sorted(self._successors[state], key=TrainingState.sort_key))

    def __contains__(self, state: object) -> bool:
        return state in self._successors

    def __repr__(self) -> str:
        return (
            f"TransitionGraph({len(self.states)} states, {len(self.edges)} edges, "
            f"finals={[str(f) for f in self.finals]})"
        )

    # -- validation ---------------------------------------------------------------------
    def _topological_sort(self) -> tuple[TrainingState, ...]:
        indegree = {s: len(p) for s, p in self._predecessors.items()}
        heap = [(s.sort_key(), s) for s, d in indegree.items() if d == 0]
        heapq.heapify(heap)
        order: list[TrainingState] = []
        while heap:
            _, state = heapq.heappop(heap)
            order.append(state)
            for nxt in self._successors[state]:
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    heapq.heappush(heap, (nxt.sort_key(), nxt))
        if len(order) != len(indegree):
            stuck = sorted((s for s, d in indegree.items() if d > 0), key=TrainingState.sort_key)
            raise GraphError(
                f"the transition graph has a cycle through state {stuck[0]} "
                f"(states on or behind a cycle: {', '.join(map(str, stuck))})"
            )
        return tuple(order)

    def _validate_reachability(self) -> None:
        reachable = _closure([INITIAL], self._successors)
        for state in self._order:
            if state not in reachable:
                raise GraphError(f"state {state} is not reachable from the initial state")
        if not self._finals:
            raise GraphError("the graph has no final state")
        can_finish = _closure(self._finals, self._predecessors)
        for state in self._order:
            if state not in can_finish:
                raise GraphError(f"state {state} cannot reach any final state")


def _as_state(value: str | TrainingState) -> TrainingState:
    return value if isinstance(value, TrainingState) else TrainingState.parse(str(value))


def _closure(
    start: Iterable[TrainingState], step: Mapping[TrainingState, list[TrainingState]]
) -> set[TrainingState]:
    seen = set(start)
    stack = list(seen)
    while stack:
        for nxt in step[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen
