"""benchmarks/stopping_replay.py: rules replayed on journaled curves, as the planner runs them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from benchmarks.stopping_replay import UcbStopper, curves, replay, stopper, summary
from opplan.planning.knee import KneeStopper
from opplan.planning.noise_rule import NoiseAwareStopper
from opplan.planning.options import PlannerOptions

OPTIONS = PlannerOptions(delay=10, max_epochs=30, eval_count=60, min_epochs_from_initial=5)


def _journal(moves: dict[tuple[str, str], list[float]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"op": "plan_started", "options": OPTIONS.to_dict()}]
    for (src, dst), curve in moves.items():
        out.append({"op": "transition_started", "src": src, "dst": dst, "y0": curve[0]})
        for epoch, score in enumerate(curve[1:], 1):
            scored = {"src": src, "dst": dst, "epoch": epoch, "score": score}
            out.append({"op": "epoch_scored", **scored})
    return out


def _rise(n: int, seed: int) -> list[float]:
    t = np.arange(n + 1)
    noise = np.random.default_rng(seed).normal(0, 0.02, n + 1)
    return [float(x) for x in 0.3 + 0.5 * (1 - np.exp(-0.3 * t)) - 4e-4 * t**2 + noise]


def test_each_rule_stops_where_the_planner_s_own_stopper_stops() -> None:
    curve = _rise(30, 0)
    rows = replay(_journal({("a", "b"): curve}), "paper:3")
    direct = KneeStopper(curve[0], delay=3, max_epochs=30)
    stop = next(t for t, y in enumerate(curve[1:], 1) if direct.observe(y))
    assert direct.knee_epoch is not None
    assert rows[0]["epochs"] == stop and not rows[0]["censored"]
    assert rows[0]["regret"] == pytest.approx((max(curve) - curve[direct.knee_epoch]) * 60)


def test_a_recording_too_short_for_the_rule_is_censored_not_judged() -> None:
    short = _rise(30, 1)[:6]  # the recording's own rule stopped it at epoch 5
    rows = replay(_journal({("a", "b"): short}), "paper:10")
    assert rows[0] == {**rows[0], "epochs": 5, "censored": True, "regret": None}
    s = summary(rows)
    assert (s["censored"], s["epochs"]) == (1, 5) and np.isnan(s["regret_mean"])


def test_the_floor_from_the_initial_state_and_the_knobs_are_the_journal_s() -> None:
    first = stopper(OPTIONS, "noise:0.5:3", True, 0.0)
    later = stopper(OPTIONS, "ucb:1:2", False, 0.4)
    assert isinstance(first, NoiseAwareStopper) and not isinstance(first, UcbStopper)
    assert (first.min_epochs, first.z, first.patience, first.eval_count) == (5, 0.5, 3, 60)
    assert isinstance(later, UcbStopper) and (later.min_epochs, later.z) == (0, 1.0)


def test_the_upper_bound_rule_never_stops_before_the_noise_rule() -> None:
    for seed in range(6):
        curve = _rise(30, seed)
        journal = _journal({("initial", "x"): curve, ("x", "y"): curve[::-1]})
        noise, ucb = replay(journal, "noise:1:2"), replay(journal, "ucb:1:2")
        assert all(u["epochs"] >= n["epochs"] for u, n in zip(ucb, noise, strict=True))
    assert list(curves(journal)) == [("initial", "x"), ("x", "y")]
