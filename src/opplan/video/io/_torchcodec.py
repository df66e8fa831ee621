"""Encoded files through torchcodec (optional; ``pip install torchcodec``)."""

from __future__ import annotations

import os

import numpy as np

from opplan.errors import ConfigError
from opplan.video.io._base import DecodeStats, VideoReader, VideoReadError, decoder_threads

__all__ = ["TorchCodecReader", "require_torchcodec"]

INSTALL_HINT = (
    "the 'torchcodec' video backend is not installed; install it with "
    "`pip install torchcodec` (matching your torch version) or use backend 'pyav'"
)


def require_torchcodec() -> None:
    """Fail at start-up, with an install hint, when torchcodec is missing."""
    try:
        import torchcodec.decoders  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None


class TorchCodecReader(VideoReader):
    """Reads frames with ``torchcodec.decoders.VideoDecoder`` in exact seek mode."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        require_torchcodec()
        from torchcodec.decoders import VideoDecoder

        self.path = os.fspath(path)
        self.stats = DecodeStats()
        if not os.path.exists(self.path):
            raise VideoReadError(self.path, "missing file")
        if os.path.getsize(self.path) == 0:
            raise VideoReadError(self.path, "zero-byte file")
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
