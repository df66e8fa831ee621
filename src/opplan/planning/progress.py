"""The planner's state, rebuilt from journal events (one ``_apply_<op>`` per operation).

The planner applies each event to :class:`PlanState` right after journaling it, and resume
replays the journal through the same methods, so a resumed planner is exactly the one that
was interrupted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from opplan.planning.journal import Op
from opplan.planning.knee import KneeFit
from opplan.planning.state import TrainingState

__all__ = ["PlanState", "Progress", "StateRecord", "TransitionRecord"]


@dataclass
class TransitionRecord:
    """One explored edge ``src -> dst``: its scores y0..yt, fits and outcome."""

    src: TrainingState
    dst: TrainingState
    y0: float
    scores: list[float]
    checkpoints: list[str]
    fits: list[KneeFit] = field(default_factory=list)
    seconds: float = 0.0
    finished: bool = False
    knee_epoch: int | None = None
    value: float | None = None
    observed: float | None = None
    checkpoint: str | None = None
    reason: str = ""
    failed: bool = False  # diverged, worker lost too often, or source unreachable
    message: str = ""

    @property
    def epochs_trained(self) -> int:
        return len(self.scores) - 1

    @property
    def final_fit(self) -> KneeFit | None:
        return self.fits[-1] if self.fits else None


@dataclass(frozen=True)
class StateRecord:
    """A resolved state: its best incoming edge (Eq. 2) and the model that edge produced."""

    state: TrainingState
    best_src: TrainingState
    value: float
    observed: float
    checkpoint: str | None
    epochs: int


@dataclass
class PlanState:
    """The plan's state replayed from its journal: explored transitions, reached states."""

    config_hash: str | None = None
    config: dict[str, Any] | None = None  # the config identity journaled at plan start
    data: dict[str, Any] | None = None  # the data fingerprint journaled at plan start
    sessions: int = 0
    transitions: dict[tuple[TrainingState, TrainingState], TransitionRecord] = field(
        default_factory=dict
    )
    states: dict[TrainingState, StateRecord] = field(default_factory=dict)
    finished: dict[str, Any] | None = None
    session_seconds: float = 0.0  # wall time summed over sessions (gaps between them excluded)
    _clock: float | None = None

    @classmethod
    def replay(cls, events: list[dict[str, Any]]) -> PlanState:
        progress = cls()
        for event in events:
            progress.apply(event)
        return progress

    def apply(self, event: dict[str, Any]) -> None:
        if "time" in event:
            now = float(event["time"])
            if self._clock is not None and event["op"] != Op.PLAN_STARTED.value:
                self.session_seconds += max(0.0, now - self._clock)
            self._clock = now
        getattr(self, f"_apply_{Op(event['op']).value}")(event)

    def transition(self, event: dict[str, Any]) -> TransitionRecord:
        return self.transitions[_edge(event)]

    # -- one method per operation -------------------------------------------------------
    def _apply_plan_started(self, event: dict[str, Any]) -> None:
        self.config_hash = event["config_hash"]
        self.config = event.get("config", self.config)
        self.data = event.get("data", self.data)
        self.sessions += 1

    def _apply_transition_started(self, event: dict[str, Any]) -> None:
        src, dst = _edge(event)
        self.transitions[src, dst] = TransitionRecord(
            src, dst, float(event["y0"]), [float(event["y0"])], [event["checkpoint"]]
        )

    def _apply_epoch_scored(self, event: dict[str, Any]) -> None:
        record = self.transition(event)
        if int(event["epoch"]) != record.epochs_trained + 1:
            raise ValueError(
                f"journal: epoch {event['epoch']} of {record.src} -> {record.dst} "
                f"follows epoch {record.epochs_trained}"
            )
        record.scores.append(float(event["score"]))
        record.checkpoints.append(event["checkpoint"])
        record.seconds += float(event.get("seconds", 0.0))

    def _apply_fit(self, event: dict[str, Any]) -> None:
        self.transition(event).fits.append(KneeFit.from_dict(event["fit"]))

    def _apply_transition_finished(self, event: dict[str, Any]) -> None:
        record = self.transition(event)
        record.finished = True
        record.knee_epoch = int(event["knee_epoch"])
        record.value = float(event["value"])
        record.observed = float(event["observed"])
        record.checkpoint = event["checkpoint"]
        record.reason = event.get("reason", "")

    def _apply_transition_failed(self, event: dict[str, Any]) -> None:
        src, dst = _edge(event)
        y0 = float(event.get("y0", 0.0))
        record = self.transitions.setdefault((src, dst), TransitionRecord(src, dst, y0, [y0], []))
        record.finished = record.failed = True
        record.value = record.observed = -math.inf
        record.knee_epoch, record.checkpoint = None, None
        record.reason = event["reason"]
        record.message = event.get("message", "")

    def _apply_state_resolved(self, event: dict[str, Any]) -> None:
        state = TrainingState.parse(event["state"])
        self.states[state] = StateRecord(
            state=state,
            best_src=TrainingState.parse(event["best_src"]),
            value=float(event["value"]),
            observed=float(event["observed"]),
            checkpoint=event["checkpoint"],
            epochs=int(event["epochs"]),
        )

    def _apply_plan_finished(self, event: dict[str, Any]) -> None:
        self.finished = dict(event)


def _edge(event: dict[str, Any]) -> tuple[TrainingState, TrainingState]:
    return TrainingState.parse(event["src"]), TrainingState.parse(event["dst"])


# The former name (it clashed with rich's ``Progress``); kept because ``opplan.planning``
# exported it.
Progress = PlanState
