"""Small-study effects: Egger's regression test, the rank correlation test,
trim-and-fill, and the contours of a contour-enhanced funnel plot.

Pure numpy/scipy. Each function follows the metafor 3.8-1 function of the
same name (``regtest``, ``ranktest``, ``trimfill``, ``funnel``) and its
conventions; the docstrings say where they matter. Results are frozen
dataclasses with read-only arrays.

References
----------
Egger M, Davey Smith G, Schneider M, Minder C (1997). Bias in meta-analysis
detected by a simple, graphical test. BMJ 315:629-634.
Begg CB, Mazumdar M (1994). Operating characteristics of a rank correlation
test for publication bias. Biometrics 50:1088-1101.
Duval S, Tweedie R (2000). Trim and fill. Biometrics 56:455-463; and
JASA 95:89-98.
Peters JL et al. (2008). Contour-enhanced meta-analysis funnel plots help
distinguish publication bias from other causes of asymmetry. J Clin
Epidemiol 61:991-996.
"""

from __future__ import annotations

from dataclasses import dataclass

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from metaanalysis.stats import distributions

from metaanalysis.stats import fit
from metaanalysis.stats.diagnostics import CHUNK_ELEMENTS, _as_vectors, _check, _design
from metaanalysis.stats.results import ReadOnlyArrays

PREDICTORS = ("sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv")
ESTIMATORS = ("L0", "R0")


# ----------------------------------------------------------------------------
# Egger's regression test


@dataclass(frozen=True)
class RegTest(ReadOnlyArrays):
    """Regression test for funnel plot asymmetry (metafor's ``regtest``).

    ``stat``/``pval`` test the coefficient of the predictor (z, or t with
    ``df`` degrees of freedom under ``model="lm"`` or knha). ``est``,
    ``ci_lb``, ``ci_ub`` are the limit estimate (the intercept: the effect
    as the predictor goes to 0), NaN where metafor gives none. ``beta`` and
    ``se`` (p + 1,) are the regression's coefficients, the predictor last;
    ``tau2`` its residual heterogeneity (model "rma") and ``sigma`` the
    residual standard error (model "lm", where the variance is
    ``sigma^2 * vi``).
    """

    model: str
    predictor: str
    stat: float
    pval: float
    df: float
    est: float
    ci_lb: float
    ci_ub: float
    beta: np.ndarray
    se: np.ndarray
    tau2: float
    sigma: float


def regtest(yi: ArrayLike, vi: ArrayLike, model: str = "rma", predictor: str = "sei",
            method: str = "REML", test: str = "z", alpha: float = 0.05, *,
            X: ArrayLike | None = None, ni: ArrayLike | None = None) -> RegTest:
    """Egger's regression test for funnel plot asymmetry.

    ``model="lm"`` is the classic Egger test: weighted least squares of yi
    on (1, predictor) with weights 1/vi and a multiplicative residual
    variance, t test with k - 2 df. ``model="rma"`` (metafor's default) adds
    the predictor as a moderator to the random-effects model with the
    given ``method`` and ``test``.

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
    model : {"rma", "lm"}
    predictor : {"sei", "vi", "ni", "ninv", "sqrtni", "sqrtninv"}
        The ``n`` predictors need ``ni`` (sample sizes).
    method : str
        tau2 estimator for model "rma".
    test : {"z", "knha", "adhoc"}
        Inference for model "rma".
    alpha : float
        Nominal coverage of the limit estimate's CI is ``1 - alpha``.
    X : ndarray of shape (k, p), optional
        Moderators of the original model (default: intercept only); the
        predictor is appended as the last column.
    ni : ndarray of shape (k,), optional

    Returns
    -------
    RegTest
    """
    if model not in ("rma", "lm"):
        raise ValueError("model must be 'rma' or 'lm'")
    if predictor not in PREDICTORS:
        raise ValueError(f"predictor must be one of {', '.join(PREDICTORS)}")
    method = _check(method, test, alpha)
    yi, vi = _as_vectors(yi, vi)
    k = yi.size
    X = _design(X, k)
    if predictor.startswith(("ni", "ninv", "sqrtn")):
        if ni is None:
            raise ValueError(f"predictor '{predictor}' needs ni")
        ni = np.asarray(ni, dtype=float)
    col = {"sei": lambda: np.sqrt(vi), "vi": lambda: vi, "ni": lambda: ni,
           "ninv": lambda: 1 / ni, "sqrtni": lambda: np.sqrt(ni),
           "sqrtninv": lambda: 1 / np.sqrt(ni)}[predictor]()
    Xp = np.column_stack([X, col])
    p = X.shape[1]
    if np.linalg.matrix_rank(Xp) < p + 1:
        raise ValueError("the model matrix is not of full rank after adding the predictor")
    if k <= p + 1:
        raise ValueError(f"regtest needs more than {p + 1} studies")

    if model == "rma":
        bf = fit.rma(yi, vi, method, test, X=Xp, alpha=alpha)
        tau2, sigma = float(bf.tau2[0]), np.nan
    else:
        # weighted lm with weights 1/vi == FE fit with the Knapp-Hartung
        # (residual mean square) scaling and t(k - p - 1) inference
        bf = fit.rma(yi, vi, "FE", "knha", X=Xp, alpha=alpha)
        tau2, sigma = np.nan, float(np.sqrt(bf.s2w[0]))
    df = float(bf.df[0])
    est = ci_lb = ci_ub = np.nan
    # metafor reports the limit estimate only where the intercept is the
    # effect at predictor 0 of a precision-type predictor
    if predictor in ("sei", "vi", "ninv", "sqrtninv") and p == 1 and fit._is_intercept_only(X):
        est, ci_lb, ci_ub = (float(a[0, 0]) for a in (bf.beta, bf.ci_lb, bf.ci_ub))
    return RegTest(model=model, predictor=predictor, stat=float(bf.stat[p, 0]),
                   pval=float(bf.pval[p, 0]), df=df, est=est, ci_lb=ci_lb, ci_ub=ci_ub,
                   beta=bf.beta[:, 0], se=bf.se[:, 0], tau2=tau2,
                   sigma=sigma)


# ----------------------------------------------------------------------------
# rank correlation test


@dataclass(frozen=True)
class RankTest:
    """Begg and Mazumdar's rank correlation test (metafor's ``ranktest``).

    ``tau`` is Kendall's tau-b between the standardised deviates and vi;
    ``exact`` says whether ``pval`` comes from the exact null
    distribution (no ties) or the normal approximation with R's tie
    correction.
    """

    tau: float
    pval: float
    exact: bool


def _kendall_null_cdf(n):
    """P(T <= t), t = 0..n(n-1)/2, for T the number of concordant pairs
    among n untied observations (the Mahonian distribution; R's
    ``pkendall``). Built by convolving uniform(0..i-1) for i = 1..n, one
    cumulative sum per step, in probabilities so that nothing overflows."""
    dist = np.ones(1)
    for i in range(2, n + 1):
        c = np.concatenate([[0.0], np.cumsum(dist)])
        m = dist.size + i - 1
        hi = np.minimum(np.arange(1, m + 1), dist.size)
        lo = np.maximum(np.arange(1, m + 1) - i, 0)
        dist = (c[hi] - c[lo]) / i
    return np.cumsum(dist)


def _tie_counts(x):
    _, counts = np.unique(x, return_counts=True)
    return counts[counts > 1].astype(float)


def ranktest(yi: ArrayLike, vi: ArrayLike, exact: bool = True) -> RankTest:
    """Rank correlation test for funnel plot asymmetry.

    Kendall's tau between ``(yi - theta) / sqrt(vi - 1/sum(wi))`` (theta
    the fixed-effect estimate) and vi. As metafor (which calls
    ``cor.test(..., exact=TRUE)``), the p-value is exact whenever there are
    no ties, whatever k; with ties it is the normal approximation with
    R's tie-corrected variance of S and no continuity correction.

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
    exact : bool
        Use the exact distribution when there are no ties.

    Returns
    -------
    RankTest
    """
    yi, vi = _as_vectors(yi, vi)
    n = yi.size
    if n < 3:
        raise ValueError("ranktest needs k >= 3")
    wi = 1 / vi
    theta = np.sum(wi * yi) / np.sum(wi)
    ystar = (yi - theta) / np.sqrt(vi - 1 / np.sum(wi))
    x, y = ystar, vi
    tau = kendall_tau_b(x, y)  # as R's cor(method="kendall")
    ties = min(np.unique(x).size, np.unique(y).size) < n
    if exact and not ties:
        q = int(np.round((tau + 1) * n * (n - 1) / 4))
        cdf = _kendall_null_cdf(n)
        if q > n * (n - 1) / 4:
            # P(T >= q) = P(T <= N - q) by symmetry: a sum of small terms,
            # more accurate than R's 1 - pkendall(q - 1) (same value to ~1e-16)
            p = float(cdf[n * (n - 1) // 2 - q])
        else:
            p = float(cdf[q])
        return RankTest(tau=tau, pval=min(2 * p, 1.0), exact=True)
    # R's cor.test normal approximation with ties
    xt, yt = _tie_counts(x), _tie_counts(y)
    T0 = n * (n - 1) / 2
    T1 = np.sum(xt * (xt - 1)) / 2
    T2 = np.sum(yt * (yt - 1)) / 2
    S = tau * np.sqrt((T0 - T1) * (T0 - T2))
    v0 = n * (n - 1) * (2 * n + 5)
    vt = np.sum(xt * (xt - 1) * (2 * xt + 5))
    vu = np.sum(yt * (yt - 1) * (2 * yt + 5))
    v1 = np.sum(xt * (xt - 1)) * np.sum(yt * (yt - 1))
    v2 = np.sum(xt * (xt - 1) * (xt - 2)) * np.sum(yt * (yt - 1) * (yt - 2))
    var_S = (v0 - vt - vu) / 18 + v1 / (2 * n * (n - 1)) + v2 / (9 * n * (n - 1) * (n - 2))
    z = S / np.sqrt(var_S)
    p = 2 * min(distributions.norm.cdf(z), distributions.norm.sf(z))
    return RankTest(tau=tau, pval=float(p), exact=False)



#: Rows of the pairwise sign matrix formed at a time in :func:`kendall_tau_b`
#: (bounds its memory at k = 10,000 to about 10 MB a block).
_TAU_ROWS = 1024


def kendall_tau_b(x: ArrayLike, y: ArrayLike) -> float:
    """Kendall's tau-b of two (k,) vectors: scipy.stats.kendalltau's statistic, bit for bit.

    The same integer counts (concordant minus discordant pairs, pairs tied
    in x, in y) and the same floating-point expression as scipy's, so the
    value is identical; counted pairwise (O(k^2), in blocks) instead of
    importing scipy.stats, which costs about 0.5 s.

    Parameters
    ----------
    x, y : array_like of shape (k,)

    Returns
    -------
    float
        NaN when k = 0 or either vector holds a NaN.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    if n == 0 or np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    cmd = 0
    for a in range(0, n, _TAU_ROWS):
        b = min(n, a + _TAU_ROWS)
        dx = np.sign(x[a:b, None] - x[None, :]).astype(np.int8)
        dy = np.sign(y[a:b, None] - y[None, :]).astype(np.int8)
        cmd += int(np.sum(dx.astype(np.int64) * dy))
    cmd //= 2  # every pair was counted twice (i, j) and (j, i)

    def ties(v):
        cnt = np.unique(v, return_counts=True)[1].astype(np.int64)
        return int((cnt * (cnt - 1) // 2).sum())

    tot = n * (n - 1) // 2
    xtie, ytie = ties(x), ties(y)
    if xtie == tot or ytie == tot:
        return float("nan")
    tau = cmd / np.sqrt(tot - xtie) / np.sqrt(tot - ytie)
    return float(np.minimum(1., max(-1., tau)))

# ----------------------------------------------------------------------------
# trim and fill


@dataclass(frozen=True)
class TrimFill(ReadOnlyArrays):
    """Trim-and-fill (metafor's ``trimfill``).

    ``k0`` studies are estimated missing on ``side`` ("left" or "right");
    ``se_k0`` is their standard error and ``p_k0`` (R0 only) the p-value of
    the test of k0 = 0. ``yi_fill``/``vi_fill`` (k0,) are the imputed
    studies, ``yi_all``/``vi_all`` (k + k0,) the observed followed by the
    imputed ones, ``fill`` marks the imputed. ``fit`` is the model refitted
    to ``yi_all`` (d = 1); with k0 = 0 it is the original model.
    """

    estimator: str
    side: str
    k0: int
    se_k0: float
    p_k0: float
    yi_fill: np.ndarray
    vi_fill: np.ndarray
    yi_all: np.ndarray
    vi_all: np.ndarray
    fill: np.ndarray
    fit: fit.BatchFit
    iterations: int


def trimfill(yi: ArrayLike, vi: ArrayLike, side: str | None = None, estimator: str = "L0",
             method: str = "REML", test: str = "z", alpha: float = 0.05, *,
             maxiter: int = 100) -> TrimFill:
    """Trim-and-fill for an intercept-only model (Duval & Tweedie).

    Follows metafor 3.8-1: the side is where the slope of yi on sqrt(vi)
    (same ``method``) says studies are missing (slope < 0: right), the
    data are flipped so the missing side is the left, sorted (stably), and
    k0 is iterated from 0: fit the k - k0 smallest, rank the centred
    |yi - beta| (ties by order), compute L0 or R0, round, until k0 repeats.
    The k0 most extreme studies are mirrored about the last trimmed
    estimate (``2 beta - yi``) and the model is refitted.

    All k trimmed fits the iteration can ask for (the j smallest studies,
    j = 1..k) are one batched fit while that (k, k) batch is small
    (k² <= ``CHUNK_ELEMENTS``, k <= 1,024); the iteration then only looks
    them up. Beyond, only the fits it asks for (a few) are made, one at a
    time: the batch grows as k² (1 GB and 4 s at k = 3,286), the few fits
    as k. (The two agree to the solver's convergence, not to the last bit:
    the batch width changes the order of floating-point sums.)

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
    side : {"left", "right"}, optional
        Side on which studies are missing; detected when None.
    estimator : {"L0", "R0"}
    method : str
        tau2 estimator for every fit.
    test : {"z", "knha", "adhoc"}
        Inference of the refit. (metafor 3.8-1 refits with its default
        ``test="z"`` whatever the model's test, unless ``test=`` is passed
        to ``trimfill``; here the given test is used throughout.)
    alpha : float
    maxiter : int

    Returns
    -------
    TrimFill
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}")
    method = _check(method, test, alpha)
    yi, vi = _as_vectors(yi, vi)
    k = yi.size
    if k < 2:
        raise ValueError("trim-and-fill needs k >= 2")

    ### side: sign of the slope on sqrt(vi)
    if side is None:
        slope = fit.rma(yi, vi, method, "z", X=np.column_stack([np.ones(k), np.sqrt(vi)]))
        side = "right" if slope.beta[1, 0] < 0 else "left"
    elif side not in ("left", "right"):
        raise ValueError("side must be 'left' or 'right'")
    sgn = -1.0 if side == "right" else 1.0

    ### flip so that studies are missing on the left, sort stably (R's radix sort)
    ix = np.argsort(sgn * yi, kind="stable")
    ys, vs = sgn * yi[ix], vi[ix]

    ### the fit of the j smallest: every prefix at once (column j - 1), or on demand
    if k * k <= CHUNK_ELEMENTS:
        prefix = fit.rma(np.broadcast_to(ys[:, None], (k, k)), np.broadcast_to(vs[:, None], (k, k)),
                         method, "z", mask=np.tri(k, dtype=bool).T)
        beta_prefix = prefix.beta[0]

        def beta_smallest(j: int) -> float:
            return beta_prefix[j - 1]
    else:
        fitted: dict[int, float] = {}

        def beta_smallest(j: int) -> float:
            if j not in fitted:
                fitted[j] = fit.rma(ys[:j], vs[:j], method, "z").beta[0, 0]
            return fitted[j]

    k0, k0_prev, it = 0, -1, 0
    se_k0 = np.nan
    beta = np.nan
    while k0 != k0_prev:
        k0_prev = k0
        it += 1
        if it > maxiter:
            raise RuntimeError("trim-and-fill did not converge")
        if k - k0 < 1:
            raise RuntimeError(f"trim-and-fill trimmed all {k} studies")
        beta = beta_smallest(k - k0)
        yc = ys - beta
        # rank(|yc|, ties.method = "first")
        rank = np.empty(k)
        rank[np.argsort(np.abs(yc), kind="stable")] = np.arange(1, k + 1)
        signed = np.sign(yc) * rank
        if estimator == "R0":
            neg = signed[signed < 0]
            if neg.size == 0:
                raise RuntimeError("R0 is undefined: no study lies left of the estimate")
            k0_raw = (k - np.max(-neg)) - 1
            se = np.sqrt(2 * max(0.0, k0_raw) + 2)
        else:
            Sr = np.sum(signed[signed > 0])
            k0_raw = (4 * Sr - k * (k + 1)) / (2 * k - 1)
            varSr = (k * (k + 1) * (2 * k + 1) + 10 * k0_raw**3 + 27 * k0_raw**2 + 17 * k0_raw
                     - 18 * k * k0_raw**2 - 18 * k * k0_raw + 6 * k**2 * k0_raw) / 24
            se = 4 * np.sqrt(varSr) / (2 * k - 1)
        # R's round() is half-to-even, as numpy's
        k0 = int(max(0, np.round(k0_raw)))
        se_k0 = float(max(0.0, se))

    p_k0 = float(0.5 ** (k0 + 1)) if estimator == "R0" else np.nan
    if k0 > 0:
        # mirror the k0 most extreme studies about the last trimmed estimate
        yi_fill = sgn * (2 * beta - ys[k - k0:])
        vi_fill = vs[k - k0:].copy()
        yi_all = np.concatenate([yi, yi_fill])
        vi_all = np.concatenate([vi, vi_fill])
    else:
        yi_fill = vi_fill = np.empty(0)
        yi_all, vi_all = yi.copy(), vi.copy()
    refit = fit.rma(yi_all, vi_all, method, test, alpha=alpha)
    fill = np.r_[np.zeros(k, bool), np.ones(k0, bool)]
    return TrimFill(estimator=estimator, side=side, k0=k0, se_k0=se_k0, p_k0=p_k0,
                    yi_fill=yi_fill, vi_fill=vi_fill, yi_all=yi_all, vi_all=vi_all,
                    fill=fill, fit=refit, iterations=it)


# ----------------------------------------------------------------------------
# contour-enhanced funnel plot


@dataclass(frozen=True)
class FunnelContours(ReadOnlyArrays):
    """Significance contours of a contour-enhanced funnel plot.

    For each two-sided level ``alpha[j]`` (z threshold ``z[j]``), an effect
    at standard error ``se[i]`` is significant outside
    ``[lower[j, i], upper[j, i]] = center -/+ z[j] * se[i]``.
    """

    alpha: np.ndarray
    z: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def funnel_contours(se: ArrayLike, alphas: Sequence[float] = (0.10, 0.05, 0.01),
                    center: float = 0.0) -> FunnelContours:
    """Contours for a contour-enhanced funnel plot (Peters et al. 2008).

    metafor's ``funnel(..., level=c(90, 95, 99), refline=0)`` draws
    ``refline -/+ qnorm(1 - alpha/2) * se`` (always the normal quantile).

    Parameters
    ----------
    se : ndarray of shape (n,)
        Grid of standard errors (e.g. ``np.linspace(0, 1.05 * sei.max(), 100)``).
    alphas : sequence of float
        Two-sided significance levels.
    center : float
        The null value (0 on the analysis scale).

    Returns
    -------
    FunnelContours
        ``lower``/``upper`` of shape (len(alphas), n).

    Examples
    --------
    >>> c = funnel_contours([0.0, 0.5])
    >>> c.z.round(4).tolist()
    [1.6449, 1.96, 2.5758]
    """
    se = np.asarray(se, dtype=float)
    if se.ndim != 1 or np.any(se < 0):
        raise ValueError("se must be a 1-d grid of non-negative values")
    a = np.asarray(alphas, dtype=float)
    if np.any((a <= 0) | (a >= 1)):
        raise ValueError("alphas must be in (0, 1)")
    z = distributions.norm.isf(a / 2)
    half = z[:, None] * se[None, :]
    return FunnelContours(alpha=a, z=z, se=se, lower=center - half,
                          upper=center + half)
