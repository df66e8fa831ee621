"""Encoded files through torchcodec (optional; ``pip install torchcodec``)."""

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

__all__ = ["TorchCodecReader", "require_torchcodec"]

INSTALL_HINT = (
    "the 'torchcodec' video backend is not installed; install it with "
    "`pip install torchcodec` (matching your torch version) or use backend 'pyav'"
)


def require_torchcodec() -> None:
    """Fail at start-up, with an install hint, when torchcodec is missing or cannot load its
    core library (it links a system FFmpeg 4-8; the wheel brings none)."""
    try:
        import torchcodec.decoders  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    try:
        from torchcodec._internally_replaced_utils import load_core_libraries
    except ImportError:  # another torchcodec layout: the first decoder will tell
        return
    try:
        load_core_libraries()
    except (RuntimeError, OSError) as err:
        import re

        lost = sorted(set(re.findall(r"(lib\w+\.so\.\d+): cannot open", str(err))))
        why = f"not found: {', '.join(lost)}" if lost else str(err).strip().splitlines()[0]
        raise ConfigError(
            f"torchcodec is installed but cannot load its FFmpeg libraries ({why}); "
            "install FFmpeg's shared libraries (4-8) or use backend 'pyav'"
        ) from None


class TorchCodecReader(VideoReader):
    """Reads frames with ``torchcodec.decoders.VideoDecoder`` in exact seek mode: one
    ``get_frames_at`` per clip (sorted unique indices, decoded forward from the keyframes).
    torchcodec keeps no counters: ``stats.frames_decoded`` counts returned frames only."""

    exact_counts = False

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        require_torchcodec()
        from torchcodec.decoders import VideoDecoder

        self.path = os.fspath(path)
        self.stats = DecodeStats()
        check_file(self.path)
        try:
            self._decoder = VideoDecoder(
                self.path, seek_mode="exact", num_ffmpeg_threads=decoder_threads(threads)
            )
        except (RuntimeError, ValueError) as err:
            raise VideoReadError(self.path, f"cannot open: {err}") from None

    @property
    def num_frames(self) -> int:
        return int(self._decoder.metadata.num_frames)

    def close(self) -> None:
        self._decoder = None  # torchcodec closes the file when the decoder is released

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        try:
            batch = self._decoder.get_frames_at(indices=[int(i) for i in wanted])
        except (RuntimeError, IndexError) as err:
            raise VideoReadError(self.path, f"decoding failed: {err}") from None
        data = batch.data.permute(0, 2, 3, 1).numpy()
        self.stats.frames_decoded += len(wanted)
        return {int(i): data[k] for k, i in enumerate(wanted)}
