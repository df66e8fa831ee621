"""The performance-epoch curve families of Table 1 (§3.3).

Each family is ``f(t) = g(t) + h(t)``: ``g`` increasing and bounded (convergence), ``h`` a
concave quadratic (over-fitting). The sign constraints of Table 1 make ``f`` concave, hence
unimodal, so its maximum -- the knee -- is unique. Strict inequalities (``< 0``) become
closed bounds for the amplitudes and the quadratic term (the closure of the feasible set,
which least squares needs), and a small negative ceiling for the rates, so that ``g`` never
degenerates into the linear term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["FAMILIES", "CurveFamily", "FamilyName"]

FamilyName = Literal["power", "multi-power", "exponential", "multi-exponential"]
Array = NDArray[np.float64]

_INF = np.inf
_RATE_MIN, _RATE_MAX = -5.0, -1e-4  # rates (exponents) are negative: g is increasing
_NEG = (-_INF, 0.0)  # amplitudes and the quadratic coefficient
_FREE = (-_INF, _INF)
_RATE = (_RATE_MIN, _RATE_MAX)


@dataclass(frozen=True)
class CurveFamily:
    """One row of Table 1: ``a1 + sum_k amp_k * basis(rate_k, t) + lin * t + quad * t^2``.

    ``basis`` is ``exp(rate * t)`` (exponential families) or ``(t + 1) ** rate`` (power
    families); amplitudes, rates and ``quad`` are negative (Table 1's constraints).
    """

    name: str
    formula: str
    kind: Literal["exp", "power"]
    n_terms: int

    @property
    def n_params(self) -> int:
        return 3 + 2 * self.n_terms

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(f"a{i + 1}" for i in range(self.n_params))

    @property
    def terms(self) -> tuple[tuple[int, int], ...]:
        """Indices of each ``g`` term's (amplitude, rate) parameters."""
        return tuple((1 + 2 * k, 2 + 2 * k) for k in range(self.n_terms))

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        return (_FREE, *((_NEG, _RATE) * self.n_terms), _FREE, _NEG)

    def lower(self) -> Array:
        return np.array([b[0] for b in self.bounds])

    def upper(self) -> Array:
        return np.array([b[1] for b in self.bounds])

    def _basis(self, rate: float, t: Array) -> tuple[Array, Array]:
        """The basis function and its derivative with respect to the rate."""
        if self.kind == "exp":
            b = np.exp(rate * t)
            return b, t * b
        b = (t + 1.0) ** rate
        return b, np.log(t + 1.0) * b

    def __call__(self, params: Array, t: Array) -> Array:
        a = np.asarray(params, dtype=float)
        t = np.asarray(t, dtype=float)
        out = a[0] + a[-2] * t + a[-1] * t**2
        for amp, rate in self.terms:
            out = out + a[amp] * self._basis(a[rate], t)[0]
        return np.asarray(out, dtype=float)

    def jacobian(self, params: Array, t: Array) -> Array:
        """d f / d params, shape (len(t), n_params); used by the least-squares solver."""
        a = np.asarray(params, dtype=float)
        t = np.asarray(t, dtype=float)
        jac = np.empty((len(t), self.n_params))
        jac[:, 0] = 1.0
        for amp, rate in self.terms:
            b, db = self._basis(a[rate], t)
            jac[:, amp] = b
            jac[:, rate] = a[amp] * db
        jac[:, -2] = t
        jac[:, -1] = t**2
        return jac


FAMILIES: dict[str, CurveFamily] = {
    fam.name: fam
    for fam in (
        CurveFamily("power", "a1 + a2 (t+1)^a3 + a4 t + a5 t^2;  a2, a3, a5 < 0", "power", 1),
        CurveFamily(
            "multi-power",
            "a1 + a2 (t+1)^a3 + a4 (t+1)^a5 + a6 t + a7 t^2;  a2, a3, a4, a5, a7 < 0",
            "power",
            2,
        ),
        CurveFamily("exponential", "a1 + a2 exp(a3 t) + a4 t + a5 t^2;  a2, a3, a5 < 0", "exp", 1),
        CurveFamily(
            "multi-exponential",
            "a1 + a2 exp(a3 t) + a4 exp(a5 t) + a6 t + a7 t^2;  a2, a3, a4, a5, a7 < 0",
            "exp",
            2,
        ),
    )
}
