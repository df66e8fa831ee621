"""Sampling: frame indices only; property tests of the rules in §3.1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opplan.errors import ConfigError
from opplan.video.sampling import ClipSampler

frames_st = st.integers(1, 400)
length_st = st.integers(1, 64)
interval_st = st.integers(1, 4)
policy_st = st.sampled_from(["loop", "repeat_last"])
seed_st = st.integers(0, 2**32 - 1)


@settings(max_examples=300, deadline=None)
@given(frames_st, length_st, interval_st, policy_st, seed_st, st.integers(1, 10))
def test_consecutive_rules(num_frames, clip_length, interval, policy, seed, views):
    sampler = ClipSampler("consecutive", clip_length, interval, policy)
    train = sampler.train(num_frames, np.random.default_rng(seed))
    test = sampler.test(num_frames, views)
    assert train.shape == (clip_length,) and test.shape == (views, clip_length)
    for clip in [train, *test]:
        assert clip.min() >= 0 and clip.max() < num_frames
        if sampler.span <= num_frames:
            # constant step, unique frames
            assert np.all(np.diff(clip) == interval)
            assert len(np.unique(clip)) == clip_length
        elif policy == "loop":
            assert np.array_equal(clip, (np.arange(clip_length) * interval) % num_frames)
        else:
            assert np.array_equal(
                clip, np.minimum(np.arange(clip_length) * interval, num_frames - 1)
            )
    if sampler.span <= num_frames:
        starts = test[:, 0]
        assert np.all(np.diff(starts) >= 0)
        if views > 1:  # evenly spaced from the first to the last possible start
            assert starts[0] == 0 and starts[-1] == num_frames - sampler.span
            assert np.ptp(np.diff(starts)) <= 1
        if num_frames - sampler.span >= views - 1:
            assert len(np.unique(starts)) == views  # distinct views


@settings(max_examples=300, deadline=None)
@given(frames_st, length_st, policy_st, seed_st, st.integers(1, 10))
def test_uniform_rules(num_frames, clip_length, policy, seed, views):
    sampler = ClipSampler("uniform", clip_length, short_policy=policy)
    train = sampler.train(num_frames, np.random.default_rng(seed))
    test = sampler.test(num_frames, views)
    assert train.shape == (clip_length,) and test.shape == (views, clip_length)
    if num_frames < clip_length:
        expected = np.arange(clip_length)
        expected = (
            expected % num_frames if policy == "loop" else np.minimum(expected, num_frames - 1)
        )
        assert np.array_equal(train, expected)
        return
    segment = num_frames / clip_length
    for clip in [train, *test]:
        assert len(np.unique(clip)) == clip_length and np.all(np.diff(clip) > 0)
        # exactly one frame inside each of the clip_length equal segments
        lo = np.ceil(np.arange(clip_length) * segment - 1e-9)
        hi = np.ceil((np.arange(clip_length) + 1) * segment - 1e-9)
        assert np.all(clip >= lo) and np.all(clip < hi)
    # views shift evenly inside the segments and are distinct when segments are long enough
    assert np.all(np.diff(test, axis=0) >= 0)
    if segment >= 2 * views:
        assert len({tuple(v) for v in test}) == views


def test_centre_views():
    assert ClipSampler("uniform", 4).test(40).tolist() == [[5, 15, 25, 35]]
    assert ClipSampler("consecutive", 4, 2).test(40).tolist() == [[16, 18, 20, 22]]
    views = ClipSampler("consecutive", 4).test(13, num_views=4)
    assert views[:, 0].tolist() == [0, 3, 6, 9]


def test_train_is_random_but_seeded():
    sampler = ClipSampler("uniform", 8)
    a = sampler.train(300, np.random.default_rng(1))
    b = sampler.train(300, np.random.default_rng(1))
    c = sampler.train(300, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    starts = {
        int(ClipSampler("consecutive", 8).train(100, np.random.default_rng(s))[0])
        for s in range(50)
    }
    assert len(starts) > 20 and min(starts) >= 0 and max(starts) <= 92


def test_error_policy_and_bad_options():
    with pytest.raises(ConfigError, match="fewer than"):
        ClipSampler("consecutive", 16, 2, "error").train(20, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="fewer than"):
        ClipSampler("uniform", 16, short_policy="error").test(10)
    with pytest.raises(ConfigError, match="sampling"):
        ClipSampler("dense", 8)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="clip_length"):
        ClipSampler("uniform", 0)
    with pytest.raises(ConfigError, match="short_policy"):
        ClipSampler("uniform", 4, short_policy="pad")  # type: ignore[arg-type]
