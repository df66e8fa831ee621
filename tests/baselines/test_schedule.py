"""Hand-tuned schedules (§5.3): expansion into recipe steps, the paper's grid, its summary."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opplan.baselines import (
    GridSpec,
    HandTunedSchedule,
    default_budgets,
    length_schedules,
    parse_decay,
    summarize_grid,
)

LRS = (0.1, 0.01, 0.001)


def per_epoch(schedule):
    """(clip length, lr) of every epoch, read back from the recipe steps."""
    out = []
    for step in schedule.steps():
        lrs = step.lrs or (step.state.lr,) * step.epochs
        out += [(step.state.clip_length, lr) for lr in lrs]
    return out


def test_three_step_with_two_lengths_matches_the_paper_layout():
    s = HandTunedSchedule((8, 32), "3step", "consecutive", 12, LRS)
    got = [(x.state.clip_length, x.state.lr, x.epochs, x.lrs) for x in s.steps()]
    assert got == [
        (8, 0.1, 4, None),
        (8, 0.01, 2, None),
        (32, 0.01, 2, None),
        (32, 0.001, 4, None),
    ]
    assert s.weighted_epochs(8) == (6 * 8 + 6 * 32) / 8
    assert s.name == "consecutive-8-32f-3step-e12"


def test_cosine_is_one_step_per_length_with_per_epoch_lrs():
    s = HandTunedSchedule((8, 16, 32), "cosine", "uniform", 6, LRS)
    steps = s.steps()
    assert [(x.state.clip_length, x.epochs) for x in steps] == [(8, 2), (16, 2), (32, 2)]
    lrs = [lr for x in steps for lr in x.lrs]
    expected = [0.1 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(6)]
    assert lrs == pytest.approx(expected, rel=1e-5)
    assert [x.state.lr for x in steps] == [x.lrs[0] for x in steps]  # the state names its lr


@given(
    lengths=st.lists(st.sampled_from([4, 8, 16, 32, 64]), min_size=1, max_size=3, unique=True),
    decay=st.sampled_from(["3step", "cosine"]),
    n_lrs=st.integers(1, 4),
    extra=st.integers(0, 60),
)
def test_every_schedule_expands_to_equal_parts(lengths, decay, n_lrs, extra):
    lengths = tuple(sorted(lengths))
    lrs = tuple(10.0**-k for k in range(n_lrs))
    epochs = max(len(lengths), n_lrs if decay == "3step" else 1) + extra
    s = HandTunedSchedule(lengths, decay, "uniform", epochs, lrs)
    epochs_seen = per_epoch(s)
    assert len(epochs_seen) == epochs == sum(x.epochs for x in s.steps())
    assert [e[1] for e in epochs_seen] == [s.lr_at(e) for e in range(epochs)]
    # the same epochs for each clip length (±1), lengths never go back, lrs never rise
    per_length = Counter(e[0] for e in epochs_seen)
    assert set(per_length) == set(lengths)
    assert max(per_length.values()) - min(per_length.values()) <= 1
    assert [e[0] for e in epochs_seen] == sorted(e[0] for e in epochs_seen)
    assert [e[1] for e in epochs_seen] == sorted((e[1] for e in epochs_seen), reverse=True)
    if decay == "3step":
        per_lr = Counter(e[1] for e in epochs_seen)
        assert set(per_lr) == set(lrs)
        assert max(per_lr.values()) - min(per_lr.values()) <= 1
    else:
        assert epochs_seen[0][1] == lrs[0] and all(e[1] > 0 for e in epochs_seen)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lengths": (32, 8)}, "strictly increasing"),
        ({"lengths": ()}, "non-empty"),
        ({"decay": "linear"}, "decay"),
        ({"sampling": "random"}, "sampling"),
        ({"epochs": 2}, "at least 3"),
        ({"lrs": (0.01, 0.1)}, "highest first"),
        ({"lrs": (0.1, -1.0)}, "positive"),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(kwargs, message):
    args = {"lengths": (8, 32), "decay": "3step", "sampling": "uniform", "epochs": 12, "lrs": LRS}
    with pytest.raises(ValueError, match=message):
        HandTunedSchedule(**{**args, **kwargs})


def test_parse_decay_and_length_schedules():
    assert parse_decay("3-step") == parse_decay("3step") == "3step"
    assert parse_decay("Cosine") == "cosine"
    with pytest.raises(ValueError, match="3step"):
        parse_decay("exp")
    assert length_schedules([32, 8, 16]) == [(8, 32), (16, 32), (8, 16, 32)]
    assert length_schedules([8, 16]) == [(8, 16), (16,)]
    assert length_schedules([8]) == [(8,)]


def test_the_paper_grid_has_60_runs_and_rescaled_budgets():
    assert default_budgets(384) == [128, 192, 256, 320, 384]  # the paper's budgets
    assert default_budgets(60) == [20, 30, 40, 50, 60]
    spec = GridSpec.paper([8, 16, 32], [0.001, 0.1, 0.01], ["consecutive", "uniform"], [6, 12])
    assert len(spec.schedules) == 3 * 2 * 2 * 2 and spec.reference_length == 8
    assert all(s.lrs == LRS for s in spec.schedules)
    assert GridSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="twice"):
        GridSpec(spec.schedules[:1] * 2, 8)


def fake_run(lengths, decay, sampling, epochs, score):
    s = HandTunedSchedule(lengths, decay, sampling, epochs, LRS)
    return {
        "schedule": s.to_dict(),
        "val_score": score,
        "epochs": epochs,
        "weighted_epochs": s.weighted_epochs(8),
        "seconds": 2.0 * epochs,
    }


def test_summary_picks_the_best_run_and_each_cells_best_budget():
    runs = [
        fake_run((8, 32), "3step", "uniform", 6, 0.5),
        fake_run((8, 32), "3step", "uniform", 12, 0.7),
        fake_run((16, 32), "cosine", "uniform", 6, 0.7),  # ties 0.7 with fewer weighted epochs
        fake_run((16, 32), "cosine", "uniform", 12, 0.6),
    ]
    summary = summarize_grid(runs)
    assert summary["best"] == "uniform-16-32f-cosine-e6"
    cells = {(c["lengths"], c["decay"]): (c["epochs"], c["val_score"]) for c in summary["cells"]}
    assert cells == {("8→32", "3step"): (12, 0.7), ("16→32", "cosine"): (6, 0.7)}
    assert summary["cost"]["runs"] == 4 and summary["cost"]["epochs"] == 36
    assert summary["cost"]["wall_seconds"] == 72.0
    with pytest.raises(ValueError, match="no finished run"):
        summarize_grid([])
