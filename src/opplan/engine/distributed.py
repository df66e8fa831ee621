"""Data parallel inside a transition: ``torch.distributed`` with DDP, launched by torchrun.

``torchrun --nproc-per-node N -m opplan plan|train ...`` starts N copies of the command. Each
copy calls :func:`init_distributed`, which reads torchrun's ``RANK`` / ``WORLD_SIZE`` /
``LOCAL_RANK`` (and ``MASTER_ADDR`` / ``MASTER_PORT``) and joins one process group: NCCL with
one GPU per process (``cuda:LOCAL_RANK``) when training on CUDA, gloo on CPU. A launcher that
gives a transition its own GPUs (``CUDA_VISIBLE_DEVICES``) thereby keeps it on them.

Every rank runs the same planner or recipe loop. What keeps the ranks in step:

* the optimizer step of N ranks is the single-process step: :func:`plan_steps` hands each
  rank whole micro-batches of the very batches one process would draw (gradient
  accumulation divided by N, the micro-batch that fits in memory unchanged), DDP averages
  the gradients, and the loss is weighted so that the average is the single-process sum;
  BatchNorm running statistics are merged after each step into what one process would
  have (:class:`RunningStats`);
* validation is sharded by fixed indices and the correct-prediction *counts* are summed, so
  every rank gets the same score, equal to the single-process score (§3.3 decisions agree);
* only rank 0 writes (checkpoints, journal, reports); :class:`ReplicaJournal` lets the
  other ranks apply the planner's events without writing them.

Example:
    >>> ctx = DistributedContext()  # a single process: nothing to synchronize
    >>> ctx.is_main, ctx.world_size
    (True, 1)
    >>> plan_steps([[0, 1], [2, 3], [4, 5], [6]], accumulate=2, world_size=2)
    [[[[0, 1]], [[2, 3]]], [[[4, 5]], [[6]]]]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from opplan.errors import ConfigError
from opplan.planning.journal import Journal

__all__ = [
    "DistributedContext",
    "ReplicaJournal",
    "RunningStats",
    "all_reduce_gradients",
    "average_buffers",
    "distributed",
    "init_distributed",
    "plan_steps",
    "shuffled_batches",
    "teardown",
]

_TORCHRUN_VARS = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in the process group (one process: rank 0 of 1).

    Args:
        rank: global rank; rank 0 is the only one that writes to the run directory.
        world_size: number of processes training the same transition.
        local_rank: rank on this machine; the GPU index with NCCL.
        device: the device this rank trains on.
        backend: ``nccl``, ``gloo`` or ``None`` (no process group).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """True when more than one process trains (DDP, sharded data and evaluation)."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (a no-op for one process)."""
        if self.enabled:
            dist.barrier()

    def all_reduce_sum(self, values: Sequence[float], dtype: torch.dtype) -> list[float]:
        """Sum ``values`` over the ranks (each rank passes the same number of values).

        Counts go as ``int64`` and are exact; a float sum in ``float64``.
        """
        if not self.enabled:
            return list(values)
        tensor = torch.tensor(list(values), dtype=dtype, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.tolist()


def init_distributed(device: str = "auto") -> DistributedContext:
    """Join torchrun's process group, or return the single-process context.

    Args:
        device: the trainer's device setting (``auto``, ``cpu``, ``cuda``): NCCL with
            ``cuda:LOCAL_RANK`` when it resolves to CUDA, gloo on CPU.

    Raises:
        ConfigError: ``WORLD_SIZE`` > 1 without the other torchrun variables, CUDA asked for
            but missing, or fewer visible GPUs than local ranks.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device: {device} requested but no GPU is available")
    if world <= 1:
        single = torch.device("cuda" if use_cuda else device if device != "auto" else "cpu")
        return DistributedContext(device=single)
    missing = [name for name in _TORCHRUN_VARS if name not in os.environ]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world} but {', '.join(missing)} not set: launch with torchrun"
        )
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s) visible: "
                "use --nproc-per-node <= the number of GPUs"
            )
        torch.cuda.set_device(local_rank)
        target = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        target, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        options: dict[str, Any] = {"device_id": target} if use_cuda else {}
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **options)
    return DistributedContext(rank, world, local_rank, target, backend)


def teardown() -> None:
    """Leave the process group (safe to call when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def distributed(device: str = "auto") -> Iterator[DistributedContext]:
    """:func:`init_distributed` ... :func:`teardown` around a command."""
    ctx = init_distributed(device)
    try:
        yield ctx
    finally:
        if ctx.enabled:
            teardown()


def plan_steps(
    batches: Sequence[Sequence[int]], accumulate: int, world_size: int
) -> list[list[list[list[int]]]]:
    """Split one epoch's single-process micro-batches over ``world_size`` ranks.

    One process takes ``accumulate`` micro-batches per optimizer step. With N ranks:

    * ``accumulate`` divisible by N: each rank takes ``accumulate / N`` whole micro-batches
      of the step. The micro-batch (sized to fit one GPU) and every BatchNorm batch stay as
      in one process, so the step's gradient is the same sum, computed N times faster;
    * otherwise the step's clips are cut into N near-equal runs, one per rank, each run
      trained in as few micro-batches of at most the single-process size as it takes (the
      same clips per step; BatchNorm batch statistics then come from other groupings).
      E.g. 16 clips per micro-batch, 4 per step, 8 ranks: one micro-batch of 8 per rank.

    Only the epoch's last step can leave a rank fewer (or no) micro-batches (in the second
    case, when the step's clips divide by N); the trainer reduces an uneven step by hand
    (:func:`all_reduce_gradients`).

    Returns:
        ``steps[s][rank]``: the index lists that rank trains on in optimizer step ``s``.
    """
    if accumulate < 1 or world_size < 1:
        raise ValueError(f"accumulate and world_size must be >= 1, got {accumulate}, {world_size}")
    micro = len(batches[0]) if batches else 1  # the first batch is always full
    steps: list[list[list[list[int]]]] = []
    for start in range(0, len(batches), accumulate):
        group = [list(b) for b in batches[start : start + accumulate]]
        if accumulate % world_size == 0:
            per_rank = accumulate // world_size
            shares = [group[r * per_rank : (r + 1) * per_rank] for r in range(world_size)]
        else:
            clips = np.asarray([i for b in group for i in b], dtype=np.int64)
            runs = np.array_split(clips, world_size)
            shares = [
                [c.tolist() for c in np.array_split(run, -(-len(run) // micro))]
                if len(run)
                else []
                for run in runs
            ]
        steps.append(shares)
    return steps


def all_reduce_gradients(parameters: Sequence[nn.Parameter], world_size: int) -> None:
    """Average gradients over the ranks by hand, as DDP does (a missing one counts as 0).

    Used for the one step DDP cannot synchronize: the epoch's last, where ranks may hold
    different numbers of micro-batches (or none).
    """
    for p in parameters:
        if not p.requires_grad:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
        p.grad.div_(world_size)


def average_buffers(model: nn.Module, world_size: int) -> None:
    """Make BatchNorm running statistics the same on every rank (timm's ``distribute_bn``,
    "reduce"): the running mean and variance of every BatchNorm that trained are averaged
    over the ranks; its batch counter is rank 0's. Frozen BatchNorms are left alone. Used
    once per epoch when ranks train on pieces of micro-batches (no single-process order)."""
    for module in model.modules():
        if not (isinstance(module, _BATCH_NORMS) and module.training):
            continue
        for buffer in module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
                buffer.div_(world_size)
            else:
                dist.broadcast(buffer, src=0)


class RunningStats:
    """BatchNorm running statistics merged after each optimizer step as one process would
    have updated them, micro-batch after micro-batch.

    A running statistic ``x`` (mean or variance) moves as ``x <- a x + m s_k`` for the
    batch statistic ``s_k`` of micro-batch ``k`` (momentum ``m``, ``a = 1 - m``). Rank ``r``,
    starting the step from the shared ``x0`` and taking ``n_r`` micro-batches, ends at
    ``x_r = a^n_r x0 + b_r``; as rank ``r``'s micro-batches follow rank ``r - 1``'s in the
    single-process order (:func:`plan_steps`, whole micro-batches), one process would reach
    ``a^(n_0 + ... ) x0 + sum_r a^(n_(r+1) + ...) b_r``: one all-reduce of every statistic
    per step (thousands of numbers, next to the gradients' millions). Exact up to float
    rounding; BatchNorms without a momentum (cumulative average) are averaged instead.
    """

    def __init__(self, model: nn.Module) -> None:
        self.modules = [
            m
            for m in model.modules()
            if isinstance(m, _BATCH_NORMS) and m.training and m.track_running_stats
        ]
        self._start: list[torch.Tensor] = []

    def begin(self) -> None:
        """Remember the statistics every rank starts the step from."""
        self._start = [b.detach().double() for m in self.modules for b in _stats(m)]

    def merge(self, counts: Sequence[int], rank: int) -> None:
        """Combine the ranks' updates; ``counts[r]``: micro-batches rank ``r`` took."""
        if not self.modules:
            return
        pairs = [(m, b) for m in self.modules for b in _stats(m)]
        contributions: list[torch.Tensor] = []
        totals: list[float | None] = []
        for (module, buffer), start in zip(pairs, self._start, strict=True):
            if module.momentum is None:  # cumulative average: no order to restore, a mean
                contributions.append(buffer.double() / len(counts))
                totals.append(None)
                continue
            a = 1.0 - module.momentum
            own = buffer.double() - a ** counts[rank] * start  # b_r
            contributions.append(own * a ** sum(counts[rank + 1 :]))
            totals.append(a ** sum(counts))
        flat = torch.cat([c.flatten() for c in contributions])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        buffers = [b for _, b in pairs]
        for buffer, start, total in zip(buffers, self._start, totals, strict=True):
            part = flat[offset : offset + buffer.numel()].view_as(buffer)
            offset += buffer.numel()
            buffer.copy_(part if total is None else total * start + part)
        for module in self.modules:
            if module.num_batches_tracked is not None:
                module.num_batches_tracked.add_(sum(counts) - counts[rank])


def _stats(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    # called on batch-norm modules only, whose running stats are tensors
    return module.running_mean, module.running_var  # type: ignore[return-value]


class ReplicaJournal(Journal):
    """The journal of ranks > 0: events are built exactly as :class:`Journal` builds them,
    but go to an anonymous temporary file (never the run directory) and take no lock.

    The planner applies the returned events to its progress, so a replica makes the same
    decisions as rank 0 while only rank 0's journal reaches the run directory.
    """

    def __init__(self) -> None:  # no path, no lock, no torn tail to cut
        self.path = Path(os.devnull)
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def shuffled_batches(size: int, micro: int, seed: int) -> list[list[int]]:
    """The index batches of ``DataLoader(shuffle=True, generator=seeded)`` for one epoch:
    the single-process order, drawn by the DataLoader itself over ``range(size)``."""
    dataset = cast("Dataset[int]", range(size))  # a sequence serves as a map-style dataset
    order = DataLoader(
        dataset, batch_size=micro, shuffle=True, generator=torch.Generator().manual_seed(seed)
    )
    return [batch.tolist() for batch in order]
