"""The clip dataset: modes, reproducibility, test views, bad-data policy, DataLoader workers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from opplan.errors import ConfigError
from opplan.video import (
    ArrayReader,
    DataHealth,
    DataHealthError,
    TransformConfig,
    VideoClipDataset,
    VideoRecord,
    average_view_scores,
    read_video_list,
)

CFG = TransformConfig.scaled(32)


def _records(root, split="train"):
    return read_video_list(root / f"{split}.txt", root=root, num_classes=10)


@pytest.mark.parametrize("sampling", ["consecutive", "uniform"])
def test_train_and_plan_eval_items(synth_order, sampling):
    records = _records(synth_order)
    ds = VideoClipDataset(records, sampling=sampling, clip_length=8, transform=CFG, seed=1)
    assert len(ds) == len(records)
    clip, label, index = ds[3]
    assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.float32
    assert label == records[3].label and index == 3
    assert abs(float(clip.mean())) < 3  # normalized
    again, _, _ = ds[3]
    torch.testing.assert_close(clip, again)  # same (seed, epoch, item) -> same clip
    ds.set_epoch(1)
    assert not torch.equal(clip, ds[3][0])  # a new epoch draws anew
    evaluation = VideoClipDataset(
        records, sampling=sampling, clip_length=8, transform=CFG, mode="plan_eval"
    )
    e1, e2 = evaluation[0][0], evaluation[0][0]
    evaluation.set_epoch(5)
    torch.testing.assert_close(e1, e2)
    torch.testing.assert_close(e1, evaluation[0][0])  # fixed whatever the epoch


def test_test_mode_views_and_score_averaging(bframe_video):
    path = str(bframe_video[0])  # 200 frames of 48x64: every view distinct
    records = [VideoRecord(path, 1), VideoRecord(path, 2), VideoRecord(path, 3)]
    ds = VideoClipDataset(
        records,
        sampling="uniform",
        clip_length=4,
        transform=CFG,
        mode="test",
        num_clips=10,
        num_crops=3,
    )
    assert ds.views_per_video == 30 and len(ds) == 90
    indices = []
    for k, (clips, labels, videos) in enumerate(DataLoader(ds, batch_size=30)):
        assert clips.shape == (30, 3, 4, 37, 37)  # one chunk = one video's views
        assert labels.tolist() == [k + 1] * 30
        assert len({c.numpy().tobytes() for c in clips}) == 30  # distinct views
        indices.append(videos)
    videos = torch.cat(indices)
    assert videos.tolist() == sorted([0, 1, 2] * 30)
    scores = torch.rand(90, 10)
    averaged = average_view_scores(scores, videos, 3)
    torch.testing.assert_close(averaged[1], scores[30:60].mean(0))


def test_memory_reader_factory_and_short_videos():
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    frames[:, :, :, 0] = np.arange(5)[:, None, None] * 50
    cache = {"v": frames}
    ds = VideoClipDataset(
        [VideoRecord("v", 0)],
        sampling="consecutive",
        clip_length=8,
        transform=TransformConfig.scaled(32, mean=(0, 0, 0), std=(1, 1, 1)),
        mode="plan_eval",
        reader_factory=lambda r: ArrayReader(cache[r.path]),
    )
    clip = ds[0][0]
    red = clip[0, :, 16, 16] * 255
    torch.testing.assert_close(
        red, torch.tensor([0, 50, 100, 150, 200, 0, 50, 100.0]), atol=1, rtol=0
    )


def _with_bad(synth_order, tmp_path, bad_count):
    records = _records(synth_order)
    bad = []
    for i in range(bad_count):
        path = tmp_path / f"bad{i}.mp4"
        path.write_bytes(b"" if i % 2 else b"not a video at all")
        bad.append(VideoRecord(str(path), 0))
    return records + bad, bad


def test_bad_videos_replaced_logged_once_and_counted(synth_order, tmp_path, caplog):
    records, bad = _with_bad(synth_order, tmp_path, 2)
    health = DataHealth(tmp_path / "run", max_bad_fraction=0.5)
    ds = VideoClipDataset(records, sampling="uniform", clip_length=4, transform=CFG, health=health)
    n = len(records)
    for _ in range(2):
        for item in (n - 2, n - 1):
            clip, _, index = ds[item]
            assert clip.shape == (3, 4, 32, 32) and index < n - 2  # a good video instead
    assert sum("unreadable video" in r.message for r in caplog.records) == 2  # once per path
    summary = health.end_epoch(num_samples=n)
    saved = json.loads((tmp_path / "run" / "data_health.json").read_text())
    assert saved == summary
    assert set(saved["bad_files"]) == {b.path for b in bad}
    assert saved["bad_files"][bad[1].path] == "zero-byte file"
    assert saved["epochs"]["0"]["bad_files"] == 2 and saved["epochs"]["0"]["samples"] == n
    assert 4 <= saved["epochs"]["0"]["failures"] <= 5  # a first replacement may hit the other


@pytest.mark.parametrize("mode", ["plan_eval", "test"])
def test_evaluation_modes_flag_a_bad_video_never_replace_it(synth_order, tmp_path, mode):
    records, bad = _with_bad(synth_order, tmp_path, 1)
    n = len(records)
    health = DataHealth(None, max_bad_fraction=0.5)
    ds = VideoClipDataset(
        records, sampling="uniform", clip_length=4, transform=CFG, mode=mode, health=health,
        num_clips=2, num_crops=3,
    )  # fmt: skip
    views = ds.views_per_video
    size = 37 if mode == "test" else 32  # the test's three-crop side / the centre crop
    for item in range((n - 1) * views, n * views):  # every view of the bad (last) video
        clip, label, index = ds[item]
        assert index == -n and label == bad[0].label  # -1 - video: excluded, no stand-in
        assert clip.shape == (3, 4, size, size) and not clip.any()
    assert ds[0][2] == 0
    batch = next(iter(DataLoader(ds, batch_size=n * views, num_workers=1)))
    assert batch[2].tolist() == [v for v in range(n - 1) for _ in range(views)] + [-n] * views
    assert set(health.write()["bad_files"]) == {bad[0].path}
    scores = torch.rand(n * views, 10)
    averaged = average_view_scores(scores, batch[2], n)  # flagged views: no weight
    torch.testing.assert_close(averaged[0], scores[:views].mean(0))
    assert not averaged[n - 1].any()


def test_too_many_bad_videos_stop_the_run_with_the_list(synth_order, tmp_path):
    records, _ = _with_bad(synth_order, tmp_path, 1)
    health = DataHealth(tmp_path / "run")  # default budget 1%: 1 of 19 is too many
    ds = VideoClipDataset(records, sampling="uniform", clip_length=4, transform=CFG, health=health)
    with pytest.raises(DataHealthError, match=r"bad0\.mp4"):
        ds[len(records) - 1]


def test_strict_fails_on_first(synth_order, tmp_path):
    records, _ = _with_bad(synth_order, tmp_path, 1)
    ds = VideoClipDataset(
        records,
        sampling="uniform",
        clip_length=4,
        transform=CFG,
        health=DataHealth(strict=True, max_bad_fraction=1.0),
    )
    with pytest.raises(DataHealthError, match="strict mode"):
        ds[len(records) - 1]


def test_workers_record_health_into_the_run_dir(synth_order, tmp_path):
    records, bad = _with_bad(synth_order, tmp_path, 2)
    health = DataHealth(tmp_path / "run", max_bad_fraction=0.2)
    ds = VideoClipDataset(
        records, sampling="consecutive", clip_length=4, transform=CFG, health=health, seed=0
    )
    ds.set_epoch(0)
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert sum(len(b[1]) for b in batches) == len(records)
    summary = health.end_epoch(num_samples=len(records))
    assert set(summary["bad_files"]) == {b.path for b in bad}
    # reproducible whatever the worker count
    serial = torch.cat([b[0] for b in DataLoader(ds, batch_size=4, num_workers=0)])
    torch.testing.assert_close(serial, torch.cat([b[0] for b in batches]))


def test_dataset_pickles_for_spawned_workers(synth_order):
    import pickle

    ds = VideoClipDataset(_records(synth_order), sampling="uniform", clip_length=4, transform=CFG)
    clone = pickle.loads(pickle.dumps(ds))
    torch.testing.assert_close(clone[2][0], ds[2][0])


def test_bad_options(synth_order):
    records = _records(synth_order)
    with pytest.raises(ConfigError, match="no videos"):
        VideoClipDataset([], sampling="uniform", clip_length=4)
    with pytest.raises(ConfigError, match="mode"):
        VideoClipDataset(records, sampling="uniform", clip_length=4, mode="val")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="backend"):
        VideoClipDataset(records, sampling="uniform", clip_length=4, backend="opencv")


def test_raw_frame_list_through_the_dataset(tmp_path):
    from PIL import Image

    from opplan.video import read_frame_list

    for name in ("v 1", "v2"):
        (tmp_path / name).mkdir()
        for i in range(6):
            Image.fromarray(np.full((32, 40, 3), 40 * i, np.uint8)).save(
                tmp_path / name / f"img_{i + 1:05d}.jpg"
            )
    (tmp_path / "frames.txt").write_text("v 1 6 0\r\nv2 6 1")
    records = read_frame_list(tmp_path / "frames.txt", root=tmp_path, num_classes=2)
    ds = VideoClipDataset(
        records,
        sampling="uniform",
        clip_length=3,
        mode="plan_eval",
        transform=TransformConfig.scaled(32, mean=(0, 0, 0), std=(1, 1, 1)),
    )
    clip, label, index = ds[1]
    assert (label, index) == (1, 1) and clip.shape == (3, 3, 32, 32)
    # uniform centre frames 1, 3, 5 of 6
    torch.testing.assert_close(
        clip[0, :, 16, 16] * 255, torch.tensor([40.0, 120, 200]), atol=3, rtol=0
    )
