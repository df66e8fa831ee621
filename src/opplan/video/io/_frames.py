"""Directories of JPEG frames and in-memory arrays behind the reader interface."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from opplan.errors import ConfigError
from opplan.video.io._base import DecodeStats, VideoReader, VideoReadError

__all__ = ["ArrayReader", "FramesDirReader"]


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^}]*\}", template)
    if len(parts) != 2:
        raise ConfigError(f"frame template {template!r} must contain exactly one {{}} field")
    return re.compile(re.escape(parts[0]) + r"(\d+)" + re.escape(parts[1]) + r"\Z")


class FramesDirReader(VideoReader):
    """A video stored as one image file per frame (e.g. ``img_00001.jpg``).

    Args:
        path: the directory.
        template: file-name template with one format field for the frame number.
        start_index: number of the first frame file (1 for the usual ``img_00001.jpg``).
        num_frames: frame count if known (from a raw-frame list); counted otherwise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        template: str = "img_{:05d}.jpg",
        start_index: int = 1,
        num_frames: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.stats = DecodeStats()
        self._template, self._start = template, start_index
        directory = Path(self.path)
        if not directory.is_dir():
            raise VideoReadError(self.path, "missing frame directory")
        if num_frames is None:
            pattern = _template_regex(template)
            num_frames = sum(1 for name in os.listdir(directory) if pattern.match(name))
        if num_frames <= 0:
            raise VideoReadError(self.path, f"no frames matching {template!r}")
        self._num_frames = num_frames

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        from PIL import Image, UnidentifiedImageError

        out = {}
        for i in (int(w) for w in wanted):
            name = os.path.join(self.path, self._template.format(i + self._start))
            try:
                if os.path.getsize(name) == 0:
                    raise VideoReadError(name, "zero-byte frame")
                with Image.open(name) as image:
                    out[i] = np.asarray(image.convert("RGB"))
            except FileNotFoundError:
                raise VideoReadError(name, "missing frame") from None
            except (UnidentifiedImageError, OSError) as err:
                raise VideoReadError(name, f"cannot decode frame: {err}") from None
            self.stats.frames_decoded += 1
        return out


class ArrayReader(VideoReader):
    """Frames already in memory, uint8 (T, H, W, 3) — tests, caches and generated data
    (or (T, H, W, 2): optical flow, x and y).

    Example:
        >>> import numpy as np
        >>> reader = ArrayReader(np.zeros((10, 4, 4, 3), np.uint8))
        >>> reader.get_frames([0, 9, 9]).shape
        (3, 4, 4, 3)
    """

    def __init__(self, frames: np.ndarray, *, path: str = "<memory>") -> None:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] not in (2, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 (T, H, W, 3) or (T, H, W, 2), got {frames.dtype} {frames.shape}"
            )
        self.path = path
        self.stats = DecodeStats()
        self._frames = frames

    @property
    def num_frames(self) -> int:
        return int(self._frames.shape[0])

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        self.stats.frames_decoded += len(wanted)
        return {int(i): self._frames[i] for i in wanted}
