"""Common-effect models for 2x2 tables: Mantel-Haenszel and Peto.

Pure numpy/scipy; follows metafor's ``rma.mh()`` and ``rma.peto()``:

* the pooled estimate uses the raw counts (no continuity correction; a
  double-zero study contributes nothing);
* the heterogeneity test uses the per-study ``yi``/``vi`` from ``escalc``
  with 1/2 added to studies with a zero cell and double-zero studies dropped
  (metafor's ``drop00=TRUE`` for these models).

Variances: Robins, Breslow & Greenland (1986) for the MH log odds ratio,
Greenland & Robins (1985) for the MH log risk ratio and Sato, Greenland &
Robins (1989) for the MH risk difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from metaanalysis.stats import distributions

from metaanalysis.stats.effects import escalc
from metaanalysis.stats.results import ReadOnlyArrays


@dataclass(frozen=True)
class CommonBinaryFit(ReadOnlyArrays):
    """Result of an MH or Peto fit (single dataset)."""

    method: str
    measure: str
    k: int
    estimate: float
    se: float
    stat: float
    pval: float
    ci_lb: float
    ci_ub: float
    Q: float
    Q_df: int
    Q_p: float
    I2: float
    H2: float
    weights: np.ndarray  # percent, (k,)
    yi: np.ndarray
    vi: np.ndarray
    extra: dict


def _cells(ai, bi, ci, di):
    a, b, c, d = (np.asarray(x, dtype=float) for x in (ai, bi, ci, di))
    return a, b, c, d, a + b, c + d, a + b + c + d


def _heterogeneity(yi, vi, est, Q_override=None):
    keep = np.isfinite(yi) & np.isfinite(vi)
    kyi = int(keep.sum())
    if kyi > 1:
        Q = Q_override if Q_override is not None else max(0.0, float(np.sum((yi[keep] - est) ** 2 / vi[keep])))
        return Q, kyi - 1, float(distributions.chi2.sf(Q, kyi - 1)), max(0.0, 100 * (Q - (kyi - 1)) / Q) if Q > 0 else 0.0, Q / (kyi - 1)
    return 0.0, 0, 1.0, 0.0, 1.0


def mantel_haenszel(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike,
                    measure: str = "OR", alpha: float = 0.05,
                    add: float = 0.5) -> CommonBinaryFit:
    """Mantel-Haenszel common-effect estimate.

    Parameters
    ----------
    ai, bi, ci, di : array_like of shape (k,)
        Events / non-events in the treatment (a, b) and control (c, d) arms.
    measure : {"OR", "RR", "RD"}
    alpha : float
        The CI covers ``1 - alpha``.
    add : float
        Added to the cells of studies with a zero cell, for the per-study
        ``yi``/``vi`` and Q only (the pooled estimate uses the raw counts,
        as metafor's ``rma.mh``).

    Returns
    -------
    CommonBinaryFit
        Estimate on the log scale for OR and RR; ``weights`` (k,) in percent.

    Examples
    --------
    >>> f = mantel_haenszel([5, 3], [45, 47], [10, 6], [40, 44], "RR")
    >>> round(float(np.exp(f.estimate)), 4)
    0.5
    """
    a, b, c, d, n1, n2, N = _cells(ai, bi, ci, di)
    z = distributions.norm.isf(alpha / 2)
    extra: dict = {}
    if measure == "OR":
        P = (a + d) / N
        Qi = (b + c) / N
        R_i = a * d / N
        S_i = b * c / N
        R, S = R_i.sum(), S_i.sum()
        if R == 0 or S == 0:
            est = se = np.nan
        else:
            est = float(np.log(R / S))
            se = float(np.sqrt(0.5 * ((P * R_i).sum() / R**2 + (P * S_i + Qi * R_i).sum() / (R * S)
                                      + (Qi * S_i).sum() / S**2)))
        w = S_i
        xt, yt = a + c, b + d
        if xt.sum() > 0 and yt.sum() > 0:
            num = (abs(np.sum(a - n1 / N * xt)) - 0.5) ** 2
            extra["MH"] = float(num / np.sum(n1 / N * n2 / N * xt * yt / (N - 1)))
            extra["MHp"] = float(distributions.chi2.sf(extra["MH"], 1))
        if np.isfinite(est):
            extra.update(_tarone(a, n1, n2, N, xt, yt, np.exp(est)))
    elif measure == "RR":
        R = np.sum(a * n2 / N)
        S = np.sum(c * n1 / N)
        if a.sum() == 0 or c.sum() == 0:
            est = se = np.nan
        else:
            est = float(np.log(R / S))
            se = float(np.sqrt(np.sum(n1 / N * n2 / N * (a + c) - a / N * c) / (R * S)))
        w = c * n1 / N
    elif measure == "RD":
        den = np.sum(n1 * n2 / N)
        est = float(np.sum(a * n2 / N - c * n1 / N) / den)
        se = float(np.sqrt((est * np.sum(c * (n1 / N) ** 2 - a * (n2 / N) ** 2 + n1 / N * n2 / N * (n2 - n1) / 2)
                            + np.sum(a * (n2 - c) / N + c * (n1 - a) / N) / 2) / den**2))
        w = n1 * n2 / N
    else:
        raise ValueError("Mantel-Haenszel needs measure RR, OR or RD")
    yi, vi = escalc(measure, ai=a, bi=b, ci=c, di=d, add=add, to="only0", drop00=True)
    Q, Qdf, Qp, I2, H2 = _heterogeneity(yi, vi, est)
    stat = est / se if se and np.isfinite(se) else np.nan
    return CommonBinaryFit("MH", measure, len(a), est, se, stat, float(2 * distributions.norm.sf(abs(stat))),
                           est - z * se, est + z * se, Q, Qdf, Qp, I2, H2,
                           100 * w / w.sum() if w.sum() > 0 else np.full(len(a), np.nan), yi, vi, extra)


def _tarone(a, n1, n2, N, xt, yt, or_mh):
    """Breslow-Day test and Tarone's correction (as metafor reports them)."""
    if or_mh == 1:
        N11 = n1 / N * xt
    else:
        A = or_mh * (n1 + xt) + (n2 - xt)
        B = np.sqrt(A**2 - 4 * n1 * xt * or_mh * (or_mh - 1))
        N11 = (A - B) / (2 * (or_mh - 1))
    pos = (N11 > 0) & (xt > 0) & (yt > 0)
    kpos = int(pos.sum())
    N11 = N11[pos]
    N12 = n1[pos] - N11
    N21 = xt[pos] - N11
    N22 = N11 - n1[pos] - xt[pos] + N[pos]
    inv = 1 / (1 / N11 + 1 / N12 + 1 / N21 + 1 / N22)
    BD = max(0.0, float(np.sum((a[pos] - N11) ** 2 / inv)))
    TA = max(0.0, BD - float(np.sum(a[pos] - N11) ** 2 / np.sum(inv)))
    out = {"BD": BD, "TA": TA, "k_pos": kpos}
    if kpos > 1:
        out["BDp"] = float(distributions.chi2.sf(BD, kpos - 1))
        out["TAp"] = float(distributions.chi2.sf(TA, kpos - 1))
    return out


def peto(ai: ArrayLike, bi: ArrayLike, ci: ArrayLike, di: ArrayLike, alpha: float = 0.05,
         add: float = 0.5) -> CommonBinaryFit:
    """Peto's one-step log odds ratio (Yusuf et al. 1985).

    Parameters
    ----------
    ai, bi, ci, di : array_like of shape (k,)
        Events / non-events in the treatment (a, b) and control (c, d) arms.
    alpha : float
        The CI covers ``1 - alpha``.
    add : float
        Zero-cell correction of the per-study log odds ratios that decide
        which studies count towards Q's degrees of freedom (as metafor); the
        Peto estimate itself needs none.

    Returns
    -------
    CommonBinaryFit
        Log odds ratio; per-study ``yi``/``vi`` (k,) are Peto's.

    Examples
    --------
    >>> f = peto([5, 3], [45, 47], [10, 6], [40, 44])
    >>> f.k
    2
    """
    a, b, c, d, n1, n2, N = _cells(ai, bi, ci, di)
    xt, yt = a + c, b + d
    E = xt * n1 / N
    V = xt * yt * (n1 / N) * (n2 / N) / (N - 1)
    sV = V.sum()
    if sV == 0:
        raise ValueError("all tables have zero variance: no events (or no non-events) anywhere")
    est = float(np.sum(a - E) / sV)
    se = float(np.sqrt(1 / sV))
    z = distributions.norm.isf(alpha / 2)
    pos = V > 0
    Q = max(0.0, float(np.sum((a[pos] - E[pos]) ** 2 / V[pos]) - np.sum(a - E) ** 2 / V[pos].sum()))
    yi, vi = escalc("OR", ai=a, bi=b, ci=c, di=d, add=add, to="only0", drop00=True)
    # metafor's Peto yi are the per-study Peto log odds ratios; Q uses O-E and V
    with np.errstate(divide="ignore", invalid="ignore"):
        yi_peto = np.where(pos, (a - E) / V, np.nan)
        vi_peto = np.where(pos, 1 / V, np.nan)
    kyi = int(np.isfinite(yi).sum())
    if int(pos.sum()) > 1:
        Qdf = kyi - 1
        Qp, I2, H2 = float(distributions.chi2.sf(Q, Qdf)), max(0.0, 100 * (Q - Qdf) / Q) if Q > 0 else 0.0, Q / Qdf
    else:
        Qdf, Qp, I2, H2 = max(kyi - 1, 0), 1.0, 0.0, 1.0
    stat = est / se
    return CommonBinaryFit("PETO", "OR", len(a), est, se, stat, float(2 * distributions.norm.sf(abs(stat))),
                           est - z * se, est + z * se, Q, Qdf, Qp, I2, H2, 100 * V / sV,
                           yi_peto, vi_peto, {})
