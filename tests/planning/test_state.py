from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opplan.planning import INITIAL, TrainingState


def test_str_and_parse_round_trip():
    s = TrainingState("uniform", 32, 0.001)
    assert str(s) == "uniform 32f lr=0.001"
    assert TrainingState.parse("uniform 32f lr=0.001") == s
    assert hash(s) == hash(TrainingState("uniform", 32, 1e-3))


@given(
    sampling=st.sampled_from(["consecutive", "uniform"]),
    clip=st.integers(1, 512),
    lr=st.floats(1e-9, 10, allow_nan=False),
    size=st.integers(32, 512),
)
def test_parse_inverts_str_exactly(sampling, clip, lr, size):
    s = TrainingState(sampling, clip, lr, (("size", size),))
    assert TrainingState.parse(str(s)) == s


def test_initial_state():
    assert INITIAL.is_initial and str(INITIAL) == "initial"
    assert TrainingState.parse("initial") == INITIAL
    assert not TrainingState("consecutive", 8, 0.1).is_initial


@pytest.mark.parametrize(
    "args, message",
    [
        (("dense", 8, 0.1), "sampling"),
        (("uniform", 0, 0.1), "clip_length"),
        (("uniform", 8.5, 0.1), "clip_length"),
        (("uniform", 8, 0.0), "lr"),
        (("uniform", 8, float("nan")), "lr"),
    ],
)
def test_invalid_states_are_rejected(args, message):
    with pytest.raises(ValueError, match=message):
        TrainingState(*args)


def test_frozen():
    s = TrainingState("uniform", 8, 0.1)
    with pytest.raises(AttributeError):
        s.lr = 0.2  # type: ignore[misc]


def test_slug_is_file_name_safe():
    slug = TrainingState("uniform", 32, 0.001).slug
    assert (
        slug.startswith("uniform-32f-lr0.001-") and len(slug) == len("uniform-32f-lr0.001-") + 10
    )
    assert re.fullmatch(r"[A-Za-z0-9.=_-]+", slug)


def test_slugs_of_names_differing_in_dropped_characters_differ():
    a = TrainingState("uniform", 8, 0.1, (("aug", "a+b"),))
    b = TrainingState("uniform", 8, 0.1, (("aug", "a*b"),))
    assert a.slug != b.slug and a.slug.split("-")[:-1] == b.slug.split("-")[:-1]


_VALUES = st.one_of(
    st.integers(-5, 5),
    st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=6),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["consecutive", "uniform"]),
            st.integers(1, 64),
            st.sampled_from([0.1, 0.01, 1e-05]),
            st.lists(st.tuples(st.sampled_from(["aug", "size", "a=b"]), _VALUES), max_size=2),
        ),
        min_size=2,
        max_size=6,
    )
)
def test_slug_is_injective_and_file_name_safe(specs):
    """Distinct state names -> distinct slugs (hence checkpoint folders), all file-safe."""
    states = {TrainingState(s, n, lr, tuple(extra)) for s, n, lr, extra in specs}
    names = {str(state) for state in states}
    slugs = {state.slug for state in states}
    assert len(slugs) == len(names)
    assert all(re.fullmatch(r"[A-Za-z0-9.=_-]+", slug) and len(slug) < 100 for slug in slugs)
