"""Knee-point estimation on the validation curve (§3.3, Eq. 3-4, Table 1).

After every epoch the observed scores ``y_0 .. y_t`` are fitted with a unimodal curve by
bounded least squares with the trust-region-reflective method; the knee ``t*`` is the
argmax of the fitted curve, and a transition stops once ``t >= t* + T`` (the delay ``T``
gives the model a T-epoch attempt after the knee).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares

from opplan.planning.curves import FAMILIES, Array, CurveFamily

__all__ = ["KneeFit", "KneeStopper", "fit_curve"]

# starting rates: fast, medium, slow convergence (exp: per epoch; power: exponent)
_MAX_NFEV = 300  # iterations per starting point (analytic Jacobian); the best is kept
_BOX = 10.0  # bound on the normalized asymptote (amplitudes: twice that)
_START_RATES = {"exp": (-1.0, -0.25, -0.05), "power": (-2.0, -0.7, -0.2)}


@dataclass(frozen=True)
class KneeFit:
    """The result of one fit; keeps scipy's diagnostics so a failed fit is visible."""

    family: str
    params: tuple[float, ...]
    rmse: float
    r2: float
    knee_epoch: int
    peak: float
    success: bool
    message: str
    n_points: int
    horizon: int
    nfev: int = 0

    def predict(self, t: Sequence[float] | Array) -> Array:
        return FAMILIES[self.family](np.asarray(self.params), np.asarray(t, dtype=float))

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "params": list(self.params),
            "rmse": self.rmse,
            "r2": self.r2,
            "knee_epoch": self.knee_epoch,
            "peak": self.peak,
            "success": self.success,
            "message": self.message,
            "n_points": self.n_points,
            "horizon": self.horizon,
            "nfev": self.nfev,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KneeFit:
        return cls(**{**data, "params": tuple(data["params"])})


def fit_curve(
    scores: Sequence[float] | Array,
    family: str = "exponential",
    horizon: int | None = None,
) -> KneeFit:
    """Fit ``scores[t]`` (t = 0, 1, ...) with a Table 1 family (Eq. 4).

    Args:
        scores: the observed validation scores, ``scores[0]`` being the starting model's.
        family: ``power``, ``multi-power``, ``exponential`` or ``multi-exponential``.
        horizon: the knee is the argmax of the fitted curve over epochs ``0..horizon``
            (default: the observed epochs).

    The data are centred and scaled before fitting and the parameters mapped back, so the
    fit is equivariant to affine changes of the score (accuracy in % or in [0, 1]) and well
    conditioned. Several starting points are tried; the lowest cost wins. Deterministic.

    Example:
        >>> t = np.arange(30)
        >>> y = 0.6 - 0.5 * np.exp(-0.2 * t) - 2e-4 * t**2
        >>> fit = fit_curve(y)
        >>> fit.success, fit.knee_epoch, round(fit.peak, 3)
        (True, 14, 0.53)
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown curve family {family!r}; expected one of {sorted(FAMILIES)}")
    fam = FAMILIES[family]
    y = np.asarray(scores, dtype=float)
    n = len(y)
    horizon = n - 1 if horizon is None else int(horizon)
    if n < fam.n_params + 1:
        return _failed(fam, y, horizon, f"need at least {fam.n_params + 1} points, got {n}")
    if not np.all(np.isfinite(y)):
        return _failed(fam, y, horizon, "scores contain NaN or infinity")
    t = np.arange(n, dtype=float)
    centre, scale = float(np.mean(y)), float(np.max(y) - np.min(y))
    if scale == 0.0:
        params = np.zeros(fam.n_params)
        params[0] = centre
        for _amp, rate in fam.terms:
            params[rate] = fam.bounds[rate][1]
        return _result(fam, params, y, horizon, True, "constant scores", 0)
    z = (y - centre) / scale

    # In normalized units the data span [-1, 1]; boxing the asymptote and the amplitudes
    # removes the degenerate direction (huge a1 cancelled by a huge amplitude with a rate
    # near 0) that otherwise makes the power families crawl.
    lower, upper = fam.lower(), fam.upper()
    lower[0], upper[0] = -_BOX, _BOX
    for amp, _ in fam.terms:
        lower[amp] = -2 * _BOX
    best = None
    last_error = ""
    for x0 in _starting_points(fam, z):
        try:
            res = least_squares(
                lambda p: fam(p, t) - z,
                x0,
                jac=lambda p: fam.jacobian(p, t),
                bounds=(lower, upper),
                method="trf",
                x_scale=1.0,
                max_nfev=_MAX_NFEV,
            )
        except (ValueError, FloatingPointError) as err:  # pragma: no cover - defensive
            last_error = str(err)
            continue
        if np.all(np.isfinite(res.x)) and (best is None or res.cost < best.cost):
            best = res
    if best is None:
        return _failed(fam, y, horizon, f"no starting point converged ({last_error})")
    params = np.array(best.x, dtype=float)
    # map back from the normalized scores: y = centre + scale * z
    params[0] = centre + scale * params[0]
    linear = [i for i in range(1, fam.n_params) if i not in {r for _, r in fam.terms}]
    params[linear] *= scale
    # status 0 = evaluation budget spent: the best point so far is still a usable fit
    # (the message says so); negative statuses never reach here (they raise).
    usable = bool(best.status >= 0)
    return _result(fam, params, y, horizon, usable, str(best.message), best.nfev)


def _starting_points(fam: CurveFamily, z: Array) -> list[Array]:
    rates = _START_RATES[fam.kind]
    top = float(np.max(z))
    rise = max(top - float(z[0]), 0.1)
    starts = []
    if len(fam.terms) == 1:
        combos: list[tuple[float, ...]] = [(r,) for r in rates]
    else:
        combos = [(rates[0], rates[1]), (rates[0], rates[2]), (rates[1], rates[2])]
    for combo in combos:
        x0 = np.zeros(fam.n_params)
        x0[0] = top
        for (amp, rate), r in zip(fam.terms, combo, strict=True):
            x0[amp] = -rise / len(fam.terms)
            x0[rate] = r
        x0[-1] = -1e-6
        starts.append(x0)
    return starts


def _result(
    fam: CurveFamily, params: Array, y: Array, horizon: int, ok: bool, msg: str, nfev: int
) -> KneeFit:
    t = np.arange(len(y), dtype=float)
    resid = fam(params, t) - y
    rmse = float(np.sqrt(np.mean(resid**2)))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot > 0 else 1.0
    grid = np.arange(max(horizon, 0) + 1, dtype=float)
    curve = fam(params, grid)
    knee = int(np.argmax(curve))
    return KneeFit(
        family=fam.name,
        params=tuple(float(p) for p in params),
        rmse=rmse,
        r2=r2,
        knee_epoch=knee,
        peak=float(curve[knee]),
        success=ok,
        message=msg,
        n_points=len(y),
        horizon=horizon,
        nfev=int(nfev),
    )


def _failed(fam: CurveFamily, y: Array, horizon: int, msg: str) -> KneeFit:
    return KneeFit(fam.name, (), math.nan, math.nan, -1, math.nan, False, msg, len(y), horizon)


@dataclass
class KneeStopper:
    """Decides when a transition stops (§3.3): refit after every epoch, stop at t >= t* + T.

    Feed the starting model's score ``y0`` (0 for the initialization), then ``observe`` the
    score after each epoch. Once a stop is declared the decision is frozen: later
    observations are recorded but never move the knee.

    Args:
        y0: score of the starting model (epoch 0).
        delay: T, epochs of attempt after the knee (the paper fixes T = 10).
        max_epochs: hard cap; a curve that keeps rising, or fits that keep failing, stop here
            (falling back to the best observed epoch when no fit succeeds).
        family: Table 1 family used for the fits.
        min_epochs: never stop before this epoch (a warm-up floor, 0 = the paper's rule). For
            training from scratch whose curve is flat for its first epochs -- a shape no
            unimodal Table 1 curve describes -- a floor keeps an early flat knee from ending
            the transition before learning starts.
        min_rise: beyond the paper (0 = off): accept a knee only once the fitted curve has
            risen above its epoch-1 value by more than ``min_rise`` times the fit's RMSE,
            i.e. learning has visibly started. A curve still flat at chance -- however long
            the warm-up floor -- then goes on to ``max_epochs`` instead of ending at a
            knee fitted to noise (see :meth:`has_risen`).

    Example:
        >>> stopper = KneeStopper(y0=0.0, delay=3, max_epochs=50)
        >>> for t in range(1, 51):
        ...     if stopper.observe(0.6 - 0.6 * np.exp(-0.5 * t) - 1e-3 * t**2):
        ...         break
        >>> stopper.knee_epoch, stopper.stopped_at
        (6, 9)
    """

    y0: float
    delay: int = 10
    max_epochs: int = 100
    family: str = "exponential"
    min_epochs: int = 0
    min_rise: float = 0.0
    scores: list[float] = field(default_factory=list, init=False)
    fits: list[KneeFit] = field(default_factory=list, init=False)
    stopped_at: int | None = field(default=None, init=False)
    knee_epoch: int | None = field(default=None, init=False)
    value: float | None = field(default=None, init=False)
    reason: str = field(default="", init=False)
    from_fit: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError(f"delay must be >= 0, got {self.delay}")
        if self.max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {self.max_epochs}")
        if not 0 <= self.min_epochs <= self.max_epochs:
            raise ValueError(f"min_epochs must be in [0, max_epochs], got {self.min_epochs}")
        if not self.min_rise >= 0:
            raise ValueError(f"min_rise must be >= 0, got {self.min_rise}")
        if self.family not in FAMILIES:
            raise ValueError(f"unknown curve family {self.family!r}")
        self.scores = [float(self.y0)]

    @property
    def epoch(self) -> int:
        """Epochs observed so far (t)."""
        return len(self.scores) - 1

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def last_fit(self) -> KneeFit | None:
        return self.fits[-1] if self.fits else None

    def observe(self, score: float) -> bool:
        """Record ``y_t``; returns True once the transition should stop."""
        self.scores.append(float(score))
        if self.stopped:
            return True
        t = self.epoch
        fit: KneeFit | None = None
        if t >= self.delay:
            fit = fit_curve(self.scores, self.family, horizon=self.max_epochs)
            self.fits.append(fit)
            if (
                fit.success
                and t >= max(fit.knee_epoch + self.delay, self.min_epochs)
                and self.has_risen(fit)
            ):
                self._stop(fit.knee_epoch, fit.peak, "knee + delay reached")
                return True
        if t >= self.max_epochs:
            if fit is not None and fit.success:
                self._stop(min(fit.knee_epoch, t), fit.peak, "max_epochs reached")
            else:
                finite = np.where(np.isfinite(self.scores), self.scores, -np.inf)
                best = int(np.argmax(finite))  # NaN (a diverged epoch) never wins
                self._stop(best, self.scores[best], "max_epochs reached; no successful fit")
                self.from_fit = False
            return True
        return False

    def has_risen(self, fit: KneeFit) -> bool:
        """Whether ``fit`` shows learning: its peak exceeds its own epoch-1 value by more
        than ``min_rise`` RMSEs (always true when ``min_rise`` is 0, the paper's rule).

        The epoch-1 value, not ``y0``: from the initialization ``y0`` is 0 while a model
        that has learnt nothing already scores chance after one epoch, so a curve flat at
        chance fits a jump at t = 1 and a knee right after it.
        """
        if self.min_rise == 0:
            return True
        rise = fit.peak - float(fit.predict([1.0])[0])
        return rise > 0 and rise > self.min_rise * fit.rmse

    def optimistic_bound(self, margin: float) -> float:
        """What this transition could still reach: the larger of the best observed score and
        the last fit's peak over the horizon, plus ``margin`` and twice the fit's RMSE
        (``inf`` without a successful fit, so nothing is abandoned on no evidence)."""
        fit = self.last_fit
        if fit is None or not fit.success:
            return math.inf
        finite = [y for y in self.scores if math.isfinite(y)]
        best = max([fit.peak, *finite])
        return best + margin + 2.0 * fit.rmse

    def abandon(self, reason: str) -> None:
        """Stop now at the last fit's knee (it cannot beat what is already known)."""
        fit = self.last_fit
        assert fit is not None and fit.success and not self.stopped
        self._stop(min(fit.knee_epoch, self.epoch), fit.peak, reason)

    def _stop(self, knee: int, value: float, reason: str) -> None:
        self.stopped_at, self.knee_epoch, self.value, self.reason = self.epoch, knee, value, reason
        self.from_fit = True
