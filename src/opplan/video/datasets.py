"""The video clip dataset a trainer iterates (§3.1 sampling, §5.2 augmentation and inference).

``VideoClipDataset(records, sampling=..., clip_length=..., mode=...)`` returns
``(clip, label, index)``: ``clip`` is float32 C x T x H x W, normalized; ``index`` is the
video's position in ``records``. The three modes follow §5.2:

- ``train``: a random clip (consecutive or uniform), random scale/crop/flip, all drawn from
  ``(seed, epoch, index)`` so a run is reproducible whatever the number of workers;
- ``plan_eval``: one centre clip, one centre crop — fixed, so two evaluations agree exactly;
- ``test``: ``num_clips`` evenly spaced clips x ``num_crops`` crops. Every view is its own
  item (``len = videos x views``) so a batch of views costs the memory of a one-view batch;
  :func:`average_view_scores` averages the scores per video.

Unreadable videos (see :mod:`opplan.video.health`): in ``train`` mode a bad video is replaced
by another one and counted. In ``plan_eval`` and ``test`` mode it is never replaced (a
replacement would credit its views to another video and silently change the score): its
items come back as a zero clip with the index ``-1 - video``, which the evaluators
(``VideoTrainer.evaluate``, ``opplan.engine.evaluate.evaluate_views``) drop from the score and
report. The flag travels with the batch, so it works with any number of DataLoader workers.

Example:
    >>> from opplan.video import VideoClipDataset, read_video_list, TransformConfig
    >>> records = read_video_list("data/train.txt", root="data")  # doctest: +SKIP
    >>> ds = VideoClipDataset(records, sampling="uniform", clip_length=8, mode="train",
    ...                       transform=TransformConfig.scaled(32))  # doctest: +SKIP
    >>> clip, label, index = ds[0]  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from opplan.errors import ConfigError
from opplan.video.annotations import VideoRecord
from opplan.video.health import DataHealth
from opplan.video.io import Backend, VideoReader, VideoReadError, check_backend, open_video
from opplan.video.sampling import ClipSampler, Sampling, ShortPolicy
from opplan.video.transforms import Mode, TransformConfig, build_transform

__all__ = ["VideoClipDataset", "average_view_scores"]

ReaderFactory = Callable[[VideoRecord], VideoReader]


class VideoClipDataset(Dataset[tuple[torch.Tensor, int, int]]):
    """Clips of labelled videos for training, planning evaluation or the final test.

    Args:
        records: the videos (see :mod:`opplan.video.annotations`).
        sampling: ``"consecutive"`` or ``"uniform"``.
        clip_length: frames per clip.
        mode: ``"train"``, ``"plan_eval"`` or ``"test"``.
        frame_interval: step of consecutive clips.
        short_policy: ``loop``, ``repeat_last`` or ``error`` for videos shorter than a clip.
        transform: spatial sizes and normalization; default = the paper's (224 crops).
        num_clips: temporal views in test mode (10 in the paper).
        num_crops: spatial views in test mode (3 in the paper; 1 = centre crop).
        seed: base seed of every random choice.
        backend: video reader backend (``auto``, ``pyav``, ``torchcodec``, ``frames``).
        frame_template: file-name template of frame directories.
        frame_start_index: number of the first frame file.
        reader_factory: opens a record (overrides ``backend``; e.g. an in-memory cache).
        health: bad-data policy; default counts bad samples in memory.
        max_retries: replacements tried before giving up on one item (``train`` mode).
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        *,
        sampling: Sampling,
        clip_length: int,
        mode: Mode = "train",
        frame_interval: int = 1,
        short_policy: ShortPolicy = "loop",
        transform: TransformConfig | None = None,
        num_clips: int = 10,
        num_crops: int = 3,
        seed: int = 0,
        backend: Backend = "auto",
        frame_template: str = "img_{:05d}.jpg",
        frame_start_index: int = 1,
        reader_factory: ReaderFactory | None = None,
        health: DataHealth | None = None,
        max_retries: int = 10,
    ) -> None:
        if not records:
            raise ConfigError("the dataset has no videos")
        if mode not in ("train", "plan_eval", "test"):
            raise ConfigError(f"mode must be 'train', 'plan_eval' or 'test', got {mode!r}")
        if num_crops not in (1, 3) or num_clips < 1:
            raise ConfigError(f"test views need num_clips >= 1, num_crops 1 or 3: {num_clips}")
        check_backend(backend)
        self.records = list(records)
        self.sampler = ClipSampler(sampling, clip_length, frame_interval, short_policy)
        self.mode: Mode = mode
        self.config = transform or TransformConfig()
        self.num_clips = num_clips if mode == "test" else 1
        self.num_crops = num_crops if mode == "test" else 1
        self.seed = seed
        self.epoch = 0
        self.backend = backend
        self.frame_template = frame_template
        self.frame_start_index = frame_start_index
        self.reader_factory = reader_factory
        self.health = health or DataHealth()
        self.max_retries = max_retries
        if mode == "test":
            crops = range(3) if num_crops == 3 else [1]
            self._transforms = [build_transform(self.config, "test", crop_index=c) for c in crops]
        else:
            self._transforms = [build_transform(self.config, mode)]
        self._cache: tuple[tuple[int, int], np.ndarray] | None = None
        self._bad: set[int] = set()  # videos this process found unreadable

    def _replacement(self, rng: np.random.Generator) -> int:
        """Another video for a bad one, avoiding the ones already known to be bad."""
        video = int(rng.integers(len(self.records)))
        for _ in range(100):
            if video not in self._bad:
                break
            video = int(rng.integers(len(self.records)))
        return video

    @property
    def views_per_video(self) -> int:
        """Items per video: ``num_clips * num_crops`` in test mode, 1 otherwise."""
        return self.num_clips * self.num_crops

    @property
    def num_videos(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's random stream (call before creating the epoch's iterator)."""
        self.epoch = epoch
        self.health.epoch = epoch

    def __len__(self) -> int:
        return len(self.records) * self.views_per_video

    def _open(self, record: VideoRecord) -> VideoReader:
        if self.reader_factory is not None:
            return self.reader_factory(record)
        return open_video(
            record.path,
            backend=self.backend,
            frame_template=self.frame_template,
            frame_start_index=self.frame_start_index,
            num_frames=record.num_frames,
        )

    def _frames(self, video: int, clip: int, rng: np.random.Generator) -> np.ndarray:
        """Decode the frames of one clip of one video, uint8 (T, H, W, 3)."""
        if self.mode == "test" and self._cache is not None and self._cache[0] == (video, clip):
            return self._cache[1]
        with self._open(self.records[video]) as reader:
            n = reader.num_frames
            if self.mode == "train":
                indices = self.sampler.train(n, rng)
            else:
                indices = self.sampler.test(n, self.num_clips)[clip]
            frames = reader.get_frames(indices)
        if self.mode == "test":
            self._cache = ((video, clip), frames)  # the next crops of this clip reuse it
        return frames

    def _excluded(self, video: int) -> tuple[torch.Tensor, int, int]:
        """The item of an unreadable video in an evaluation: a zero clip of the usual shape
        (so the default collate batches it with readable ones) and the index ``-1 - video``,
        which tells the evaluator to give it no weight, and which video it was."""
        size = self.config.test_crop_size if self.mode == "test" else self.config.crop_size
        zeros = torch.zeros(self.config.channels, self.sampler.clip_length, size, size)
        return zeros, self.records[video].label, -1 - video

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int, int]:
        if not 0 <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} items")
        video, view = divmod(item, self.views_per_video)
        clip, crop = divmod(view, self.num_crops)
        rng = np.random.default_rng([self.seed, self.epoch, item])
        if self.mode == "test" and video in self._bad:
            return self._excluded(video)  # another view of a video already found unreadable
        for _ in range(self.max_retries + 1):
            record = self.records[video]
            try:
                frames = self._frames(video, clip, rng)
            except (VideoReadError, OSError) as err:
                reason = err.reason if isinstance(err, VideoReadError) else str(err)
                # the test counts against the number of test videos at its end (evaluate_views)
                size = None if self.mode == "test" else len(self.records)
                self.health.record(record.path, reason, epoch_size=size, scope=self.mode)
                self._bad.add(video)
                if self.mode != "train":  # evaluation: excluded, never replaced
                    return self._excluded(video)
                video = self._replacement(rng)
                continue
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(rng.integers(2**63 - 1)))
                clip_tensor = self._transforms[crop](frames)
            return clip_tensor, record.label, video
        raise VideoReadError(self.records[video].path, f"{self.max_retries} replacements failed")


def average_view_scores(
    scores: torch.Tensor, video_indices: torch.Tensor, num_videos: int
) -> torch.Tensor:
    """Average per-view scores into per-video scores (the final test protocol, §5.2).

    Args:
        scores: (N, num_classes) scores of N views (e.g. softmax outputs).
        video_indices: (N,) video index of each view (the dataset's third output); the
            negative index of an unreadable video's view gives that view no weight.
        num_videos: number of videos.

    Returns:
        (num_videos, num_classes) mean score per video (zeros for a video with no view).
    """
    keep = video_indices >= 0
    scores, video_indices = scores[keep], video_indices[keep].long()
    total = torch.zeros(num_videos, scores.shape[1], dtype=scores.dtype)
    total.index_add_(0, video_indices, scores)
    count = torch.bincount(video_indices, minlength=num_videos).clamp_min(1)
    return total / count.unsqueeze(1).to(scores.dtype)
