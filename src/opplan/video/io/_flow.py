"""Folders of optical flow as grey JPEG pairs (MMAction2's ``flow_x_00001.jpg`` /
``flow_y_00001.jpg``, or the older dense_flow tool's ``x_00001.jpg`` / ``y_00001.jpg``).

A flow "frame" is one pair: :meth:`FlowFramesReader.get_frames` returns uint8 (T, H, W, 2),
x then y, 128 = no motion (§5.5, the flow stream). Reading needs PIL only (no OpenCV).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from opplan.errors import ConfigError
from opplan.video.annotations import VideoRecord
from opplan.video.io._base import DecodeStats, VideoReader, VideoReadError
from opplan.video.io._frames import ArrayReader, _template_regex

__all__ = ["FlowFramesReader", "FlowOpener", "check_flow_template"]


def check_flow_template(template: str) -> None:
    """A flow template names the axis (``{axis}``: x or y) and the pair number (one ``{}``)."""
    if "{axis}" not in template:
        raise ConfigError(
            f"flow template {template!r} must contain {{axis}} (x or y), e.g. "
            "'flow_{axis}_{:05d}.jpg' (MMAction2) or '{axis}_{:05d}.jpg' (dense_flow)"
        )
    try:
        template.format(1, axis="x")
    except (IndexError, KeyError, ValueError) as err:
        raise ConfigError(f"flow template {template!r}: {err}") from None
    _template_regex(template.replace("{axis}", "x"))


class FlowFramesReader(VideoReader):
    """A video's flow stored as x/y JPEG pairs in one directory.

    Args:
        path: the directory.
        template: file names, with ``{axis}`` (x or y) and one field for the pair number.
        start_index: number of the first pair (1 for ``flow_x_00001.jpg``).
        num_frames: pair count if known (from a frame list); counted (x files) otherwise.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        template: str = "flow_{axis}_{:05d}.jpg",
        start_index: int = 1,
        num_frames: int | None = None,
    ) -> None:
        check_flow_template(template)
        self.path = os.fspath(path)
        self.stats = DecodeStats()
        self._template, self._start = template, start_index
        directory = Path(self.path)
        if not directory.is_dir():
            raise VideoReadError(self.path, "missing flow directory")
        if num_frames is None:
            pattern = _template_regex(template.replace("{axis}", "x"))
            num_frames = sum(1 for name in os.listdir(directory) if pattern.match(name))
        if num_frames <= 0:
            raise VideoReadError(self.path, f"no flow frames matching {template!r}")
        self._num_frames = num_frames

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def _plane(self, index: int, axis: str) -> np.ndarray:
        from PIL import Image, UnidentifiedImageError

        name = os.path.join(self.path, self._template.format(index + self._start, axis=axis))
        try:
            if os.path.getsize(name) == 0:
                raise VideoReadError(name, "zero-byte flow frame")
            with Image.open(name) as image:
                return np.asarray(image.convert("L"))
        except FileNotFoundError:
            raise VideoReadError(name, "missing flow frame") from None
        except (UnidentifiedImageError, OSError) as err:
            raise VideoReadError(name, f"cannot decode flow frame: {err}") from None

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        out = {}
        for i in (int(w) for w in wanted):
            x, y = self._plane(i, "x"), self._plane(i, "y")
            if x.shape != y.shape:
                raise VideoReadError(self.path, f"flow pair {i + self._start}: x {x.shape} "
                                     f"and y {y.shape} differ")  # fmt: skip
            out[i] = np.stack([x, y], axis=-1)
            self.stats.frames_decoded += 1
        return out


class FlowOpener:
    """Reader factory of a flow dataset (``VideoClipDataset(reader_factory=...)``): each
    record's path is a flow folder; ``cache`` keeps every decoded video in memory (each
    DataLoader worker its own copy, like ``data.cache: memory`` for RGB)."""

    def __init__(
        self, template: str = "flow_{axis}_{:05d}.jpg", start_index: int = 1, cache: bool = False
    ) -> None:
        check_flow_template(template)
        self.template, self.start_index, self.cache = template, start_index, cache
        self._frames: dict[str, np.ndarray] = {}

    def __call__(self, record: VideoRecord) -> VideoReader:
        reader = FlowFramesReader(
            record.path,
            template=self.template,
            start_index=self.start_index,
            num_frames=record.num_frames,
        )
        if not self.cache:
            return reader
        if record.path not in self._frames:
            self._frames[record.path] = reader.get_frames(np.arange(reader.num_frames))
        return ArrayReader(self._frames[record.path], path=record.path)
