"""Beyond the paper (issue 17): spend epochs where the answer can still change.

Eq. 2 keeps one incoming move per state, so the epochs of a move that cannot win are spent
for nothing. Two deterministic rules cut them; both are pure functions of journaled records
(scores, fits, values of resolved states), never of which worker finished first, so the
local and the Ray executor give the same plan and a resumed plan equals an uninterrupted one.

**Racing** (``planner.race``), successive halving over the moves into one state. Rungs are
epochs ``r, 2r, 4r, ...`` (``race_growth`` 2; at 1 every epoch from ``r`` on). A move that
reaches a rung with a successful fit pauses there until every sibling move (same
destination) has reached that rung or ended; then, with each sibling *viewed at the rung*
(its fit of epochs 0..r, whatever it did later):

- pessimistic value: a move that ended before the rung, its value; otherwise the best value
  of its rung fit over epochs 0..r; both minus ``margin``;
- optimistic value: :meth:`KneeStopper.optimistic_bound` of the rung fit (the fitted peak
  over the whole budget or the best score seen, plus ``margin`` and twice the fit's RMSE);

a paused move whose optimistic value is below the best pessimistic one (the leader's) is
abandoned at its best fitted epoch so far (:func:`abandon_at_best`); the rest go on. The
leader is never abandoned (its pessimistic value is below its own optimistic one), nor is a
move from the initial state: a from-scratch curve is flat for a while and then takes off
(§5.2's warm-up; ``min_rise_from_initial``), so the Table 1 fit of its first epochs is no
upper bound -- on the real `tempo` plan (Table 4 setting, seed 0) racing otherwise dropped
initial -> consecutive 8f lr=0.1 at epoch 10, which went on to win its state at 0.766.

**Deferring** (``planner.defer``). Once every source of a state's incoming moves is resolved
each move ``S -> T`` gets a prior bound on its value before any epoch is spent:

    B(S -> T) = V(S) + max(0, G(kind)) + margin,

G(kind) being the largest gain ``value - y0`` that a finished move of the same kind (clip
longer/shorter/same, lr lower/higher/same, see :func:`move_kind`) into an *ancestor* of T
has shown. Why it is optimistic: every ancestor's moves ended before T's sources resolved,
they started from models no better than T's sources on the whole (scores rise along a
path), and a fine-tuning move of the same kind gains less the better its starting model is
(the remaining error shrinks) -- so the largest gain seen upstream over-states what the same
kind of move can still add here; ``margin`` covers evaluation noise. No finished move of the
kind, no bound (B = inf: never deferred on no evidence). A sibling's value is at least
``P(S' -> T) = V(S') - margin``: the kept epoch is the argmax of a fitted curve that includes
epoch 0, the starting model. A move with ``B < max P`` of its siblings is *deferred*: it does
not start until its other siblings have ended; then it is skipped (journaled as a
``deferred`` transition with value -inf and its bound) if ``B`` is below the best value in
hand, and run otherwise -- the bound may say it still matters once the siblings are known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from opplan.planning.knee import KneeFit, KneeStopper
from opplan.planning.progress import PlanState, TransitionRecord
from opplan.planning.state import TrainingState

__all__ = [
    "RACED",
    "RungView",
    "abandon_at_best",
    "deferred_moves",
    "is_rung",
    "move_kind",
    "prior_bound",
    "race_losers",
    "rung_view",
]

RACED = "raced"  # reason prefix of a move abandoned at a rung
Edge = tuple[TrainingState, TrainingState]


def is_rung(epoch: int, first: int, growth: float = 2.0) -> bool:
    """Whether ``epoch`` is a rung: ``r_0 = first``, ``r_k+1 = max(r_k + 1, ceil(r_k *
    growth))`` -- ``first * 2**k`` by default, every epoch from ``first`` on at growth 1."""
    if first < 1 or growth < 1:
        raise ValueError(f"rungs need first >= 1 and growth >= 1, got {first}, {growth}")
    rung = first
    while rung < epoch:
        rung = max(rung + 1, math.ceil(rung * growth))
    return rung == epoch


@dataclass(frozen=True)
class RungView:
    """A sibling move seen at a rung: pessimistic and optimistic values (score units)."""

    pessimistic: float
    optimistic: float


def _fit_at(record: TransitionRecord, epoch: int) -> KneeFit | None:
    """The journaled fit of epochs 0..``epoch`` (None if there was none)."""
    return next((f for f in record.fits if f.n_points == epoch + 1), None)


def rung_view(record: TransitionRecord, rung: int, margin: float) -> RungView | None:
    """``record`` seen at ``rung``; None for a failed (or deferred) move, which takes no part.

    A move that ended before the rung -- or at it, unless it was abandoned there by the race
    itself -- is seen by its value; any other by its fit of epochs 0..rung (neutral without
    a successful fit: it can neither lead nor be dropped).
    """
    if record.failed:
        return None
    if record.finished and (
        record.epochs_trained < rung
        or (record.epochs_trained == rung and not record.reason.startswith(RACED))
    ):
        assert record.value is not None
        return RungView(record.value - margin, record.value)
    fit = _fit_at(record, rung)
    if fit is None or not fit.success:
        return RungView(-math.inf, math.inf)
    best_so_far = float(np.max(fit.predict(np.arange(rung + 1, dtype=float))))
    seen = [y for y in record.scores[: rung + 1] if math.isfinite(y)]
    optimistic = max([fit.peak, *seen]) + margin + 2.0 * fit.rmse  # as optimistic_bound
    return RungView(best_so_far - margin, optimistic)


def race_losers(
    siblings: Mapping[Edge, TransitionRecord], paused: Iterable[Edge], rung: int, margin: float
) -> dict[Edge, str]:
    """The paused moves to abandon at ``rung``, each with its reason (see the module doc)."""
    views = {e: v for e, r in siblings.items() if (v := rung_view(r, rung, margin)) is not None}
    if not views:
        return {}
    leader = max(views, key=lambda e: views[e].pessimistic)
    best = views[leader].pessimistic
    losers = {}
    for edge in paused:
        if edge[0].is_initial:  # a from-scratch curve's early fit is no bound (see the doc)
            continue
        view = views.get(edge)
        if view is not None and view.optimistic < best:
            losers[edge] = (
                f"{RACED} at epoch {rung}: bound {view.optimistic:.4f} < "
                f"{leader[0]}'s pessimistic {best:.4f}"
            )
    return losers


def abandon_at_best(stopper: KneeStopper, reason: str) -> None:
    """Stop ``stopper`` now at the best epoch of its last fit over the epochs seen, with that
    fitted value (never a value extrapolated beyond what was trained)."""
    fit = stopper.last_fit
    assert fit is not None and fit.success and not stopper.stopped
    curve = fit.predict(np.arange(stopper.epoch + 1, dtype=float))
    kept = int(np.argmax(curve))
    stopper.abandon(reason)
    stopper.knee_epoch, stopper.value = kept, float(curve[kept])


# -- deferring ----------------------------------------------------------------------------
def move_kind(src: TrainingState, dst: TrainingState) -> tuple[object, ...]:
    """What a move changes: clip (-1/0/1), lr (-1/0/1), sampling, extra axes; from scratch
    is a kind of its own."""
    if src.is_initial:
        return ("scratch",)

    def sign(a: float, b: float) -> int:
        return (b > a) - (b < a)

    return (
        sign(src.clip_length, dst.clip_length),
        sign(src.lr, dst.lr),
        src.sampling != dst.sampling,
        src.extra != dst.extra,
    )


def _ancestors(
    state: TrainingState, predecessors: Mapping[TrainingState, Sequence[TrainingState]]
) -> set[TrainingState]:
    seen: set[TrainingState] = set()
    todo = list(predecessors[state])
    while todo:
        s = todo.pop()
        if s not in seen and not s.is_initial:
            seen.add(s)
            todo.extend(predecessors[s])
    return seen


def prior_bound(
    edge: Edge,
    progress: PlanState,
    predecessors: Mapping[TrainingState, Sequence[TrainingState]],
    margin: float,
) -> float:
    """B(S -> T) of the module doc (``inf`` without a finished move of the same kind)."""
    src, dst = edge
    if src.is_initial:
        return math.inf
    kind = move_kind(src, dst)
    upstream = _ancestors(dst, predecessors)
    gains = [
        r.value - r.y0
        for (a, b), r in progress.transitions.items()
        if b in upstream
        and r.finished
        and not r.failed
        and r.value is not None
        and move_kind(a, b) == kind
    ]
    if not gains:
        return math.inf
    return progress.states[src].value + max(0.0, max(gains)) + margin


def deferred_moves(
    dst: TrainingState,
    progress: PlanState,
    predecessors: Mapping[TrainingState, Sequence[TrainingState]],
    margin: float,
) -> dict[Edge, float]:
    """The moves into ``dst`` to defer, with their prior bounds; every source of ``dst``
    must be resolved."""
    sources = predecessors[dst]
    if len(sources) < 2:
        return {}
    floor = {
        s: progress.states[s].value - margin if not s.is_initial else -math.inf for s in sources
    }
    held = {}
    for src in sources:
        if src.is_initial or progress.states[src].checkpoint is None:
            continue  # from scratch: no bound; without a model: "unreachable" already
        bound = prior_bound((src, dst), progress, predecessors, margin)
        others = max((floor[s] for s in sources if s != src), default=-math.inf)
        if bound < others:
            held[src, dst] = bound
    return held
