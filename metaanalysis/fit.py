"""Stage 3: model fitting, batched over parallel datasets.

Pure numpy/scipy. Every array has shape ``(k, d)``: k studies by d parallel
datasets (PyMARE's convention), so leave-one-out, permutation tests, GOSH and
sensitivity grids run as one call. A ``mask`` of shape ``(k, d)`` switches
studies off (weight zero), which is how subsets are expressed.

The random-effects model is ``y_i = x_i' beta + u_i + e_i`` with
``u_i ~ N(0, tau2)`` and ``e_i ~ N(0, v_i)`` (metafor's ``rma.uni``). The
moderator matrix ``X`` (k, p) is shared by all d datasets; an intercept-only
model is ``X = ones((k, 1))``.

tau2 estimators (metafor's codes): ``FE`` (tau2 = 0), ``DL``, ``HE``, ``SJ``
(closed forms), ``PM``/``EB`` (the generalised Q equation), ``ML``/``REML``
(maximum likelihood). The iterative ones are solved in lock-step for all d
datasets, each stopping at its own convergence, with safeguards so that they
never oscillate or hang:

* ML/REML: Fisher scoring with step halving on the log-likelihood (a step is
  accepted only if it does not decrease the likelihood), projected onto
  tau2 >= 0, then metafor's check that the likelihood at tau2 = 0 is not
  larger. Converged when a step changes tau2 by less than
  ``tol * max(1, tau2)``.
* PM/EB: Newton steps on ``Q(tau2) - (k - p)`` inside a bisection bracket.

References
----------
Viechtbauer W (2005). Bias and efficiency of meta-analytic variance
estimators in the random-effects model. J Educ Behav Stat 30:261-293.
Viechtbauer W (2007). Confidence intervals for the amount of heterogeneity
in meta-analysis. Stat Med 26:37-52.
Knapp G, Hartung J (2003). Stat Med 22:2693-2710.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

METHODS = ("FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML")
TESTS = ("z", "knha", "adhoc")
PI_DFS = ("metafor", "k-1", "k-2", "z")

#: tau2 convergence: a step smaller than TOL * max(1, tau2) ends the iteration.
#: 1e-12 is metafor's converged reference setting (threshold=1e-12).
TOL = 1e-12
MAXITER = 1000


# ----------------------------------------------------------------------------
# helpers over (k, d) arrays


def as_batch(y, v, mask=None, X=None):
    """Promote inputs to ``(k, d)`` arrays; return ``(y, v, mask, X, squeeze)``.

    ``X`` is ``(k, p)``; by default an intercept column. Masked-out entries of
    ``y``/``v`` are replaced by harmless values (0 and 1) so that NaNs from
    dropped studies never leak into sums.
    """
    y = np.asarray(y, dtype=float)
    v = np.asarray(v, dtype=float)
    squeeze = y.ndim == 1
    if squeeze:
        y = y[:, None]
        v = v[:, None]
    if y.shape != v.shape:
        raise ValueError(f"y and v must have the same shape, got {y.shape} and {v.shape}")
    k, d = y.shape
    if mask is None:
        m = np.ones((k, d), dtype=bool)
    else:
        m = np.asarray(mask, dtype=bool)
        if m.ndim == 1:
            m = m[:, None]
        m = np.broadcast_to(m, (k, d)).copy()
    m &= np.isfinite(y) & np.isfinite(v)
    y = np.where(m, y, 0.0)
    v = np.where(m, v, 1.0)
    if X is None:
        X = np.ones((k, 1))
    else:
        X = np.asarray(X, dtype=float)
        if X.ndim == 1:
            X = X[:, None]
        if X.shape[0] != k:
            raise ValueError(f"X must have {k} rows, got {X.shape[0]}")
    return y, v, m, X, squeeze


def _wls(y, w, X):
    """Weighted least squares for every dataset at once.

    Parameters
    ----------
    y, w : ndarray of shape (k, d)
    X : ndarray of shape (k, p)

    Returns
    -------
    beta : (p, d); A : (d, p, p) the inverse of X'WX; resid : (k, d)
    """
    XtWX = np.einsum("kp,kd,kq->dpq", X, w, X)
    A = np.linalg.inv(XtWX)
    XtWy = np.einsum("kp,kd->dp", X, w * y)
    beta = np.einsum("dpq,dq->pd", A, XtWy)
    resid = y - X @ beta
    return beta, A, resid


def _trace_AB(A, X, w):
    """tr(A X' diag(w) X) for each dataset; A (d, p, p), w (k, d)."""
    B = np.einsum("kp,kd,kq->dpq", X, w, X)
    return np.einsum("dpq,dqp->d", A, B), B


def generalized_q(tau2, y, v, m, X):
    """Generalised Q, ``sum w_i (y_i - x_i' b)^2`` with ``w_i = 1/(v_i + tau2)``,
    and its derivative in tau2, ``-sum w_i^2 r_i^2`` (the fitted ``b`` drops
    out of the derivative because it minimises the sum).

    Parameters
    ----------
    tau2 : ndarray of shape (d,)
    y, v, m : ndarray of shape (k, d); X : (k, p)
    """
    w = m / (v + tau2)
    _, _, r = _wls(y, w, X)
    wr2 = w * r**2
    return wr2.sum(0), -(w * wr2).sum(0)


def _loglik(tau2, y, v, m, X, reml):
    w = m / (v + tau2)
    _, A, r = _wls(y, w, X)
    with np.errstate(divide="ignore"):
        ll = -0.5 * (m * np.log(v + tau2)).sum(0) - 0.5 * (w * r**2).sum(0)
    if reml:
        # log det(X'WX) = -log det(A)
        ll = ll + 0.5 * np.linalg.slogdet(A)[1]
    return ll


def _fisher_step(tau2, y, v, m, X, method):
    w = m / (v + tau2)
    _, A, r = _wls(y, w, X)
    Py = w * r
    yPPy = (Py**2).sum(0)
    sw = w.sum(0)
    if method == "ML":
        return (yPPy - sw) / (w**2).sum(0)
    trAB2, B2 = _trace_AB(A, X, w**2)
    trP = sw - trAB2
    trAB3, _ = _trace_AB(A, X, w**3)
    AB2 = np.einsum("dpq,dqr->dpr", A, B2)
    trPP = (w**2).sum(0) - 2 * trAB3 + np.einsum("dpq,dqp->d", AB2, AB2)
    if method == "REML":
        return (yPPy - trP) / trPP
    # EB (metafor's empirical Bayes iteration); its fixed point solves the
    # same equation as PM.
    kk = m.sum(0)
    p = X.shape[1]
    return ((w * r**2).sum(0) * kk / (kk - p) - kk) / sw


@dataclass(frozen=True)
class Tau2Result:
    """tau2 for each dataset, with convergence information. Arrays (d,)."""

    tau2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    tau2_0: np.ndarray | None = None  # SJ's starting value (for its SE)


def estimate_tau2(y, v, method="REML", mask=None, X=None, *, tol=TOL,
                  maxiter=MAXITER) -> Tau2Result:
    """Estimate tau2 for d parallel datasets.

    Parameters
    ----------
    y, v : ndarray of shape (k,) or (k, d)
        Effect sizes and sampling variances.
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"}
    mask : ndarray of bool, optional
        False switches a study off in that dataset.
    X : ndarray of shape (k, p), optional
        Moderators (default: intercept only).

    Returns
    -------
    Tau2Result
        Arrays of shape (d,). A dataset with k <= p gets tau2 = 0.

    Examples
    --------
    >>> r = estimate_tau2([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], "DL")
    >>> round(float(r.tau2[0]), 6)
    0.133333
    """
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; expected one of {', '.join(METHODS)}")
    y, v, m, X, _ = as_batch(y, v, mask, X)
    k, d = y.shape
    p = X.shape[1]
    kk = m.sum(0)
    ok = kk > p  # datasets where tau2 is estimable
    zeros = np.zeros(d)
    conv = np.ones(d, dtype=bool)
    its = np.zeros(d, dtype=int)
    if method == "FE":
        return Tau2Result(zeros, conv, its)
    dof = np.where(ok, kk - p, 1)

    if method == "DL":
        w = m / v
        _, A, r = _wls(y, w, X)
        trAB, _ = _trace_AB(A, X, w**2)
        trP = w.sum(0) - trAB
        t2 = ((w * r**2).sum(0) - (kk - p)) / np.where(ok, trP, 1.0)
        return Tau2Result(np.where(ok, np.maximum(t2, 0.0), 0.0), conv, its)

    if method == "HE":
        w = m.astype(float)
        _, A, r = _wls(y, w, X)
        trAB, _ = _trace_AB(A, X, w * v)
        trPV = (m * v).sum(0) - trAB
        t2 = ((m * r**2).sum(0) - trPV) / dof
        return Tau2Result(np.where(ok, np.maximum(t2, 0.0), 0.0), conv, its)

    if method == "SJ":
        ybar = (m * y).sum(0) / np.maximum(kk, 1)
        t0 = (m * (y - ybar) ** 2).sum(0) / np.maximum(kk, 1)
        w = m / (v + t0)
        _, _, r = _wls(y, w, X)
        t2 = t0 * (w * r**2).sum(0) / dof
        return Tau2Result(np.where(ok, np.maximum(t2, 0.0), 0.0), conv, its, tau2_0=t0)

    if method in ("PM", "EB"):
        t2, conv, its = _solve_q_equation(y, v, m, X, target=(kk - p).astype(float),
                                          tol=tol, maxiter=maxiter, active=ok)
        return Tau2Result(np.where(ok, t2, 0.0), conv, its)

    # ML / REML
    reml = method == "REML"
    # metafor starts from the HE estimate
    t2 = estimate_tau2(y, v, "HE", m, X).tau2
    active = ok.copy()
    conv = ~ok
    ll = _loglik(t2, y, v, m, X, reml)
    for it in range(1, maxiter + 1):
        if not active.any():
            break
        idx = np.flatnonzero(active)
        ys, vs, ms = y[:, idx], v[:, idx], m[:, idx]
        cur = t2[idx]
        step = _fisher_step(cur, ys, vs, ms, X, method)
        step = np.where(np.isfinite(step), step, 0.0)
        ll_cur = ll[idx]
        new = np.maximum(cur + step, 0.0)
        ll_new = _loglik(new, ys, vs, ms, X, reml)
        # step halving: never accept a step that lowers the likelihood
        for _ in range(60):
            bad = ll_new < ll_cur - 1e-14 * np.abs(ll_cur)
            if not bad.any():
                break
            step = np.where(bad, step / 2, step)
            new = np.where(bad, np.maximum(cur + step, 0.0), new)
            ll_new = np.where(bad, _loglik(new, ys, vs, ms, X, reml), ll_new)
        change = np.abs(new - cur)
        t2[idx] = new
        ll[idx] = ll_new
        its[idx] = it
        done = change <= tol * np.maximum(1.0, new)
        conv[idx[done]] = True
        active[idx[done]] = False
    # metafor's ll0check: prefer tau2 = 0 when its likelihood is higher
    ll0 = _loglik(zeros, y, v, m, X, reml)
    t2 = np.where(ok & (ll0 > ll) & (t2 > 0) & (ll0 - ll > 1e-12), 0.0, t2)
    return Tau2Result(np.where(ok, t2, 0.0), conv, its)


def _solve_q_equation(y, v, m, X, target, *, tol=TOL, maxiter=MAXITER, active=None,
                      lower=None):
    """Solve ``Q(tau2) = target`` for tau2 >= 0 in every dataset.

    Q is decreasing in tau2. Where ``Q(0) <= target`` the answer is 0. Newton
    steps are taken inside a bracket that bisection keeps valid, so the
    iteration cannot leave the bracket or cycle.

    Returns ``(tau2, converged, iterations)``, each of shape (d,).
    """
    k, d = y.shape
    if active is None:
        active = np.ones(d, dtype=bool)
    lo = np.zeros(d) if lower is None else np.asarray(lower, dtype=float).copy()
    q0, _ = generalized_q(lo, y, v, m, X)
    t2 = lo.copy()
    its = np.zeros(d, dtype=int)
    need = active & (q0 > target)
    conv = ~need
    if not need.any():
        return t2, conv, its
    idx = np.flatnonzero(need)
    ys, vs, ms, tg = y[:, idx], v[:, idx], m[:, idx], target[idx]
    # find an upper bracket
    hi = np.maximum(100.0, 10 * (ys.var(0) + vs.max(0)))
    for _ in range(200):
        qh, _ = generalized_q(hi, ys, vs, ms, X)
        low = qh > tg
        if not low.any():
            break
        hi = np.where(low, hi * 10, hi)
    a = lo[idx].copy()
    b = hi.copy()
    x = a.copy()
    done = np.zeros(len(idx), dtype=bool)
    n_it = np.zeros(len(idx), dtype=int)
    for it in range(1, maxiter + 1):
        q, dq = generalized_q(x, ys, vs, ms, X)
        f = q - tg
        a = np.where(f > 0, x, a)
        b = np.where(f <= 0, x, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            xn = x - f / dq
        bad = ~np.isfinite(xn) | (xn <= a) | (xn >= b)
        xn = np.where(bad, 0.5 * (a + b), xn)
        step = np.abs(xn - x)
        n_it = np.where(done, n_it, it)
        x = np.where(done, x, xn)
        done |= (step <= tol * np.maximum(1.0, x)) | ((b - a) <= tol * np.maximum(1.0, x))
        if done.all():
            break
    t2[idx] = x
    conv[idx] = done
    its[idx] = n_it
    return t2, conv, its


# ----------------------------------------------------------------------------
# the full fit


@dataclass(frozen=True)
class BatchFit:
    """A fitted model for d datasets. Shapes: (d,) unless noted.

    ``beta``, ``se``, ``stat``, ``pval``, ``ci_lb``, ``ci_ub`` are (p, d);
    ``vb`` is (d, p, p); ``weights`` is (k, d) in percent (intercept models).
    """

    method: str
    test: str
    alpha: float
    k: np.ndarray
    p: int
    beta: np.ndarray
    se: np.ndarray
    vb: np.ndarray
    stat: np.ndarray
    pval: np.ndarray
    ci_lb: np.ndarray
    ci_ub: np.ndarray
    df: np.ndarray  # nan under z
    tau2: np.ndarray
    se_tau2: np.ndarray
    Q: np.ndarray
    Q_df: np.ndarray
    Q_p: np.ndarray
    I2: np.ndarray
    H2: np.ndarray
    s2w: np.ndarray
    QM: np.ndarray
    QM_df: tuple
    QM_p: np.ndarray
    weights: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


def rma(y, v, method="REML", test="z", *, X=None, mask=None, alpha=0.05,
        tau2=None, tol=TOL, maxiter=MAXITER) -> BatchFit:
    """Fit the (mixed-effects) random-effects model to d datasets at once.

    Parameters
    ----------
    y, v : ndarray of shape (k,) or (k, d)
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"}
    test : {"z", "knha", "adhoc"}
        Wald z tests, Knapp-Hartung (t with k - p df and the variance scaled
        by ``s2w = Q_w/(k-p)``), or metafor's ad hoc modification
        (``s2w`` truncated below at 1).
    X : ndarray of shape (k, p), optional
        Moderators; the first column should be the intercept.
    mask : ndarray of bool (k,) or (k, d), optional
    alpha : float
        Nominal coverage of the intervals is ``1 - alpha``.
    tau2 : ndarray of shape (d,), optional
        Fix tau2 instead of estimating it.

    Returns
    -------
    BatchFit

    Examples
    --------
    >>> fit = rma([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], "DL")
    >>> round(float(fit.beta[0, 0]), 4)
    0.4842
    """
    method = method.upper() if method.upper() in METHODS else method
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; expected one of {', '.join(METHODS)}")
    if test not in TESTS:
        raise ValueError(f"unknown test '{test}'; expected one of {', '.join(TESTS)}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    y, v, m, X, _ = as_batch(y, v, mask, X)
    k, d = y.shape
    p = X.shape[1]
    kk = m.sum(0)
    if tau2 is None:
        tr = estimate_tau2(y, v, method, m, X, tol=tol, maxiter=maxiter)
        t2, conv, its, t0 = tr.tau2, tr.converged, tr.iterations, tr.tau2_0
    else:
        t2 = np.broadcast_to(np.asarray(tau2, dtype=float), (d,)).copy()
        conv, its, t0 = np.ones(d, bool), np.zeros(d, int), None

    ### model fitting
    w = m / (v + t2)
    beta, A, r = _wls(y, w, X)
    vb = A.copy()
    dof = kk - p
    s2w = np.ones(d)
    if test in ("knha", "adhoc"):
        rss = (w * r**2).sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            s2w = np.where(rss <= np.finfo(float).eps, 0.0, rss / np.where(dof > 0, dof, np.nan))
        if test == "adhoc":
            s2w = np.maximum(s2w, 1.0)
        vb = vb * s2w[:, None, None]
    se = np.sqrt(np.einsum("dpp->pd", vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = beta / se
    if test == "z":
        df = np.full(d, np.nan)
        crit = stats.norm.isf(alpha / 2) * np.ones(d)
        pval = 2 * stats.norm.sf(np.abs(stat))
    else:
        df = np.where(dof > 0, dof, np.nan).astype(float)
        crit = stats.t.isf(alpha / 2, df)
        pval = 2 * stats.t.sf(np.abs(stat), df)
    ci_lb = beta - crit * se
    ci_ub = beta + crit * se

    ### omnibus test of moderators (all but the intercept)
    if p > 1:
        bt = beta[1:].T  # (d, m)
        vbt = vb[:, 1:, 1:]
        QM = np.einsum("dp,dpq,dq->d", bt, np.linalg.inv(vbt), bt)
        mm = p - 1
        if test == "z":
            QM_df = (mm,)
            QM_p = stats.chi2.sf(QM, mm)
        else:
            QM = QM / mm
            QM_df = (mm, dof)
            QM_p = stats.f.sf(QM, mm, np.where(dof > 0, dof, np.nan))
    else:
        QM = stat[0] ** 2 if test == "z" else stat[0] ** 2
        QM_df = (1,) if test == "z" else (1, dof)
        QM_p = pval[0]

    ### heterogeneity
    wf = m / v
    _, Af, rf = _wls(y, wf, X)
    Q = np.maximum(0.0, (wf * rf**2).sum(0))
    trAB, _ = _trace_AB(Af, X, wf**2)
    trP = wf.sum(0) - trAB
    has = dof > 0
    Q_p = np.where(has, stats.chi2.sf(Q, np.where(has, dof, 1)), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vt = np.where(has, dof / trP, 0.0)
        if method == "FE":
            I2 = np.where(has, np.maximum(0.0, 100 * (Q - dof) / Q), 0.0)
            H2 = np.where(has, Q / np.where(has, dof, 1), 1.0)
        else:
            I2 = np.where(has, 100 * t2 / (vt + t2), 0.0)
            H2 = np.where(has, t2 / vt + 1, 1.0)
    Q = np.where(has, Q, 0.0)

    se_tau2 = _se_tau2(method, t2, t0, y, v, m, X, kk, p)
    weights = 100 * w / w.sum(0) if p == 1 else np.full_like(w, np.nan)
    return BatchFit(method=method, test=test, alpha=alpha, k=kk, p=p, beta=beta, se=se,
                    vb=vb, stat=stat, pval=pval, ci_lb=ci_lb, ci_ub=ci_ub, df=df, tau2=t2,
                    se_tau2=se_tau2, Q=Q, Q_df=dof, Q_p=Q_p, I2=I2, H2=H2, s2w=s2w, QM=QM,
                    QM_df=QM_df, QM_p=QM_p, weights=weights, converged=conv, iterations=its)


def _se_tau2(method, t2, t0, y, v, m, X, kk, p):
    """Standard error of tau2 as metafor reports it (for information only)."""
    dof = np.maximum(kk - p, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "FE":
            return np.full_like(t2, np.nan)
        if method == "ML":
            w = m / (v + t2)
            return np.sqrt(2 / (w**2).sum(0))
        if method in ("PM", "EB"):
            w = m / (v + t2)
            return np.sqrt(2 * kk**2 / dof / w.sum(0) ** 2)
        if method == "REML":
            w = m / (v + t2)
            _, A, _ = _wls(y, w, X)
            trAB3, _ = _trace_AB(A, X, w**3)
            _, B2 = _trace_AB(A, X, w**2)
            AB2 = np.einsum("dpq,dqr->dpr", A, B2)
            trPP = (w**2).sum(0) - 2 * trAB3 + np.einsum("dpq,dqp->d", AB2, AB2)
            return np.sqrt(2 / trPP)
        if method == "DL":
            w = m / v
            _, A, _ = _wls(y, w, X)
            trAB, B2 = _trace_AB(A, X, w**2)
            trP = w.sum(0) - trAB
            sumPP = _sum_pp(A, X, w, B2)
            tp = np.maximum(t2, 0)
            return np.sqrt(1 / trP**2 * (2 * dof + 4 * tp * trP + 2 * tp**2 * sumPP))
    return np.full_like(t2, np.nan)


def _sum_pp(A, X, w, B2):
    trAB3, _ = _trace_AB(A, X, w**3)
    AB2 = np.einsum("dpq,dqr->dpr", A, B2)
    return (w**2).sum(0) - 2 * trAB3 + np.einsum("dpq,dqp->d", AB2, AB2)


def q_profile_ci(y, v, *, X=None, mask=None, alpha=0.05, tol=TOL, maxiter=MAXITER):
    """Q-profile confidence interval for tau2 (Viechtbauer 2007).

    The bounds solve ``Q(tau2) = chi2_{k-p}`` at the upper and lower
    ``alpha/2`` quantiles; a bound below zero is truncated at 0 (metafor's
    ``confint()``).

    Returns
    -------
    lb, ub : ndarray of shape (d,)
        NaN where k <= p.
    """
    y, v, m, X, _ = as_batch(y, v, mask, X)
    k, d = y.shape
    p = X.shape[1]
    dof = m.sum(0) - p
    ok = dof > 0
    dfs = np.where(ok, dof, 1)
    crit_u = stats.chi2.isf(alpha / 2, dfs)  # upper quantile -> lower bound
    crit_l = stats.chi2.ppf(alpha / 2, dfs)  # lower quantile -> upper bound
    ub, conv_u, _ = _solve_q_equation(y, v, m, X, crit_l, tol=tol, maxiter=maxiter, active=ok)
    lb, conv_l, _ = _solve_q_equation(y, v, m, X, crit_u, tol=tol, maxiter=maxiter, active=ok)
    lb = np.where(ok, lb, np.nan)
    ub = np.where(ok, ub, np.nan)
    return lb, ub


def prediction_interval(fit: BatchFit, *, pi_df: str = "metafor"):
    """Prediction interval for an intercept-only model.

    ``est +/- crit * sqrt(tau2 + se^2)``. ``pi_df``: ``"metafor"`` (z under
    ``test="z"``, t(k-1) under knha), ``"k-1"`` (R's meta), ``"k-2"``
    (Higgins, Thompson & Spiegelhalter 2009; Riley et al. 2011), or ``"z"``.

    Returns
    -------
    pi_lb, pi_ub : ndarray of shape (d,)
    """
    if pi_df not in PI_DFS:
        raise ValueError(f"pi_df must be one of {', '.join(PI_DFS)}")
    est = fit.beta[0]
    se = fit.se[0]
    half = np.sqrt(fit.tau2 + se**2)
    k = fit.k.astype(float)
    if pi_df == "metafor":
        pi_df = "z" if fit.test == "z" else "k-1"
    if pi_df == "z":
        crit = stats.norm.isf(fit.alpha / 2) * np.ones_like(k)
    else:
        df = k - 1 if pi_df == "k-1" else k - 2
        crit = np.where(df > 0, stats.t.isf(fit.alpha / 2, np.where(df > 0, df, 1)), np.nan)
    return est - crit * half, est + crit * half
