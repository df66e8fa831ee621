"""Encoded files (mp4, avi, webm, mkv, ...) through PyAV, decoding only what a clip needs.

Frame index <-> timestamp is exact: the packets are demuxed once (no decoding) and their
presentation timestamps sorted, so frame ``i`` is the ``i``-th timestamp in the stream's
``time_base`` — no float seconds. A clip is decoded with one seek to the keyframe at or before
its first frame and a forward decode. When a keyframe lies between the decoder's position and
the next wanted frame, the packets before it are demuxed but not decoded (nothing after a
keyframe needs them), so a short-GOP file (``opplan data prepare``) decodes only from the
keyframe of each wanted frame without paying a seek (a decoder flush) per frame; a seek
happens only to skip more than ``min_skip`` frames. Dense samples never seek per frame.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from opplan.video.io._base import (
    DecodeStats,
    VideoReader,
    VideoReadError,
    check_file,
    decoder_threads,
)

if TYPE_CHECKING:
    from av.video.frame import VideoFrame

__all__ = ["PyAVReader"]


@dataclass(frozen=True)
class _Index:
    pts: np.ndarray  # sorted presentation timestamps, one per frame (stream time_base)
    keyframes: np.ndarray  # sorted frame indices of keyframes
    by_pts: dict[int, int]


@functools.lru_cache(maxsize=256)
def _build_index(path: str, size: int, mtime_ns: int) -> _Index:
    """Demux every packet of the first video stream once (cached per file version)."""
    import av

    pts: list[int] = []
    key: list[bool] = []
    with av.open(path, metadata_errors="ignore") as container:
        if not container.streams.video:  # audio-only, subtitles, data
            kinds: list[str] = sorted({s.type for s in container.streams}) or ["no"]
            raise VideoReadError(path, f"no video stream (only {', '.join(kinds)} streams)")
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            stamp = packet.pts if packet.pts is not None else packet.dts
            if packet.size == 0 or stamp is None:
                continue
            pts.append(int(stamp))
            key.append(bool(packet.is_keyframe))
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    sorted_pts = np.asarray(pts, dtype=np.int64)[order]
    keyframes = np.flatnonzero(np.asarray(key, dtype=bool)[order])
    if keyframes.size == 0 or keyframes[0] != 0:
        keyframes = np.concatenate([[0], keyframes]).astype(np.int64)
    return _Index(sorted_pts, keyframes, {int(p): i for i, p in enumerate(sorted_pts)})


class PyAVReader(VideoReader):
    """Reads frames of an encoded video file with PyAV.

    Args:
        path: the video file.
        threads: decoder threads; None = 1 inside a DataLoader worker, else up to 4.
        min_skip: seek forward only when it skips more than this many frames; shorter jumps
            demux the packets up to the keyframe without decoding them (a seek flushes the
            decoder and costs more than demuxing a few dozen packets).
        skip_nonref: let the decoder drop unwanted non-reference frames (same pixels for the
            wanted frames, fewer frames decoded for sparse samples).

    Raises:
        VideoReadError: the file is missing, empty, has no video stream, cannot be opened or
            has a codec FFmpeg cannot decode.

    Example:
        >>> with PyAVReader("clip.mp4") as reader:  # doctest: +SKIP
        ...     frames = reader.get_frames([0, 8, 16])  # (3, H, W, 3) uint8
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        min_skip: int = 64,
        skip_nonref: bool = True,
    ) -> None:
        import av

        self.min_skip = min_skip
        self.skip_nonref = skip_nonref
        self._wanted_pts: set[int] = set()
        self._drop_below = -1  # frames before this keyframe are not needed: never decoded
        self.path = os.fspath(path)
        self.stats = DecodeStats()
        st = check_file(self.path)
        try:
            self._index = _build_index(self.path, st.st_size, st.st_mtime_ns)
            self._container = av.open(self.path, metadata_errors="ignore")
        except (av.FFmpegError, IndexError, UnicodeDecodeError) as err:
            raise VideoReadError(self.path, f"cannot open: {err}") from None
        if not self._container.streams.video or self._index.pts.size == 0:
            self._container.close()
            raise VideoReadError(self.path, "no video frames")
        self._stream = self._container.streams.video[0]
        if self._stream.codec_context is None:  # FFmpeg has no decoder for this codec
            self._container.close()
            raise VideoReadError(self.path, "undecodable: no decoder for its video codec")
        count = decoder_threads(threads)
        self._stream.thread_type = "AUTO" if count > 1 else "SLICE"
        self._stream.thread_count = count

    @property
    def num_frames(self) -> int:
        return int(self._index.pts.size)

    @property
    def fps(self) -> float | None:
        """Average frame rate from the container, if it says."""
        rate = self._stream.average_rate
        return float(rate) if rate else None

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None  # type: ignore[assignment]  # closed: _read refuses it

    def __del__(self) -> None:
        self.close()

    def _seek(self, frame_index: int) -> Iterator[VideoFrame]:
        """Seek to the keyframe at or before ``frame_index``; returns a frame iterator."""
        self.stats.seeks += 1
        self._container.seek(
            int(self._index.pts[frame_index]), stream=self._stream, backward=True, any_frame=False
        )
        if not self.skip_nonref:
            return self._container.decode(self._stream)
        return self._decode_skipping()

    def _decode_skipping(self) -> Iterator[VideoFrame]:
        """Decode forward, letting the decoder drop non-reference frames nobody asked for.

        A frame that no other frame references (most B-frames) and that is not wanted need not
        be decoded at all; wanted frames and reference frames always are.
        """
        context = self._stream.codec_context
        wanted, by_pts = self._wanted_pts, self._index.by_pts
        try:
            for packet in self._container.demux(self._stream):
                skip = packet.pts is not None and packet.pts not in wanted
                if skip and by_pts.get(packet.pts or 0, self._drop_below) < self._drop_below:
                    continue  # before the next wanted frame's keyframe: not even decoded
                context.skip_frame = "NONREF" if skip else "DEFAULT"
                yield from context.decode(packet)
        finally:
            context.skip_frame = "DEFAULT"

    def _keyframe_before(self, frame_index: int) -> int:
        keys = self._index.keyframes
        return int(keys[np.searchsorted(keys, frame_index, side="right") - 1])

    def _read(self, wanted: np.ndarray) -> dict[int, np.ndarray]:
        import av

        if self._container is None:
            raise VideoReadError(self.path, "reader is closed")
        out: dict[int, np.ndarray] = {}
        self._wanted_pts = {int(self._index.pts[i]) for i in wanted}
        self._drop_below = -1
        frames = None
        position = -1  # index of the next frame the decoder will deliver
        try:
            for target in (int(t) for t in wanted):
                key = self._keyframe_before(target)
                if frames is None or key - position > self.min_skip:
                    frames, position = self._seek(key), key
                self._drop_below = key if self.skip_nonref else -1
                found = self._decode_until(frames, target, out)
                if not found:  # inexact seek (some containers): decode from the start
                    self._drop_below = -1
                    frames = self._seek(0)
                    found = self._decode_until(frames, target, out)
                if not found:
                    raise VideoReadError(
                        self.path, f"frame {target} of {self.num_frames} not decoded (truncated?)"
                    )
                position = target + 1
        except av.FFmpegError as err:
            raise VideoReadError(self.path, f"decoding failed: {err}") from None
        return out

    def _decode_until(
        self, frames: Iterator[VideoFrame], target: int, out: dict[int, np.ndarray]
    ) -> bool:
        """Decode forward until frame ``target``; False if it overshoots or the stream ends."""
        by_pts = self._index.by_pts
        for frame in frames:
            self.stats.frames_decoded += 1
            stamp = frame.pts if frame.pts is not None else frame.dts  # dts: old AVI files
            index = by_pts.get(stamp if stamp is not None else -1)
            if index is None:
                continue
            if index == target:
                out[target] = frame.to_ndarray(format="rgb24")
                return True
            if index > target:
                return False
        return False
