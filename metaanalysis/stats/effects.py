"""Stage 2: effect sizes, following metafor's ``escalc()``.

Pure numpy. Every function accepts per-study arrays of shape ``(k,)`` or
``(k, d)`` (d parallel datasets) and returns ``(yi, vi)`` of the same shape.

Conventions (metafor 3.8 defaults, written into every result's
``conventions``):

* ``MD``: raw mean difference ``m1i - m2i``; ``vi = sd1i^2/n1i + sd2i^2/n2i``
  (metafor ``vtype="LS"``, no equal-variance assumption).
* ``SMD``: Hedges' g with the exact bias correction
  ``J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``, ``m = n1i + n2i - 2``,
  and the large-sample variance ``1/n1i + 1/n2i + g^2 / (2 (n1i + n2i))``.
  ``smd_correction="revman"`` gives RevMan 5's ``J = 1 - 3/(4N - 9)`` and
  variance ``1/n1i + 1/n2i + g^2 / (2 (N - 3.94))``.
* ``RR``, ``OR``: log scale. ``RD``: risk difference.
* Zero cells: ``add=0.5`` is added to all four cells of every study with a
  zero cell (``to="only0"``). Double-zero studies (no events in either arm,
  or all events in both) are kept and corrected (metafor ``drop00=FALSE``):
  for RR and OR they then contribute ``yi = log(((0.5)/(n1+1)) / ((0.5)/(n2+1)))``
  with a large variance; for RD they contribute ``yi = 0``. ``drop00=True``
  drops them instead (their ``yi``/``vi`` become NaN and the fit ignores
  them), as RevMan does for RR and OR.

References
----------
Viechtbauer W (2010). Conducting meta-analyses in R with the metafor package.
J Stat Softw 36(3). Hedges LV (1981). J Educ Stat 6:107-128.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln

from metaanalysis.stats.measures import BINARY, CONTINUOUS, MEASURES  # noqa: F401  (re-exported)


def hedges_j(m: ArrayLike) -> np.ndarray:
    """Exact small-sample bias correction of Hedges (1981).

    Parameters
    ----------
    m : ndarray
        Degrees of freedom, ``n1i + n2i - 2``.

    Returns
    -------
    ndarray
        ``Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``, computed on the log scale
        so that large ``m`` does not overflow.

    Examples
    --------
    >>> round(float(hedges_j(np.array(10.0))), 6)
    0.922746
    """
    m = np.asarray(m, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.exp(gammaln(m / 2) - 0.5 * np.log(m / 2) - gammaln((m - 1) / 2))


def escalc(measure: str, *, m1i: ArrayLike | None = None, sd1i: ArrayLike | None = None,
           n1i: ArrayLike | None = None, m2i: ArrayLike | None = None,
           sd2i: ArrayLike | None = None, n2i: ArrayLike | None = None,
           ai: ArrayLike | None = None, bi: ArrayLike | None = None,
           ci: ArrayLike | None = None, di: ArrayLike | None = None,
           yi: ArrayLike | None = None, vi: ArrayLike | None = None,
           sei: ArrayLike | None = None, add: float = 0.5, to: str = "only0", drop00: bool = False,
           smd_correction: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Compute effect sizes and sampling variances.

    Parameters
    ----------
    measure : {"MD", "SMD", "ROM", "RR", "OR", "RD", "GEN"}
    m1i, sd1i, n1i, m2i, sd2i, n2i : array_like of shape (k,) or (k, d)
        Continuous outcomes; group 1 is the treatment (probiotic) arm.
    ai, bi, ci, di : array_like
        2x2 counts: events and non-events in group 1 (``ai``, ``bi``) and
        group 2 (``ci``, ``di``). ``bi``/``di`` may be replaced by the totals
        ``n1i``/``n2i``.
    yi, vi, sei : array_like
        Generic effects with either their variances or standard errors.
    add, to, drop00
        Zero-cell handling for binary measures (metafor semantics;
        ``to`` is one of ``"only0"``, ``"all"``, ``"if0all"``, ``"none"``).
    smd_correction : {"exact", "revman"}

    Returns
    -------
    yi, vi : ndarray
        Same shape as the inputs.

    Examples
    --------
    >>> yi, vi = escalc("MD", m1i=[10.], sd1i=[2.], n1i=[20], m2i=[12.], sd2i=[2.], n2i=[20])
    >>> float(yi[0]), float(vi[0])
    (-2.0, 0.4)
    """
    measure = measure.upper()
    if measure not in MEASURES:
        raise ValueError(f"unknown measure '{measure}'; expected one of {', '.join(MEASURES)}")
    if measure in CONTINUOUS:
        m1, s1, n1, m2, s2, n2 = (np.asarray(a, dtype=float) for a in (m1i, sd1i, n1i, m2i, sd2i, n2i))
        if measure == "MD":
            return m1 - m2, s1**2 / n1 + s2**2 / n2
        if measure == "ROM":
            # metafor escalc(measure="ROM"): log ratio of means (Hedges, Gurevitch &
            # Curtis 1999); needs positive means (scores, never change scores)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.log(m1 / m2), s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        mdf = n1 + n2 - 2
        sdp = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / mdf)
        d = (m1 - m2) / sdp
        nt = n1 + n2
        if smd_correction == "exact":
            g = hedges_j(mdf) * d
            return g, 1 / n1 + 1 / n2 + g**2 / (2 * nt)
        if smd_correction == "revman":
            g = (1 - 3 / (4 * nt - 9)) * d
            return g, 1 / n1 + 1 / n2 + g**2 / (2 * (nt - 3.94))
        raise ValueError("smd_correction must be 'exact' or 'revman'")
    if measure in BINARY:
        a = np.asarray(ai, dtype=float)
        c = np.asarray(ci, dtype=float)
        b = np.asarray(bi, dtype=float) if bi is not None else np.asarray(n1i, dtype=float) - a
        dd = np.asarray(di, dtype=float) if di is not None else np.asarray(n2i, dtype=float) - c
        a, b, c, dd = np.broadcast_arrays(a, b, c, dd)
        a, b, c, dd = (x.astype(float, copy=True) for x in (a, b, c, dd))
        dbl0 = ((a == 0) & (c == 0)) | ((b == 0) & (dd == 0))
        if to == "only0":
            hit = (a == 0) | (b == 0) | (c == 0) | (dd == 0)
        elif to == "all":
            hit = np.ones_like(a, dtype=bool)
        elif to == "if0all":
            anyzero = np.any((a == 0) | (b == 0) | (c == 0) | (dd == 0), axis=0, keepdims=True)
            hit = np.broadcast_to(anyzero, a.shape)
        elif to == "none":
            hit = np.zeros_like(a, dtype=bool)
        else:
            raise ValueError("to must be one of only0, all, if0all, none")
        if drop00:
            # dropped double-zero studies do not trigger "if0all" for the rest
            hit = hit & ~dbl0 if to != "all" else hit
        inc = np.where(hit, add, 0.0)
        a, b, c, dd = a + inc, b + inc, c + inc, dd + inc
        n1, n2 = a + b, c + dd
        p1, p2 = a / n1, c / n2
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "RR":
                y = np.log(p1) - np.log(p2)
                v = 1 / a - 1 / n1 + 1 / c - 1 / n2
            elif measure == "OR":
                y = np.log(a * dd) - np.log(b * c)
                v = 1 / a + 1 / b + 1 / c + 1 / dd
            else:
                y = p1 - p2
                v = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
        if drop00:
            y = np.where(dbl0, np.nan, y)
            v = np.where(dbl0, np.nan, v)
        return y, v
    # generic
    y = np.asarray(yi, dtype=float)
    if vi is not None:
        return y, np.asarray(vi, dtype=float)
    if sei is not None:
        return y, np.asarray(sei, dtype=float) ** 2
    raise ValueError("measure GEN needs yi with vi or sei")
