"""Dynamic programming over the transition graph (§3.2, Eq. 2).

States are resolved one by one in topological order. For every incoming edge ``Si -> Sj``
the trainer fine-tunes Si's best model with Sj's hyper-parameters until the knee stopper
(§3.3) says stop; the knee epoch's checkpoint is the edge's candidate and its value
``V(Si -> Sj)`` the fitted peak (or the observed score at the knee). Sj keeps its best
incoming edge; the answer is the best final state and the path of stored predecessors.
Every step is journaled first and then applied, so replaying the journal resumes a plan.

The planner is the *driver*: it decides, journals and resolves; an executor
(:mod:`opplan.planning.executors`) trains. A transition starts as soon as its source state is
resolved, and a state resolves once all its incoming transitions have ended, so with a
parallel executor independent transitions run side by side. Dispatch follows the sequential
order (destination's topological index, then predecessor order), so the local executor
reproduces the paper's one-after-another schedule and every executor the same plan.

Beyond the paper: a transition whose loss or score is not finite is journaled as *diverged*,
one whose worker died more than ``max_retries`` times as *failed*; both get value -inf, so
the plan continues without them, and a state whose every incoming transition failed is not
expanded (its outgoing transitions fail as "source unreachable").

Also beyond the paper, off by default (:mod:`opplan.planning.racing`, issue 17): with
``race`` the moves into one state pause at rungs until all got there and the hopeless ones
are abandoned; with ``defer`` a move whose prior bound is below a sibling's source waits for
its siblings and is skipped if it still cannot win. Both decide from journaled records only.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from opplan.planning._race_driver import RaceDriver, Running
from opplan.planning.branches import branch_of
from opplan.planning.executors import Edge, Executor, LocalExecutor, Outcome, WorkerLost
from opplan.planning.graph import TransitionGraph
from opplan.planning.journal import Journal, Op
from opplan.planning.knee import KneeFit, KneeStopper
from opplan.planning.options import PlannerOptions
from opplan.planning.plan import Plan
from opplan.planning.progress import PlanState, TransitionRecord
from opplan.planning.protocol import Trainer
from opplan.planning.state import TrainingState

__all__ = ["Planner", "PlannerCallback", "PlannerOptions"]


class PlannerCallback(Protocol):
    """PlanState hooks (rich progress, TensorBoard); every method is optional."""

    def on_event(self, event: dict[str, Any], progress: PlanState) -> None: ...


class Planner(RaceDriver):
    """Plans a training path over ``graph`` with ``trainer``, journaling to ``journal``.

    Pass ``executor`` instead of ``trainer`` to run transitions elsewhere (e.g. on Ray).

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
        trainer: Trainer | None,
        journal: Journal,
        options: PlannerOptions | None = None,
        config_hash: str = "",
        callbacks: Sequence[PlannerCallback] = (),
        progress: PlanState | None = None,
        executor: Executor | None = None,
        identity: dict[str, Any] | None = None,
    ):
        if executor is None:
            if trainer is None:
                raise ValueError("Planner needs a trainer or an executor")
            executor = LocalExecutor(trainer)
        self.graph = graph
        self.executor = executor
        self.journal = journal
        self.options = options or PlannerOptions()
        self.config_hash = config_hash
        # journaled with plan_started so that a resume can refuse what changed (plain JSON,
        # e.g. {"config": ..., "data": ...} from the CLI; the planner does not read it)
        self.identity = dict(identity or {})
        self.callbacks = list(callbacks)
        self.progress = progress or PlanState()
        self._running: dict[Edge, Running] = {}
        # beyond the paper (racing.py): moves parked at a rung, moves cleared to go on,
        # deferral decisions per destination, moves released from deferral
        self._paused: dict[Edge, tuple[int, Running]] = {}
        self._cleared: dict[Edge, Running] = {}
        self._deferred: dict[TrainingState, dict[Edge, float]] = {}
        self._released: set[Edge] = set()
        # beyond the paper (branches.py): one branch per connected component below initial
        self._branch = branch_of(graph)
        self._branches_decided = len(set(self._branch.values())) < 2  # nothing to drop
        self.switches = 0  # pauses followed by a trainer resume (racing's cost)
        self._preds = {s: graph.predecessors(s) for s in graph.topological_order()}
        topo = {s: k for k, s in enumerate(graph.states)}
        self._priority = {
            (src, dst): (topo[dst], k)
            for dst in graph.states
            for k, src in enumerate(graph.predecessors(dst))
        }

    @classmethod
    def open(
        cls,
        run_dir: str | os.PathLike[str],
        graph: TransitionGraph,
        runner: Trainer | Executor,
        *,
        options: PlannerOptions | None = None,
        callbacks: Sequence[PlannerCallback] = (),
    ) -> Planner:
        """A planner on ``run_dir``'s journal, resuming the plan there: see
        :func:`opplan.planning.api.open_planner` (``with Planner.open(...) as p: p.run()``)."""
        from opplan.planning.api import open_planner

        return open_planner(run_dir, graph, runner, options=options, callbacks=callbacks)

    def __enter__(self) -> Planner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.journal.close()

    # -- the algorithm ------------------------------------------------------------------
    def run(self) -> Plan:
        """Run (or continue, if ``progress`` came from a journal) the plan to the end."""
        if self.progress.finished is not None:
            return Plan.from_progress(self.graph, self.progress, self.options.score_start)
        started = time.monotonic()
        self._emit(
            Op.PLAN_STARTED,
            config_hash=self.config_hash,
            options=self.options.to_dict(),
            **self.identity,
        )
        while True:
            while (
                self._resolve_ready()
                | self._defer()
                | self._race()
                | self._branches()
                | self._launch()
            ):
                pass  # resolving a state can make transitions ready, and a launch can end one
            if len(self.progress.states) == len(self.graph.states):
                break
            outcomes = self.executor.wait()
            if not outcomes:
                raise RuntimeError("planner: nothing running and states left unresolved")
            for outcome in outcomes:
                self._handle(outcome)
        plan = Plan.from_progress(self.graph, self.progress, self.options.score_start)
        self._emit(
            Op.PLAN_FINISHED,
            best_final_state=str(plan.best_final_state),
            value=plan.value,
            session_seconds=time.monotonic() - started,
        )
        # its cost counts this session
        return Plan.from_progress(self.graph, self.progress, self.options.score_start)

    def _resolve_ready(self) -> bool:
        """Resolve, in topological order, every state whose incoming transitions all ended."""
        resolved = False
        for state in self.graph.states:
            if state in self.progress.states:
                continue
            records = [
                self.progress.transitions.get((src, state))
                for src in self.graph.predecessors(state)
            ]
            if all(r is not None and r.finished for r in records):
                self._resolve(state)
                resolved = True
        return resolved

    def _launch(self) -> bool:
        """Start ready transitions while the executor has room; True if one ended at once."""
        ended = False
        ready = sorted(
            (edge for edge in self.graph.edges if self._is_ready(edge)),
            key=self._priority.__getitem__,
        )
        for src, dst in ready:
            if len(self._running) >= self.executor.max_parallel:
                break
            source = None if src.is_initial else self.progress.states[src]
            if source is not None and source.checkpoint is None:
                self._fail(src, dst, "unreachable", f"{src} has no model: all its moves failed")
                ended = True
                continue
            partial = self.progress.transitions.get((src, dst))
            cleared = self._cleared.pop((src, dst), None)
            if cleared is not None and partial is not None:  # went on at a race rung
                self._running[src, dst] = cleared
                self.switches += 1
                self.executor.submit((src, dst), "resume", dst, partial.checkpoints[-1])
                continue
            y0 = 0.0 if source is None else source.observed
            if partial is not None and partial.epochs_trained > 0:
                y0 = partial.y0  # as journaled (score_start: the start's own score)
            running = Running(self.options.stopper(src, y0), y0)
            self._running[src, dst] = running
            if partial is None or partial.epochs_trained == 0:
                # a transition cut before its first epoch simply starts again
                self._submit_start((src, dst), None if source is None else source.checkpoint)
                continue
            stop = False
            for score in partial.scores[1:]:  # same inputs -> same decisions as before
                n_fits = len(running.stopper.fits)
                stop = running.stopper.observe(score)
                if not stop and self.options.prune and len(running.stopper.fits) > n_fits:
                    stop = self._prune(dst, running.stopper)
            for lost in running.stopper.fits[len(partial.fits) :]:  # a fit lost to the crash
                epoch = lost.n_points - 1
                self._emit(Op.FIT, src=str(src), dst=str(dst), epoch=epoch, fit=lost.to_dict())
            if stop:
                self._finish(partial, running.stopper)
                ended = True
            elif self._pauses((src, dst), running.stopper):  # cut at a rung: decide again
                del self._running[src, dst]
                self._paused[src, dst] = (partial.epochs_trained, running)
                ended = True
            else:
                self.executor.submit((src, dst), "resume", dst, partial.checkpoints[-1])
        return ended

    def _submit_start(self, edge: Edge, source_checkpoint: str | None) -> None:
        """Start ``edge`` (scoring its starting model with ``score_start``, not from scratch)."""
        first = f"{_edge_id(*edge)}/e000"
        args: tuple[object, ...] = (edge[1], source_checkpoint, first)
        if self.options.score_start and source_checkpoint is not None:
            args = (*args, True)
        self.executor.submit(edge, "start", *args)

    def _is_ready(self, edge: Edge) -> bool:
        src, dst = edge
        record = self.progress.transitions.get(edge)
        ready = (
            edge not in self._running
            and edge not in self._paused
            and (record is None or not record.finished)
            and (src.is_initial or src in self.progress.states)
            and not self._waits_for_branches(src)
        )
        if ready and self.options.defer and record is None and len(self._preds[dst]) > 1:
            held = self._held(dst)  # None until every source of dst is resolved
            return held is not None and (edge not in held or edge in self._released)
        return ready

    def _handle(self, outcome: Outcome) -> None:
        src, dst = edge = outcome.edge
        running = self._running[edge]
        record = self.progress.transitions.get(edge)
        if isinstance(outcome.error, WorkerLost):
            running.retries += 1
            if running.retries > self.options.max_retries:
                self._fail(src, dst, "failed", f"{outcome.error} ({running.retries} tries)")
            elif record is None or record.epochs_trained == 0:
                source = None if src.is_initial else self.progress.states[src].checkpoint
                self._submit_start(edge, source)
            else:  # restart from the last journaled epoch on a fresh worker
                self.executor.submit(edge, "resume", dst, record.checkpoints[-1])
            return
        if isinstance(outcome.error, FloatingPointError):
            self._fail(src, dst, "diverged", str(outcome.error))
            return
        if outcome.op == "start":
            first = f"{_edge_id(src, dst)}/e000"
            start = outcome.result  # score_start: the starting model scored in dst
            if start is not None and math.isfinite(start.score):
                running.y0 = start.score
                running.stopper = self.options.stopper(src, start.score)
            self._emit(
                Op.TRANSITION_STARTED, src=str(src), dst=str(dst), y0=running.y0, checkpoint=first
            )
            record = self.progress.transitions[edge]
            if start is not None and not math.isfinite(start.score):
                self._fail(src, dst, "diverged", f"score {start.score} of the starting model")
                return
        assert record is not None
        if outcome.op == "epoch":
            result = outcome.result
            assert result is not None
            epoch = record.epochs_trained + 1
            if not math.isfinite(result.score):
                self._fail(src, dst, "diverged", f"score {result.score} at epoch {epoch}")
                return
            stopper = running.stopper
            n_fits = len(stopper.fits)
            if result.stopper is not None:  # observed (fitted) in the worker: same decisions
                running.stopper = stopper = result.stopper
                stop = stopper.stopped
            else:
                stop = stopper.observe(result.score)  # refit (§3.3); deterministic: replay agrees
            if not stop and self.options.prune and len(stopper.fits) > n_fits:
                stop = self._prune(dst, stopper)
            self._emit(
                Op.EPOCH_SCORED,
                src=str(src),
                dst=str(dst),
                epoch=epoch,
                score=result.score,
                checkpoint=f"{_edge_id(src, dst)}/e{epoch:03d}",
                seconds=result.seconds,
                metrics=result.metrics,
            )
            if len(stopper.fits) > n_fits:
                fit: KneeFit = stopper.fits[-1]
                self._emit(Op.FIT, src=str(src), dst=str(dst), epoch=epoch, fit=fit.to_dict())
            if stop:
                self._finish(record, stopper)
                return
            if self._pauses(edge, stopper):
                del self._running[edge]
                self._paused[edge] = (record.epochs_trained, running)
                self._race_at(dst, record.epochs_trained)
                if edge not in self._cleared:  # parked until its siblings reach the rung,
                    self.executor.finish(edge)  # or abandoned there: its worker is free
                    return
                self._running[edge] = self._cleared.pop(edge)  # the last to arrive goes on
        next_id = f"{_edge_id(src, dst)}/e{record.epochs_trained + 1:03d}"
        if self.executor.fits_in_worker:
            self.executor.submit(edge, "epoch", next_id, running.stopper)
        else:
            self.executor.submit(edge, "epoch", next_id)

    def _prune(self, dst: TrainingState, stopper: KneeStopper) -> bool:
        known = [
            r.value
            for src in self.graph.predecessors(dst)
            if (r := self.progress.transitions.get((src, dst))) is not None
            and r.finished
            and not r.failed
            and r.value is not None
        ]
        if not known:
            return False
        bound = stopper.optimistic_bound(self.options.prune_margin)
        if bound >= max(known):
            return False
        stopper.abandon(f"pruned: bound {bound:.4f} < best known {max(known):.4f}")
        return True

    def _finish(self, record: TransitionRecord, stopper: KneeStopper) -> None:
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
        self._end(record, keep={record.checkpoints[knee], record.checkpoints[-1]})

    def _fail(self, src: TrainingState, dst: TrainingState, reason: str, message: str) -> None:
        y0 = self._running[src, dst].y0 if (src, dst) in self._running else 0.0
        self._emit(
            Op.TRANSITION_FAILED, src=str(src), dst=str(dst), reason=reason, message=message, y0=y0
        )
        self._end(self.progress.transitions[src, dst], keep=set())

    def _end(self, record: TransitionRecord, keep: set[str]) -> None:
        """The transition is over: free its worker, drop the checkpoints it no longer needs."""
        edge = (record.src, record.dst)
        if edge in self._running:
            del self._running[edge]
            self.executor.finish(edge)
        if not self.options.keep_checkpoints:
            for checkpoint in record.checkpoints:
                if checkpoint not in keep:
                    self.executor.release(checkpoint)

    def _resolve(self, state: TrainingState) -> None:
        """Eq. 2: keep the best incoming edge (ties: the first in state order)."""
        incoming = [
            self.progress.transitions[src, state] for src in self.graph.predecessors(state)
        ]
        best = max(incoming, key=lambda r: r.value if r.value is not None else -math.inf)
        if best.failed:  # every incoming transition failed: the state has no model
            self._emit(
                Op.STATE_RESOLVED,
                state=str(state),
                best_src=str(best.src),
                value=-math.inf,
                observed=-math.inf,
                checkpoint=None,
                epochs=0,
            )
            return
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


def _edge_id(src: TrainingState, dst: TrainingState) -> str:
    return f"{src.slug}__{dst.slug}"
