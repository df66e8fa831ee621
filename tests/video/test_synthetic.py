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
    assert TASKS == {"order": 10, "tempo": 10, "relay": 4}


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


_FLAT_96 = SceneConfig(
    size=32, min_frames=96, max_frames=96, num_distractors=(0, 0), noise_std=0.0,
    background_contrast=0.0,
)  # fmt: skip


def _relay_masks(video):
    """Red and green box pixels of a video on a flat background (no texture, noise or
    distractors): the pixels away from each frame's median colour, split by hue."""
    box = np.abs(video - np.median(video, axis=(1, 2), keepdims=True)).sum(axis=-1) > 60
    return box & (video[..., 0] > video[..., 1]), box & (video[..., 1] > video[..., 0])


def _vertical_step(mask, frames, size=32):
    """Median vertical displacement per frame of a mask's pixels, unwrapped on the torus."""
    rows = [np.angle(np.exp(2j * np.pi * np.nonzero(mask[t])[0] / size).mean()) for t in frames]
    steps = np.angle(np.exp(1j * np.diff(rows))) * size / (2 * np.pi)
    return float(np.median(steps))


@pytest.mark.parametrize(("label", "name", "first", "sign"), [
    (1, "R-G-down", "red", 1), (2, "G-R-up", "green", -1),
])  # fmt: skip
def test_relay_shows_two_boxes_in_order_each_moving_its_way(label, name, first, sign):
    """The class is (colour first, shared direction): the first box only in the first ~40 %
    of the video, the second only in the last ~40 %, both moving the class's way at 2 px per
    frame (+-15 %) -- or, in an ambiguous video, both standing still -- boxes 4-8 px wide."""
    from opplan.video.synthetic._relay import (
        RELAY_CLASSES,
        RELAY_SPEED,
        RELAY_STILL,
        class_name,
    )

    assert RELAY_CLASSES == ((0, -1), (0, 1), (1, -1), (1, 1)) and TASKS["relay"] == 4
    assert class_name(label) == name and RELAY_SPEED == 2.0 and RELAY_STILL == 0.3
    still = []
    for index in range(10):
        video = render_video("relay", label, index, seed=0, scene=_FLAT_96).astype(int)
        masks = dict(zip(("red", "green"), _relay_masks(video), strict=True))
        second = "green" if first == "red" else "red"
        on = {c: np.flatnonzero(m.sum(axis=(1, 2)) > 4) for c, m in masks.items()}
        assert on[first].size > 25 and on[second].size > 25
        assert on[first].min() >= 0.04 * 96 - 1 and on[first].max() < 0.45 * 96
        assert on[second].min() >= 0.55 * 96 - 1 and on[second].max() < 0.96 * 96
        steps = [_vertical_step(masks[c], on[c]) for c in ("red", "green")]
        if all(abs(step) < 0.2 for step in steps):
            still.append(index)  # both boxes still: the direction is not shown
        else:
            for step in steps:  # 2 px/frame, +-15 % (+ rounding), both boxes the same way
                assert 1.6 <= sign * step <= 2.4, (index, steps)
        for colour in ("red", "green"):
            area = np.median(masks[colour].sum(axis=(1, 2))[on[colour]])
            assert 16 <= area <= 64  # a (2h)^2 box, h = round(2.5..3.5)
    assert 0 < len(still) < 10, still  # some ambiguous videos, not all


def test_relay_hides_the_direction_in_thirty_percent_of_its_videos():
    """RELAY_STILL: over 120 videos of all four classes, the fraction whose boxes stand still
    is 0.3 within two binomial standard deviations (0.084), so the best possible top-1 is
    about 85 %: the task cannot saturate."""
    still = 0
    for index in range(30):
        for label in range(4):
            video = render_video("relay", label, index, seed=1, scene=_FLAT_96).astype(int)
            steps = []
            for mask in _relay_masks(video):
                on = np.flatnonzero(mask.sum(axis=(1, 2)) > 4)
                steps.append(abs(_vertical_step(mask, on)))
            assert max(steps) < 0.2 or min(steps) > 1.6, steps  # both still or both moving
            still += max(steps) < 0.2
    assert abs(still / 120 - 0.3) <= 0.084, still
