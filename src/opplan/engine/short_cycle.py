"""Multigrid's short cycle (Wu et al. 2020; PySlowFast's ``ShortCycleBatchSampler``, beyond
the paper): within one long-cycle shape, consecutive iterations cycle through three crop
sides with the batch grown to keep ``B * H * W`` about constant.

As in PySlowFast (``slowfast/datasets/multigrid_helper.py``, ``kinetics.py``):

- the sides are ``round(f * default)`` for ``f`` in :data:`SHORT_CYCLE_FACTORS` (0.5,
  0.707) of the *default* (final) crop side ``DEFAULT_S``, then the long-cycle shape's own
  crop -- for a shape already at 0.707 of the side, sides ``S/2, 0.707 S, 0.707 S``;
- the batches are ``batch * round((crop / (f * default))**2)``, then ``batch``: 4B, 2B, B at
  the full shape (2B, B, B at 0.707 of it);
- iteration ``k`` of an epoch uses cycle index ``k % 3``, in that order, over the epoch's
  shuffled clips; the learning rate is the long-cycle shape's for every iteration (PySlowFast
  does not rescale it within the short cycle).

Two departures, both to fit opplan's trainer: the epoch's last, partial batch is trained
(``drop_last=False``: every epoch is one pass over the data, as elsewhere in opplan), and the
item PySlowFast passes as the pair ``(index, short_cycle_idx)`` travels as one integer
``short_cycle_idx * n + index`` (:class:`ShortCycleDataset` decodes it), so the batches go
through the trainer's rank split and persistent loaders unchanged. The crop geometry at a
short-cycle side is opplan's ``size`` geometry (:func:`opplan.engine.state_axes
.state_transform`), as for the long cycle's shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset, Sampler

from opplan.engine.distributed import DistributedContext, plan_steps, shuffled_batches
from opplan.engine.settings import OptimSettings
from opplan.planning.state import TrainingState
from opplan.video import VideoClipDataset

__all__ = [
    "SHORT_CYCLE_FACTORS",
    "ShortCycle",
    "ShortCycleBatchSampler",
    "ShortCycleDataset",
    "Steps",
    "epoch_steps",
]

#: spatial factors of the short cycle's two smaller crops, of the default side (PySlowFast's)
SHORT_CYCLE_FACTORS: tuple[float, float] = (0.5, 0.5**0.5)

Steps = list[list[list[list[int]]]]  # steps[s][rank]: that rank's micro-batches of step s


@dataclass(frozen=True)
class ShortCycle:
    """The short cycle of one long-cycle shape: its crop side ``crop`` and effective batch
    ``batch``, with ``default`` the run's final crop side (PySlowFast's ``DEFAULT_S``).

    Example:
        >>> c = ShortCycle(default=32, crop=32, batch=8)
        >>> c.sides, c.batch_sizes
        ((16, 23, 32), (32, 16, 8))
        >>> c.sequence(60)  # (clips, cycle index) of each iteration of a 60-clip epoch
        [(32, 0), (16, 1), (8, 2), (4, 0)]
    """

    default: int
    crop: int
    batch: int

    def __post_init__(self) -> None:
        for name in ("default", "crop", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"short cycle: {name} must be a positive integer, got {value!r}")
        if min(self.sides) < 8:
            raise ValueError(
                f"short cycle: a default side of {self.default} px gives a crop of "
                f"{min(self.sides)} px (at least 8 needed; the default side must be >= 15)"
            )
        if min(self.multiples) < 1:
            raise ValueError(
                f"short cycle: crop {self.crop} px is too small for default side {self.default}"
            )

    @property
    def sides(self) -> tuple[int, int, int]:
        """Crop side of cycle index 0, 1, 2: ``round(f * default)``, then ``crop``."""
        small, medium = (round(f * self.default) for f in SHORT_CYCLE_FACTORS)
        return small, medium, self.crop

    @property
    def multiples(self) -> tuple[int, int, int]:
        """Batch multiple of each cycle index: ``round((crop / (f * default))**2)``, 1."""
        small, medium = (round((self.crop / (f * self.default)) ** 2) for f in SHORT_CYCLE_FACTORS)
        return small, medium, 1

    @property
    def batch_sizes(self) -> tuple[int, int, int]:
        return tuple(self.batch * m for m in self.multiples)  # type: ignore[return-value]

    def sequence(self, num_clips: int) -> list[tuple[int, int]]:
        """``(clips, cycle index)`` of each iteration of an epoch over ``num_clips`` clips
        (the last one partial when the clips run out)."""
        out: list[tuple[int, int]] = []
        done = 0
        while done < num_clips:
            k = len(out) % 3
            size = min(self.batch_sizes[k], num_clips - done)
            out.append((size, k))
            done += size
        return out

    def pixel_fraction(self, num_clips: int | None = None) -> float:
        """Mean pixels of a clip of an epoch relative to a ``default x default`` one: the
        epoch's weight (over ``num_clips`` clips; ``None``: the cycle's own mix)."""
        if num_clips is None:
            rows = [(b, k) for k, b in enumerate(self.batch_sizes)]
        else:
            rows = self.sequence(num_clips)
        clips = sum(n for n, _ in rows)
        return sum(n * (self.sides[k] / self.default) ** 2 for n, k in rows) / clips


class ShortCycleBatchSampler(Sampler[list[int]]):
    """PySlowFast's ``ShortCycleBatchSampler``: batches of ``sampler``'s indices whose size
    follows ``cycle.batch_sizes[k % 3]`` at iteration ``k``; each item is encoded as
    ``cycle_index * num_items + index`` for :class:`ShortCycleDataset`."""

    def __init__(
        self, sampler: Iterable[int], cycle: ShortCycle, num_items: int, drop_last: bool = False
    ) -> None:
        if num_items < 1:
            raise ValueError(f"num_items must be positive, got {num_items}")
        self.sampler = sampler
        self.cycle = cycle
        self.num_items = num_items
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        counter = 0
        batch: list[int] = []
        for index in self.sampler:
            batch.append(counter % 3 * self.num_items + index)
            if len(batch) == self.cycle.batch_sizes[counter % 3]:
                yield batch
                counter += 1
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        sequence = self.cycle.sequence(self.num_items)
        full = sequence[-1][0] == self.cycle.batch_sizes[sequence[-1][1]]
        return len(sequence) - (self.drop_last and not full)


class ShortCycleDataset(Dataset[tuple[torch.Tensor, int, int]]):
    """Item ``k * n + i`` is clip ``i`` at the crop side of cycle index ``k``: ``datasets``
    holds the state's training dataset at each of the three sides (one seed and epoch)."""

    def __init__(self, datasets: Sequence[VideoClipDataset], seed: int, epoch: int) -> None:
        if len(datasets) != 3 or len({len(d) for d in datasets}) != 1:
            raise ValueError("a short cycle needs 3 datasets of the same videos")
        self.datasets = list(datasets)
        self.seed = seed
        self.set_epoch(epoch)

    @property
    def num_videos(self) -> int:
        return len(self.datasets[0])

    def __len__(self) -> int:
        return 3 * self.num_videos

    @property
    def seed(self) -> int:
        return self.datasets[0].seed

    @seed.setter
    def seed(self, value: int) -> None:
        for dataset in self.datasets:
            dataset.seed = value

    @property
    def epoch(self) -> int:
        return self.datasets[0].epoch

    def set_epoch(self, epoch: int) -> None:
        for dataset in self.datasets:
            dataset.set_epoch(epoch)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int, int]:
        cycle, index = divmod(item, self.num_videos)
        return self.datasets[cycle][index]


def epoch_steps(
    num_clips: int,
    seed: int,
    optim: OptimSettings,
    state: TrainingState,
    dist: DistributedContext,
    cycle: ShortCycle | None = None,
) -> tuple[Steps, list[int]]:
    """One epoch's optimizer steps, ``steps[s][rank]`` (:func:`plan_steps`: the micro-batches
    one process would draw, shared out over the ranks), and each step's gradient divisor.

    Without a ``cycle``: ``accumulate`` micro-batches of ``micro`` clips per step (the
    ``optim`` settings at the state's clip length), in the order ``DataLoader(shuffle=True)``
    draws with a generator seeded ``seed``. With one: one step per short-cycle batch over
    that same order; a batch ``m`` times the long-cycle one is cut into micro-batches ``m``
    times the trainer's (a crop ``1/sqrt(m)`` the side: about the same memory), so every
    step keeps ``accumulate`` micro-batches.
    """
    micro = optim.micro_batch_for(state.clip_length)
    accumulate = optim.accumulation_steps(state.clip_length)
    world = dist.world_size
    if cycle is None:
        plain = plan_steps(shuffled_batches(num_clips, micro, seed), accumulate, world)
        return plain, [micro * accumulate] * len(plain)
    (order,) = shuffled_batches(num_clips, num_clips, seed)  # the same permutation
    steps: Steps = []
    divisors: list[int] = []
    for batch in ShortCycleBatchSampler(order, cycle, num_clips):
        size = micro * cycle.multiples[batch[0] // num_clips]
        micro_batches = [batch[i : i + size] for i in range(0, len(batch), size)]
        (step,) = plan_steps(micro_batches, accumulate, world)  # <= accumulate micro-batches
        steps.append(step)
        divisors.append(size * accumulate)
    return steps, divisors
