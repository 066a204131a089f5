"""Refit-heavy diagnostics, each as one batched fit over (k, d) arrays.

Pure numpy/scipy. Leave-one-out, influence, cumulative meta-analysis, GOSH
and permutation tests all refit the same model many times. Instead of a
Python loop over fits, every refit is one column of a ``(k, d)`` batch
given to :func:`metaanalysis.stats.fit.rma`: a study left out is a ``mask``
entry switched off, a permutation is a reordering of ``yi``/``vi``. Large
batches are fitted in chunks of about :data:`CHUNK_ELEMENTS` array
elements, so memory stays at a few hundred MB whatever the number of
subsets or permutations.

Every function follows the metafor function of the same purpose
(``leave1out``, ``influence``, ``cumul``, ``gosh``, ``permutest``) and
uses its definitions and counting conventions; the docstrings say where.
Results are frozen dataclasses of read-only arrays
(:class:`metaanalysis.stats.results.ReadOnlyArrays`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from metaanalysis.stats import distributions

from metaanalysis.stats import fit
from metaanalysis.stats.results import ReadOnlyArrays

#: Elements (k x d) per batched fit. One (k, d) float array is then 8 MB and
#: the REML solver keeps about a dozen alive, so a chunk needs ~100-200 MB.
CHUNK_ELEMENTS = 1 << 20

#: metafor's default cap on GOSH subsets (``gosh()`` fits all subsets when
#: there are at most 10^6 of them, otherwise 10^6 random ones).
GOSH_MAX_SUBSETS = 10**6

#: metafor's permutest tolerance: a permuted statistic counts as at least as
#: extreme when ``|z_perm| >= |z_obs| - comptol`` (sqrt of machine epsilon),
#: so that ties lost to rounding still count.
PERM_COMPTOL = float(np.sqrt(np.finfo(float).eps))


# ----------------------------------------------------------------------------
# helpers


def _as_vectors(yi, vi):
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    if yi.ndim != 1 or yi.shape != vi.shape:
        raise ValueError(f"yi and vi must be 1-d of the same length, got {yi.shape} and {vi.shape}")
    if not (np.all(np.isfinite(yi)) and np.all(np.isfinite(vi))):
        raise ValueError("yi and vi must be finite (drop missing studies first)")
    if np.any(vi <= 0):
        raise ValueError("vi must be > 0")
    return yi, vi


def _design(X, k):
    if X is None:
        return np.ones((k, 1))
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != k:
        raise ValueError(f"X must have {k} rows, got {X.shape[0]}")
    return X


def _chunks(d, k):
    """Column slices of at most CHUNK_ELEMENTS // k datasets."""
    step = max(1, CHUNK_ELEMENTS // max(k, 1))
    for start in range(0, d, step):
        yield slice(start, min(d, start + step))


def _full_rank(X, mask):
    """Whether X restricted to each mask column has full column rank, (d,).

    metafor drops a refit whose design lost rank (``coef.na``); we must find
    those before the batched inverse, which would fail for the whole batch.
    """
    p = X.shape[1]
    if p == 1:
        return (mask & (X[:, :1] != 0)).any(0)
    XtX = fit._xtwx(X, mask.astype(float))
    return np.linalg.matrix_rank(XtX, hermitian=True) == p


def _fit_columns(Y, V, M, method, test, X, alpha):
    """One batched fit of the columns of (Y, V, M), with metafor's rules for
    refits that cannot be fitted as asked.

    * A design that loses rank, or too few studies (``k < p`` for FE,
      ``k < p + 1`` otherwise, except the intercept-only k = 1 fit), makes
      metafor's refit fail (NA). Such columns are fitted with all studies
      (so the batch stays well defined) and reported in ``ok``.
    * An intercept-only fit to k = 1 study uses z tests whatever ``test``
      says (rma.uni: "Setting argument test='z' since k=1").

    Returns
    -------
    bf : fit.BatchFit
        Columns with ``ok`` False hold meaningless numbers; callers blank them.
    ok : ndarray of bool, shape (d,)
    """
    p = X.shape[1]
    kk = M.sum(0)
    int1 = fit._is_intercept_only(X) & (kk == 1)
    ok = int1 | (kk >= (p if method == "FE" else p + 1))
    if p > 1:
        ok &= _full_rank(X, M)
    if not ok.all():
        M = np.where(ok[None, :], M, True)
    bf = fit.rma(Y, V, method, test, X=X, mask=M, alpha=alpha)
    if test != "z" and int1.any():
        sel = np.flatnonzero(int1)
        bz = fit.rma(Y[:, sel], V[:, sel], method, "z", X=X, mask=M[:, sel], alpha=alpha)
        # a BatchFit's arrays are read-only: splice the z columns into copies
        changes = {}
        for name in ("se", "stat", "pval", "ci_lb", "ci_ub"):
            changes[name] = getattr(bf, name).copy()
            changes[name][:, sel] = getattr(bz, name)
        for name in ("df", "s2w", "QM", "QM_p", "vb"):
            changes[name] = getattr(bf, name).copy()
            changes[name][sel] = getattr(bz, name)
        bf = replace(bf, **changes)
    return bf, ok


def _check(method, test, alpha):
    method = method.upper()
    if method not in fit.METHODS:
        raise ValueError(f"unknown method '{method}'; expected one of {', '.join(fit.METHODS)}")
    if test not in fit.TESTS:
        raise ValueError(f"unknown test '{test}'; expected one of {', '.join(fit.TESTS)}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    return method


# ----------------------------------------------------------------------------
# leave-one-out and cumulative meta-analysis (intercept-only, as in metafor)


@dataclass(frozen=True)
class SequentialFits(ReadOnlyArrays):
    """One intercept-only fit per row; all arrays of shape (n,).

    For :func:`leave_one_out` row i is the fit without study i; for
    :func:`cumulative` row j is the fit of the first j + 1 studies in
    ``order``. ``stat`` is z, or t under knha/adhoc. ``tau2`` is 0 for FE.
    """

    method: str
    test: str
    estimate: np.ndarray
    se: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    Q: np.ndarray
    Q_p: np.ndarray
    tau2: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    k: np.ndarray
    converged: np.ndarray
    order: np.ndarray  # study index of each row: left out (leave1out) or added (cumul)


def _sequential(yi, vi, mask, method, test, alpha, order):
    k, d = mask.shape
    X = np.ones((k, 1))
    names = ("estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "Q", "Q_p", "tau2", "I2", "H2")
    out = {name: np.full(d, np.nan) for name in names}
    conv = np.zeros(d, dtype=bool)
    for sl in _chunks(d, k):
        M = mask[:, sl]
        shape = M.shape
        Y = np.broadcast_to(yi[:, None], shape)
        V = np.broadcast_to(vi[:, None], shape)
        bf, ok = _fit_columns(Y, V, M, method, test, X, alpha)
        vals = dict(estimate=bf.beta[0], se=bf.se[0], stat=bf.stat[0], pval=bf.pval[0],
                    ci_lb=bf.ci_lb[0], ci_ub=bf.ci_ub[0], Q=bf.Q, Q_p=bf.Q_p, tau2=bf.tau2,
                    I2=bf.I2, H2=bf.H2)
        for name in names:
            out[name][sl] = np.where(ok, vals[name], np.nan)
        conv[sl] = bf.converged & ok
    return SequentialFits(method=method, test=test, k=mask.sum(0), converged=conv,
                          order=order, **out)


def leave_one_out(yi: ArrayLike, vi: ArrayLike, method: str = "REML", test: str = "z",
                  alpha: float = 0.05) -> SequentialFits:
    """Leave-one-out meta-analysis (metafor's ``leave1out``).

    All k fits without one study are one batched fit with a ``(k, k)`` mask
    whose diagonal is switched off.

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
        Effect sizes and sampling variances, k >= 2.
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"}
    test : {"z", "knha", "adhoc"}
    alpha : float
        Nominal coverage of the intervals is ``1 - alpha``.

    Returns
    -------
    SequentialFits
        Arrays of shape (k,); row i is the fit without study i.

    Examples
    --------
    >>> r = leave_one_out([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], "FE")
    >>> r.estimate.round(3)
    array([0.66 , 0.3  , 0.233])
    """
    method = _check(method, test, alpha)
    yi, vi = _as_vectors(yi, vi)
    k = yi.size
    if k < 2:
        raise ValueError("leave-one-out needs k >= 2")
    mask = ~np.eye(k, dtype=bool)
    return _sequential(yi, vi, mask, method, test, alpha, np.arange(k))


def cumulative(yi: ArrayLike, vi: ArrayLike, order: ArrayLike | None = None,
               method: str = "REML", test: str = "z", alpha: float = 0.05, *,
               decreasing: bool = False) -> SequentialFits:
    """Cumulative meta-analysis (metafor 3.8's ``cumul``).

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
    order : ndarray of shape (k,), optional
        The sort key (e.g. publication year), as in metafor >= 3.8:
        studies enter in a stable sort on it, so ties keep their input
        order. Default: the input order.
    method, test, alpha
        As in :func:`leave_one_out`.
    decreasing : bool
        Sort the key in decreasing order.

    Returns
    -------
    SequentialFits
        Row j is the fit of the first j + 1 studies; ``order`` gives the
        index of the study added at each row.
    """
    method = _check(method, test, alpha)
    yi, vi = _as_vectors(yi, vi)
    k = yi.size
    if order is None:
        idx = np.arange(k)
    else:
        key = np.asarray(order)
        if key.shape != (k,):
            raise ValueError(f"order must have length {k}")
        # R's order() is stable (radix sort), also when decreasing
        idx = np.argsort(-key if decreasing else key, kind="stable")
    yo, vo = yi[idx], vi[idx]
    mask = np.tri(k, dtype=bool).T  # column j: the first j + 1 studies
    return _sequential(yo, vo, mask, method, test, alpha, idx)


# ----------------------------------------------------------------------------
# influence


@dataclass(frozen=True)
class Influence(ReadOnlyArrays):
    """Case-deletion diagnostics (metafor's ``influence.rma.uni``).

    Arrays are (k,) unless noted; element i refers to deleting study i.

    rstudent : externally studentised residual ``(y_i - x_i'b_(-i)) / se``
    dffits : ``(x_i'b - x_i'b_(-i)) / sqrt(s2w_(-i) h_i (tau2_(-i) + v_i))``
    cook_d : ``(b - b_(-i))' Vb^-1 (b - b_(-i))`` over all coefficients
    cov_r : ``det Vb_(-i) / det Vb``
    tau2_del, QE_del : tau2 and Q_E without study i
    hat : leverage, diagonal of ``X (X'WX)^-1 X'W``
    weight : weight in percent
    dfbetas : (k, p), ``(b - b_(-i)) / sqrt(s2w_(-i) diag((X'W_(-i)X)^-1))``
        with ``W_(-i)`` using tau2_(-i) and all k studies
    inf : bool, metafor's "*" flag: |dffits| > 3 sqrt(p/(k-p)), or
        P(chi2_p <= cook_d) > 0.5, or hat > 3p/k, or any |dfbetas| > 1
    resid, se_resid : numerator and denominator of ``rstudent``
    """

    rstudent: np.ndarray
    dffits: np.ndarray
    cook_d: np.ndarray
    cov_r: np.ndarray
    tau2_del: np.ndarray
    QE_del: np.ndarray
    hat: np.ndarray
    weight: np.ndarray
    dfbetas: np.ndarray
    inf: np.ndarray
    resid: np.ndarray
    se_resid: np.ndarray


def influence(yi: ArrayLike, vi: ArrayLike, method: str = "REML", test: str = "z",
              alpha: float = 0.05, *, X: ArrayLike | None = None) -> Influence:
    """Influence diagnostics for every study (metafor's ``influence()``).

    The k deletion fits are one batched fit with a ``(k, k)`` mask; the
    formulas are metafor's ``influence.rma.uni`` (3.8-1), including the use
    of the full-data hat value in DFFITS and of all k studies (weighted
    with the deletion tau2) in the DFBETAS denominator.

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
    method, test, alpha
        As in :func:`leave_one_out`.
    X : ndarray of shape (k, p), optional
        Moderators including the intercept column (default: intercept).

    Returns
    -------
    Influence
        A deletion whose design loses rank gives NaN, as metafor's NA.
    """
    method = _check(method, test, alpha)
    yi, vi = _as_vectors(yi, vi)
    k = yi.size
    if k < 2:
        raise ValueError("influence needs k >= 2")
    X = _design(X, k)
    p = X.shape[1]

    ### full fit
    full = fit.rma(yi, vi, method, test, X=X, alpha=alpha)
    b = full.beta[:, 0]
    vb = full.vb[0]
    w = 1.0 / (vi + full.tau2[0])
    A = np.linalg.inv(fit._xtwx(X, w[:, None])[0])
    hat = w * np.einsum("kp,pq,kq->k", X, A, X)
    hat = np.where(hat > 1 - 10 * np.finfo(float).eps, 1.0, hat)
    weight = 100 * w / w.sum()

    ### all k deletions as one batch
    # (k is small enough here for one chunk: k deletions of k studies)
    mask = ~np.eye(k, dtype=bool)
    dl, ok = _fit_columns(np.broadcast_to(yi[:, None], (k, k)),
                          np.broadcast_to(vi[:, None], (k, k)), mask, method, test, X, alpha)
    tau2_del = dl.tau2
    b_del = dl.beta.T                        # (k, p): row i without study i
    vb_del = dl.vb                           # (k, p, p)
    s2w_del = dl.s2w
    delpred = np.einsum("ip,ip->i", X, b_del)
    vdelpred = np.einsum("ip,ipq,iq->i", X, vb_del, X)

    pred_full = X @ b
    dffits = (pred_full - delpred) / np.sqrt(s2w_del * hat * (tau2_del + vi))
    # (X' W(tau2_(-i)) X)^-1 with all k studies (metafor's vb.del)
    w_del = 1.0 / (vi[:, None] + tau2_del[None, :])
    vb_all = np.linalg.inv(fit._xtwx(X, w_del))
    dfb = b[None, :] - b_del
    dfbetas = dfb / np.sqrt(s2w_del[:, None] * np.einsum("ipp->ip", vb_all))
    cook_d = np.einsum("ip,pq,iq->i", dfb, np.linalg.inv(vb), dfb)
    cov_r = np.linalg.det(vb_del) / np.linalg.det(vb)

    resid = yi - delpred
    # metafor zeroes residuals that are rounding noise
    resid = np.where(np.abs(resid) < 100 * np.finfo(float).eps, 0.0, resid)
    se_resid = np.sqrt(vi * s2w_del + vdelpred + tau2_del * s2w_del)
    rstudent = resid / se_resid

    out = dict(rstudent=rstudent, dffits=dffits, cook_d=cook_d, cov_r=cov_r, tau2_del=tau2_del,
               QE_del=dl.Q, resid=resid, se_resid=se_resid)
    out = {key: np.where(ok, val, np.nan) for key, val in out.items()}
    dfbetas = np.where(ok[:, None], dfbetas, np.nan)
    with np.errstate(invalid="ignore"):
        inf = ((np.abs(out["dffits"]) > 3 * np.sqrt(p / (k - p)))
               | (distributions.chi2.cdf(out["cook_d"], p) > 0.5)
               | (hat > 3 * p / k)
               | (np.abs(dfbetas) > 1).any(1))
    return Influence(hat=hat, weight=weight, dfbetas=dfbetas, inf=inf, **out)


# ----------------------------------------------------------------------------
# GOSH


@dataclass(frozen=True)
class Gosh(ReadOnlyArrays):
    """Fits to subsets of the studies (metafor's ``gosh()``). Arrays (n,).

    ``incl`` (n, k) marks the studies in each subset. Rows are sorted by
    subset size; within a size, exact enumeration keeps metafor's
    ``expand.grid`` order (study 1 varies fastest). ``beta`` is (n, p);
    ``estimate`` is its first column. ``fit_ok`` is False where metafor's
    fit fails (a rank-deficient design, or fewer than p + 1 studies for a
    model with tau2), with NaN in that row.
    """

    method: str
    exact: bool
    incl: np.ndarray
    k: np.ndarray
    QE: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    tau2: np.ndarray
    estimate: np.ndarray
    beta: np.ndarray
    fit_ok: np.ndarray


def _all_subsets(k, p):
    """Every subset with at least p studies, in metafor's order, as (n, k) bool."""
    codes = np.arange(1, 2**k, dtype=np.int64)
    incl = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
    size = incl.sum(1)
    incl = incl[size >= p]
    return incl[np.argsort(incl.sum(1), kind="stable")]


def _random_subsets(k, p, n, rng):
    """n random subsets as metafor draws them: the size from Binomial(k, 1/2)
    restricted to p..k, then a uniformly random subset of that size."""
    from scipy import stats as scipy_stats  # only GOSH's random mode needs binom

    sizes = np.arange(p, k + 1)
    prob = scipy_stats.binom.pmf(sizes, k, 0.5)
    m = rng.choice(sizes, size=n, p=prob / prob.sum())
    # a random subset of size m: the m smallest of k uniform keys
    ranks = np.argsort(np.argsort(rng.random((n, k)), axis=1), axis=1)
    incl = ranks < m[:, None]
    return incl[np.argsort(m, kind="stable")]


def gosh(yi: ArrayLike, vi: ArrayLike, method: str = "REML", *, X: ArrayLike | None = None,
         max_subsets: int = GOSH_MAX_SUBSETS, seed: int | None = None, test: str = "z",
         alpha: float = 0.05) -> Gosh:
    """GOSH: the model fitted to all subsets, or to random ones.

    As metafor's ``gosh()``: all ``sum_{j>=p} C(k, j)`` subsets when there
    are at most ``max_subsets`` of them, otherwise ``max_subsets`` random
    subsets (sizes drawn with probability proportional to
    ``dbinom(j, k, 1/2)``; duplicates allowed). Every subset is a mask
    column of one batched fit, fitted in chunks.

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"}
    X : ndarray of shape (k, p), optional
    max_subsets : int
    seed : int or numpy Generator, optional
        For the random subsets (not R's random numbers).

    Returns
    -------
    Gosh

    Examples
    --------
    >>> g = gosh([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], "DL")
    >>> g.k.tolist()
    [1, 1, 1, 2, 2, 2, 3]
    """
    method = _check(method, test, alpha)
    yi, vi = _as_vectors(yi, vi)
    k = yi.size
    if k < 2:
        raise ValueError("gosh needs k >= 2")
    X = _design(X, k)
    p = X.shape[1]
    n_all = sum(math.comb(k, j) for j in range(p, k + 1))
    exact = n_all <= max_subsets
    if exact:
        incl = _all_subsets(k, p)
    else:
        incl = _random_subsets(k, p, int(max_subsets), np.random.default_rng(seed))
    n = incl.shape[0]
    QE, I2, H2, tau2 = (np.full(n, np.nan) for _ in range(4))
    beta = np.full((n, p), np.nan)
    okall = np.zeros(n, dtype=bool)
    for sl in _chunks(n, k):
        m = incl[sl].T
        d = m.shape[1]
        bf, ok = _fit_columns(np.broadcast_to(yi[:, None], (k, d)),
                              np.broadcast_to(vi[:, None], (k, d)), m, method, test, X, alpha)
        i2, h2 = bf.I2, bf.H2
        if method == "DL" and p == 1 and fit._is_intercept_only(X):
            # metafor's gosh() takes a shortcut for DL (and FE) models that
            # computes I2 and H2 from Q, as for FE: H2 = Q/(k-1) even where
            # tau2 is truncated at 0 (where rma() reports H2 = 1). I2 is
            # the same either way. Follow gosh() so the plots agree.
            kk = m.sum(0)
            with np.errstate(divide="ignore", invalid="ignore"):
                h2 = np.where(kk > 1, bf.Q / np.maximum(kk - 1, 1), 1.0)
                i2 = np.where(kk > 1, np.maximum(0.0, 100 * (bf.Q - (kk - 1)) / bf.Q), 0.0)
            i2 = np.where(np.isfinite(i2), i2, 0.0)
        okall[sl] = ok
        QE[sl] = np.where(ok, bf.Q, np.nan)
        I2[sl] = np.where(ok, i2, np.nan)
        H2[sl] = np.where(ok, h2, np.nan)
        tau2[sl] = np.where(ok, bf.tau2, np.nan)
        beta[sl] = np.where(ok[:, None], bf.beta.T, np.nan)
    return Gosh(method=method, exact=exact, incl=incl, k=incl.sum(1), QE=QE, I2=I2,
                H2=H2, tau2=tau2, estimate=beta[:, 0], beta=beta,
                fit_ok=okall)


# ----------------------------------------------------------------------------
# permutation test


@dataclass(frozen=True)
class PermutationTest(ReadOnlyArrays):
    """Permutation test of a (meta-regression) model (metafor's ``permutest``).

    ``beta``, ``stat`` (z, or t under knha/adhoc) and ``pval`` are (p,):
    the observed coefficients and test statistics and the permutation
    p-values. ``QM`` (chi-square, or F under knha) is the omnibus test of
    all coefficients but the intercept (of the intercept in an
    intercept-only model) and ``QM_p`` its permutation p-value.
    ``beta_perm`` and ``stat_perm`` (n_perm, p) and ``QM_perm`` (n_perm,)
    are the permutation distribution; rows of failed fits are NaN and do
    not count.
    """

    method: str
    test: str
    exact: bool
    n_perm: int
    beta: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    QM: float
    QM_p: float
    beta_perm: np.ndarray
    stat_perm: np.ndarray
    QM_perm: np.ndarray


def _multiset_permutations(labels):
    """All distinct orderings of ``labels`` in lexicographic order, (n, k)."""
    a = sorted(labels)
    k = len(a)
    out = [a.copy()]
    while True:
        # next lexicographic permutation (Narayana Pandita)
        i = k - 2
        while i >= 0 and a[i] >= a[i + 1]:
            i -= 1
        if i < 0:
            break
        j = k - 1
        while a[j] <= a[i]:
            j -= 1
        a[i], a[j] = a[j], a[i]
        a[i + 1:] = reversed(a[i + 1:])
        out.append(a.copy())
    return np.array(out, dtype=np.intp)


def _exact_row_permutations(X):
    """All distinct row arrangements of X, as metafor's exact permutest.

    Identical rows are interchangeable, so there are ``k! / prod(n_j!)``
    distinct designs. Returns (n, k) ``perm`` with study i paired with
    row ``perm[:, i]`` of X, like metafor's ``X[perm, ]``.
    """
    _, lab = np.unique(X, axis=0, return_inverse=True)
    lab = lab.ravel()
    arrangements = _multiset_permutations(lab.tolist())
    # give each position a concrete row of X with the arranged label
    rows_by_label = {g: np.flatnonzero(lab == g) for g in np.unique(lab)}
    perm = np.empty_like(arrangements)
    for g, rows in rows_by_label.items():
        pos = arrangements == g
        # each arrangement has exactly len(rows) positions with label g
        perm[pos] = np.tile(rows, arrangements.shape[0])
    return perm


def _n_distinct_row_permutations(X):
    _, counts = np.unique(X, axis=0, return_counts=True)
    n = math.factorial(X.shape[0])
    for c in counts:
        n //= math.factorial(int(c))
    return n


def permutation_test(yi: ArrayLike, vi: ArrayLike, X: ArrayLike | None = None,
                     method: str = "REML", test: str = "z", n_perm: int = 1000,
                     seed: int | None = None, exact: bool = False, *, alpha: float = 0.05,
                     permutations: ArrayLike | None = None) -> PermutationTest:
    """Permutation test for the coefficients and QM (metafor's ``permutest``).

    With moderators the rows of X are permuted against (yi, vi); for an
    intercept-only model the signs of yi are flipped, as metafor does. The
    test is exact (all distinct permutations, or all 2^k sign vectors) when
    ``exact`` is True or when there are no more than ``n_perm`` of them;
    otherwise ``n_perm`` random ones are drawn and, as in metafor, the
    first is replaced by the observed data. A p-value is the share of
    permutations with ``|stat_perm| >= |stat_obs| - comptol`` (and
    ``QM_perm >= QM_obs - comptol``), ``comptol = sqrt(eps)``.

    Permuting the rows of X against fixed (yi, vi) gives the same fit as
    permuting (yi, vi) against fixed X, so all permutations are one
    batched fit with a shared X, in chunks.

    Parameters
    ----------
    yi, vi : ndarray of shape (k,)
    X : ndarray of shape (k, p), optional
        Moderators with the intercept as the first column.
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"}
    test : {"z", "knha", "adhoc"}
    n_perm : int
        Number of permutations (metafor's ``iter``), >= 2.
    seed : int or numpy Generator, optional
        For the random permutations (numpy's generator, not R's).
    exact : bool
        Force exact enumeration.
    permutations : ndarray of shape (n, k), optional
        Use these instead of drawing: integer row permutations (study i is
        paired with row ``permutations[r, i]`` of X, metafor's
        ``X[perm, ]``), or, for an intercept-only model, signs +-1. They
        are used as given (include the identity to count the observed
        data, as metafor's random mode does).

    Returns
    -------
    PermutationTest
    """
    method = _check(method, test, alpha)
    yi, vi = _as_vectors(yi, vi)
    k = yi.size
    X = _design(X, k)
    p = X.shape[1]
    intercept_only = fit._is_intercept_only(X)
    n_perm = int(round(n_perm))
    if n_perm < 2:
        raise ValueError("n_perm must be >= 2")
    rng = np.random.default_rng(seed)

    ### the set of permutations (or sign flips)
    if permutations is not None:
        perms = np.asarray(permutations)
        if perms.ndim != 2 or perms.shape[1] != k:
            raise ValueError(f"permutations must have shape (n, {k})")
        if intercept_only and not np.all(np.abs(perms) == 1):
            raise ValueError("an intercept-only model takes sign flips (+1/-1) as permutations")
        if not intercept_only and not np.all(np.sort(perms, axis=1) == np.arange(k)):
            raise ValueError("each row of permutations must be a permutation of 0..k-1")
        is_exact = False
    elif intercept_only:
        n_exact = 2**k
        is_exact = exact or n_exact <= n_perm
        if is_exact:
            if n_exact > 10**7:
                raise ValueError(f"an exact test needs 2^{k} sign flips; too many")
            # expand.grid(c(1, -1), ...) order: study 1 varies fastest
            codes = np.arange(n_exact, dtype=np.int64)
            perms = 1 - 2 * ((codes[:, None] >> np.arange(k)) & 1)
        else:
            perms = rng.choice(np.array([-1, 1]), size=(n_perm, k))
            perms[0] = 1
    else:
        n_exact = _n_distinct_row_permutations(X)
        is_exact = exact or n_exact <= n_perm
        if is_exact:
            if n_exact > 10**7:
                raise ValueError(f"an exact test needs {n_exact} permutations; too many")
            perms = _exact_row_permutations(X)
        else:
            perms = np.argsort(rng.random((n_perm, k)), axis=1)
            perms[0] = np.arange(k)
    n = perms.shape[0]

    ### observed fit
    obs = fit.rma(yi, vi, method, test, X=X, alpha=alpha)
    beta_obs = obs.beta[:, 0]
    stat_obs = obs.stat[:, 0]
    QM_obs = float(obs.QM[0])

    ### all permutations, one batched fit per chunk
    beta_perm = np.full((n, p), np.nan)
    stat_perm = np.full((n, p), np.nan)
    QM_perm = np.full(n, np.nan)
    for sl in _chunks(n, k):
        P = perms[sl]
        if intercept_only:
            Y = (P * yi[None, :]).T
            V = np.broadcast_to(vi[:, None], Y.shape)
        else:
            # study i meets X row P[r, i]; fitting against fixed X needs the
            # study that meets each row, i.e. the inverse permutation
            inv = np.argsort(P, axis=1)
            Y = yi[inv].T
            V = vi[inv].T
        bf = fit.rma(Y, V, method, test, X=X, alpha=alpha)
        good = np.all(np.isfinite(bf.stat), axis=0)
        beta_perm[sl] = np.where(good[:, None], bf.beta.T, np.nan)
        stat_perm[sl] = np.where(good[:, None], bf.stat.T, np.nan)
        QM_perm[sl] = np.where(good, bf.QM, np.nan)

    ### metafor's counting convention
    with np.errstate(invalid="ignore"):
        hit = np.abs(stat_perm) >= np.abs(stat_obs)[None, :] - PERM_COMPTOL
        valid = np.isfinite(stat_perm)
        pval = np.minimum((hit & valid).sum(0) / valid.sum(0), 1.0)
        qvalid = np.isfinite(QM_perm)
        QM_p = float(((QM_perm >= QM_obs - PERM_COMPTOL) & qvalid).sum() / qvalid.sum())
    return PermutationTest(method=method, test=test, exact=bool(is_exact), n_perm=n,
                           beta=beta_obs, stat=stat_obs, pval=pval, QM=QM_obs,
                           QM_p=QM_p, beta_perm=beta_perm, stat_perm=stat_perm,
                           QM_perm=QM_perm)

