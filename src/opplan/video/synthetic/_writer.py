"""Writing frames as real H.264 mp4 files (PyAV, libx264, yuv420p), atomically."""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["write_mp4"]


def write_mp4(
    path: str | os.PathLike[str],
    frames: np.ndarray | Iterable[np.ndarray],
    *,
    fps: int = 25,
    crf: int = 12,
    gop: int = 32,
    bframes: int = 2,
    preset: str = "veryfast",
) -> Path:
    """Encode uint8 frames (T, H, W, 3) RGB to an H.264 mp4 at ``path``.

    The file is written to a temporary name in the same directory and then renamed, so a
    reader never sees a half-written video. One encoder thread and no x264 lookahead keep
    the bytes a deterministic function of the frames.

    Args:
        path: output file (``.mp4``).
        frames: uint8 array (T, H, W, 3), or an iterable of (H, W, 3) frames (long videos
            without holding them all in memory); H and W must be even (yuv420p).
        fps: frame rate written in the container.
        crf: x264 constant rate factor (lower is closer to lossless).
        gop: keyframe interval in frames.
        bframes: maximum consecutive B-frames.
        preset: x264 speed preset.

    Returns:
        The path written.
    """
    import av

    path = Path(path)
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None or first.ndim != 3 or first.shape[-1] != 3 or first.dtype != np.uint8:
        shape = None if first is None else (first.dtype, first.shape)
        raise ValueError(f"frames must be uint8 (T, H, W, 3) and not empty, got {shape}")
    height, width = first.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"yuv420p needs even frame sizes, got {width}x{height}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {
                "crf": str(crf),
                "g": str(gop),
                "bf": str(bframes),
                "preset": preset,
                "threads": "1",
                "sc_threshold": "0",
                # x264's lookahead/mb-tree SIMD paths made the bytes differ between runs;
                # without them the output is a function of the frames alone.
                "x264-params": "rc-lookahead=0:mbtree=0",
            }
            for index, image in enumerate(itertools.chain([first], iterator)):
                # One explicit RGB -> yuv420p conversion (swscale), then exact frame timestamps.
                frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(
                    format="yuv420p"
                )
                frame.pts, frame.time_base = index, Fraction(1, fps)
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a dataset is meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
