"""``data.cache: memory``: decode each video once and serve its frames from memory."""

from __future__ import annotations

import numpy as np

from opplan.video import ArrayReader, VideoReader, VideoRecord, open_video
from opplan.video.io import Backend

__all__ = ["DecodedCache"]


class DecodedCache:
    """Reader factory that decodes each video once and keeps its frames in memory.

    For small datasets (the synthetic ones, ~30 MB) where decoding would dominate an epoch.
    Each DataLoader worker fills its own copy.
    """

    def __init__(
        self, backend: Backend = "auto", frame_template: str = "img_{:05d}.jpg", start: int = 1
    ) -> None:
        self.backend = backend
        self.frame_template, self.frame_start_index = frame_template, start
        self._frames: dict[str, np.ndarray] = {}

    def __call__(self, record: VideoRecord) -> VideoReader:
        if record.path not in self._frames:
            with open_video(
                record.path,
                backend=self.backend,
                num_frames=record.num_frames,
                frame_template=self.frame_template,
                frame_start_index=self.frame_start_index,
            ) as reader:
                self._frames[record.path] = reader.get_frames(np.arange(reader.num_frames))
        return ArrayReader(self._frames[record.path], path=record.path)
