"""Video data pipeline (§3.1 sampling, §5.1 datasets, §5.2 augmentation and inference).

Readers (:mod:`opplan.video.io`), frame sampling (:mod:`opplan.video.sampling`), transforms
(:mod:`opplan.video.transforms`), annotation formats (:mod:`opplan.video.annotations`), the
internal validation split (:mod:`opplan.video.splits`), the clip dataset
(:mod:`opplan.video.datasets`), the bad-data policy (:mod:`opplan.video.health`), start-up
checks (:mod:`opplan.video.probe`) and the
built-in synthetic datasets (:mod:`opplan.video.synthetic`).
"""

from __future__ import annotations

from opplan.video.annotations import (
    VideoRecord,
    read_frame_list,
    read_hmdb51_split,
    read_kinetics_csv,
    read_reference_list,
    read_ssv2_json,
    read_ucf101_split,
    read_video_list,
    write_video_list,
)
from opplan.video.datasets import VideoClipDataset, average_view_scores
from opplan.video.health import DataHealth, DataHealthError
from opplan.video.io import (
    ArrayReader,
    FramesDirReader,
    PyAVReader,
    VideoReader,
    VideoReadError,
    open_video,
)
from opplan.video.probe import check_clip_length
from opplan.video.sampling import ClipSampler, Sampling, ShortPolicy
from opplan.video.splits import internal_val_split
from opplan.video.transforms import TransformConfig, build_transform

__all__ = [
    "ArrayReader",
    "ClipSampler",
    "DataHealth",
    "DataHealthError",
    "FramesDirReader",
    "PyAVReader",
    "Sampling",
    "ShortPolicy",
    "TransformConfig",
    "VideoClipDataset",
    "VideoReadError",
    "VideoReader",
    "VideoRecord",
    "average_view_scores",
    "build_transform",
    "check_clip_length",
    "internal_val_split",
    "open_video",
    "read_frame_list",
    "read_hmdb51_split",
    "read_kinetics_csv",
    "read_reference_list",
    "read_ssv2_json",
    "read_ucf101_split",
    "read_video_list",
    "write_video_list",
]
