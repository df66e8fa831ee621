"""``opplan data prepare``: re-encoded / frame copies of the miniature official trees, their
lists and config, resume after a kill, broken inputs reported, rotation and variable rate."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml

from opplan.cli import main
from opplan.config import load_config
from opplan.engine.data import read_split
from opplan.testing import official_trees
from opplan.video.io import FramesDirReader, PyAVReader
from opplan.video.prepare import PrepareJob, PrepareOptions, _target_size, prepare_video


def _config(data: dict) -> dict:
    return {
        "graph": {"kind": "basic", "samplings": ["uniform"], "clip_lengths": [4],
                  "learning_rates": [0.05]},
        "planner": {"delay": 1, "max_epochs": 1},
        "trainer": {
            "kind": "video", "device": "cpu", "threads": 1,
            "data": {**data, "frame_size": 32},
            "optim": {"effective_batch": 4, "reference_batch": 4, "base_micro_batch": 4,
                      "base_clip_length": 4},
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """tree(fmt) -> the config file of that miniature official tree (built once)."""
    base = tmp_path_factory.mktemp("prepare")
    built: dict[str, Path] = {}

    def make(fmt: str) -> Path:
        if fmt not in built:
            data = getattr(official_trees, f"make_{fmt}")(base / fmt)
            path = base / f"{fmt}.yaml"
            path.write_text(yaml.safe_dump(_config(data), sort_keys=False))
            built[fmt] = path
        return built[fmt]

    return make


def _prepare(config: Path, out: Path, *extra: str) -> int:
    return main(["data", "prepare", str(config), "--out", str(out), "--workers", "2", *extra])


def _groups(config: Path) -> dict[str, str | None]:
    """stem -> group of the training list (stems survive preparation)."""
    data = load_config(config).trainer.data
    return {Path(r.path).stem: r.group for r in read_split(data, "train").records}


def test_ucf101_avi_broken_input_is_reported_skipped_and_the_copy_plans(tree, tmp_path, capfd):
    source = tree("ucf101")
    data = load_config(source).trainer.data
    # a copy of the tree with one training video broken (garbage bytes)
    copy = tmp_path / "ucf"
    import shutil

    shutil.copytree(data.root, copy)
    config = tmp_path / "c.yaml"
    raw = yaml.safe_load(source.read_text())
    raw["trainer"]["data"]["root"] = str(copy)
    config.write_text(yaml.safe_dump(raw))
    broken = copy / "UCF-101" / "ClassBMotion" / "v_ClassBMotion_g03_c02.avi"
    broken.write_bytes(b"\x00garbage" * 100)
    out = tmp_path / "out"
    assert _prepare(config, out, "--short-side", "16") == 0
    last = capfd.readouterr().out.strip().splitlines()[-1]
    assert "prepared 23 of 24 videos, 1 left out" in last and "prepare_report.json" in last
    report = json.loads((out / "prepare_report.json").read_text())
    assert [u["path"] for u in report["unreadable"]] == [str(broken)]
    assert report["unreadable"][0]["reason"]
    assert report["lists"]["train"] == {"listed": 18, "prepared": 17}
    prepared = load_config(out / "prepared.yaml").trainer.data
    assert prepared.format == "video_list" and Path(prepared.root) == out.resolve()
    train = read_split(prepared, "train")
    assert train.classes == ["ClassAMotion", "ClassBMotion", "ClassCMotion"]
    assert len(train.records) == 17 and not any(
        "ClassBMotion_g03_c02" in r.path for r in train.records
    )
    # labels and source groups survive (the internal split keeps sources together, §5.1)
    before = {k: v for k, v in _groups(config).items() if "ClassBMotion_g03_c02" not in k}
    assert _groups(out / "prepared.yaml") == before
    by_stem = {Path(r.path).stem: r.label for r in read_split(data, "train").records}
    assert all(by_stem[Path(r.path).stem] == r.label for r in train.records)
    with PyAVReader(train.records[0].path) as reader:  # 32 px -> short side 16, GOP 16
        assert reader.get_frames([0]).shape == (1, 16, 16, 3) and reader.num_frames == 12
    assert main(["plan", str(out / "prepared.yaml"), "--out", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "plan.json").read_text())["path"]


def test_kinetics_missing_video_is_reported_and_groups_kept(tree, tmp_path, capfd):
    config = tree("kinetics")
    out = tmp_path / "out"
    assert _prepare(config, out, "--short-side", "16") == 0
    assert "prepared 23 of 24 videos, 1 left out" in capfd.readouterr().out
    report = json.loads((out / "prepare_report.json").read_text())
    assert [u["reason"] for u in report["unreadable"]] == ["missing from the download"]
    assert report["lists"]["train"] == {"listed": 18, "prepared": 17}
    assert report["groups_kept"]
    assert _groups(out / "prepared.yaml") == _groups(config)


def test_ssv2_webm_to_frames_readable_by_the_frames_backend(tree, tmp_path):
    config = tree("ssv2")
    out = tmp_path / "out"
    assert _prepare(config, out, "--frames", "--short-side", "0") == 0
    prepared = load_config(out / "prepared.yaml").trainer.data
    assert prepared.format == "frame_list" and prepared.backend == "frames"
    source = {Path(r.path).stem: r for r in read_split(load_config(config).trainer.data, "val")
              .records}  # fmt: skip
    val = read_split(prepared, "val").records
    assert len(val) == 6 and all(r.num_frames == 12 for r in val)
    record = val[3]
    assert sorted(os.listdir(record.path))[:2] == ["img_00001.jpg", "img_00002.jpg"]
    with FramesDirReader(record.path, num_frames=record.num_frames) as frames:
        got = frames.get_frames([0, 5, 11]).astype(int)
    with PyAVReader(source[Path(record.path).name].path) as reader:
        want = reader.get_frames([0, 5, 11]).astype(int)
    assert got.shape == want.shape == (3, 32, 32, 3)
    assert np.abs(got - want).mean() < 4  # JPEG (quality 90) of the same decoded frames
    from opplan.video import VideoClipDataset

    clip, label, _ = VideoClipDataset(val, sampling="uniform", clip_length=4, mode="plan_eval",
                                      backend="frames")[3]  # fmt: skip
    assert clip.shape[1] == 4 and label == record.label


def test_ssv1_frame_folders_re_encoded(tree, tmp_path):
    config = tree("ssv1")
    out = tmp_path / "out"
    assert _prepare(config, out, "--short-side", "16", "--gop", "4") == 0
    data = load_config(config).trainer.data
    prepared = load_config(out / "prepared.yaml").trainer.data
    train = read_split(prepared, "train").records
    assert len(train) == 18 and train[0].path.endswith(".mp4")
    assert [r.label for r in train] == [r.label for r in read_split(data, "train").records]
    with PyAVReader(train[0].path) as reader:
        assert reader.num_frames == 12 and list(reader._index.keyframes) == [0, 4, 8]
        assert reader.get_frames([11]).shape == (1, 16, 16, 3)


def _killed_run(config: Path, out: Path, seed: int) -> None:
    """Prepare in a forked process that dies (os._exit) after a random number of videos,
    its workers still writing."""
    import random

    import opplan.video.prepare as work
    from opplan.cli._prepare import prepare_dataset

    after = random.Random(seed).randint(3, 15)
    real, seen = work.prepare_all, []

    def dying(*args, on_result, **kw):  # type: ignore[no-untyped-def]
        def hook(result):  # type: ignore[no-untyped-def]
            seen.append(result)
            on_result(result)
            if len(seen) == after:
                os._exit(9)

        return real(*args, on_result=hook, **kw)

    work.prepare_all = dying
    prepare_dataset(config, out, PrepareOptions(short_side=16), workers=2)


@pytest.mark.parametrize("seed", [0])
def test_resume_after_a_kill_never_redoes_a_finished_video(tree, tmp_path, capfd, seed):
    config = tree("ucf101")
    out = tmp_path / "out"
    import multiprocessing

    process = multiprocessing.get_context("fork").Process(
        target=_killed_run, args=(config, out, seed)
    )
    process.start()
    process.join(60)
    assert process.exitcode == 9
    journal = out / ".prepare" / "done.jsonl"
    done = [json.loads(line)["output"] for line in journal.read_text().splitlines()]
    assert 3 <= len(done) < 24 and not (out / "prepared.yaml").exists()
    stamps = {p: os.stat(p).st_mtime_ns for p in done}
    with journal.open("a") as handle:  # a torn last line, and a half-written leftover
        handle.write('{"output": "/x", "fra')
    root = Path(load_config(config).trainer.data.root) / "UCF-101"
    expected = {str(out / "videos" / p.relative_to(root).with_suffix(".mp4"))
                for p in root.rglob("*.avi")}  # fmt: skip
    undone = Path(sorted(expected - set(done))[0])
    part = undone.with_name(f".{undone.name}.part")
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"half")
    assert _prepare(config, out, "--short-side", "16") == 0
    assert "prepared 24 of 24 videos, 0 left out" in capfd.readouterr().out
    assert {p: os.stat(p).st_mtime_ns for p in done} == stamps  # never redone
    assert not list(out.rglob(".*.part"))
    prepared = load_config(out / "prepared.yaml").trainer.data
    for split in ("train", "test"):
        for record in read_split(prepared, split).records:
            with PyAVReader(record.path) as reader:
                assert reader.num_frames == 12
    assert len(read_split(prepared, "train").records) == 18


def test_other_options_on_resume_exit_2_naming_the_option(tree, tmp_path, capfd):
    config = tree("ssv2")
    out = tmp_path / "out"
    assert _prepare(config, out, "--short-side", "16") == 0
    capfd.readouterr()
    assert _prepare(config, out, "--short-side", "24") == 2
    err = capfd.readouterr().err
    assert "--short-side" in err and "16" in err


def test_target_size_keeps_aspect_even_and_never_upscales():
    assert _target_size(1280, 720, 256) == (456, 256)
    assert _target_size(340, 256, 256) == (340, 256)
    assert _target_size(720, 1280, 256) == (256, 456)
    assert _target_size(100, 60, 256) == (100, 60)
    assert _target_size(1001, 563, 255) == (454, 256)  # even sides, short side rounded


def _write(path: Path, images: np.ndarray, pts: list[int], rotation: int = 0) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = images.shape[2], images.shape[1], "yuv420p"
        stream.options = {"bf": "0"}
        if rotation:
            stream.set_display_rotation(rotation)
        for image, stamp in zip(images, pts, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = stamp, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def test_rotation_metadata_is_honoured(tmp_path):
    images = np.zeros((4, 32, 48, 3), np.uint8)
    images[:, :8, :8] = 255  # a white top-left corner of a 48x32 (landscape) picture
    source = _write(tmp_path / "rot.mp4", images, [0, 1, 2, 3], rotation=90)
    result = prepare_video(PrepareJob(str(source), str(tmp_path / "o.mp4")),
                           PrepareOptions(short_side=16))  # fmt: skip
    assert result.error is None and result.frames == 4
    with PyAVReader(result.output) as reader:
        frame = reader.get_frames([0])[0, :, :, 0]
    assert frame.shape == (24, 16)  # shown upright: portrait, short side 16
    # displayed 90 degrees counter-clockwise: the corner is now bottom-left
    assert frame[-3:, :3].mean() > 200 and frame[:3, :3].mean() < 50


def test_variable_frame_rate_is_resampled_to_fps(tmp_path):
    values = [0, 40, 80, 120, 160]
    images = np.stack([np.full((32, 32, 3), v, np.uint8) for v in values])
    source = _write(tmp_path / "vfr.mp4", images, [0, 1, 2, 11, 12])  # a gap of 9 frames
    kept = prepare_video(PrepareJob(str(source), str(tmp_path / "k.mp4")), PrepareOptions())
    assert kept.frames == 5  # no --fps: every decoded frame once, indices unchanged
    result = prepare_video(PrepareJob(str(source), str(tmp_path / "o.mp4")),
                           PrepareOptions(fps=25))  # fmt: skip
    assert result.frames == 13  # 0.00 s .. 0.48 s at 25 fps
    with PyAVReader(result.output) as reader:
        got = reader.get_frames(range(13))[:, 16, 16, 0].astype(int)
    nearest = [0, 40, 80, 80, 80, 80, 80, 120, 120, 120, 120, 120, 160]  # nearest in time
    assert np.abs(got - np.array(nearest)).max() < 8


@pytest.mark.parametrize("fmt", ["hmdb51", "activitynet"])
def test_hmdb51_films_and_activitynet_mkv_mp4_survive_preparation(fmt, tree, tmp_path):
    config = tree(fmt)
    out = tmp_path / "out"
    assert _prepare(config, out, "--short-side", "16") == 0
    report = json.loads((out / "prepare_report.json").read_text())
    assert report["unreadable"] == [] and report["groups_kept"]
    assert _groups(out / "prepared.yaml") == _groups(config)  # HMDB51: the source film
    source = load_config(config).trainer.data
    prepared = load_config(out / "prepared.yaml").trainer.data
    for split in ("train", "test"):
        before = [(Path(r.path).stem, r.label) for r in read_split(source, split).records]
        after = [(Path(r.path).stem, r.label) for r in read_split(prepared, split).records]
        assert after == before and all(r.path.endswith(".mp4") for r in
                                       read_split(prepared, split).records)  # fmt: skip
