"""The training DataLoader of a state, and when the loader is the bottleneck (issue 15).

Without persistent workers a new ``DataLoader`` is made every epoch (its workers start
again). With ``data.persistent_workers`` one loader serves every epoch of a state: its batch
sampler is refilled each epoch and each index carries ``(seed, epoch, index)``, because the
workers keep the copy of the dataset made when they started and every random draw of an
item derives from those three numbers (:mod:`opplan.video.datasets`), so a run trains the
same clips with either setting and any number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from opplan.engine.short_cycle import ShortCycleDataset
from opplan.video import VideoClipDataset

__all__ = ["LOADER_BOUND", "TrainLoaders", "loader_bound_warning"]

LOADER_BOUND = 0.2  # loader-bound: waiting for data longer than this fraction of compute


class _EpochBatches:
    """A batch sampler whose batches change every epoch (a persistent loader keeps it)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int, int]]] = []

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _EpochItems(Dataset[tuple[torch.Tensor, int, int]]):
    """``(seed, epoch, index)`` -> that epoch's item of the wrapped dataset."""

    def __init__(self, dataset: VideoClipDataset | ShortCycleDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int]) -> tuple[torch.Tensor, int, int]:
        seed, epoch, index = key
        if (self.dataset.seed, self.dataset.epoch) != (seed, epoch):
            self.dataset.seed = seed
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


class TrainLoaders:
    """Hands out each epoch's training loader (see the module docstring).

    Args:
        num_workers: DataLoader worker processes (0: in the training process).
        persistent_workers: keep the workers for all epochs of a state.
        prefetch_factor: batches each worker loads ahead (None: PyTorch's 2).
        pin_memory: page-locked batches (CUDA).
    """

    def __init__(
        self,
        num_workers: int,
        persistent_workers: bool = False,
        prefetch_factor: int | None = None,
        pin_memory: bool = False,
    ) -> None:
        self.num_workers = num_workers
        self.persistent = persistent_workers and num_workers > 0
        self.prefetch_factor = prefetch_factor if num_workers > 0 else None
        self.pin_memory = pin_memory
        self.created = 0  # loaders made so far (a test's and a profile's counter)
        self._kept: tuple[object, DataLoader[Any], _EpochBatches] | None = None

    def epoch(self, key: object, dataset: VideoClipDataset | ShortCycleDataset,
              batches: list[list[int]], seed: int) -> DataLoader[Any]:  # fmt: skip
        """The loader of one epoch of the state ``key`` over ``batches`` of ``dataset``."""
        if not self.persistent:
            self.created += 1
            return DataLoader(
                dataset,
                batch_sampler=batches,
                generator=torch.Generator().manual_seed(seed),  # workers' seeds
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                prefetch_factor=self.prefetch_factor,
            )
        if self._kept is None or self._kept[0] != key:
            self._kept = None  # the previous state's workers end with their loader
            sampler = _EpochBatches()
            loader = DataLoader(
                _EpochItems(dataset),
                batch_sampler=sampler,
                generator=torch.Generator().manual_seed(seed),
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                persistent_workers=True,
                prefetch_factor=self.prefetch_factor,
            )
            self.created += 1
            self._kept = (key, loader, sampler)
        _, loader, sampler = self._kept
        sampler.batches = [[(dataset.seed, dataset.epoch, i) for i in b] for b in batches]
        return loader


def loader_bound_warning(state: object, metrics: dict[str, float], num_workers: int
                         ) -> str | None:  # fmt: skip
    """The warning when the model waited for data longer than 20 % of its compute time
    (None otherwise), naming the remedies."""
    data, compute = metrics["data_time"], metrics["compute_time"]
    if data <= LOADER_BOUND * compute:
        return None
    return (
        f"warning: loader-bound in {state}: waiting for data {data:.2f} s vs compute "
        f"{compute:.2f} s ({100 * data / max(compute, 1e-9):.0f} %; loader "
        f"{metrics['data_clips_per_s']:.1f} clips/s, model "
        f"{metrics['compute_clips_per_s']:.1f} clips/s); prepare the videos (`opplan data "
        "prepare CONFIG --out DIR`: short side 256, GOP 16, or --frames) or raise "
        f"data.num_workers (now {num_workers})"
    )
