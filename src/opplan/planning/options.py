"""The planner's knobs (:class:`PlannerOptions`): the paper's (§3.3) and those beyond it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from opplan.planning.curves import FamilyName
from opplan.planning.knee import KneeStopper
from opplan.planning.noise_rule import NoiseAwareStopper
from opplan.planning.state import TrainingState

__all__ = ["PlannerOptions"]


@dataclass(frozen=True)
class PlannerOptions:
    """Knobs of the planner.

    Args:
        delay: T of §3.3 (the paper fixes 10).
        max_epochs: cap on one transition's epochs.
        family: Table 1 curve family for the knee fits.
        value: ``fitted`` -- an edge's value is the fitted curve's peak (robust to the noise
            of one evaluation); ``observed`` -- the score measured at the knee epoch, as in
            the paper's V(Si -> Sj).
        keep_checkpoints: keep every epoch checkpoint; by default a transition keeps only
            its knee and its latest epoch once it ends (a failed one keeps none).
        min_epochs: no transition stops before this epoch (default 0: the paper's rule).
        min_epochs_from_initial: the same floor for transitions out of the initial state
            only (training from scratch often starts with a flat stretch).
        min_rise_from_initial: beyond the paper, 0 = off -- a transition out of the initial
            state accepts a knee only once its fitted curve has risen more than this many
            fit RMSEs above its epoch-1 value (:meth:`KneeStopper.has_risen`): a from-scratch
            curve still flat at chance runs on to ``max_epochs``.
        max_retries: restarts of a transition whose worker died or stalled (from its last
            journaled epoch) before it is marked failed.
        prune: beyond the paper, off by default -- abandon a running transition as soon as
            its optimistic bound (:meth:`KneeStopper.optimistic_bound`) falls below the best
            value already known for its destination (a finished sibling's): it cannot win
            Eq. 2. Saves epochs; with parallel executors which sibling finishes first, hence
            what is pruned, depends on timing.
        prune_margin: slack added to the bound (score units).
        rule: ``paper`` (default) -- stop at ``t >= t* + delay`` (§3.3); ``noise`` -- beyond
            the paper, :class:`~opplan.planning.noise_rule.NoiseAwareStopper`: stop once the
            fitted curve's remaining gain is below the evaluation noise (``delay`` unused).
        noise: the noise rule's std of one evaluation (score units); 0 = binomial on
            ``eval_count`` validation videos.
        eval_count: validation videos behind one score (the CLI sets it from the split).
        noise_z: noise stds a remaining gain or a recovering rise must exceed.
        noise_patience: consecutive quiet epochs before the noise rule stops.
        noise_window: epochs over which the noise rule measures a recovering rise.
        race: beyond the paper, off by default -- successive halving over the moves into one
            state (:mod:`opplan.planning.racing`): they pause at epochs ``race_rung * 2**k``
            until all have got there, and one whose optimistic bound is below the leader's
            pessimistic value is abandoned. Deterministic (same plan on every executor and on
            resume); each pause costs one trainer ``resume`` when the move goes on.
        score_start: beyond the paper, off by default -- score a move's starting model in the
            new state (one ``evaluate()`` after ``start``) and use that as its y0, instead of
            the source's score in the source's own state (the paper's V(Si)): a clip-length
            change costs points before any step (issue 17 item 1), which the paper's y0 hides,
            so such moves end at knee 0 on the first epoch's apparent "dip". Moves from the
            initial state keep y0 = 0.
        race_rung: the first rung (epochs).
        race_growth: each rung is this many times the previous one (at least one more
            epoch; 1 = every epoch from ``race_rung`` on).
        race_margin: noise margin of the race's bounds (score units).
        defer: beyond the paper, off by default -- a move whose prior bound (its source's
            value plus the largest gain of a finished move of the same kind upstream) is
            below a sibling's source value waits until its siblings end, and is skipped
            (journaled as ``deferred``) if the bound is below the best value then in hand.
        defer_margin: noise margin of the deferral bounds (score units).
        branches: beyond the paper, off by default -- once every move from the initial state
            has ended, drop each branch of the graph (a sampling, in the paper's graphs; a
            connected component below the initial state) whose best first move is more than
            ``branch_margin`` below the best branch's: its other moves are skipped
            (journaled with reason ``branch``) and its finals cannot win
            (:mod:`opplan.planning.branches`). A heuristic, not a bound.
        branch_margin: how far below the leading branch a branch's best first move may be
            and still be explored (score units; 0.1 = 6 of 60 validation videos).
    """

    delay: int = 10
    max_epochs: int = 100
    family: FamilyName = "exponential"
    value: Literal["fitted", "observed"] = "fitted"
    keep_checkpoints: bool = False
    min_epochs: int = 0
    min_epochs_from_initial: int = 0
    min_rise_from_initial: float = 0.0
    max_retries: int = 2
    prune: bool = False
    prune_margin: float = 0.02
    rule: Literal["paper", "noise"] = "paper"
    noise: float = 0.0
    eval_count: int = 0
    noise_z: float = 1.0
    noise_patience: int = 2
    noise_window: int = 3
    race: bool = False
    race_rung: int = 5
    race_growth: float = 2.0
    race_margin: float = 0.01
    defer: bool = False
    defer_margin: float = 0.01
    score_start: bool = False
    branches: bool = False
    branch_margin: float = 0.1

    def __post_init__(self) -> None:
        if self.race_rung < 1 or self.race_growth < 1:
            raise ValueError(
                f"race_rung and race_growth must be >= 1, got {self.race_rung}, {self.race_growth}"
            )
        if self.race_margin < 0 or self.defer_margin < 0 or self.branch_margin < 0:
            raise ValueError("race_margin, defer_margin and branch_margin must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stopper(self, src: TrainingState, y0: float) -> KneeStopper:
        """The knee stopper of a transition out of ``src`` starting from a ``y0`` model."""
        floor = max(self.min_epochs, self.min_epochs_from_initial if src.is_initial else 0)
        args = (
            y0,
            self.delay,
            self.max_epochs,
            self.family,
            min(floor, self.max_epochs),
            self.min_rise_from_initial if src.is_initial else 0.0,
        )
        if self.rule == "noise":  # beyond the paper
            return NoiseAwareStopper(
                *args,
                noise=self.noise,
                eval_count=self.eval_count,
                z=self.noise_z,
                patience=self.noise_patience,
                window=self.noise_window,
            )
        return KneeStopper(*args)
