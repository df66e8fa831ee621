"""Readers: exact frames, decode only what is needed, errors, no handle leak."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Dataset

from opplan.errors import ConfigError
from opplan.video.io import (
    ArrayReader,
    FramesDirReader,
    PyAVReader,
    VideoReadError,
    check_backend,
    decoder_threads,
    open_video,
)
from opplan.video.synthetic import write_mp4

from .conftest import decode_all, numbered_frames


def test_num_frames_and_keyframes(bframe_video):
    path, full = bframe_video
    with PyAVReader(path, threads=1) as reader:
        assert reader.num_frames == len(full) == 200
        assert reader._index.keyframes.tolist() == [0, 60, 120, 180]
        assert reader.fps == pytest.approx(25.0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_frames_equal_full_sequential_decode(bframe_video, data):
    path, full = bframe_video
    indices = data.draw(st.lists(st.integers(0, len(full) - 1), min_size=1, max_size=24))
    with PyAVReader(path, threads=1) as reader:
        out = reader.get_frames(indices)
    np.testing.assert_array_equal(out, full[indices])


@pytest.mark.parametrize("threads", [1, 2])
def test_consecutive_clip_decodes_from_nearest_keyframe(bframe_video, threads):
    path, full = bframe_video
    with PyAVReader(path, threads=threads) as reader:
        out = reader.get_frames(np.arange(130, 146))
        np.testing.assert_array_equal(out, full[130:146])
        assert reader.stats.seeks == 1
        # One forward decode from keyframe 120: at most frames 120..145, nothing before
        # (unwanted non-reference frames may be skipped by the decoder).
        assert 16 <= reader.stats.frames_decoded <= 146 - 120
        assert reader.stats.frames_returned == 16


def test_dense_uniform_samples_do_not_seek_per_frame(bframe_video):
    path, full = bframe_video
    indices = np.arange(3, 200, 12)  # 17 frames, one every 12
    with PyAVReader(path, threads=1) as reader:
        np.testing.assert_array_equal(reader.get_frames(indices), full[indices])
        assert reader.stats.seeks <= 4  # at most one per keyframe, never one per frame
        assert reader.stats.frames_decoded <= indices[-1] + 1


def test_sparse_samples_seek_to_later_keyframes(bframe_video):
    path, full = bframe_video
    with PyAVReader(path, threads=1) as reader:
        np.testing.assert_array_equal(reader.get_frames([2, 185]), full[[2, 185]])
        assert reader.stats.seeks == 2
        assert reader.stats.frames_decoded <= 3 + (185 - 180 + 1)


@pytest.mark.parametrize(
    ("fmt", "codec"), [("matroska", "libx264"), ("avi", "mpeg4"), ("webm", "libvpx-vp9")]
)
def test_other_containers(tmp_path, fmt, codec):
    import av

    frames = numbered_frames(40)
    path = tmp_path / f"clip.{fmt}"
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"g": "16", "bf": "2", "threads": "1"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    full = decode_all(path)
    with open_video(path, threads=1) as reader:
        assert reader.num_frames == 40
        np.testing.assert_array_equal(reader.get_frames([39, 0, 17, 18]), full[[39, 0, 17, 18]])
        assert reader.stats.frames_decoded < 40


def test_errors_missing_zero_truncated_garbage(tmp_path, bframe_video):
    with pytest.raises(VideoReadError, match="missing file"):
        PyAVReader(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(VideoReadError, match="zero-byte"):
        PyAVReader(tmp_path / "empty.mp4")
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(5000))
    with pytest.raises(VideoReadError, match="cannot open"):
        PyAVReader(tmp_path / "garbage.mp4")
    data = bframe_video[0].read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoReadError) as info, PyAVReader(tmp_path / "cut.mp4") as reader:
        reader.get_frames(np.arange(reader.num_frames))
    assert info.value.path.endswith("cut.mp4")


def test_index_out_of_range(bframe_video):
    with PyAVReader(bframe_video[0]) as reader, pytest.raises(IndexError, match=r"\[0, 200\)"):
        reader.get_frames([0, 200])


@pytest.mark.slow  # ~15-20 s: thousands of clips decoded
def test_no_file_handle_leak_over_thousands_of_clips(bframe_video):
    path, _ = bframe_video
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.exists():
        pytest.skip("needs /proc")
    rng = np.random.default_rng(0)
    with open_video(path, threads=1) as reader:  # warm the index cache
        reader.get_frames([0])
    before = len(os.listdir(fd_dir))
    for _ in range(1500):
        start = int(rng.choice([0, 60, 120, 180])) + int(rng.integers(0, 4))
        with open_video(path, threads=1) as reader:
            reader.get_frames([start, start + 1])
    for _ in range(200):  # and readers dropped without close() are released too
        open_video(path, threads=1).get_frames([5])
    assert len(os.listdir(fd_dir)) <= before + 2


def test_frames_dir_reader(tmp_path):
    from PIL import Image

    frames = numbered_frames(12)
    expected = []
    for i, image in enumerate(frames):
        Image.fromarray(image).save(tmp_path / f"frame {i + 1:04d}.jpg", quality=95)
        expected.append(np.asarray(Image.open(tmp_path / f"frame {i + 1:04d}.jpg")))
    (tmp_path / "notes.txt").write_text("not a frame")
    reader = open_video(tmp_path, frame_template="frame {:04d}.jpg")
    assert isinstance(reader, FramesDirReader)
    assert reader.num_frames == 12
    np.testing.assert_array_equal(reader.get_frames([11, 0, 0]), np.stack(expected)[[11, 0, 0]])
    (tmp_path / "frame 0003.jpg").write_bytes(b"")
    with pytest.raises(VideoReadError, match="zero-byte"):
        reader.get_frames([2])
    with pytest.raises(VideoReadError, match="missing frame directory"):
        FramesDirReader(tmp_path / "absent")


def test_array_reader_returns_requested_order():
    frames = numbered_frames(10)
    reader = ArrayReader(frames)
    np.testing.assert_array_equal(reader.get_frames([3, 1, 3]), frames[[3, 1, 3]])
    assert reader.stats.frames_decoded == 2 and reader.stats.frames_returned == 3


def test_missing_torchcodec_fails_with_install_hint():
    try:
        import torchcodec  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install torchcodec"):
            check_backend("torchcodec")
    with pytest.raises(ConfigError, match="unknown video backend"):
        check_backend("opencv")


class _ThreadsProbe(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> int:
        return decoder_threads(None)


def test_decoder_threads_one_per_dataloader_worker():
    assert decoder_threads(3) == 3
    assert decoder_threads(None) >= 1
    values = list(DataLoader(_ThreadsProbe(), batch_size=None, num_workers=1))
    assert values == [1, 1]


def test_write_mp4_is_deterministic(tmp_path):
    frames = numbered_frames(20)
    a = write_mp4(tmp_path / "a.mp4", frames).read_bytes()
    b = write_mp4(tmp_path / "b.mp4", frames).read_bytes()
    assert a == b
    assert oct((tmp_path / "a.mp4").stat().st_mode & 0o777) == "0o644"
    with pytest.raises(ValueError, match="even"):
        write_mp4(tmp_path / "odd.mp4", np.zeros((2, 5, 6, 3), np.uint8))


def test_memory_does_not_grow_with_video_length(bframe_video):
    import tracemalloc

    path, full = bframe_video
    clip_bytes = full[0].nbytes * 16
    with PyAVReader(path, threads=1) as reader:
        reader.get_frames([0])  # warm caches
        tracemalloc.start()
        out = reader.get_frames(np.arange(184, 200))  # the end of the video
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert out.shape[0] == 16
    # the clip plus its stacked copy, far below the 200 decoded frames (12.5x the clip)
    assert peak < 3 * clip_bytes < full.nbytes


@pytest.mark.parametrize("threads", [1, 2])
def test_skipping_unwanted_nonref_frames_keeps_pixels_and_saves_work(bframe_video, threads):
    path, full = bframe_video
    indices = np.arange(3, 200, 13)
    with PyAVReader(path, threads=threads, skip_nonref=False) as plain:
        np.testing.assert_array_equal(plain.get_frames(indices), full[indices])
    with PyAVReader(path, threads=threads) as skipping:
        np.testing.assert_array_equal(skipping.get_frames(indices), full[indices])
    assert skipping.stats.frames_decoded < plain.stats.frames_decoded
