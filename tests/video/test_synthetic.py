"""The built-in synthetic datasets: deterministic, real H.264 files, lists in the list format."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from opplan.errors import ConfigError
from opplan.video import read_video_list
from opplan.video.synthetic import TASKS, SceneConfig, generate_dataset, render_video


@pytest.mark.parametrize("task", ["order", "tempo", "relay"])
def test_render_is_deterministic_and_in_range(task):
    scene = SceneConfig(size=48, min_frames=64, max_frames=80)
    a = render_video(task, 3, 7, seed=5, scene=scene)
    assert a.dtype == np.uint8 and a.shape[1:] == (48, 48, 3) and 64 <= len(a) <= 80
    np.testing.assert_array_equal(a, render_video(task, 3, 7, seed=5, scene=scene))
    assert not np.array_equal(a[:64], render_video(task, 3, 7, seed=6, scene=scene)[:64])
    assert a.std() > 10  # textured, noisy, not a flat frame


def test_classes_differ_in_time_not_in_a_single_frame_statistic():
    # order: every class shows the same set of event colours somewhere, in a different order
    assert TASKS == {"order": 10, "tempo": 10, "relay": 8}


def test_generate_dataset_layout_and_determinism(synth_order, tmp_path):
    manifest = json.loads((synth_order / "manifest.json").read_text())
    assert manifest["task"] == "order" and manifest["num_classes"] == 10
    counts = {
        s: len(read_video_list(synth_order / f"{s}.txt", num_classes=10))
        for s in ("train", "val", "test")
    }
    assert counts == {"train": 20, "val": 10, "test": 0} or sum(counts.values()) == 30
    train = read_video_list(synth_order / "train.txt", root=synth_order, num_classes=10)
    assert sorted({r.label for r in train}) == list(range(10))
    with av.open(train[0].path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (32, 32)
    again = tmp_path / "again"
    generate_dataset("order", again, videos_per_class=3, seed=0, min_frames=24, max_frames=40)
    rel = (synth_order / "train.txt").read_text().splitlines()[0].split()[0]
    assert (again / rel).read_bytes() == (synth_order / rel).read_bytes()
    assert (again / "train.txt").read_text() == (synth_order / "train.txt").read_text()


def test_bad_generation_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown synthetic task"):
        generate_dataset("motion", tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="--size"):
        generate_dataset("order", tmp_path, size=33)
    with pytest.raises(ConfigError, match="label 10 out of range"):
        render_video("tempo", 10, 0)


def test_relay_shows_two_boxes_in_order_each_moving_its_way():
    """Class 1 = (red first, red up, green down): red pixels early moving up, green late
    moving down; no frame shows both colours."""
    from opplan.video.synthetic._relay import RELAY_CLASSES, class_name

    assert len(set(RELAY_CLASSES)) == 8 and class_name(1) == "R-up_G-down"
    scene = SceneConfig(size=32, min_frames=96, max_frames=96, noise_std=0.0)
    video = render_video("relay", 1, 0, seed=0, scene=scene).astype(int)
    red = (video[..., 0] > 170) & (video[..., 1] < 90) & (video[..., 2] < 90)
    green = (video[..., 1] > 150) & (video[..., 0] < 90) & (video[..., 2] < 100)
    red_frames = np.flatnonzero(red.sum(axis=(1, 2)) > 4)
    green_frames = np.flatnonzero(green.sum(axis=(1, 2)) > 4)
    assert red_frames.size > 20 and green_frames.size > 20
    assert red_frames.max() < green_frames.min()  # the order

    def mean_step(mask, frames):  # vertical displacement per frame, unwrapped on 32 px
        rows = [np.angle(np.exp(2j * np.pi * np.nonzero(mask[t])[0] / 32).mean()) for t in frames]
        steps = np.angle(np.exp(1j * np.diff(rows))) * 32 / (2 * np.pi)
        return float(np.median(steps))

    assert mean_step(red, red_frames) < -1.0  # up, ~2 px per frame
    assert mean_step(green, green_frames) > 1.0  # down
