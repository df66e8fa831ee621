"""Transitions side by side on Ray (``opplan plan --executor ray``).

Each running transition owns one Ray actor that holds a trainer built in the actor's process
by a picklable factory, with the resource request of the config (``num_cpus``/``num_gpus``
per transition; Ray gives an actor with ``num_gpus`` only its own devices through
``CUDA_VISIBLE_DEVICES``). Actors are reused by later transitions. The planner stays the only
writer of the journal: actors return scores, the driver decides.

With ``ranks_per_transition`` N > 1 a transition runs data parallel on a group of N actors
packed on one node (a placement group): each gets torchrun's variables (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``; ``LOCAL_RANK`` 0 as Ray shows it only its
own GPUs) before it builds its trainer, which joins the process group (DDP; see
``opplan.engine.distributed``). Every operation goes to all N; rank 0's result is the
transition's. A group is reused as a whole and dies as a whole.

A dead actor (its process killed, a node lost) or one whose epoch has not finished within
``stall_timeout`` seconds is reported as :class:`WorkerLost`; the planner then restarts the
transition from its last journaled epoch on a fresh actor.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
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

    def __init__(self, factory: TrainerFactory, env: dict[str, str] | None = None):
        os.environ.update(env or {})  # torchrun's variables for a data-parallel group
        self.worker = TransitionWorker(factory())

    def call(self, op: str, *args: Any) -> Any:
        return getattr(self.worker, op)(*args)

    def pid(self) -> int:
        return os.getpid()


def _rendezvous() -> tuple[str, int]:
    """This node's address and a free port: where rank 0 of a group will listen."""
    import socket

    import ray

    with socket.socket() as sock:
        sock.bind(("", 0))
        port = int(sock.getsockname()[1])
    # ray.util has no annotations
    address: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]
    return address, port


@dataclass
class _Group:
    """The actors running one transition (one, or N data-parallel ranks)."""

    actors: list[Any]
    placement: Any = None


@dataclass
class _Pending:
    edge: Edge
    op: OpName
    since: float
    refs: list[Any]
    results: dict[int, Any] = field(default_factory=dict)


class RayExecutor(Executor):
    """Runs up to ``max_parallel`` transitions at once, one Ray actor each.

    Args:
        factory: builds the trainer inside an actor; must be picklable (a module-level
            function or a ``functools.partial`` of one).
        address: an existing cluster to join (``ray.init(address=...)``); ``None`` starts a
            local instance sized to this machine, or reuses one already initialized.
        max_parallel: cap on concurrent transitions (default: what the cluster's CPUs/GPUs
            allow at ``num_cpus``/``num_gpus`` per transition).
        num_cpus, num_gpus: the resource request of one transition (of each rank).
        ranks_per_transition: data-parallel processes per transition (1: no DDP).
        stall_timeout: seconds one epoch may take before its worker is killed (a hung
            data loader, a dead NCCL peer); set it well above the slowest epoch.
        poll: seconds between stall checks while waiting.
        fits_in_worker: the actors fit the knee curve after their epochs and ship the fit
            with the score (default), so the driver's fits never serialize the workers.
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
        ranks_per_transition: int = 1,
        fits_in_worker: bool = True,
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
        self._ranks = ranks_per_transition
        self.fits_in_worker = fits_in_worker
        fits = max(1, self._capacity(num_cpus, num_gpus) // self._ranks)
        self.max_parallel = max(1, min(max_parallel or fits, fits))
        self._bundle = {"CPU": num_cpus, "GPU": num_gpus}
        self._actor_cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=0)(_Host)
        self._factory = factory
        self._stall = stall_timeout
        self._poll = poll
        self._busy: dict[Edge, _Group] = {}  # edge -> the group running it
        self._idle: list[_Group] = []
        self._pending: list[_Pending] = []
        self._releases: list[Any] = []

    def _capacity(self, num_cpus: float, num_gpus: float) -> int:
        total = self._ray.cluster_resources()
        caps = []
        if num_cpus > 0:
            caps.append(int(total.get("CPU", 0) // num_cpus))
        if num_gpus > 0:
            caps.append(int(total.get("GPU", 0) // num_gpus))
        return max(1, min(caps)) if caps else 1

    # -- groups -------------------------------------------------------------------------
    def _new_group(self) -> _Group:
        if self._ranks == 1:
            return _Group([self._actor_cls.remote(self._factory)])
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundle = {k: v for k, v in self._bundle.items() if v > 0}
        pg = placement_group([bundle] * self._ranks, strategy="STRICT_PACK")
        self._ray.get(pg.ready())

        def at(k: int) -> PlacementGroupSchedulingStrategy:
            return PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=k)

        where = self._ray.remote(num_cpus=0)(_rendezvous).options(scheduling_strategy=at(0))
        addr, port = self._ray.get(where.remote())
        actors = []
        for rank in range(self._ranks):
            env = {
                "RANK": str(rank),
                "WORLD_SIZE": str(self._ranks),
                "LOCAL_RANK": "0",  # Ray shows each rank only its own GPU
                "MASTER_ADDR": addr,
                "MASTER_PORT": str(port),
            }
            handle = self._actor_cls.options(scheduling_strategy=at(rank))
            actors.append(handle.remote(self._factory, env))
        return _Group(actors, pg)

    def _kill(self, group: _Group) -> None:
        for actor in group.actors:
            self._ray.kill(actor, no_restart=True)
        if group.placement is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(group.placement)

    # -- Executor -----------------------------------------------------------------------
    def submit(self, edge: Edge, op: OpName, *args: object) -> None:
        group = self._busy.get(edge)
        if group is None:
            group = self._idle.pop() if self._idle else self._new_group()
            self._busy[edge] = group
        refs = [actor.call.remote(op, *args) for actor in group.actors]
        self._pending.append(_Pending(edge, op, time.monotonic(), refs))

    def wait(self) -> list[Outcome]:
        ray = self._ray
        while self._pending:
            refs = [ref for p in self._pending for ref in p.refs]
            ready, _ = ray.wait(refs, num_returns=1, timeout=self._poll)
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
                done = set(ready)
                outcomes = [o for p in list(self._pending) if (o := self._collect(p, done))]
                if outcomes:
                    return outcomes
                continue
            stalled = self._stalled()
            if stalled:
                return stalled
        return []

    def _collect(self, pending: _Pending, done: set[Any]) -> Outcome | None:
        """The operation's outcome once every rank answered (or one failed), else None."""
        ray = self._ray
        edge, op = pending.edge, pending.op
        for rank, ref in enumerate(pending.refs):
            if ref not in done or rank in pending.results:
                continue
            try:
                pending.results[rank] = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                self._pending.remove(pending)
                if isinstance(error.cause, FloatingPointError):
                    return Outcome(edge, op, error=error.cause)  # every rank stops alike
                raise error.as_instanceof_cause() from None
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as error:
                self._pending.remove(pending)
                group = self._busy.pop(edge, None)
                if group is not None:
                    self._kill(group)  # a group without one rank is useless
                return Outcome(edge, op, error=WorkerLost(f"worker died during {op}: {error}"))
        if len(pending.results) < len(pending.refs):
            return None
        self._pending.remove(pending)
        return Outcome(edge, op, result=pending.results[0])

    def _stalled(self) -> list[Outcome]:
        if self._stall is None:
            return []
        now, lost = time.monotonic(), []
        for pending in list(self._pending):
            # only epochs count: a start also waits for a new actor and its data to load
            if pending.op == "epoch" and now - pending.since > self._stall:
                self._pending.remove(pending)
                group = self._busy.pop(pending.edge, None)
                if group is not None:
                    self._kill(group)
                message = (
                    f"no progress for {now - pending.since:.0f} s during epoch (stall_timeout)"
                )
                lost.append(Outcome(pending.edge, pending.op, error=WorkerLost(message)))
        return lost

    def finish(self, edge: Edge) -> None:
        group = self._busy.pop(edge, None)
        if group is not None:
            self._idle.append(group)

    def release(self, checkpoint_id: str) -> None:
        groups = self._idle or list(self._busy.values())
        if not groups:
            groups = [self._new_group()]
            self._idle.extend(groups)
        # every rank runs it: a data-parallel trainer deletes on rank 0 and waits for the rest
        self._releases.extend(a.call.remote("release", checkpoint_id) for a in groups[0].actors)

    def close(self) -> None:
        ray = self._ray
        if self._releases:
            ray.wait(self._releases, num_returns=len(self._releases), timeout=60)
        for group in [*self._idle, *self._busy.values()]:
            self._kill(group)
        self._idle, self._busy, self._pending, self._releases = [], {}, [], []
        if self._owns:
            ray.shutdown()
