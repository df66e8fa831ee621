from __future__ import annotations

import pytest
from hypothesis import given
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
    assert TrainingState("uniform", 32, 0.001).slug == "uniform-32f-lr0.001"
