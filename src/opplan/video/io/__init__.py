"""Video readers behind one small interface (§5.2): PyAV, torchcodec, decord, JPEG frames,
memory.

Example:
    >>> from opplan.video.io import open_video
    >>> with open_video("clip.mp4") as reader:  # doctest: +SKIP
    ...     clip = reader.get_frames([0, 2, 4, 6])  # uint8 (4, H, W, 3)
"""

from __future__ import annotations

import os
from typing import Literal

from opplan.errors import ConfigError
from opplan.video.io._base import (
    DecodeStats,
    VideoReader,
    VideoReadError,
    check_indices,
    decoder_threads,
)
from opplan.video.io._decord import DecordReader, require_decord
from opplan.video.io._flow import FlowFramesReader, FlowOpener, check_flow_template
from opplan.video.io._frames import ArrayReader, FramesDirReader
from opplan.video.io._pyav import PyAVReader
from opplan.video.io._torchcodec import TorchCodecReader, require_torchcodec

__all__ = [
    "ArrayReader",
    "Backend",
    "DecodeStats",
    "DecordReader",
    "FlowFramesReader",
    "FlowOpener",
    "FramesDirReader",
    "PyAVReader",
    "TorchCodecReader",
    "VideoReadError",
    "VideoReader",
    "check_backend",
    "check_flow_template",
    "check_indices",
    "decoder_threads",
    "open_video",
]

Backend = Literal["auto", "pyav", "torchcodec", "decord", "frames"]
_BACKENDS = ("auto", "pyav", "torchcodec", "decord", "frames")


def check_backend(backend: str) -> None:
    """Validate a backend name and its install at start-up (before any work starts)."""
    if backend not in _BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r}; choose from {list(_BACKENDS)}")
    if backend == "torchcodec":
        require_torchcodec()
    if backend == "decord":
        require_decord()


def open_video(
    path: str | os.PathLike[str],
    *,
    backend: Backend = "auto",
    threads: int | None = None,
    frame_template: str = "img_{:05d}.jpg",
    frame_start_index: int = 1,
    num_frames: int | None = None,
) -> VideoReader:
    """Open a video with the chosen backend.

    Args:
        path: an encoded file, or a directory of frames.
        backend: ``"auto"`` picks ``"frames"`` for a directory and ``"pyav"`` otherwise.
        threads: decoder threads (None: 1 in a DataLoader worker, else up to 4).
        frame_template: file-name template of frame images (``frames`` backend).
        frame_start_index: number of the first frame image.
        num_frames: frame count of a frame directory, if known.

    Raises:
        VideoReadError: the video cannot be read.
        ConfigError: unknown backend, or torchcodec/decord requested but not installed.
    """
    check_backend(backend)
    if backend == "auto":
        backend = "frames" if os.path.isdir(path) else "pyav"
    if backend == "frames":
        return FramesDirReader(
            path, template=frame_template, start_index=frame_start_index, num_frames=num_frames
        )
    if backend == "torchcodec":
        return TorchCodecReader(path, threads=threads)
    if backend == "decord":
        return DecordReader(path, threads=threads)
    return PyAVReader(path, threads=threads)
