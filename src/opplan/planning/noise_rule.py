"""Beyond the paper: a knee stopper that knows the evaluation noise (``planner.rule: noise``).

The paper (§3.3) stops a transition T epochs after the fitted knee; T is a fixed guess at
how long it takes to tell a real turn of the curve from noise. When the noise of one
evaluation is known -- binomial on the N videos of the internal validation split, or the
simulated trainer's std -- the wait can be measured instead. After every epoch t (once the
Table 1 family has enough points) the curve is fitted as in §3.3, and the transition stops
after ``patience`` consecutive epochs at which

- the fitted curve's remaining gain over what is left of the budget (its peak over
  ``0..max_epochs`` minus the best fitted value in ``0..t``) is below ``z`` noise stds, and
- the fit has two residual degrees of freedom (epochs >= n_params + 1), and
- the last ``max(window, t // 2)`` + 1 scores do not rise significantly (a least-squares
  slope above ``z`` standard errors of the noise: a dip still recovering goes on), and
- if the best fitted epoch is 0 (the starting model), a fit of epochs ``1..t`` alone --
  the recovery after a first-epoch dip, which no unimodal Table 1 curve describes together
  with ``y0`` -- does not reach above ``y0`` by the noise either; it needs as many
  post-dip points as a fit does, so a move never ends at knee 0 on a first-epoch dip alone.

The kept epoch is the best fitted one in ``0..t`` (of the post-dip curve when that is
higher); the value is that fitted score. The decisions depend on the scores only, so
replaying a journal re-takes them exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import linregress

from opplan.planning.curves import FAMILIES
from opplan.planning.knee import KneeFit, KneeStopper, fit_curve

__all__ = ["NoiseAwareStopper", "binomial_noise"]


def binomial_noise(score: float, count: int) -> float:
    """Std of a top-1 on ``count`` videos at accuracy ``score`` (clipped away from 0 and 1
    by half a video, so a perfect score still has a noise)."""
    p = min(max(score, 0.5 / count), 1.0 - 0.5 / count)
    return math.sqrt(p * (1.0 - p) / count)


@dataclass
class NoiseAwareStopper(KneeStopper):
    """:class:`KneeStopper` with the noise rule above instead of ``t >= t* + T``.

    Args (beyond :class:`KneeStopper`'s; ``delay`` is not used):
        noise: std of one evaluation in score units (> 0), or 0 to use ``eval_count``.
        eval_count: validation videos; the noise is then binomial at the best score seen.
        z: noise stds a remaining gain (or a rise) must exceed to keep training.
        patience: consecutive quiet epochs before stopping.
        window: the fewest epochs over which a recovering rise is measured (the window grows
            to half the epochs so far).

    Example:
        >>> stopper = NoiseAwareStopper(y0=0.5, max_epochs=60, noise=0.01)
        >>> for t in range(1, 61):
        ...     if stopper.observe(0.5 + 0.4 * (1 - np.exp(-0.3 * t)) - 1e-4 * t**2):
        ...         break
        >>> stopper.stopped_at < 20, stopper.knee_epoch <= stopper.stopped_at
        (True, True)
    """

    noise: float = 0.0
    eval_count: int = 0
    z: float = 1.0
    patience: int = 2
    window: int = 3
    dip_fits: list[KneeFit] = field(default_factory=list, init=False)
    quiet: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.noise > 0 or self.eval_count > 0):
            raise ValueError("the noise rule needs a noise std > 0 or a validation count > 0")
        if self.z <= 0 or self.patience < 1 or self.window < 1:
            raise ValueError("noise rule: z > 0, patience >= 1 and window >= 1 required")

    def sigma(self) -> float:
        """The noise of one evaluation now."""
        if self.noise > 0:
            return self.noise
        best = max((y for y in self.scores if math.isfinite(y)), default=0.0)
        return binomial_noise(best, self.eval_count)

    def observe(self, score: float) -> bool:
        self.scores.append(float(score))
        if self.stopped:
            return True
        t = self.epoch
        decision: tuple[int, float] | None = None  # (kept epoch, its fitted value)
        if t >= FAMILIES[self.family].n_params:  # n_params + 1 points
            fit = fit_curve(self.scores, self.family, horizon=self.max_epochs)
            self.fits.append(fit)
            if fit.success:
                decision, stop = self._decide(fit)
                if stop:
                    self._stop(*decision, "noise rule: remaining gain below the noise")
                    return True
        if t >= self.max_epochs:
            if decision is not None:
                self._stop(*decision, "max_epochs reached")
            else:
                finite = np.where(np.isfinite(self.scores), self.scores, -np.inf)
                best = int(np.argmax(finite))
                self._stop(best, self.scores[best], "max_epochs reached; no successful fit")
                self.from_fit = False
            return True
        return False

    def _decide(self, fit: KneeFit) -> tuple[tuple[int, float], bool]:
        t, sigma = self.epoch, self.sigma()
        curve = fit.predict(np.arange(self.max_epochs + 1, dtype=float))
        kept = int(np.argmax(curve[: t + 1]))
        held, peak = float(curve[kept]), float(np.max(curve))
        settled = True  # whether the evidence is enough to end here at all
        if kept == 0:
            settled, dip = self._dip_curve()
            if dip is not None:
                after = int(np.argmax(dip[:t])) + 1  # dip[s - 1] models epoch s
                if dip[after - 1] > held:
                    kept, held = after, float(dip[after - 1])
                peak = max(held, float(np.max(dip)))
        quiet = (
            settled
            and peak - held < self.z * sigma
            and not self._rising(sigma)
            and t >= self.min_epochs
            and t >= self._enough_points()
            and self.has_risen(fit)
        )
        self.quiet = self.quiet + 1 if quiet else 0
        return (kept, held), self.quiet >= self.patience

    def _enough_points(self) -> int:
        """The first epoch at which the fit has two residual degrees of freedom: with
        n_params + 1 points a Table 1 fit passes through the noise and can look flat by chance
        (the one premature stop in 300 random curves at issue 17's first cut, knee 4 at epoch
        6 on a curve still rising)."""
        return FAMILIES[self.family].n_params + 1

    def _dip_curve(self) -> tuple[bool, np.ndarray | None]:
        """Whether there are enough epochs after the dip to judge it, and the fit of epochs
        1..t alone over the rest of the budget (None if it failed: the main fit decides)."""
        after = self.scores[1:]
        if len(after) < FAMILIES[self.family].n_params + 1:
            return False, None
        fit = fit_curve(after, self.family, horizon=self.max_epochs - 1)
        self.dip_fits.append(fit)
        return True, fit.predict(np.arange(self.max_epochs, dtype=float)) if fit.success else None

    def _rising(self, sigma: float) -> bool:
        """Whether the last ``max(window, t // 2)`` + 1 scores rise by more than ``z`` standard
        errors: the window grows with the move, so a slow rise that a 4-point slope cannot tell
        from noise is still seen late in a long move."""
        if self.epoch < self.window:
            return True  # too early to say it is not
        w = max(self.window, self.epoch // 2)
        y = np.asarray(self.scores[-(w + 1) :])
        x = np.arange(len(y), dtype=float)
        slope = float(linregress(x, y).slope)
        stderr = sigma / math.sqrt(float(np.sum((x - x.mean()) ** 2)))
        return slope > self.z * stderr
