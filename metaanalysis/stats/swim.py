"""Synthesis without meta-analysis (SWiM): vote counting and combined p-values.

Pure statistics (numpy, scipy and pymare only). The trials that report only a
direction ("no significant difference", "significantly lower") cannot enter a
meta-analysis, yet they are evidence; leaving them out silently tilts the
analysed set. The Cochrane Handbook (chapter 12) gives two methods that use
them, and :mod:`metaanalysis.analysis.pipeline` feeds both:

=========================  ====================================================
function                   method
=========================  ====================================================
:func:`vote_count`         vote counting based on the direction of effect, the
                           proportion favouring the intervention with a Wilson
                           CI and an exact sign test (Handbook 12.2.2.1)
:func:`z_from_p`           one-sided z from a two-sided exact p and a direction
:func:`stouffer`           weighted Stouffer combination of exact p-values
                           (Handbook 12.2.2.2), by ``pymare``'s
                           ``StoufferCombinationTest``
=========================  ====================================================

Directions are coded ``+1`` (favours the probiotic), ``-1`` (favours the
control) and ``0`` (neither: an exact tie, or arms of one trial pointing both
ways); ties do not count in the vote.

References
----------
McKenzie JE, Brennan SE. Chapter 12: Synthesizing and presenting findings
using other methods. Cochrane Handbook for Systematic Reviews of
Interventions, version 6.4 (2023).
Campbell M, McKenzie JE, Sowden A, et al. (2020). Synthesis without
meta-analysis (SWiM) in systematic reviews: reporting guideline. BMJ 368:l6890.
Zaykin DV (2011). Optimally weighted Z-test is a powerful method for combining
probabilities in meta-analysis. J Evol Biol 24(8):1836-1841.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

__all__ = ["VoteCount", "StoufferResult", "vote_count", "wilson_ci", "sign_test",
           "z_from_p", "stouffer"]

HANDBOOK_12 = "Cochrane Handbook v6.4 (2023), chapter 12 (McKenzie & Brennan)"


@dataclass(frozen=True, slots=True)
class VoteCount:
    """Vote counting on the direction of effect.

    ``proportion`` = favour / (favour + against); ties (``neither``) are left
    out of the denominator, as the Handbook's sign test does.
    """

    favour: int
    against: int
    neither: int
    k: int
    proportion: float | None
    ci_lb: float | None
    ci_ub: float | None
    pval: float | None
    alpha: float
    method: str = "Wilson score interval; exact two-sided sign test (binomial, p = 0.5)"

    def to_dict(self) -> dict:
        """Plain values for results.json, with the method and the Handbook reference."""
        return {"favour_probiotic": self.favour, "favour_control": self.against,
                "neither": self.neither, "k": self.k, "proportion": self.proportion,
                "ci_lb": self.ci_lb, "ci_ub": self.ci_ub, "pval": self.pval,
                "alpha": self.alpha, "method": self.method, "reference": HANDBOOK_12}


@dataclass(frozen=True, slots=True)
class StoufferResult:
    """Weighted Stouffer combination (one-sided: positive z favours the probiotic)."""

    k: int
    z: float | None
    pval: float | None
    weights: str
    method: str = ("weighted Stouffer Z = sum(w_i z_i) / sqrt(sum(w_i^2)); one-sided p for "
                   "a benefit of the probiotic (pymare StoufferCombinationTest, mode "
                   "'directed')")

    def to_dict(self) -> dict:
        """Plain values for results.json, with the method and the Handbook reference."""
        return {"k": self.k, "z": self.z, "pval": self.pval, "weights": self.weights,
                "method": self.method, "reference": HANDBOOK_12}


def wilson_ci(x: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``x / n``.

    Parameters
    ----------
    x, n : int
        Successes and trials, ``0 <= x <= n``, ``n > 0``.
    alpha : float
        The interval covers ``1 - alpha``.

    Returns
    -------
    lb, ub : float
        Clipped to [0, 1].

    Examples
    --------
    >>> [round(v, 4) for v in wilson_ci(7, 10)]
    [0.3968, 0.8922]
    """
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n and n > 0, got x={x}, n={n}")
    z = float(special.ndtri(1 - alpha / 2))
    p = x / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(x: int, n: int) -> float:
    """Exact two-sided sign test: ``P(X <= min(x, n - x)) * 2`` for X ~ Bin(n, 1/2).

    Parameters
    ----------
    x, n : int
        Successes and trials, ``0 <= x <= n``, ``n > 0``.

    Returns
    -------
    float
        The p-value, at most 1.

    Examples
    --------
    >>> round(sign_test(9, 10), 6)        # 2 * 11 / 1024
    0.021484
    """
    if n <= 0 or not 0 <= x <= n:
        raise ValueError(f"need 0 <= x <= n and n > 0, got x={x}, n={n}")
    lo = min(x, n - x)
    return float(min(1.0, 2 * special.bdtr(lo, n, 0.5)))


def vote_count(directions: ArrayLike, alpha: float = 0.05) -> VoteCount:
    """Vote counting on the direction of effect (Handbook 12.2.2.1).

    Parameters
    ----------
    directions : array_like of shape (k,)
        +1 favours the probiotic, -1 the control, 0 neither.
    alpha : float
        The CI covers ``1 - alpha``.

    Returns
    -------
    VoteCount
    """
    d = np.asarray(directions, dtype=float).reshape(-1)
    if not np.all(np.isin(d, (-1, 0, 1))):
        raise ValueError("directions must be +1, -1 or 0")
    fav, ag = int(np.sum(d == 1)), int(np.sum(d == -1))
    nei = int(np.sum(d == 0))
    n = fav + ag
    if n == 0:
        return VoteCount(fav, ag, nei, int(d.size), None, None, None, None, alpha)
    lb, ub = wilson_ci(fav, n, alpha)
    return VoteCount(fav, ag, nei, int(d.size), fav / n, lb, ub, sign_test(fav, n), alpha)


def z_from_p(p: ArrayLike, direction: ArrayLike) -> np.ndarray:
    """One-sided z from a two-sided exact p and the direction of the estimate.

    ``z = direction * Phi^-1(1 - p/2)``: positive favours the probiotic.

    Parameters
    ----------
    p : array_like of shape (k,)
        Two-sided p-values in (0, 1].
    direction : array_like of shape (k,)
        +1 where the estimate favours the probiotic, -1 where the control.

    Returns
    -------
    ndarray of shape (k,)

    Examples
    --------
    >>> float(np.round(z_from_p([0.05], [1])[0], 4))
    1.96
    """
    p = np.asarray(p, dtype=float)
    s = np.asarray(direction, dtype=float)
    if np.any((p <= 0) | (p > 1)):
        raise ValueError("p-values must be in (0, 1]")
    return s * special.ndtri(1 - p / 2)


def stouffer(z: ArrayLike, w: ArrayLike | None = None) -> StoufferResult:
    """Weighted Stouffer combination of one-sided z-scores, by pymare.

    Parameters
    ----------
    z : array_like of shape (k,)
        One-sided z-scores (positive favours the probiotic), e.g. from
        :func:`z_from_p`.
    w : array_like of shape (k,), optional
        Weights (the Handbook suggests the square root of the sample size);
        equal weights when omitted.

    Returns
    -------
    StoufferResult
        ``pval`` is one-sided, for a consistent benefit of the probiotic.
    """
    # issue 10: the combination test is pymare's (a design-card dependency doing
    # real work); imported here, so runs without a SWiM block never pay for it
    from pymare.estimators import StoufferCombinationTest

    z = np.asarray(z, dtype=float).reshape(-1)
    if z.size == 0:
        return StoufferResult(0, None, None, "none")
    label = "equal"
    if w is None:
        w = np.ones_like(z)
    else:
        w = np.asarray(w, dtype=float).reshape(-1)
        label = "given"
        if w.shape != z.shape:
            raise ValueError("w must have the shape of z")
    if np.any(~np.isfinite(w)) or np.any(w <= 0):
        raise ValueError("Weights must be finite positive values.")
    est = StoufferCombinationTest(mode="directed").fit(z[:, None], w=w[:, None])
    return StoufferResult(int(z.size), float(est.params_["z"][0]), float(est.params_["p"][0]),
                          label)
