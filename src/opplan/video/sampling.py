"""Frame sampling (§3.1 of the paper): consecutive and uniform, as frame indices only.

- consecutive: ``clip_length`` frames at a constant ``frame_interval`` from a random start
  (train) or from ``k`` evenly spaced starts (test views);
- uniform: the video is split into ``clip_length`` equal segments and one frame is taken per
  segment — at a random place inside each segment (train), at the centre (one test view), or
  shifted evenly inside the segments (``k`` test views).

A video too short for the clip follows ``short_policy``: ``loop`` wraps around,
``repeat_last`` repeats the last frame, ``error`` raises.

Example:
    >>> import numpy as np
    >>> sampler = ClipSampler("consecutive", clip_length=4, frame_interval=2)
    >>> sampler.test(20, num_views=1).tolist()
    [[6, 8, 10, 12]]
    >>> ClipSampler("uniform", clip_length=4).test(20, num_views=1).tolist()
    [[2, 7, 12, 17]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from opplan.errors import ConfigError

__all__ = [
    "ClipSampler",
    "Sampling",
    "ShortPolicy",
    "consecutive_indices",
    "uniform_indices",
]

Sampling = Literal["consecutive", "uniform"]
ShortPolicy = Literal["loop", "repeat_last", "error"]
_SAMPLINGS = ("consecutive", "uniform")
_POLICIES = ("loop", "repeat_last", "error")


def _short(num_frames: int, wanted: np.ndarray, policy: str, what: str) -> np.ndarray:
    """Map positions past the end of the video back inside it, per ``policy``."""
    if policy == "loop":
        return wanted % num_frames
    if policy == "repeat_last":
        return np.minimum(wanted, num_frames - 1)
    raise ConfigError(f"video has {num_frames} frames, fewer than the {what} needs")


def consecutive_indices(
    num_frames: int,
    clip_length: int,
    *,
    frame_interval: int = 1,
    starts: np.ndarray,
    short_policy: ShortPolicy = "loop",
) -> np.ndarray:
    """Indices ``start + i * frame_interval`` for each start: int64 (len(starts), clip_length).

    ``starts`` must lie in ``[0, max(0, num_frames - span)]`` with
    ``span = (clip_length - 1) * frame_interval + 1``; when the span is longer than the video
    the clip starts at 0 and the ``short_policy`` handles the overflow.
    """
    offsets = np.arange(clip_length, dtype=np.int64) * frame_interval
    idx = np.asarray(starts, dtype=np.int64)[:, None] + offsets[None, :]
    span = (clip_length - 1) * frame_interval + 1
    if span > num_frames:
        idx = _short(num_frames, idx, short_policy, f"{clip_length}x{frame_interval} clip")
    return idx


def uniform_indices(
    num_frames: int,
    clip_length: int,
    *,
    offsets: np.ndarray,
    short_policy: ShortPolicy = "loop",
) -> np.ndarray:
    """One frame per segment: int64 (len(offsets), clip_length).

    ``offsets`` has shape (views, clip_length) or (views, 1), with values in [0, 1): the
    position of the frame inside its segment.
    """
    if num_frames < clip_length:
        base = np.broadcast_to(np.arange(clip_length, dtype=np.int64), (len(offsets), clip_length))
        return _short(num_frames, base.copy(), short_policy, f"{clip_length}-segment clip")
    segment = num_frames / clip_length
    pos = (np.arange(clip_length)[None, :] + np.asarray(offsets, dtype=np.float64)) * segment
    # Clamp inside the segment so float rounding never lands on the next segment.
    lower = np.ceil(np.arange(clip_length) * segment - 1e-9).astype(np.int64)
    upper = np.ceil((np.arange(clip_length) + 1) * segment - 1e-9).astype(np.int64) - 1
    return np.clip(np.floor(pos).astype(np.int64), lower, upper)


@dataclass(frozen=True)
class ClipSampler:
    """Chooses the frames of a clip for training, planning evaluation and testing.

    Args:
        sampling: ``"consecutive"`` or ``"uniform"`` (§3.1).
        clip_length: frames per clip.
        frame_interval: step between frames of a consecutive clip.
        short_policy: what to do with videos shorter than the clip.
    """

    sampling: Sampling
    clip_length: int
    frame_interval: int = 1
    short_policy: ShortPolicy = "loop"

    def __post_init__(self) -> None:
        if self.sampling not in _SAMPLINGS:
            raise ConfigError(f"sampling must be one of {_SAMPLINGS}, got {self.sampling!r}")
        if self.short_policy not in _POLICIES:
            raise ConfigError(
                f"short_policy must be one of {_POLICIES}, got {self.short_policy!r}"
            )
        if self.clip_length < 1:
            raise ConfigError(f"clip_length must be >= 1, got {self.clip_length}")
        if self.frame_interval < 1:
            raise ConfigError(f"frame_interval must be >= 1, got {self.frame_interval}")

    @property
    def span(self) -> int:
        """Frames covered by a consecutive clip."""
        return (self.clip_length - 1) * self.frame_interval + 1

    def train(self, num_frames: int, rng: np.random.Generator) -> np.ndarray:
        """A random clip for training: int64 (clip_length,)."""
        _check_frames(num_frames)
        if self.sampling == "consecutive":
            start = rng.integers(0, max(0, num_frames - self.span) + 1, size=1)
            return consecutive_indices(
                num_frames,
                self.clip_length,
                frame_interval=self.frame_interval,
                starts=start,
                short_policy=self.short_policy,
            )[0]
        offsets = rng.random(size=(1, self.clip_length))
        return uniform_indices(
            num_frames, self.clip_length, offsets=offsets, short_policy=self.short_policy
        )[0]

    def test(self, num_frames: int, num_views: int = 1) -> np.ndarray:
        """``num_views`` deterministic clips: int64 (num_views, clip_length).

        One view is the centre clip (planning evaluation, §5.2); ``k`` views are evenly spaced
        over the video (final test) and distinct whenever the video is long enough.
        """
        _check_frames(num_frames)
        if num_views < 1:
            raise ConfigError(f"num_views must be >= 1, got {num_views}")
        if self.sampling == "consecutive":
            room = max(0, num_frames - self.span)
            if num_views == 1:
                starts = np.array([room // 2])
            else:
                starts = np.floor(np.arange(num_views) * room / (num_views - 1) + 0.5)
            return consecutive_indices(
                num_frames,
                self.clip_length,
                frame_interval=self.frame_interval,
                starts=starts.astype(np.int64),
                short_policy=self.short_policy,
            )
        offsets = ((np.arange(num_views) + 0.5) / num_views)[:, None]
        return uniform_indices(
            num_frames, self.clip_length, offsets=offsets, short_policy=self.short_policy
        )


def _check_frames(num_frames: int) -> None:
    if num_frames < 1:
        raise ConfigError(f"a video needs at least one frame, got {num_frames}")
