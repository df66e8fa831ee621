"""Dynamic programming over the transition graph (§3.2, Eq. 2).

States are resolved one by one in topological order. For every incoming edge ``Si -> Sj``
the trainer fine-tunes Si's best model with Sj's hyper-parameters until the knee stopper
(§3.3) says stop; the knee epoch's checkpoint is the edge's candidate and its value
``V(Si -> Sj)`` the fitted peak (or the observed score at the knee). Sj keeps its best
incoming edge; the answer is the best final state and the path of stored predecessors.
Every step is journaled first and then applied, so replaying the journal resumes a plan.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from opplan.planning.graph import TransitionGraph
from opplan.planning.journal import Journal, Op
from opplan.planning.knee import KneeFit, KneeStopper
from opplan.planning.plan import Plan
from opplan.planning.progress import Progress, TransitionRecord
from opplan.planning.protocol import Trainer
from opplan.planning.state import TrainingState

__all__ = ["Planner", "PlannerCallback", "PlannerOptions"]


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
        keep_checkpoints: keep every epoch checkpoint instead of releasing the unused ones.
        min_epochs: no transition stops before this epoch (default 0: the paper's rule).
        min_epochs_from_initial: the same floor for transitions out of the initial state
            only (training from scratch often starts with a flat stretch).
    """

    delay: int = 10
    max_epochs: int = 100
    family: str = "exponential"
    value: Literal["fitted", "observed"] = "fitted"
    keep_checkpoints: bool = False
    min_epochs: int = 0
    min_epochs_from_initial: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def stopper(self, src: TrainingState, y0: float) -> KneeStopper:
        """The knee stopper of a transition out of ``src`` starting from a ``y0`` model."""
        floor = max(self.min_epochs, self.min_epochs_from_initial if src.is_initial else 0)
        return KneeStopper(
            y0, self.delay, self.max_epochs, self.family, min(floor, self.max_epochs)
        )


class PlannerCallback(Protocol):
    """Progress hooks (rich progress, TensorBoard); every method is optional."""

    def on_event(self, event: dict[str, Any], progress: Progress) -> None: ...


class Planner:
    """Plans a training path over ``graph`` with ``trainer``, journaling to ``journal``.

    Example:
        >>> import tempfile
        >>> from opplan.planning.simulate import SimulatedTrainer
        >>> run = tempfile.mkdtemp()
        >>> graph = TransitionGraph.build("basic", ["uniform"], [8, 16], [0.1, 0.01])
        >>> with Journal(f"{run}/journal.jsonl") as journal:
        ...     plan = Planner(graph, SimulatedTrainer(f"{run}/checkpoints"), journal,
        ...                    PlannerOptions(delay=3, max_epochs=30)).run()
        >>> str(plan.best_final_state)
        'uniform 16f lr=0.01'
    """

    def __init__(
        self,
        graph: TransitionGraph,
        trainer: Trainer,
        journal: Journal,
        options: PlannerOptions | None = None,
        config_hash: str = "",
        callbacks: Sequence[PlannerCallback] = (),
        progress: Progress | None = None,
    ):
        self.graph = graph
        self.trainer = trainer
        self.journal = journal
        self.options = options or PlannerOptions()
        self.config_hash = config_hash
        self.callbacks = list(callbacks)
        self.progress = progress or Progress()
        self._released: set[str] = set()

    # -- the algorithm ------------------------------------------------------------------
    def run(self) -> Plan:
        """Run (or continue, if ``progress`` came from a journal) the plan to the end."""
        if self.progress.finished is not None:
            return Plan.from_progress(self.graph, self.progress)
        started = time.monotonic()
        self._emit(Op.PLAN_STARTED, config_hash=self.config_hash, options=self.options.to_dict())
        for state in self.graph.states:  # topological order
            if state in self.progress.states:
                continue
            for src in self.graph.predecessors(state):
                record = self.progress.transitions.get((src, state))
                if record is None or not record.finished:
                    self._run_transition(src, state, record)
            self._resolve(state)
            self._release_unneeded()
        plan = Plan.from_progress(self.graph, self.progress)
        if self.progress.finished is None:
            self._emit(
                Op.PLAN_FINISHED,
                best_final_state=str(plan.best_final_state),
                value=plan.value,
                session_seconds=time.monotonic() - started,
            )
        return plan

    def _run_transition(
        self, src: TrainingState, dst: TrainingState, partial: TransitionRecord | None
    ) -> None:
        start_record = None if src.is_initial else self.progress.states[src]
        y0 = 0.0 if start_record is None else start_record.observed
        stopper = self.options.stopper(src, y0)
        edge_id = f"{src.slug}__{dst.slug}"
        stop = False
        if partial is None or partial.epochs_trained == 0:
            # a transition cut before its first epoch simply starts again
            self.trainer.start(dst, None if start_record is None else start_record.checkpoint)
            first = f"{edge_id}/e000"
            self.trainer.save(first)
            self._emit(Op.TRANSITION_STARTED, src=str(src), dst=str(dst), y0=y0, checkpoint=first)
        else:
            for score in partial.scores[1:]:  # same inputs -> same decisions as before
                stop = stopper.observe(score)
            for lost in stopper.fits[len(partial.fits) :]:  # a fit lost to the crash
                epoch = lost.n_points - 1
                self._emit(Op.FIT, src=str(src), dst=str(dst), epoch=epoch, fit=lost.to_dict())
            if not stop:
                self.trainer.resume(dst, partial.checkpoints[-1])
        record = self.progress.transitions[src, dst]
        while not stop:
            tick = time.monotonic()
            metrics = self.trainer.train_epoch() or {}
            score = float(self.trainer.evaluate())
            epoch = record.epochs_trained + 1
            checkpoint = f"{edge_id}/e{epoch:03d}"
            self.trainer.save(checkpoint)
            n_fits = len(stopper.fits)
            stop = stopper.observe(score)  # refit (§3.3); deterministic, so replay agrees
            self._emit(
                Op.EPOCH_SCORED,
                src=str(src),
                dst=str(dst),
                epoch=epoch,
                score=score,
                checkpoint=checkpoint,
                seconds=time.monotonic() - tick,
                metrics={k: float(v) for k, v in metrics.items()},
            )
            if len(stopper.fits) > n_fits:
                fit: KneeFit = stopper.fits[-1]
                self._emit(Op.FIT, src=str(src), dst=str(dst), epoch=epoch, fit=fit.to_dict())
        self._finish_transition(record, stopper)

    def _finish_transition(self, record: TransitionRecord, stopper: KneeStopper) -> None:
        knee = stopper.knee_epoch
        assert knee is not None and stopper.value is not None
        observed = record.scores[knee]
        value = (
            stopper.value if (self.options.value == "fitted" and stopper.from_fit) else observed
        )
        self._emit(
            Op.TRANSITION_FINISHED,
            src=str(record.src),
            dst=str(record.dst),
            knee_epoch=knee,
            value=value,
            observed=observed,
            checkpoint=record.checkpoints[knee],
            reason=stopper.reason,
        )

    def _resolve(self, state: TrainingState) -> None:
        """Eq. 2: keep the best incoming edge (ties: the first in state order)."""
        incoming = [
            self.progress.transitions[src, state] for src in self.graph.predecessors(state)
        ]
        best = max(incoming, key=lambda r: r.value if r.value is not None else float("-inf"))
        assert best.value is not None and best.observed is not None
        assert best.knee_epoch is not None
        self._emit(
            Op.STATE_RESOLVED,
            state=str(state),
            best_src=str(best.src),
            value=best.value,
            observed=best.observed,
            checkpoint=best.checkpoint,
            epochs=best.knee_epoch,
        )

    # -- bookkeeping --------------------------------------------------------------------
    def _emit(self, op: Op, **fields: Any) -> None:
        event = self.journal.append(op, **fields)
        self.progress.apply(event)
        for callback in self.callbacks:
            hook = getattr(callback, "on_event", None)
            if hook is not None:
                hook(event, self.progress)

    def _needed_checkpoints(self) -> set[str]:
        needed: set[str] = set()
        finals = set(self.graph.finals)
        for state, rec in self.progress.states.items():
            pending = any(
                not (t := self.progress.transitions.get((state, nxt))) or not t.finished
                for nxt in self.graph.successors(state)
            )
            if (pending or state in finals) and rec.checkpoint is not None:
                needed.add(rec.checkpoint)
        for record in self.progress.transitions.values():
            if not record.finished:
                needed.update(record.checkpoints)
            elif record.dst not in self.progress.states and record.checkpoint:
                needed.add(record.checkpoint)  # a candidate of a state not yet resolved
        return needed

    def _release_unneeded(self) -> None:
        if self.options.keep_checkpoints:
            return
        needed = self._needed_checkpoints()
        for record in self.progress.transitions.values():
            for checkpoint in record.checkpoints:
                if checkpoint not in needed and checkpoint not in self._released:
                    self.trainer.release(checkpoint)
                    self._released.add(checkpoint)
