"""Bad videos are handled as the data policy says (``data.max_bad_fraction``, ``--strict``):
in training replaced by another sample (in evaluation excluded: tests/engine/
test_honest_test.py), path and reason logged and counted in ``data_health.json``; fatal
(naming the path) in strict mode or past the budget. Short videos loop; a label out of range
is a list error (file:line, exit 2)."""

from __future__ import annotations

import json
import shutil
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from _opplan_configs import video_config, write_yaml

from opplan.cli import main
from opplan.video import (
    DataHealth,
    DataHealthError,
    TransformConfig,
    VideoClipDataset,
    VideoRecord,
)
from opplan.video.synthetic import write_mp4


def _frames(n: int, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(n)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _faststart_mp4(path: Path, frames: np.ndarray) -> None:
    """An mp4 with its index (moov) first: truncating it keeps it openable."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def make_bad_video(kind: str, path: Path) -> str:
    """Write a bad video of ``kind`` at ``path``; returns a word its reason must contain."""
    good = path.with_name("good_source.mp4")
    write_mp4(good, _frames(24))
    data = good.read_bytes()
    good.unlink()
    if kind == "missing":
        return "missing"
    if kind == "zero-byte":
        path.write_bytes(b"")
        return "zero-byte"
    if kind == "truncated":  # index at the end, cut off: cannot be opened
        path.write_bytes(data[: len(data) // 2])
        return "cannot open"
    if kind == "truncated-faststart":  # opens, but the frames stop half-way
        _faststart_mp4(path, _frames(24))
        full = path.read_bytes()
        path.write_bytes(full[: len(full) // 2])
        return "decoding failed"
    if kind == "wrong-container":
        path.write_text("this is a text file, not a video\n" * 20)
        return "cannot open"
    if kind == "undecodable":  # a valid container whose H.264 payload is garbage
        start = data.find(b"mdat")
        size = struct.unpack(">I", data[start - 4 : start])[0]
        body = bytes((b * 7 + 13) & 0xFF for b in data[start + 4 : start - 4 + size])
        path.write_bytes(data[: start + 4] + body + data[start - 4 + size :])
        return "decoding failed"
    if kind == "unknown-codec":  # a codec FFmpeg has no decoder for
        path.write_bytes(data.replace(b"avc1", b"zzzz"))
        return "no decoder"
    raise ValueError(kind)


BAD_KINDS = [
    "missing",
    "zero-byte",
    "truncated",
    "truncated-faststart",
    "wrong-container",
    "undecodable",
    "unknown-codec",
]


@pytest.fixture(scope="module")
def good_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    for i in range(3):
        write_mp4(root / f"good{i}.mp4", _frames(20 + i))
    return root


def _dataset(records, health, clip_length=4):
    return VideoClipDataset(
        records,
        sampling="uniform",
        clip_length=clip_length,
        mode="train",
        transform=TransformConfig.scaled(32),
        health=health,
    )


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_video_is_replaced_and_counted(kind, good_videos, tmp_path):
    bad = tmp_path / f"bad_{kind}.mp4"
    reason = make_bad_video(kind, bad)
    records = [VideoRecord(str(good_videos / f"good{i}.mp4"), i) for i in range(3)]
    records.append(VideoRecord(str(bad), 3))
    health = DataHealth(tmp_path / "run", max_bad_fraction=0.5)
    dataset = _dataset(records, health)
    clip, label, video = dataset[3]  # the bad one: another video takes its place
    assert clip.shape[:2] == (3, 4) and torch.isfinite(clip).all()
    assert video != 3 and label == records[video].label
    summary = health.end_epoch(num_samples=len(records))
    written = json.loads((tmp_path / "run" / "data_health.json").read_text())
    assert written == summary
    assert list(written["bad_files"]) == [str(bad)]
    assert reason in written["bad_files"][str(bad)]
    assert written["total_failures"] == 1 and written["epochs"]["0"]["bad_files"] == 1


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_video_is_fatal_in_strict_mode_naming_the_path(kind, good_videos, tmp_path):
    bad = tmp_path / f"bad_{kind}.mp4"
    make_bad_video(kind, bad)
    records = [VideoRecord(str(good_videos / "good0.mp4"), 0), VideoRecord(str(bad), 1)]
    dataset = _dataset(records, DataHealth(None, strict=True))
    assert dataset[0][1] == 0
    with pytest.raises(DataHealthError, match="strict") as info:
        dataset[1]
    assert str(bad) in str(info.value)


def test_past_the_budget_the_epoch_stops_listing_every_bad_file(good_videos, tmp_path):
    bad = [tmp_path / f"bad{i}.mp4" for i in range(2)]
    for path in bad:
        make_bad_video("zero-byte", path)
    records = [VideoRecord(str(good_videos / f"good{i}.mp4"), i) for i in range(3)]
    records += [VideoRecord(str(p), 0) for p in bad]
    health = DataHealth(tmp_path / "run", max_bad_fraction=0.25)  # 1 of 5 allowed
    dataset = _dataset(records, health)
    with pytest.raises(DataHealthError) as info:  # the second bad file of 5: over 25%
        for item in range(len(dataset)):
            dataset[item]
    assert all(str(p) in str(info.value) for p in bad)


def test_video_shorter_than_the_clip_loops(tmp_path):
    """Fewer frames than the clip: the data policy loops the video (short_policy='loop'),
    it is not a failure."""
    write_mp4(tmp_path / "short.mp4", _frames(3))
    health = DataHealth(None)
    dataset = _dataset([VideoRecord(str(tmp_path / "short.mp4"), 0)], health, clip_length=8)
    clip, label, video = dataset[0]
    assert clip.shape[:2] == (3, 8) and (label, video) == (0, 0)
    assert health.end_epoch(num_samples=1)["total_failures"] == 0


def _copy_with_bad_videos(
    tiny_videos: Path, tmp_path: Path, kinds: list[str]
) -> tuple[Path, list[str]]:
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    lines = (data / "train.txt").read_text().splitlines()
    bad = []
    for k, kind in enumerate(kinds):
        path = lines[k].rsplit(maxsplit=1)[0]
        (data / path).unlink()
        make_bad_video(kind, data / path)
        bad.append(str(data / path))
    return data, bad


def test_plan_with_every_kind_of_bad_video(tiny_videos, tmp_path, capfd):
    """The real CLI on a list with one video of each bad kind (7 of 20): lenient within the
    budget (every one counted), fatal with --strict and with the default 1% budget."""
    data, bad = _copy_with_bad_videos(tiny_videos, tmp_path, BAD_KINDS)
    graph = {"kind": "basic", "samplings": ["uniform"], "clip_lengths": [4],
             "learning_rates": [0.05]}  # fmt: skip
    config = video_config(data, graph=graph, planner={"delay": 1, "max_epochs": 1})
    strict_path = write_yaml(tmp_path / "default.yaml", config)
    capfd.readouterr()
    assert main(["plan", str(strict_path), "--out", str(tmp_path / "strict"), "--strict"]) == 1
    err = capfd.readouterr().err
    assert "strict" in err and any(p in err for p in bad)
    assert main(["plan", str(strict_path), "--out", str(tmp_path / "budget")]) == 1
    err = capfd.readouterr().err
    assert "unreadable" in err and any(p in err for p in bad)

    config["trainer"]["data"]["max_bad_fraction"] = 0.9  # the 4-video validation split too
    lenient = write_yaml(tmp_path / "lenient.yaml", config)
    assert main(["plan", str(lenient), "--out", str(tmp_path / "lenient")]) == 0
    health = json.loads((tmp_path / "lenient" / "data_health.json").read_text())
    assert set(health["bad_files"]) == set(bad)
    assert health["total_failures"] >= len(bad)


def test_label_out_of_range_names_file_and_line(tiny_videos, tmp_path, capfd):
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    lines = (data / "train.txt").read_text().splitlines()
    lines[4] = f"{lines[4].rsplit(maxsplit=1)[0]} 10"
    (data / "train.txt").write_text("\n".join(lines) + "\n")
    config = video_config(data)
    config["trainer"]["data"]["num_classes"] = 10
    path = write_yaml(tmp_path / "c.yaml", config)
    assert main(["plan", str(path), "--out", str(tmp_path / "run")]) == 2
    assert "train.txt:5: label 10 out of range [0, 10)" in capfd.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_early_budget_check_counts_each_dataset_against_its_own_size(good_videos, tmp_path):
    """Training and validation datasets share one DataHealth: a bad training video must not
    count against the (smaller) validation split's budget."""
    bad = [tmp_path / "bad_train.mp4", tmp_path / "bad_val.mp4"]
    for path in bad:
        make_bad_video("zero-byte", path)
    good = [VideoRecord(str(good_videos / f"good{i}.mp4"), i) for i in range(3)]
    health = DataHealth(None, max_bad_fraction=0.5)
    train = _dataset([*good, VideoRecord(str(bad[0]), 0)], health)
    val = VideoClipDataset(
        [good[0], VideoRecord(str(bad[1]), 1)],
        sampling="uniform",
        clip_length=4,
        mode="plan_eval",
        transform=TransformConfig.scaled(32),
        health=health,
    )
    train[3]
    assert val[1][2] == -2  # 1 of 2 validation videos bad: within 50%; excluded, not replaced
    assert health.end_epoch(num_samples=4)["total_failures"] == 2
