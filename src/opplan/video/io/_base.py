"""The one small reader interface every video backend implements."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from opplan.errors import OpplanError

__all__ = [
    "DecodeStats",
    "VideoReadError",
    "VideoReader",
    "check_file",
    "check_indices",
    "decoder_threads",
]


class VideoReadError(OpplanError):
    """A video cannot be read: missing, empty, truncated or undecodable.

    Attributes:
        path: the file or directory.
        reason: a short human-readable reason (goes into ``data_health.json``).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{os.fspath(path)}: {reason}")
        self.path = os.fspath(path)
        self.reason = reason


@dataclass
class DecodeStats:
    """Counters a reader keeps: frames decoded vs returned, and seeks (see benchmarks)."""

    frames_decoded: int = 0
    frames_returned: int = 0
    seeks: int = 0


class VideoReader(ABC):
    """Random access to the frames of one video, by frame index.

    Subclasses decode only what :meth:`get_frames` needs. Use as a context manager, or call
    :meth:`close`, so that no file handle outlives the clip.
    """

    path: str
    stats: DecodeStats
    exact_counts = True  # stats count what the decoder really did (False: returned frames)

    @property
    @abstractmethod
    def num_frames(self) -> int:
        """Number of frames in the video."""

    @abstractmethod
    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        """Decode the sorted unique frame indices ``wanted``; map index -> (H, W, 3) uint8."""

    def get_frames(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 (N, H, W, 3) RGB."""
        idx = check_indices(self.path, indices, self.num_frames)
        wanted = np.unique(idx)
        frames = self._read(wanted)
        self.stats.frames_returned += len(idx)
        return np.stack([frames[int(i)] for i in idx])

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the file handle (no-op for readers that hold none)."""

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def check_indices(path: str, indices: Sequence[int] | np.ndarray, num_frames: int) -> np.ndarray:
    """Validate frame indices against the video length; returns an int64 array."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise ValueError(f"{path}: no frame indices requested")
    if idx.min() < 0 or idx.max() >= num_frames:
        raise IndexError(
            f"{path}: frame indices [{idx.min()}, {idx.max()}] outside [0, {num_frames})"
        )
    return idx


def decoder_threads(threads: int | None) -> int:
    """Decoder threads: 1 inside a DataLoader worker (workers already run in parallel),
    otherwise ``threads`` or, when None, up to 4 of the available CPUs."""
    if threads is not None:
        return max(1, threads)
    try:
        import torch.utils.data

        if torch.utils.data.get_worker_info() is not None:
            return 1
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return max(1, min(4, len(os.sched_getaffinity(0))))


def check_file(path: str) -> os.stat_result:
    """The file's stat; a missing or zero-byte video is a :class:`VideoReadError` naming it
    (every reader's first check, before its decoder sees the file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VideoReadError(path, "missing file") from None
    if st.st_size == 0:
        raise VideoReadError(path, "zero-byte file")
    return st
