"""Tiny videos for the video tests, made once per session in a temporary directory."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from opplan.video.synthetic import generate_dataset, write_mp4

torch.set_num_threads(1)


def numbered_frames(num_frames: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    """Frames whose content changes every frame (a moving gradient plus a frame-index bar)."""
    height, width = size
    t = np.arange(num_frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    red = (x * 4 + t * 7) % 256
    green = (y * 5 + t * 3) % 256
    blue = ((x + y) * 2 + t * 11) % 256
    frames = np.stack(np.broadcast_arrays(red, green, blue), axis=-1).astype(np.uint8)
    for i in range(num_frames):  # a bar whose length encodes the index
        frames[i, :4, : (i % width) + 1] = 255
    return frames


def decode_all(path: Path) -> np.ndarray:
    """Reference: full sequential decode of the first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])


@pytest.fixture(scope="session")
def bframe_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A 200-frame H.264 mp4 with B-frames (bf=2) and a long keyframe interval (g=60)."""
    path = tmp_path_factory.mktemp("videos") / "bframes.mp4"
    write_mp4(path, numbered_frames(200), gop=60, bframes=2, crf=18)
    return path, decode_all(path)


@pytest.fixture(scope="session")
def synth_order(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ``order`` dataset: 10 classes x 3 videos of 24-40 frames."""
    root = tmp_path_factory.mktemp("order")
    generate_dataset("order", root, videos_per_class=3, seed=0, min_frames=24, max_frames=40)
    return root
