"""Encoded files through decord (optional: ``pip install decord`` or ``eva-decord``).

decord bundles its own FFmpeg. Importing it before PyAV has loaded its libraries lets
decord's copies win symbol resolution and breaks PyAV's VP9 encoder in the same process, so
PyAV is always imported first.
"""

from __future__ import annotations

import os

import numpy as np

from opplan.errors import ConfigError
from opplan.video.io._base import (
    DecodeStats,
    VideoReader,
    VideoReadError,
    check_file,
    decoder_threads,
)

__all__ = ["DecordReader", "require_decord"]

INSTALL_HINT = (
    "the 'decord' video backend is not installed; install it with `pip install decord` "
    "(or `pip install 'opplan[decord]'`) or use backend 'pyav'"
)


def require_decord() -> None:
    """Fail at start-up, with an install hint, when decord is missing."""
    import av  # noqa: F401  -- PyAV's FFmpeg first (module docstring)

    try:
        import decord  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None


class DecordReader(VideoReader):
    """Reads frames with ``decord.VideoReader.get_batch``: one call per clip, the indices
    sorted and unique; decord seeks to the keyframe before each and decodes forward.
    decord keeps no counters: ``stats.frames_decoded`` counts returned frames only
    (``exact_counts`` is False)."""

    exact_counts = False

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        require_decord()
        import decord

        self.path = os.fspath(path)
        self.stats = DecodeStats()
        check_file(self.path)
        try:
            self._reader = decord.VideoReader(self.path, num_threads=decoder_threads(threads))
        except Exception as err:  # decord raises its own DECORDError (a RuntimeError)
            raise VideoReadError(self.path, f"cannot open: {err}") from None
        self._num_frames = len(self._reader)
        if self._num_frames == 0:
            raise VideoReadError(self.path, "no video frames")

    @property
    def num_frames(self) -> int:
        return self._num_frames

    def close(self) -> None:
        self._reader = None

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        if self._reader is None:
            raise VideoReadError(self.path, "reader is closed")
        try:
            data = self._reader.get_batch([int(i) for i in wanted]).asnumpy()
        except Exception as err:
            raise VideoReadError(self.path, f"decoding failed: {err}") from None
        self.stats.frames_decoded += len(wanted)
        return {int(i): data[k] for k, i in enumerate(wanted)}
