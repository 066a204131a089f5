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

* ML/REML: Newton steps on the score (Fisher scoring where the likelihood
  is not locally concave), projected onto tau2 >= 0, kept inside a sign
  bracket of the score (bisection when a step leaves it) and halved when a
  step lowers the likelihood; then metafor's check that the likelihood at
  tau2 = 0 is not larger. Converged when a step changes tau2 by less than
  ``tol * max(1, tau2)``. Plain Fisher scoring (metafor's default) can
  oscillate with growing amplitude; this cannot (see ``_solve_ml``).
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
from numpy.typing import ArrayLike

from metaanalysis.stats import distributions
from metaanalysis.stats.results import ReadOnlyArrays

METHODS = ("FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML")
TESTS = ("z", "knha", "adhoc")
PI_DFS = ("metafor", "k-1", "k-2", "z")

#: tau2 convergence: a step smaller than TOL * max(1, tau2) ends the iteration.
#: 1e-12 is metafor's converged reference setting (threshold=1e-12).
TOL = 1e-12
MAXITER = 1000


# ----------------------------------------------------------------------------
# helpers over (k, d) arrays


def as_batch(y: ArrayLike, v: ArrayLike, mask: ArrayLike | None = None,
             X: ArrayLike | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Promote inputs to ``(k, d)`` arrays; return ``(y, v, mask, X, squeeze)``.

    ``X`` is ``(k, p)``; by default an intercept column. Masked-out entries of
    ``y``/``v`` are replaced by harmless values (0 and 1) so that NaNs from
    dropped studies never leak into sums.

    Parameters
    ----------
    y, v : array_like of shape (k,) or (k, d)
    mask : array_like of bool, shape (k,) or (k, d), optional
        False switches a study off; non-finite ``y``/``v`` are switched off too.
    X : array_like of shape (k,) or (k, p), optional

    Returns
    -------
    y, v : ndarray of shape (k, d)
    mask : ndarray of bool, shape (k, d)
    X : ndarray of shape (k, p)
    squeeze : bool
        Whether the input was 1-d (d = 1).

    Raises
    ------
    ValueError
        On mismatched shapes.
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


def _is_intercept_only(X):
    """True for the intercept-only design, which gets closed-form fast paths."""
    return X.shape[1] == 1 and bool(np.all(X == 1.0))


def _xtwx(X, w):
    """X' diag(w_j) X for every dataset j as a (d, p, p) array.

    One BLAS matrix product of the (p*p, k) table of column products with
    ``w`` (k, d), instead of a three-operand einsum (which numpy runs as a
    slow unblocked loop).
    """
    k, p = X.shape
    XX = (X[:, :, None] * X[:, None, :]).reshape(k, p * p)
    return (XX.T @ w).T.reshape(-1, p, p)


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
    if X.shape[1] == 1:
        # one column: X'WX is a scalar per dataset, no matrix inverse needed
        x = X[:, :1]
        wx = w * x
        s = (wx * x).sum(0)
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = (wx * y).sum(0) / s
            A = (1.0 / s)[:, None, None]
        return beta[None, :], A, y - x * beta
    A = np.linalg.inv(_xtwx(X, w))
    XtWy = (X.T @ (w * y)).T  # (d, p)
    # Einsum indices: d = datasets, p/q = coefficients
    beta = np.einsum("dpq,dq->pd", A, XtWy)
    resid = y - X @ beta
    return beta, A, resid


def _trace_AB(A, X, w):
    """tr(A X' diag(w) X) for each dataset; A (d, p, p), w (k, d)."""
    B = _xtwx(X, w)
    return np.einsum("dpq,dqp->d", A, B), B


def generalized_q(tau2: np.ndarray, y: np.ndarray, v: np.ndarray, m: np.ndarray,
                  X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Q, ``sum w_i (y_i - x_i' b)^2`` with ``w_i = 1/(v_i + tau2)``,
    and its derivative in tau2, ``-sum w_i^2 r_i^2`` (the fitted ``b`` drops
    out of the derivative because it minimises the sum).

    Parameters
    ----------
    tau2 : ndarray of shape (d,)
    y, v, m : ndarray of shape (k, d)
    X : ndarray of shape (k, p)

    Returns
    -------
    Q, dQ : ndarray of shape (d,)
        The generalised Q and its derivative in tau2.
    """
    w = m / (v + tau2)
    _, _, r = _wls(y, w, X)
    wr2 = w * r**2
    return wr2.sum(0), -(w * wr2).sum(0)


def _ml_derivs(tau2, y, v, m, X, reml, intercept_only):
    """Log-likelihood, score, observed and expected information in tau2.

    With ``P = W - W X (X'WX)^-1 X'W`` and ``w = 1/(v + tau2)``:

    * ML:   score = (y'PPy - tr W)/2,  info = tr(W^2)/2,
            observed info = y'PPPy - tr(W^2)/2
    * REML: score = (y'PPy - tr P)/2,  info = tr(PP)/2,
            observed info = y'PPPy - tr(PP)/2

    (``dP/dtau2 = -PP``.) Fisher scoring divides the score by ``info``;
    Newton by the observed information.

    Returns
    -------
    ll, score, obs_info, exp_info : ndarray of shape (d,)
    """
    vt = v + tau2
    w = m / vt
    with np.errstate(divide="ignore"):
        logv = (m * np.log(vt)).sum(0)
    w2 = w * w
    if intercept_only:
        # every X'.X product is a plain sum: no (d, p, p) arrays at all
        sw = w.sum(0)
        beta = (w * y).sum(0) / sw
        r = y - beta
        Py = w * r
        yPPy = (Py * Py).sum(0)
        rss = (Py * r).sum(0)
        u = (w * Py).sum(0)
        yPPPy = (w * Py * Py).sum(0) - u * u / sw
        sw2 = w2.sum(0)
        ll = -0.5 * logv - 0.5 * rss
        if reml:
            sw3 = (w2 * w).sum(0)
            trP = sw - sw2 / sw
            trPP = sw2 - 2 * sw3 / sw + (sw2 / sw) ** 2
            ll = ll - 0.5 * np.log(sw)
    else:
        _, A, r = _wls(y, w, X)
        Py = w * r
        yPPy = (Py * Py).sum(0)
        rss = (Py * r).sum(0)
        u = (X.T @ (w * Py)).T  # (d, p)
        yPPPy = (w * Py * Py).sum(0) - np.einsum("dp,dpq,dq->d", u, A, u)
        sw = w.sum(0)
        sw2 = w2.sum(0)
        ll = -0.5 * logv - 0.5 * rss
        if reml:
            trAB2, B2 = _trace_AB(A, X, w2)
            trAB3, _ = _trace_AB(A, X, w2 * w)
            AB2 = np.einsum("dpq,dqr->dpr", A, B2)
            trP = sw - trAB2
            trPP = sw2 - 2 * trAB3 + np.einsum("dpq,dqp->d", AB2, AB2)
            ll = ll + 0.5 * np.linalg.slogdet(A)[1]
    if reml:
        return ll, 0.5 * (yPPy - trP), yPPPy - 0.5 * trPP, 0.5 * trPP
    return ll, 0.5 * (yPPy - sw), yPPPy - 0.5 * sw2, 0.5 * sw2


@dataclass(frozen=True)
class Tau2Result(ReadOnlyArrays):
    """tau2 for each dataset, with convergence information. Arrays (d,)."""

    tau2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    tau2_0: np.ndarray | None = None  # SJ's starting value (for its SE)


def estimate_tau2(y: ArrayLike, v: ArrayLike, method: str = "REML",
                  mask: ArrayLike | None = None, X: ArrayLike | None = None, *,
                  tol: float = TOL, maxiter: int = MAXITER) -> Tau2Result:
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
    tol, maxiter
        Convergence of the iterative estimators (:data:`TOL`, :data:`MAXITER`).

    Returns
    -------
    Tau2Result
        Arrays of shape (d,). A dataset with k <= p gets tau2 = 0.

    Examples
    --------
    >>> r = estimate_tau2([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], "DL")
    >>> round(float(r.tau2[0]), 6)
    0.141667
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
    t2, conv, its = _solve_ml(y, v, m, X, method == "REML", ok, tol=tol, maxiter=maxiter)
    return Tau2Result(np.where(ok, t2, 0.0), conv, its)


#: Grid steps used to re-walk from the start down to tau2 = 0 when the
#: iteration ends at the boundary (see ``_solve_ml``). 32 resolves every
#: case in the 10,000-dataset benchmark and the pinned bimodal cases.
ML_GRID = 32


def _solve_ml(y, v, m, X, reml, ok, *, tol=TOL, maxiter=MAXITER):
    """Maximise the (restricted) likelihood in tau2 >= 0 for every dataset.

    Fisher scoring alone (metafor's algorithm) can oscillate: near the
    optimum its step is ``-(1 - obs/exp) * error``, which diverges when the
    observed information is more than twice the expected one. So each
    iteration (``_ml_iterate``) is safeguarded three ways, in lock-step
    over datasets:

    1. Newton steps (observed information) where the likelihood is locally
       concave, Fisher scoring elsewhere; projected onto tau2 >= 0.
    2. A sign bracket on the score: the maximiser lies between the largest
       tau2 seen with a positive score and the smallest with a negative one.
       A step that leaves the bracket is replaced by bisection, so the
       iteration cannot cycle.
    3. Step halving: a candidate that lowers the likelihood (by more than
       rounding) is rejected and the step from the last accepted point is
       halved.

    Converged when the next step is below ``tol * max(1, tau2)``; the
    final tau2 includes that step (as metafor's does).

    The likelihood can have a local maximum at tau2 = 0 as well as one
    inside (small vi make a dip just above 0). metafor's short Fisher steps
    from its HE start stop at the first local maximum they meet on the way
    up the likelihood; a long Newton step can jump over an interior maximum
    into the boundary's basin. So a dataset that started above 0 and ended
    at 0 is re-walked on a grid of ``ML_GRID + 1`` points from the start
    down to 0: if the likelihood stops rising before 0, the iteration
    restarts from that grid point and ends at the interior maximum, as
    metafor's does. This reproduces metafor's answer, which is
    path-dependent: from a start below the dip (or at 0) it is 0 even where
    an interior maximum is higher. Finally metafor's ll0check: tau2 = 0 if
    the likelihood there is higher.

    Returns ``(tau2, converged, iterations)``, each (d,).
    """
    k, d = y.shape
    intercept_only = _is_intercept_only(X)
    # metafor starts from the HE estimate
    start = estimate_tau2(y, v, "HE", m, X).tau2
    t2 = start.copy()
    conv = ~ok
    its = np.zeros(d, dtype=int)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return t2, conv, its
    ys, vs, ms = (y, v, m) if idx.size == d else (y[:, idx], v[:, idx], m[:, idx])
    t2[idx], conv[idx], its[idx] = _ml_iterate(ys, vs, ms, X, reml, start[idx], intercept_only,
                                               tol, maxiter)

    ### did a long step jump over an interior maximum on the way down?
    zero = idx[(t2[idx] == 0) & (start[idx] > 0)]
    if zero.size and ML_GRID > 0:
        ys, vs, ms = y[:, zero], v[:, zero], m[:, zero]
        # walk down from the start on a grid; metafor's short steps stop at
        # the first local maximum they meet
        frac = (ML_GRID - np.arange(ML_GRID + 1)) / ML_GRID          # 1 ... 0
        grid = start[zero][None, :] * frac[:, None]                 # (G + 1, n)
        llg = _ml_loglik_grid(grid, ys, vs, ms, X, reml, intercept_only)
        drops = llg[1:] < llg[:-1]                                  # going lower loses
        first = np.argmax(drops, axis=0)
        peak = drops.any(0)
        if peak.any():
            r = np.flatnonzero(peak)
            t0 = grid[first[r], r]
            t_new, c_new, i_new = _ml_iterate(ys[:, r], vs[:, r], ms[:, r], X, reml, t0,
                                              intercept_only, tol, maxiter)
            sel = zero[r]
            t2[sel], conv[sel] = t_new, c_new
            its[sel] += i_new

    ### metafor's ll0check: prefer tau2 = 0 when its likelihood is higher
    pos = idx[t2[idx] > 0]
    if pos.size:
        ys, vs, ms = y[:, pos], v[:, pos], m[:, pos]
        ll_hat = _ml_derivs(t2[pos], ys, vs, ms, X, reml, intercept_only)[0]
        ll_0 = _ml_derivs(np.zeros(pos.size), ys, vs, ms, X, reml, intercept_only)[0]
        t2[pos] = np.where(ll_0 - ll_hat > 1e-12, 0.0, t2[pos])
    return t2, conv, its


def _ml_loglik_grid(grid, ys, vs, ms, X, reml, intercept_only):
    """(Restricted) log-likelihood at every grid point, (G, n) for grid (G, n).

    Intercept-only: one vectorised pass over (G, k, n) blocks of about
    2^20 elements; otherwise one ``_ml_derivs`` call per grid row.
    """
    G, n = grid.shape
    if not intercept_only:
        return np.stack([_ml_derivs(grid[g], ys, vs, ms, X, reml, False)[0] for g in range(G)])
    k = ys.shape[0]
    out = np.empty((G, n))
    step = max(1, (1 << 20) // (G * k))
    for s in range(0, n, step):
        sl = slice(s, s + step)
        y, m = ys[None, :, sl], ms[None, :, sl]
        vt = vs[None, :, sl] + grid[:, None, sl]
        w = m / vt
        sw = w.sum(1)
        beta = (w * y).sum(1) / sw
        r = y - beta[:, None, :]
        with np.errstate(divide="ignore"):
            ll = -0.5 * (m * np.log(vt)).sum(1) - 0.5 * (w * r * r).sum(1)
            if reml:
                ll -= 0.5 * np.log(sw)
        out[:, sl] = ll
    return out


def _ml_iterate(ys, vs, ms, X, reml, start, intercept_only, tol, maxiter):
    """The safeguarded Newton iteration of ``_solve_ml`` from ``start`` (n,)."""
    n = start.size
    acc = start.astype(float).copy()      # last accepted point
    ll_acc = np.full(n, -np.inf)          # its likelihood
    step = np.zeros(n)                    # proposed step from acc
    cand = acc.copy()                     # where to evaluate next
    lo = np.full(n, -np.inf)              # largest tau2 with score > 0
    hi = np.full(n, np.inf)               # smallest tau2 with score < 0
    wid = np.arange(n)                    # working row -> output position
    done_t = acc.copy()
    done_c = np.zeros(n, dtype=bool)
    done_i = np.zeros(n, dtype=int)
    for it in range(1, maxiter + 1):
        ll, sc, obs, exp_ = _ml_derivs(cand, ys, vs, ms, X, reml, intercept_only)
        # 3. reject candidates that lower the likelihood beyond rounding
        worse = ll < ll_acc - 1e-11 * (1.0 + np.abs(ll_acc))
        worse &= np.isfinite(ll_acc)
        good = ~worse & np.isfinite(ll)
        acc = np.where(good, cand, acc)
        ll_acc = np.where(good, ll, ll_acc)
        lo = np.where(good & (sc > 0), np.maximum(lo, cand), lo)
        hi = np.where(good & (sc < 0), np.minimum(hi, cand), hi)
        # 1. Newton where concave, else Fisher scoring
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = np.where(obs > 0, sc / obs, sc / exp_)
        newton = np.where(np.isfinite(newton), newton, 0.0)
        step = np.where(good, newton, 0.5 * step)
        nxt = np.maximum(acc + step, 0.0)
        # 2. keep inside the sign bracket; bisect when a step leaves it
        out = (nxt >= hi) | (nxt <= lo)
        mid = np.where(np.isfinite(hi), 0.5 * (np.maximum(lo, 0.0) + hi), nxt)
        nxt = np.where(out & np.isfinite(hi), mid, nxt)
        step = nxt - acc
        fin = (np.abs(step) <= tol * np.maximum(1.0, acc)) | (good & (sc == 0))
        pos = wid[fin]
        done_t[pos] = nxt[fin]
        done_c[pos] = True
        done_i[pos] = it
        cand = nxt
        if fin.all():
            break
        if fin.any():
            keep = ~fin
            # compact the working arrays so finished datasets cost nothing
            ys, vs, ms = ys[:, keep], vs[:, keep], ms[:, keep]
            acc, ll_acc, step, cand = acc[keep], ll_acc[keep], step[keep], cand[keep]
            lo, hi, wid = lo[keep], hi[keep], wid[keep]
    else:
        done_t[wid] = acc
        done_i[wid] = maxiter
    return done_t, done_c, done_i


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
class BatchFit(ReadOnlyArrays):
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


def rma(y: ArrayLike, v: ArrayLike, method: str = "REML", test: str = "z", *,
        X: ArrayLike | None = None, mask: ArrayLike | None = None, alpha: float = 0.05,
        tau2: ArrayLike | None = None, tol: float = TOL, maxiter: int = MAXITER) -> BatchFit:
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
    0.4835
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
        crit = distributions.norm.isf(alpha / 2) * np.ones(d)
        pval = 2 * distributions.norm.sf(np.abs(stat))
    else:
        df = np.where(dof > 0, dof, np.nan).astype(float)
        crit = distributions.t.isf(alpha / 2, df)
        pval = 2 * distributions.t.sf(np.abs(stat), df)
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
            QM_p = distributions.chi2.sf(QM, mm)
        else:
            QM = QM / mm
            QM_df = (mm, dof)
            QM_p = distributions.f.sf(QM, mm, np.where(dof > 0, dof, np.nan))
    else:
        QM = stat[0] ** 2
        QM_df = (1,) if test == "z" else (1, dof)
        QM_p = pval[0]

    ### heterogeneity
    wf = m / v
    _, Af, rf = _wls(y, wf, X)
    Q = np.maximum(0.0, (wf * rf**2).sum(0))
    trAB, _ = _trace_AB(Af, X, wf**2)
    trP = wf.sum(0) - trAB
    has = dof > 0
    Q_p = np.where(has, distributions.chi2.sf(Q, np.where(has, dof, 1)), 1.0)
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


def q_profile_ci(y: ArrayLike, v: ArrayLike, *, X: ArrayLike | None = None,
                 mask: ArrayLike | None = None, alpha: float = 0.05, tol: float = TOL,
                 maxiter: int = MAXITER) -> tuple[np.ndarray, np.ndarray]:
    """Q-profile confidence interval for tau2 (Viechtbauer 2007).

    The bounds solve ``Q(tau2) = chi2_{k-p}`` at the upper and lower
    ``alpha/2`` quantiles; a bound below zero is truncated at 0 (metafor's
    ``confint()``).

    Parameters
    ----------
    y, v : array_like of shape (k,) or (k, d)
    X : array_like of shape (k, p), optional
    mask : array_like of bool, shape (k,) or (k, d), optional
    alpha : float
        The interval has nominal coverage ``1 - alpha``.
    tol, maxiter
        Convergence of the root search.

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
    crit_u = distributions.chi2.isf(alpha / 2, dfs)  # upper quantile -> lower bound
    crit_l = distributions.chi2.ppf(alpha / 2, dfs)  # lower quantile -> upper bound
    ub, conv_u, _ = _solve_q_equation(y, v, m, X, crit_l, tol=tol, maxiter=maxiter, active=ok)
    lb, conv_l, _ = _solve_q_equation(y, v, m, X, crit_u, tol=tol, maxiter=maxiter, active=ok)
    lb = np.where(ok, lb, np.nan)
    ub = np.where(ok, ub, np.nan)
    return lb, ub


def prediction_interval(fit: BatchFit, *, pi_df: str = "metafor") -> tuple[np.ndarray, np.ndarray]:
    """Prediction interval for an intercept-only model.

    ``est +/- crit * sqrt(tau2 + se^2)``.

    Parameters
    ----------
    fit : BatchFit
        An intercept-only fit of d datasets.
    pi_df : {"metafor", "k-1", "k-2", "z"}
        ``"metafor"`` (z under ``test="z"``, t(k-1) under knha), ``"k-1"``
        (R's meta), ``"k-2"`` (Higgins, Thompson & Spiegelhalter 2009; Riley
        et al. 2011), or ``"z"``.

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
        crit = distributions.norm.isf(fit.alpha / 2) * np.ones_like(k)
    else:
        df = k - 1 if pi_df == "k-1" else k - 2
        crit = np.where(df > 0, distributions.t.isf(fit.alpha / 2, np.where(df > 0, df, 1)), np.nan)
    return est - crit * half, est + crit * half
