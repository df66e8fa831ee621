"""The planner's racing, deferral and branch steps (beyond the paper, issue 17 item 3,
issue 20), apart from
the dynamic programming of :mod:`opplan.planning.planner` (Eq. 2), which mixes them in.

The decisions themselves are pure functions in :mod:`opplan.planning.racing`; this is the
bookkeeping around them: moves parked at a rung, cleared to go on, deferred and released.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from opplan.planning.branches import BRANCH, dropped_branches
from opplan.planning.executors import Edge
from opplan.planning.graph import TransitionGraph
from opplan.planning.journal import Op
from opplan.planning.knee import KneeStopper
from opplan.planning.options import PlannerOptions
from opplan.planning.progress import PlanState, TransitionRecord
from opplan.planning.racing import abandon_at_best, deferred_moves, is_rung, race_losers
from opplan.planning.state import TrainingState

__all__ = ["RaceDriver", "Running"]


@dataclass
class Running:
    """A transition the executor is working on."""

    stopper: KneeStopper
    y0: float
    retries: int = 0


class RaceDriver:
    """Racing and deferral state and steps of a :class:`~opplan.planning.planner.Planner`."""

    options: PlannerOptions
    progress: PlanState
    graph: TransitionGraph
    _branch: dict[TrainingState, int]
    _branches_decided: bool
    _preds: dict[TrainingState, tuple[TrainingState, ...]]
    _paused: dict[Edge, tuple[int, Running]]
    _cleared: dict[Edge, Running]
    _deferred: dict[TrainingState, dict[Edge, float]]
    _released: set[Edge]

    def _finish(self, record: TransitionRecord, stopper: KneeStopper) -> None:
        raise NotImplementedError  # the planner's

    def _emit(self, op: Op, **fields: Any) -> None:
        raise NotImplementedError  # the planner's

    def _pauses(self, edge: Edge, stopper: KneeStopper) -> bool:
        """Whether ``edge`` stops at this epoch for a race rung: racing on, siblings exist,
        the epoch is a rung and its fit succeeded (without one there is nothing to race)."""
        fit = stopper.last_fit
        return (
            self.options.race
            and len(self._preds[edge[1]]) > 1
            and is_rung(stopper.epoch, self.options.race_rung, self.options.race_growth)
            and fit is not None
            and fit.success
            and fit.n_points == stopper.epoch + 1
        )

    def _siblings(self, dst: TrainingState) -> dict[Edge, TransitionRecord | None]:
        """The moves into ``dst`` that take part in its race (not those still deferred)."""
        held = self._deferred.get(dst, {})
        return {
            (src, dst): self.progress.transitions.get((src, dst))
            for src in self._preds[dst]
            if (src, dst) not in held or (src, dst) in self._released
        }

    def _race(self) -> bool:
        """Decide every rung whose siblings have all got there; True if one was decided."""
        decided = False
        for rung, dst in sorted({(r, e[1]) for e, (r, _) in self._paused.items()}, key=str):
            decided |= self._race_at(dst, rung)
        return decided

    def _race_at(self, dst: TrainingState, rung: int) -> bool:
        """Abandon the losers parked at ``rung`` of ``dst`` once every sibling has reached it
        or ended (a pure function of their records at the rung); the rest are cleared."""
        siblings = self._siblings(dst)
        if any(
            r is None or not (r.finished or r.epochs_trained >= rung) for r in siblings.values()
        ):
            return False
        parked = [e for e, (r, _) in self._paused.items() if e[1] == dst and r == rung]
        records = {e: r for e, r in siblings.items() if r is not None}
        losers = race_losers(records, parked, rung, self.options.race_margin)
        for edge in parked:
            _, running = self._paused.pop(edge)
            if edge in losers:
                abandon_at_best(running.stopper, losers[edge])
                self._finish(records[edge], running.stopper)
            else:
                self._cleared[edge] = running
        return True

    def _held(self, dst: TrainingState) -> dict[Edge, float] | None:
        """The deferred moves into ``dst`` (with their bounds), once its sources resolved."""
        if dst not in self._deferred:
            if not all(s.is_initial or s in self.progress.states for s in self._preds[dst]):
                return None
            margin = self.options.defer_margin
            self._deferred[dst] = deferred_moves(dst, self.progress, self._preds, margin)
        return self._deferred[dst]

    def _defer(self) -> bool:
        """Once every other move into a state has ended, skip each deferred move whose bound
        is below the best value in hand, release the rest; True if one was decided."""
        if not self.options.defer:
            return False
        decided = False
        for dst, held in self._deferred.items():
            pending = [e for e in held if e not in self._released]
            pending = [e for e in pending if e not in self.progress.transitions]
            if not pending:
                continue
            others = [
                self.progress.transitions.get((s, dst))
                for s in self._preds[dst]
                if (s, dst) not in held
            ]
            if any(r is None or not r.finished for r in others):
                continue
            in_hand = max(
                (r.value for r in others if r and r.value is not None), default=-math.inf
            )
            for src, _ in pending:
                bound = held[src, dst]
                if bound < in_hand:
                    message = f"bound {bound:.4f} < {in_hand:.4f} in hand"
                    y0 = self.progress.states[src].observed
                    self._emit(
                        Op.TRANSITION_FAILED,
                        src=str(src),
                        dst=str(dst),
                        reason="deferred",
                        message=message,
                        y0=y0,
                    )
                else:
                    self._released.add((src, dst))
            decided = True
        return decided

    def _waits_for_branches(self, src: TrainingState) -> bool:
        """``planner.branches``: a move out of a trained state waits for the branch decision."""
        return self.options.branches and not src.is_initial and not self._branches_decided

    def _branches(self) -> bool:
        """Once every first move has ended, skip every other move of a dropped branch
        (:mod:`opplan.planning.branches`); True when decided."""
        if not self.options.branches or self._branches_decided:
            return False
        margin = self.options.branch_margin
        decision = dropped_branches(self.graph, self._branch, self.progress.transitions, margin)
        if decision is None:
            return False
        best, dropped = decision
        self._branches_decided = True
        leader = max(best.values())
        for src, dst in self.graph.edges:
            if src.is_initial or self._branch[dst] not in dropped:
                continue
            if (src, dst) in self.progress.transitions:  # journaled before a resume
                continue
            source = self.progress.states.get(src)
            self._emit(
                Op.TRANSITION_FAILED,
                src=str(src),
                dst=str(dst),
                reason=BRANCH,
                message=f"its branch's best first move {best[self._branch[dst]]:.4f} < "
                f"{leader:.4f} - margin {margin:g}",
                y0=0.0 if source is None else source.observed,
            )
        return True
