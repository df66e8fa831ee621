"""The noise rule (planner.rule: noise, beyond the paper): stopping on random curves, dips,
exact replay on resume, and the paper rule left as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan.config import PlanConfig
from opplan.planning import (
    Journal,
    KneeStopper,
    Planner,
    PlannerOptions,
    PlanState,
    TrainingState,
    TransitionGraph,
    read_journal,
)
from opplan.planning.noise_rule import NoiseAwareStopper, binomial_noise
from opplan.planning.simulate import RandomLandscape, SimulatedTrainer
from opplan.testing.planning import run_plan

N_PARAMS = 5  # the exponential family's


def curve(y0, gain, rate, overfit, t):
    return y0 + (1 - y0) * (gain * (1 - np.exp(-rate * t)) - overfit * t**2)


def feed(stopper, scores):
    for y in scores:
        if stopper.observe(y):
            break
    return stopper


curves = st.tuples(
    st.floats(0.0, 0.6),  # y0
    st.floats(0.05, 0.7),  # gain
    st.floats(0.1, 0.9),  # rate
    st.floats(1e-5, 1e-3),  # over-fitting
    st.sampled_from([0.005, 0.01, 0.03]),  # noise std
    st.integers(0, 2**31),  # noise seed
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=curves)
def test_stops_within_the_noise_of_the_best_epoch_on_random_curves(c):
    y0, gain, rate, overfit, sigma, seed = c
    t = np.arange(1, 81)
    clean = curve(y0, gain, rate, overfit, t)
    noisy = clean + np.random.default_rng(seed).normal(0, sigma, len(t))
    stopper = feed(NoiseAwareStopper(y0, max_epochs=80, noise=sigma), noisy)
    assert stopper.stopped and stopper.knee_epoch <= stopper.stopped_at
    truth = np.concatenate([[y0], clean])
    # what the kept epoch is truly worth, against the best of the whole budget
    assert truth.max() - truth[stopper.knee_epoch] <= 4 * sigma + 0.01
    # the rule cannot stop before the family has enough points for a fit
    assert stopper.stopped_at >= N_PARAMS


@pytest.mark.xfail(strict=True, reason="known premature stop of the noise rule (issue 17)")
def test_a_slow_rise_found_by_hypothesis_is_not_stopped_early():
    """A curve Hypothesis drew in session 15 (when its draws still depended on the modules
    loaded): the rule stops at epoch 7 with knee 6, keeping an epoch worth 0.0518 below the
    budget's best, over the 4 sigma + 0.01 = 0.05 the property allows. Kept as a strict xfail:
    it passes (and so fails here) once the rule stops being fooled by this slow rise."""
    y0, gain, rate, overfit, sigma, seed = (0.5, 0.25, 0.125, 1e-5, 0.01, 113669006)
    t = np.arange(1, 81)
    clean = curve(y0, gain, rate, overfit, t)
    noisy = clean + np.random.default_rng(seed).normal(0, sigma, len(t))
    stopper = feed(NoiseAwareStopper(y0, max_epochs=80, noise=sigma), noisy)
    truth = np.concatenate([[y0], clean])
    assert truth.max() - truth[stopper.knee_epoch] <= 4 * sigma + 0.01


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=curves)
def test_decisions_depend_on_the_scores_only(c):
    y0, gain, rate, overfit, sigma, seed = c
    t = np.arange(1, 41)
    noisy = curve(y0, gain, rate, overfit, t) + np.random.default_rng(seed).normal(0, sigma, 40)
    a = feed(NoiseAwareStopper(y0, max_epochs=40, noise=sigma), noisy)
    b = feed(NoiseAwareStopper(y0, max_epochs=40, noise=sigma), noisy)
    assert (a.stopped_at, a.knee_epoch, a.value) == (b.stopped_at, b.knee_epoch, b.value)
    assert [f.params for f in a.fits] == [f.params for f in b.fits]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    y0=st.floats(0.5, 0.85),
    dip=st.floats(0.15, 0.35),
    rise=st.floats(0.05, 0.12),
    seed=st.integers(0, 2**31),
)
def test_a_dip_that_recovers_above_the_start_is_not_ended_at_knee_0(y0, dip, rise, seed):
    """Issue 17: a clip-length move loses 15-30 points in its first epoch, then recovers."""
    sigma = 0.01
    t = np.arange(1, 61)
    # the dip decays, the recovery climbs to y0 + rise
    clean = y0 + rise * (1 - np.exp(-0.3 * t)) - dip * np.exp(-0.6 * (t - 1)) - 2e-5 * t**2
    noisy = clean + np.random.default_rng(seed).normal(0, sigma, 60)
    stopper = feed(NoiseAwareStopper(y0, max_epochs=60, noise=sigma), noisy)
    assert stopper.stopped and stopper.knee_epoch > 0
    assert clean[stopper.knee_epoch - 1] > y0 + rise / 3


def test_the_paper_rule_ends_the_same_dip_at_knee_0():
    """The failure the noise rule fixes (T = 5, as in the fresh-clone demo of issue 17)."""
    y0, t = 0.78, np.arange(1, 41)
    clean = y0 + 0.12 * (1 - np.exp(-0.1 * t)) - 0.31 * np.exp(-0.15 * (t - 1))  # 0.47 at t=1
    paper = feed(KneeStopper(y0, delay=5, max_epochs=40), clean)
    noisy = feed(NoiseAwareStopper(y0, max_epochs=40, noise=0.01), clean)
    assert paper.knee_epoch == 0 and paper.stopped_at == 5
    assert noisy.knee_epoch > 5 and clean[noisy.knee_epoch - 1] > y0 + 0.09


@pytest.mark.parametrize("dip", [0.2, 0.02])
def test_knee_0_needs_a_fit_of_the_epochs_after_the_dip(dip):
    """A move that only loses: knee 0 is accepted, but not before epochs 1..t can be fitted."""
    y0 = 0.8
    scores = [y0 - dip - 0.002 * k for k in range(1, 41)]
    stopper = feed(NoiseAwareStopper(y0, max_epochs=40, noise=0.01), scores)
    assert stopper.knee_epoch == 0
    assert stopper.stopped_at >= N_PARAMS + 1
    assert stopper.dip_fits  # the post-dip curve was fitted


def test_still_rising_curve_runs_on():
    """A linear rise (the from-scratch moves of issue 17) is not cut by the noise rule."""
    scores = [0.01 * k for k in range(1, 41)]
    stopper = feed(NoiseAwareStopper(0.0, max_epochs=40, noise=0.01), scores)
    assert stopper.stopped_at == 40 and stopper.reason == "max_epochs reached"


def test_binomial_noise():
    assert binomial_noise(0.5, 100) == pytest.approx(0.05)
    assert binomial_noise(1.0, 60) == pytest.approx(math.sqrt((1 / 120) * (119 / 120) / 60))
    stopper = NoiseAwareStopper(0.0, max_epochs=10, eval_count=100)
    stopper.observe(0.5)
    assert stopper.sigma() == pytest.approx(0.05)


def test_bad_noise_settings_are_refused():
    with pytest.raises(ValueError, match="noise"):
        NoiseAwareStopper(0.0, max_epochs=10)
    with pytest.raises(ValueError, match="patience"):
        NoiseAwareStopper(0.0, max_epochs=10, noise=0.01, patience=0)


def test_options_choose_the_stopper():
    src = TrainingState.initial()
    assert type(PlannerOptions().stopper(src, 0.0)) is KneeStopper  # the paper's, by default
    noisy = PlannerOptions(rule="noise", noise=0.02, noise_z=2.0).stopper(src, 0.0)
    assert isinstance(noisy, NoiseAwareStopper) and (noisy.noise, noisy.z) == (0.02, 2.0)


def test_config_resolves_the_noise_from_the_trainer():
    sim = PlanConfig.model_validate(
        {"planner": {"rule": "noise"}, "trainer": {"kind": "simulated", "noise": 0.03}}
    )
    assert sim.planner_options().noise == 0.03
    own = PlanConfig.model_validate({"planner": {"rule": "noise", "noise": 0.05}})
    assert own.planner_options(eval_count=60).noise == 0.05
    assert PlanConfig().planner_options().rule == "paper"
    with pytest.raises(ValueError, match=r"planner\.noise"):
        PlanConfig.model_validate(
            {"planner": {"rule": "noise"}, "trainer": {"kind": "simulated", "noise": 0.0}}
        )


class Interrupt(Exception):
    pass


class CrashingTrainer(SimulatedTrainer):
    def __init__(self, *args, crash_after, **kwargs):
        super().__init__(*args, **kwargs)
        self.left = crash_after

    def train_epoch(self):
        if self.left == 0:
            raise Interrupt
        self.left -= 1
        return super().train_epoch()


def strip_time(plan):
    plan["cost"] = {k: v for k, v in plan["cost"].items() if "seconds" not in k}
    for t in plan["transitions"]:
        t.pop("seconds")
    return plan


@pytest.mark.parametrize("fraction", [0.3, 0.8])
def test_resume_after_a_crash_gives_the_identical_plan(tmp_path, fraction):
    graph = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])
    landscape = RandomLandscape(seed=3, noise=0.01)
    opts = PlannerOptions(max_epochs=30, rule="noise", noise=0.01)
    reference = strip_time(run_plan(tmp_path / "ref", graph, landscape, opts).to_dict())
    crash_after = int(fraction * reference["cost"]["epochs_total"])
    run = tmp_path / "run"
    trainer = CrashingTrainer(run / "ck", landscape, crash_after=crash_after)
    with Journal(run / "journal.jsonl") as journal, pytest.raises(Interrupt):
        Planner(graph, trainer, journal, opts).run()
    progress = PlanState.replay(read_journal(run / "journal.jsonl"))
    with Journal(run / "journal.jsonl") as journal:
        plan = Planner(
            graph, SimulatedTrainer(run / "ck", landscape), journal, opts, progress=progress
        ).run()
    assert strip_time(plan.to_dict()) == reference


def test_noise_rule_plans_with_fewer_epochs_than_the_paper_rule(tmp_path):
    graph = TransitionGraph.build("extended", ["uniform"], [8, 16], [0.1, 0.01])
    landscape = RandomLandscape(seed=1, noise=0.01)
    paper = run_plan(tmp_path / "paper", graph, landscape, PlannerOptions(max_epochs=60))
    noisy = run_plan(
        tmp_path / "noise",
        graph,
        landscape,
        PlannerOptions(max_epochs=60, rule="noise", noise=0.01),
    )
    assert noisy.epochs_total < 0.7 * paper.epochs_total
    assert noisy.value == pytest.approx(paper.value, abs=0.03)
