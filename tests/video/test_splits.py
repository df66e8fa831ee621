"""The internal validation split (§5.1): deterministic, stratified, originals untouched."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opplan.errors import ConfigError
from opplan.video.annotations import VideoRecord
from opplan.video.splits import internal_val_split


def _records(counts: list[int]) -> list[VideoRecord]:
    return [VideoRecord(f"c{c}/v{i}.mp4", c) for c, n in enumerate(counts) for i in range(n)]


def test_default_size_is_the_original_validation_size_and_inputs_untouched():
    train = _records([30, 20, 10])
    val = _records([5, 5, 2])
    snapshot = list(train), list(val)
    fit, internal = internal_val_split(train, original_val=val, seed=3)
    assert len(internal) == len(val) == 12 and len(fit) == 48
    assert (train, val) == snapshot
    assert not {r.path for r in fit} & {r.path for r in internal}
    assert Counter(r.label for r in internal) == {0: 6, 1: 4, 2: 2}  # stratified


def test_deterministic_and_seed_dependent():
    train = _records([40, 40])
    a = internal_val_split(train, val_size=10, seed=0)
    assert a == internal_val_split(train, val_size=10, seed=0)
    assert a != internal_val_split(train, val_size=10, seed=1)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(2, 30), min_size=1, max_size=8), st.integers(0, 10**6), st.data())
def test_stratified_property(counts, seed, data):
    train = _records(counts)
    size = data.draw(st.integers(1, len(train) - len(counts)))
    fit, val = internal_val_split(train, val_size=size, seed=seed)
    assert sorted(fit + val, key=lambda r: r.path) == sorted(train, key=lambda r: r.path)
    per_class = Counter(r.label for r in val)
    assert len(val) == size
    exact = [n * size / len(train) for n in counts]
    capped = any(per_class[c] == n - 1 for c, n in enumerate(counts))
    for c, n in enumerate(counts):
        assert 0 <= per_class[c] <= n - 1  # every class keeps a training video
        if not capped:
            assert abs(per_class[c] - exact[c]) < 1 + 1e-9
        else:  # a class at its cap passes its share on; nobody drops below its floor
            assert per_class[c] >= min(int(exact[c]), n - 1)


def test_bad_sizes():
    with pytest.raises(ConfigError, match="val_size or the original"):
        internal_val_split(_records([3]))
    with pytest.raises(ConfigError, match="internal validation size"):
        internal_val_split(_records([3]), val_size=3)
