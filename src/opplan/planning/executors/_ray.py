"""Transitions side by side on Ray (``opplan plan --executor ray``).

Each running transition owns one Ray actor that holds a trainer built in the actor's process
by a picklable factory, with the resource request of the config (``num_cpus``/``num_gpus``
per transition; Ray gives an actor with ``num_gpus`` only its own devices through
``CUDA_VISIBLE_DEVICES``). Actors are reused by later transitions. The planner stays the only
writer of the journal: actors return scores, the driver decides.

A dead actor (its process killed, a node lost) or one whose epoch has not finished within
``stall_timeout`` seconds is reported as :class:`WorkerLost`; the planner then restarts the
transition from its last journaled epoch on a fresh actor.
"""

from __future__ import annotations

import os
import time
from typing import Any

from opplan.planning.executors._base import (
    Edge,
    Executor,
    OpName,
    Outcome,
    TrainerFactory,
    TransitionWorker,
    WorkerLost,
)

__all__ = ["RayExecutor"]


class _Host:
    """The actor body: a :class:`TransitionWorker` on a trainer built in the actor."""

    def __init__(self, factory: TrainerFactory):
        self.worker = TransitionWorker(factory())

    def call(self, op: str, *args: Any) -> Any:
        return getattr(self.worker, op)(*args)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor(Executor):
    """Runs up to ``max_parallel`` transitions at once, one Ray actor each.

    Args:
        factory: builds the trainer inside an actor; must be picklable (a module-level
            function or a ``functools.partial`` of one).
        address: an existing cluster to join (``ray.init(address=...)``); ``None`` starts a
            local instance sized to this machine, or reuses one already initialized.
        max_parallel: cap on concurrent transitions (default: what the cluster's CPUs/GPUs
            allow at ``num_cpus``/``num_gpus`` per transition).
        num_cpus, num_gpus: the resource request of one transition.
        stall_timeout: seconds one epoch may take before its worker is killed (a hung
            data loader, a dead NCCL peer); set it well above the slowest epoch.
        poll: seconds between stall checks while waiting.
    """

    def __init__(
        self,
        factory: TrainerFactory,
        address: str | None = None,
        max_parallel: int | None = None,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        stall_timeout: float | None = None,
        poll: float = 0.5,
    ):
        import ray

        self._ray: Any = ray  # untyped module
        self._owns = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if address is None:
                kwargs["num_cpus"] = os.cpu_count() or 1
            ray.init(address=address, **kwargs)
            self._owns = True
        fits = self._capacity(num_cpus, num_gpus)
        self.max_parallel = max(1, min(max_parallel or fits, fits))
        self._actor_cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)(_Host)
        self._factory = factory
        self._stall = stall_timeout
        self._poll = poll
        self._busy: dict[Edge, Any] = {}  # edge -> actor running it
        self._idle: list[Any] = []
        self._pending: dict[Any, tuple[Edge, OpName, float]] = {}  # ref -> (edge, op, since)
        self._releases: list[Any] = []

    def _capacity(self, num_cpus: float, num_gpus: float) -> int:
        total = self._ray.cluster_resources()
        caps = []
        if num_cpus > 0:
            caps.append(int(total.get("CPU", 0) // num_cpus))
        if num_gpus > 0:
            caps.append(int(total.get("GPU", 0) // num_gpus))
        return max(1, min(caps)) if caps else 1

    # -- Executor -----------------------------------------------------------------------
    def submit(self, edge: Edge, op: OpName, *args: object) -> None:
        actor: Any = self._busy.get(edge)
        if actor is None:
            actor = self._idle.pop() if self._idle else self._actor_cls.remote(self._factory)
            self._busy[edge] = actor
        ref = actor.call.remote(op, *args)
        self._pending[ref] = (edge, op, time.monotonic())

    def wait(self) -> list[Outcome]:
        ray = self._ray
        while self._pending:
            ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=self._poll)
            if ready:
                ready, _ = ray.wait(list(self._pending), num_returns=len(self._pending), timeout=0)
                return [self._collect(ref) for ref in ready]
            stalled = self._stalled()
            if stalled:
                return stalled
        return []

    def _collect(self, ref: Any) -> Outcome:
        ray = self._ray
        edge, op, _ = self._pending.pop(ref)
        try:
            return Outcome(edge, op, result=ray.get(ref))
        except ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, FloatingPointError):
                return Outcome(edge, op, error=error.cause)
            raise error.as_instanceof_cause() from None
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as error:
            self._busy.pop(edge, None)  # that actor is gone
            return Outcome(edge, op, error=WorkerLost(f"worker died during {op}: {error}"))

    def _stalled(self) -> list[Outcome]:
        if self._stall is None:
            return []
        now, lost = time.monotonic(), []
        for ref, (edge, op, since) in list(self._pending.items()):
            # only epochs count: a start also waits for a new actor and its data to load
            if op == "epoch" and now - since > self._stall:
                del self._pending[ref]
                actor = self._busy.pop(edge, None)
                if actor is not None:
                    self._ray.kill(actor, no_restart=True)
                message = f"no progress for {now - since:.0f} s during {op} (stall_timeout)"
                lost.append(Outcome(edge, op, error=WorkerLost(message)))
        return lost

    def finish(self, edge: Edge) -> None:
        actor = self._busy.pop(edge, None)
        if actor is not None:
            self._idle.append(actor)

    def release(self, checkpoint_id: str) -> None:
        actors = self._idle or list(self._busy.values())
        if not actors:
            actors = [self._actor_cls.remote(self._factory)]
            self._idle.extend(actors)
        self._releases.append(actors[0].call.remote("release", checkpoint_id))

    def close(self) -> None:
        ray = self._ray
        if self._releases:
            ray.wait(self._releases, num_returns=len(self._releases), timeout=60)
        for actor in [*self._idle, *self._busy.values()]:
            ray.kill(actor)
        self._idle, self._busy, self._pending, self._releases = [], {}, {}, []
        if self._owns:
            ray.shutdown()
