"""The answer of a plan: best final state, path with epochs, every explored transition.

``plan.json`` schema (all keys always present)::

    best_final_state: "consecutive 64f lr=0.0004"
    value: float                               # V of the best final state
    path: [{sampling, clip_length, lr, epochs, value, from}]   # initial state excluded
    transitions: [{from, to, epochs_trained, scores, fit: {family, params, rmse, r2},
                   knee_epoch, value, observed, status, reason, seconds}]
    states: {state: {best_from, value, observed, epochs}}
    cost: {epochs_total, weighted_epochs, transitions, failed, skipped, compute_seconds,
           wall_seconds}
    caveats: [str]                             # what the value does not say (below)

A failed transition (``status`` diverged / failed / unreachable) or a state without a model
has ``value: null``; so has a move the planner skipped on a bound (``status`` deferred,
``planner.defer``, or branch, ``planner.branches``, both beyond the paper; counted in
``skipped``, not ``failed``), its ``reason`` giving the bound and the value in hand. A move
abandoned by ``planner.race`` is finished, its ``reason`` starting with "raced".
``compute_seconds`` sums every transition's per-epoch seconds (training + validation +
checkpoint: the footing ``opplan grid`` compares), ``wall_seconds`` the planner sessions'
wall time (less than compute with parallel workers);
``weighted_epochs`` weights each epoch by its clip length over the plan's shortest one.

``caveats`` names a best final state whose model was last trained in another sampling or
clip length (its move, and any before it, ended at knee 0) while its starting model was never
scored in it (``planner.score_start`` off, the paper's y0 = V(Si)): its value is then anchored
at the source's score in the source's own state, and the model is deployed untrained in the
final one -- where a length change can cost many points (issue 20's order seed 2: value
0.744, test 48.3 %).

``recipe.yaml`` is the path as training steps; zero-epoch steps collapse (a state reached
without training leaves the model unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from opplan.errors import OpplanError
from opplan.fileio import atomic_write_json, atomic_write_text
from opplan.planning.graph import TransitionGraph
from opplan.planning.progress import PlanState, StateRecord, TransitionRecord
from opplan.planning.state import TrainingState

__all__ = ["SKIPPED", "Plan", "PlanFailed", "PlanStep", "step_state", "transition_dict"]

# reasons of moves skipped on purpose, never trained: planner.defer, planner.branches
SKIPPED = ("deferred", "branch")


class PlanFailed(OpplanError, RuntimeError):
    """Every final state is unreachable: all the moves into them failed or diverged."""


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


@dataclass(frozen=True)
class PlanStep:
    state: TrainingState
    epochs: int
    value: float
    src: TrainingState

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.state.to_dict(),
            "epochs": self.epochs,
            "value": self.value,
            "from": str(self.src),
        }


@dataclass(frozen=True)
class Plan:
    best_final_state: TrainingState
    value: float
    path: tuple[PlanStep, ...]
    transitions: tuple[TransitionRecord, ...]
    states: dict[TrainingState, StateRecord]
    final_checkpoint: str | None
    session_seconds: float = 0.0
    caveats: tuple[str, ...] = ()

    @classmethod
    def from_progress(
        cls, graph: TransitionGraph, progress: PlanState, scored_start: bool = False
    ) -> Plan:
        states = progress.states
        missing = [str(s) for s in graph.states if s not in states]
        if missing:
            raise ValueError(f"the plan is not finished: unresolved states {missing}")
        final = max(graph.finals, key=lambda s: states[s].value)  # ties: first final
        if states[final].checkpoint is None:
            failed = [f"{t.src} -> {t.dst}: {t.reason}" for t in progress.transitions.values()]
            raise PlanFailed(f"no final state has a model; failed moves: {failed}")
        chain = [states[final]]
        while not chain[-1].best_src.is_initial:
            chain.append(states[chain[-1].best_src])
        chain.reverse()
        path = tuple(PlanStep(r.state, r.epochs, r.value, r.best_src) for r in chain)
        order = {edge: k for k, edge in enumerate(graph.edges)}
        transitions = tuple(
            sorted(progress.transitions.values(), key=lambda r: order[r.src, r.dst])
        )
        caveats = () if scored_start else _untrained_final(path, progress)
        return cls(
            final,
            states[final].value,
            path,
            transitions,
            dict(states),
            states[final].checkpoint,
            progress.session_seconds,
            caveats,
        )

    @property
    def epochs_total(self) -> int:
        return sum(t.epochs_trained for t in self.transitions)

    @property
    def weighted_epochs(self) -> float:
        """Epochs weighted by clip length / the shortest clip length trained (an epoch of a
        3D ConvNet costs about linearly more frames)."""
        lengths = [t.dst.clip_length for t in self.transitions if t.epochs_trained > 0]
        ref = min(lengths, default=1)
        return sum(t.epochs_trained * t.dst.clip_length for t in self.transitions) / ref

    @property
    def compute_seconds(self) -> float:
        return sum(t.seconds for t in self.transitions)

    def recipe(self) -> list[dict[str, Any]]:
        """The path as training steps; zero-epoch steps collapse."""
        return [{**s.state.to_dict(), "epochs": s.epochs} for s in self.path if s.epochs > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "best_final_state": str(self.best_final_state),
            "value": self.value,
            "final_checkpoint": self.final_checkpoint,
            "path": [s.to_dict() for s in self.path],
            "transitions": [transition_dict(t) for t in self.transitions],
            "states": {
                str(s): {
                    "best_from": str(r.best_src),
                    "value": _finite(r.value),
                    "observed": _finite(r.observed),
                    "epochs": r.epochs,
                }
                for s, r in self.states.items()
            },
            "cost": {
                "epochs_total": self.epochs_total,
                "weighted_epochs": self.weighted_epochs,
                "transitions": len(self.transitions),
                "failed": sum(t.failed and t.reason not in SKIPPED for t in self.transitions),
                "skipped": sum(t.reason in SKIPPED for t in self.transitions),
                "compute_seconds": self.compute_seconds,
                "wall_seconds": self.session_seconds,
            },
            "caveats": list(self.caveats),
        }

    def write(self, run_dir: str | Path) -> None:
        """``RUN/plan.json`` and ``RUN/recipe.yaml``, both written atomically."""
        run = Path(run_dir)
        atomic_write_json(run / "plan.json", self.to_dict())
        header = (
            "# opplan recipe: train from the initialization through these steps\n"
            f"# (planned path to {self.best_final_state}, value {self.value:.4f})\n"
        )
        body = yaml.safe_dump({"steps": self.recipe()}, sort_keys=False)
        atomic_write_text(run / "recipe.yaml", header + body)


def _model_kind(state: TrainingState) -> tuple[object, ...]:
    """What a state's clips depend on: sampling, clip length, ``size`` (the video trainer's
    input axis; lr and training-only axes such as dropout leave the inputs unchanged)."""
    return (state.sampling, state.clip_length, dict(state.extra).get("size"))


def _untrained_final(path: tuple[PlanStep, ...], progress: PlanState) -> tuple[str, ...]:
    """The caveat of a final model never trained nor scored in the final state's inputs."""
    final = path[-1]
    if final.epochs > 0:
        return ()
    trained = next((s for s in reversed(path) if s.epochs > 0), None)
    if trained is None or _model_kind(trained.state) == _model_kind(final.state):
        return ()
    move = progress.transitions.get((final.src, final.state))
    after = ""
    if move is not None and move.epochs_trained > 0:
        trained_on = move.scores[1:]
        after = (
            f"; trained on in it, it scored {min(trained_on):.3f}-{max(trained_on):.3f} over "
            f"{move.epochs_trained} epochs against the start's {move.y0:.3f}"
        )
    return (
        f"the final model was last trained in {trained.state} and enters {final.state} "
        f"untrained (knee 0); its value {final.value:.4f} is anchored at its score in "
        f"{trained.state}, never measured in {final.state}{after}. Set planner.score_start: "
        "true (with trainer.optim.recalibrate_bn: true) to score starting models in the new "
        "state (beyond the paper), or check with "
        "`opplan evaluate RUN --split val`",
    )


def step_state(step: dict[str, Any]) -> TrainingState:
    """The state of one ``plan.json`` path step."""
    extra = tuple(
        (k, v)
        for k, v in step.items()
        if k not in ("sampling", "clip_length", "lr", "epochs", "value", "from")
    )
    return TrainingState(step["sampling"], step["clip_length"], step["lr"], extra)


def transition_dict(t: TransitionRecord) -> dict[str, Any]:
    """One explored transition as it appears in ``plan.json``."""
    fit = t.final_fit
    return {
        "from": str(t.src),
        "to": str(t.dst),
        "epochs_trained": t.epochs_trained,
        "scores": t.scores,
        "fit": None
        if fit is None
        else {
            "family": fit.family,
            "params": list(fit.params),
            "rmse": fit.rmse,
            "r2": fit.r2,
            "success": fit.success,
            "message": fit.message,
        },
        "knee_epoch": t.knee_epoch,
        "value": _finite(t.value),
        "observed": _finite(t.observed),
        "status": t.reason if t.failed else "finished" if t.finished else "running",
        "reason": t.message if t.failed else t.reason,
        "seconds": t.seconds,
    }
