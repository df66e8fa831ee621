"""The optional decoders against PyAV on the same files (exact frames), and batch access:
one call per clip with sorted unique indices, decoded forward from the needed keyframes."""

from __future__ import annotations

from pathlib import Path

import av  # noqa: F401  -- PyAV's FFmpeg before decord's (see opplan.video.io._decord)
import numpy as np
import pytest

from opplan.errors import ConfigError
from opplan.testing.official_trees import write_video
from opplan.video.io import PyAVReader, check_backend, open_video
from opplan.video.synthetic import write_mp4


def _available(backend: str) -> None:
    """Skip, with the reason, when the backend does not install or load here."""
    try:
        check_backend(backend)
    except ConfigError as err:
        pytest.skip(f"{backend}: {err}")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("decoders")
    rng = np.random.default_rng(0)
    # 64 px wide: decord 0.6 fails on narrower frames ("from_size == to_size")
    steps = rng.integers(0, 9, (48, 48, 64, 3)).astype(np.int16)
    frames = np.clip(np.cumsum(steps, axis=0) + 40, 0, 255).astype(np.uint8)  # motion
    return {
        "h264 B-frames": write_mp4(base / "a.mp4", frames, gop=16, bframes=2),
        "mpeg4 avi": write_video(base / "a.avi", frames),
        "vp9 webm": write_video(base / "a.webm", frames),
    }


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
@pytest.mark.parametrize("kind", ["h264 B-frames", "mpeg4 avi", "vp9 webm"])
def test_exact_frames_against_pyav(backend, kind, files):
    _available(backend)
    rng = np.random.default_rng(1)
    clips = [[5, 0, 0, 47, 20, 21, 16], list(range(8, 24)), sorted(rng.integers(0, 48, 12))]
    with PyAVReader(files[kind]) as pyav, open_video(files[kind], backend=backend) as other:
        assert other.num_frames == pyav.num_frames == 48
        for indices in clips:
            np.testing.assert_array_equal(other.get_frames(indices), pyav.get_frames(indices))
        assert not other.exact_counts and pyav.exact_counts


@pytest.mark.parametrize("backend", ["torchcodec", "decord"])
def test_unreadable_files_raise_video_read_errors(backend, tmp_path):
    _available(backend)
    from opplan.video.io import VideoReadError

    (tmp_path / "bad.mp4").write_bytes(b"\x00not a video" * 50)
    (tmp_path / "empty.mp4").write_bytes(b"")
    for name, reason in (("bad.mp4", "cannot open"), ("empty.mp4", "zero-byte"),
                         ("absent.mp4", "missing")):  # fmt: skip
        with pytest.raises(VideoReadError, match=reason):
            open_video(tmp_path / name, backend=backend)


def test_decord_gets_one_sorted_unique_batch_per_clip(files):
    _available("decord")
    with open_video(files["h264 B-frames"], backend="decord") as reader:
        calls = []
        batch = reader._reader.get_batch
        reader._reader = _Spy(reader._reader, calls)
        out = reader.get_frames([9, 3, 3, 30])
        assert calls == [[3, 9, 30]] and out.shape[0] == 4
        assert batch is not None


class _Spy:
    def __init__(self, inner, calls):  # type: ignore[no-untyped-def]
        self._inner, self._calls = inner, calls

    def get_batch(self, indices):  # type: ignore[no-untyped-def]
        self._calls.append(list(indices))
        return self._inner.get_batch(indices)


def test_pyav_decodes_forward_from_the_needed_keyframes_only(files):
    """GOP 16: a dense clip is one seek; a sparse one decodes only the GOP of each wanted
    frame up to it, skipping the packets in between without a seek per keyframe."""
    path = files["h264 B-frames"]
    with PyAVReader(path, threads=1) as reader:
        assert list(reader._index.keyframes) == [0, 16, 32]
        reader.get_frames(list(range(18, 30)))
        assert reader.stats.seeks == 1 and reader.stats.frames_decoded <= 30 - 16
    with PyAVReader(path, threads=1) as reader:
        out = reader.get_frames([2, 3, 20, 21, 40, 41, 41])
        # one seek: the packets before keyframes 16 and 32 are demuxed, not decoded, so
        # only each wanted frame's GOP is (up to it, plus a B-frame reordering delay)
        assert reader.stats.seeks == 1
        assert reader.stats.frames_decoded <= (4 + 6 + 10) + 2
        assert reader.stats.frames_returned == 7
    with PyAVReader(path, threads=1, skip_nonref=False) as plain:  # decodes everything
        np.testing.assert_array_equal(out, plain.get_frames([2, 3, 20, 21, 40, 41, 41]))
    with PyAVReader(path, threads=1) as reader:
        reader.get_frames(list(range(0, 48, 3)))  # every GOP touched: no seek after the 1st
        assert reader.stats.seeks <= 3 and reader.stats.frames_decoded <= 48
