from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opplan.planning import FAMILIES, KneeStopper, fit_curve

FAMILY_NAMES = sorted(FAMILIES)


def exp_curve(t, a1=0.6, a2=-0.5, a3=-0.2, a4=0.0, a5=-2e-4):
    t = np.asarray(t, dtype=float)
    return a1 + a2 * np.exp(a3 * t) + a4 * t + a5 * t**2


def test_exponential_recovers_exact_parameters_and_knee():
    t = np.arange(40)
    fit = fit_curve(exp_curve(t), "exponential")
    assert fit.success
    np.testing.assert_allclose(fit.params, [0.6, -0.5, -0.2, 0.0, -2e-4], atol=1e-6)
    assert fit.rmse < 1e-8 and fit.r2 == pytest.approx(1.0)
    dense = exp_curve(np.arange(40))
    assert fit.knee_epoch == int(np.argmax(dense)) == 14
    assert fit.peak == pytest.approx(dense.max(), abs=1e-8)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_each_family_fits_its_own_curve(family):
    fam = FAMILIES[family]
    params = {
        "power": [0.7, -0.6, -0.8, 0.002, -1e-4],
        "multi-power": [0.7, -0.3, -0.5, -0.3, -2.0, 0.002, -1e-4],
        "exponential": [0.6, -0.5, -0.15, 0.001, -3e-4],
        "multi-exponential": [0.6, -0.3, -0.5, -0.2, -0.08, 0.001, -3e-4],
    }[family]
    t = np.arange(50)
    y = fam(np.array(params), t)
    fit = fit_curve(y, family)
    assert fit.success, fit.message
    assert fit.r2 > 0.999 and fit.rmse < 2e-3
    assert abs(fit.knee_epoch - int(np.argmax(y))) <= 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=st.sampled_from(FAMILY_NAMES),
    seed=st.integers(0, 10_000),
    n=st.integers(8, 40),
    noise=st.floats(0.0, 0.05),
)
def test_fits_obey_table1_constraints_and_are_unimodal(family, seed, n, noise):
    rng = np.random.default_rng(seed)
    y = exp_curve(np.arange(n), a3=-rng.uniform(0.05, 0.6), a5=-rng.uniform(0, 1e-3))
    y = y + rng.normal(0, noise, n)
    fit = fit_curve(y, family, horizon=2 * n)
    fam = FAMILIES[family]
    assert fit.success
    p = np.array(fit.params)
    for amp, rate in fam.terms:
        assert p[amp] <= 0 and p[rate] < 0  # g increasing and bounded
    assert p[-1] <= 0  # h concave
    curve = fit.predict(np.arange(2 * n + 1))
    assert np.all(np.diff(curve, 2) <= 1e-9)  # concave, hence unimodal
    assert fit.knee_epoch == int(np.argmax(curve))
    assert fit.peak == pytest.approx(curve.max())


@settings(max_examples=15, deadline=None)
@given(shift=st.floats(-5, 5), scale=st.floats(0.01, 100), seed=st.integers(0, 1000))
def test_fit_is_equivariant_to_affine_score_changes(shift, scale, seed):
    rng = np.random.default_rng(seed)
    y = exp_curve(np.arange(30)) + rng.normal(0, 0.01, 30)
    a, b = fit_curve(y), fit_curve(shift + scale * y)
    assert a.knee_epoch == b.knee_epoch
    assert b.peak == pytest.approx(shift + scale * a.peak, rel=1e-5, abs=1e-6 * scale)


def test_deterministic():
    y = exp_curve(np.arange(25)) + np.random.default_rng(3).normal(0, 0.02, 25)
    assert fit_curve(y, "multi-exponential") == fit_curve(y, "multi-exponential")


def test_too_few_points_or_nan_fail_visibly():
    few = fit_curve([0.1, 0.2, 0.3], "exponential")
    assert not few.success and "at least 6 points" in few.message
    bad = fit_curve([0.1, 0.2, math.nan, 0.3, 0.4, 0.4, 0.4], "exponential")
    assert not bad.success and "NaN" in bad.message
    with pytest.raises(ValueError, match="unknown curve family"):
        fit_curve([0.0] * 10, "cubic")


def test_constant_scores_have_their_knee_at_the_start():
    fit = fit_curve([0.5] * 12)
    assert fit.success and fit.knee_epoch == 0 and fit.peak == pytest.approx(0.5)


def run_stopper(stopper, curve):
    for t in range(1, len(curve)):
        if stopper.observe(curve[t]):
            return t
    return None


def test_stopper_stops_delay_epochs_after_the_knee():
    curve = exp_curve(np.arange(200))  # knee at epoch 14
    stopper = KneeStopper(y0=curve[0], delay=10, max_epochs=200)
    assert run_stopper(stopper, curve) == 24
    assert stopper.knee_epoch == 14 and stopper.stopped_at == 24
    assert stopper.value == pytest.approx(curve.max(), abs=1e-6)
    assert stopper.reason == "knee + delay reached" and stopper.from_fit


def test_stopper_does_not_fit_before_delay_points():
    stopper = KneeStopper(y0=0.0, delay=10, max_epochs=100)
    for t in range(1, 10):
        assert not stopper.observe(0.5 - 0.5 * 0.5**t)
    assert stopper.fits == []


def test_rising_curve_stops_at_max_epochs():
    stopper = KneeStopper(y0=0.0, delay=5, max_epochs=30)
    rising = 1 - np.exp(-0.01 * np.arange(100))
    assert run_stopper(stopper, rising) == 30
    assert stopper.knee_epoch == 30 and stopper.reason == "max_epochs reached"


def test_failed_fits_fall_back_to_the_best_observed_epoch():
    stopper = KneeStopper(y0=0.0, delay=3, max_epochs=12)
    scores = [0.1, 0.3, 0.2, math.nan, 0.4, 0.35, 0.3, 0.3, 0.2, 0.1, 0.1, 0.1]
    assert run_stopper(stopper, [0.0, *scores]) == 12  # NaN makes every fit fail
    assert all(not f.success for f in stopper.fits)
    assert stopper.knee_epoch == 5 and stopper.value == pytest.approx(0.4)
    assert not stopper.from_fit


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), extra=st.lists(st.floats(0, 1), max_size=10))
def test_decision_is_frozen_once_declared(seed, extra):
    rng = np.random.default_rng(seed)
    curve = exp_curve(np.arange(80), a3=-rng.uniform(0.1, 0.8)) + rng.normal(0, 0.01, 80)
    stopper = KneeStopper(y0=curve[0], delay=4, max_epochs=79)
    stop = run_stopper(stopper, curve)
    assert stop is not None
    knee, value = stopper.knee_epoch, stopper.value
    assert 0 <= knee <= stop and (stop >= knee + 4 or stop == 79)
    for score in extra:
        assert stopper.observe(score)
    assert (stopper.knee_epoch, stopper.value, stopper.stopped_at) == (knee, value, stop)


def test_stopper_validates_arguments():
    with pytest.raises(ValueError):
        KneeStopper(0.0, delay=-1)
    with pytest.raises(ValueError):
        KneeStopper(0.0, max_epochs=0)
    with pytest.raises(ValueError):
        KneeStopper(0.0, family="cubic")


def test_min_epochs_floor_waits_out_a_flat_start():
    t = np.arange(120, dtype=float)
    # flat for ~20 epochs, then a rise and a slow decline: not a Table 1 shape at the start
    curve = 0.1 + 0.5 / (1 + np.exp(-(t - 25) / 2.5)) - 1e-4 * t**2
    curve += np.random.default_rng(0).normal(0, 0.01, t.size)
    curve[0] = 0.0
    plain = KneeStopper(y0=0.0, delay=4, max_epochs=119)
    assert run_stopper(plain, curve) < 12  # the paper's rule stops on the plateau
    floored = KneeStopper(y0=0.0, delay=4, max_epochs=119, min_epochs=30)
    stop = run_stopper(floored, curve)
    assert stop >= 30 and floored.knee_epoch >= 25
    assert floored.value > plain.value + 0.2
    with pytest.raises(ValueError, match="min_epochs"):
        KneeStopper(0.0, max_epochs=10, min_epochs=11)


def late_take_off(take_off: float, seed: int = 0) -> np.ndarray:
    """Chance (0.1) with binomial-sized noise, then learning from ``take_off`` on."""
    t = np.arange(121, dtype=float)
    curve = 0.1 + 0.6 / (1 + np.exp(-(t - take_off) / 3.0)) - 2e-5 * t**2
    curve += np.random.default_rng(seed).normal(0, 0.035, t.size)
    curve[0] = 0.0  # y0 of the initialization
    return curve


def test_min_rise_runs_past_a_floor_while_the_curve_is_flat_at_chance():
    curve = late_take_off(35.0)
    floored = KneeStopper(y0=0.0, delay=4, max_epochs=120, min_epochs=10)
    assert run_stopper(floored, curve) < 30  # the floor alone ends it on the plateau
    assert floored.value < 0.2
    risen = KneeStopper(y0=0.0, delay=4, max_epochs=120, min_epochs=10, min_rise=3.0)
    stop = run_stopper(risen, curve)
    assert stop > 45 and risen.knee_epoch >= 40 and risen.value > 0.6
    fit = risen.fits[-1]
    assert risen.has_risen(fit)
    assert not risen.has_risen(floored.fits[-1])


def test_min_rise_does_not_delay_a_curve_that_learns_from_the_start():
    curve = exp_curve(np.arange(200))  # knee at epoch 14, a clear rise
    plain = KneeStopper(y0=curve[0], delay=10, max_epochs=200)
    risen = KneeStopper(y0=curve[0], delay=10, max_epochs=200, min_rise=3.0)
    assert run_stopper(plain, curve) == run_stopper(risen, curve) == 24
    assert risen.knee_epoch == 14


def test_a_curve_that_never_rises_stops_at_max_epochs():
    noise = np.random.default_rng(3).normal(0.1, 0.035, 41)
    noise[0] = 0.0
    risen = KneeStopper(y0=0.0, delay=4, max_epochs=40, min_rise=3.0)
    assert run_stopper(risen, noise) == 40 and risen.reason == "max_epochs reached"
    with pytest.raises(ValueError, match="min_rise"):
        KneeStopper(0.0, min_rise=-1.0)


@pytest.mark.slow  # ~13 s of hypothesis fits
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), take_off=st.floats(0.0, 60.0), rise=st.floats(0.5, 5.0))
def test_min_rise_only_ever_stops_later(seed, take_off, rise):
    """The rule adds a condition to the paper's stop: it never stops a transition earlier."""
    curve = late_take_off(take_off, seed)[:61]
    plain = KneeStopper(y0=0.0, delay=4, max_epochs=60)
    risen = KneeStopper(y0=0.0, delay=4, max_epochs=60, min_rise=rise)
    assert run_stopper(risen, curve) >= run_stopper(plain, curve)
