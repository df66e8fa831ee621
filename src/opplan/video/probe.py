"""Start-up checks of a dataset against the planned clips, before any work starts.

A clip length longer than every video is a config mistake (§3.1: a clip is ``l`` frames of
one video); training on looped copies of a few frames would look fine and plan nonsense. The
check costs one probe in the usual case: videos are probed (frame counts from the list when
it has them, else by opening the file) until one is long enough. Unreadable videos are
skipped here: they are the bad-data policy's business (:mod:`opplan.video.health`).

Example:
    >>> from opplan.video import VideoRecord
    >>> records = [VideoRecord("a.mp4", 0, num_frames=40), VideoRecord("b.mp4", 1, num_frames=30)]
    >>> check_clip_length(records, 32, where="train.txt")  # fits: a 40-frame video exists
    >>> check_clip_length(records, 64, where="train.txt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    opplan.errors.ConfigError: clip length 64 is longer than every video of train.txt (...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from opplan.errors import ConfigError
from opplan.video.annotations import VideoRecord
from opplan.video.io import VideoReader, VideoReadError, open_video

__all__ = ["check_clip_length"]


def check_clip_length(
    records: Sequence[VideoRecord],
    clip_length: int,
    *,
    where: str,
    what: str = "clip length",
    opener: Callable[[VideoRecord], VideoReader] | None = None,
    max_probes: int = 32,
) -> None:
    """Refuse ``clip_length`` when no video of ``records`` has that many frames.

    Args:
        records: the videos (a list's frame counts are used when given).
        clip_length: the longest clip the run will sample.
        where: names the list in the message (e.g. ``data.train_list (train.txt)``).
        what: names the clip length's origin (e.g. ``graph.clip_lengths: clip length``).
        opener: opens a record (default: :func:`~opplan.video.io.open_video`).
        max_probes: videos opened at most (spread evenly over the list); a list whose
            frame counts are all known is checked completely.

    Raises:
        ConfigError: every video seen is shorter than ``clip_length``.
    """
    known = [r.num_frames for r in records if r.num_frames is not None]
    if known and max(known) >= clip_length:
        return
    unknown = [r for r in records if r.num_frames is None]
    picks = np.unique(np.linspace(0, len(unknown) - 1, min(max_probes, len(unknown)), dtype=int))
    longest = max(known, default=0)
    probed = len(known)
    for i in picks if unknown else ():
        record = unknown[int(i)]
        try:
            with (opener or _open)(record) as reader:
                frames = reader.num_frames
        except (VideoReadError, OSError):
            continue  # the bad-data policy deals with it
        probed += 1
        if frames >= clip_length:
            return
        longest = max(longest, frames)
    if probed == 0:
        return  # nothing readable: reported by the bad-data policy, with every path
    seen = "every video" if probed == len(records) else f"every one of {probed} videos probed"
    raise ConfigError(
        f"{what} {clip_length} is longer than {seen} of {where} "
        f"(longest: {longest} frames); use shorter clip lengths"
    )


def _open(record: VideoRecord) -> VideoReader:
    return open_video(record.path, num_frames=record.num_frames)
