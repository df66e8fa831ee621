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


def _grouped(groups: list[tuple[int, int]]) -> list[VideoRecord]:
    """(class, clips) per source group: clips of a group share a class, as in UCF101."""
    return [
        VideoRecord(f"c{c}/g{g}_c{i}.avi", c, group=f"g{g}")
        for g, (c, n) in enumerate(groups)
        for i in range(n)
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 7)), min_size=2, max_size=30),
    st.integers(0, 10**6),
    st.data(),
)
def test_grouped_split_never_puts_a_source_on_both_sides(groups, seed, data):
    train = _grouped(groups)
    size = data.draw(st.integers(1, max(1, len(train) // 2)))
    try:
        fit, val = internal_val_split(train, val_size=size, seed=seed)
    except ConfigError as err:  # only with the reason named
        assert "groups" in str(err) or "leaves a class" in str(err)
        return
    assert sorted(fit + val, key=lambda r: r.path) == sorted(train, key=lambda r: r.path)
    assert {r.group for r in fit}.isdisjoint({r.group for r in val})
    assert {r.label for r in fit} == {r.label for r in train}  # every class keeps training
    assert abs(len(val) - size) <= max(1, size // 10)
    assert (fit, val) == internal_val_split(train, val_size=size, seed=seed)


def test_grouped_split_is_stratified_and_leak_free_on_a_ucf101_like_list():
    groups = [(c, 4 + (g + c) % 3) for c in range(5) for g in range(25)]
    train = _grouped(groups)
    fit, val = internal_val_split(train, val_size=150, seed=0)
    assert abs(len(val) - 150) <= 15
    assert {r.group for r in fit}.isdisjoint({r.group for r in val})
    per_class = Counter(r.label for r in val)
    assert all(abs(per_class[c] - 30) <= 6 for c in range(5))


def test_groups_that_cannot_make_the_size_are_an_error_saying_why():
    train = _grouped([(0, 10), (0, 10), (1, 10), (1, 10)])  # two sources a class
    with pytest.raises(ConfigError, match=r"source groups .* cannot make a split of 3"):
        internal_val_split(train, val_size=3, seed=0)
    _fit, val = internal_val_split(train, val_size=20, seed=0)  # one source a class: fine
    assert len(val) == 20 and {r.label for r in val} == {0, 1}


def test_ungrouped_records_split_exactly_as_before():
    """Lists without groups (every list format, SS, ActivityNet) keep the old split bit for
    bit: the plans in docs/results.md do not move."""
    train = _records([12, 9, 7])
    _fit, val = internal_val_split(train, val_size=7, seed=5)
    assert [r.path for r in val] == [r.path for r in val if r.group is None]
    assert len(val) == 7 and Counter(r.label for r in val) == {0: 3, 1: 2, 2: 2}
