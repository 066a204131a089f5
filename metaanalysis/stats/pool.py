"""From checked effect sizes to result objects: single fits, subgroups, meta-regression.

The array-to-result layer under :mod:`metaanalysis.api` and the protocol
pipeline. It takes per-study ``yi``/``vi`` arrays of shape ``(k,)`` (and a
design ``X`` of shape ``(k, p)``), calls the batched numerics of
:mod:`metaanalysis.stats.fit` and :mod:`metaanalysis.stats.binary` with
d = 1, and wraps the numbers in the frozen containers of
:mod:`metaanalysis.stats.results`. Pure numpy/scipy: the pandas front end
(reading columns, naming bad rows) stays in :mod:`metaanalysis.api`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from metaanalysis.errors import InputError
from metaanalysis.stats import binary, distributions, fit
from metaanalysis.stats.measures import BINARY, MEASURES
from metaanalysis.stats.results import FitResult, PoolResult, RegressionResult, StudyRow

__all__ = ["ALL_METHODS", "TEST_TEXT", "check_options", "describe_conventions", "fit_one",
           "pool_effects", "subgroup_difference", "regress_effects"]

#: Every pooling method: metafor's tau2 estimators plus the two fixed-effect
#: methods from raw counts (Mantel-Haenszel, Peto).
ALL_METHODS = fit.METHODS + ("MH", "PETO")

#: What each ``test`` does, written into every result's ``conventions``.
TEST_TEXT = {
    "z": "Wald-type z tests and intervals",
    "knha": "Hartung-Knapp-Sidik-Jonkman: t with k-1 df, variance scaled by Q_w/(k-1)",
    "adhoc": "Knapp-Hartung with metafor's ad hoc modification: scaling factor truncated below at 1",
}


def check_options(measure: str, method: str, test: str, alpha: float,
                  pi_df: str) -> tuple[str, str]:
    """Check the pooling options against their whitelists (as metafor does on entry).

    Parameters
    ----------
    measure : str
        One of :data:`metaanalysis.stats.measures.MEASURES`, any case.
    method : str
        One of :data:`ALL_METHODS`, any case.
    test : {"z", "knha", "adhoc"}
    alpha : float
        In (0, 1).
    pi_df : {"metafor", "k-1", "k-2", "z"}

    Returns
    -------
    measure, method : str
        Upper-cased.

    Raises
    ------
    InputError
        Naming the bad option and what it may be.
    """
    measure = str(measure).upper()
    method = str(method).upper()
    if measure not in MEASURES:
        raise InputError(f"unknown measure '{measure}'; expected one of {', '.join(MEASURES)}")
    if method not in ALL_METHODS:
        raise InputError(f"unknown method '{method}'; expected one of {' '.join(ALL_METHODS)}")
    if method == "MH" and measure not in BINARY:
        raise InputError("method MH needs a binary measure (RR, OR or RD)")
    if method == "PETO" and measure != "OR":
        raise InputError("method PETO needs measure OR")
    if test not in fit.TESTS:
        raise InputError(f"unknown test '{test}'; expected one of {', '.join(fit.TESTS)}")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise InputError(f"alpha must be between 0 and 1, got {alpha!r}")
    if pi_df not in fit.PI_DFS:
        raise InputError(f"pi_df must be one of {', '.join(fit.PI_DFS)}")
    if method in ("MH", "PETO", "FE") and test != "z":
        raise InputError(f"test '{test}' is for random-effects models, not {method}")
    return measure, method


def describe_conventions(measure: str, method: str, test: str, pi_df: str,
                         smd_correction: str, add: float, to: str,
                         drop00: bool) -> dict[str, str]:
    """The conventions of one fit in words, for the result's ``conventions``.

    Parameters
    ----------
    measure, method, test, pi_df
        As :func:`pool_effects`.
    smd_correction, add, to, drop00
        The effect-size options the ``yi``/``vi`` were computed with
        (:func:`metaanalysis.stats.effects.escalc`).

    Returns
    -------
    dict of str to str
    """
    conv = {
        "tau2_estimator": method,
        "test": TEST_TEXT.get(test, test),
        "tau2_ci": "Q-profile (Viechtbauer 2007); bounds truncated at 0",
        "I2": ("100*(Q-df)/Q" if method in ("FE", "MH", "PETO")
               else "100*tau2/(tau2 + typical within-study variance) (Higgins & Thompson 2002), as metafor"),
        "reference": "metafor 3.8 (rma.uni, rma.mh, rma.peto) conventions",
    }
    if method not in ("FE", "MH", "PETO"):
        conv["prediction_interval"] = {
            "metafor": "z" if test == "z" else "t(k-1)",
            "k-1": "t(k-1) (R meta)",
            "k-2": "t(k-2) (Higgins, Thompson & Spiegelhalter 2009; Riley 2011)",
            "z": "z",
        }[pi_df]
    if measure == "SMD":
        conv["smd"] = ("Hedges' g, exact bias correction J = G(m/2)/(sqrt(m/2)G((m-1)/2)); "
                       "vi = 1/n1+1/n2+g^2/(2(n1+n2)) (metafor)" if smd_correction == "exact" else
                       "Hedges' g, RevMan approximation J = 1-3/(4N-9); vi = 1/n1+1/n2+g^2/(2(N-3.94))")
    if measure == "ROM":
        conv["scale"] = "log ratio of means (metafor ROM)"
    if measure in BINARY:
        conv["scale"] = "log" if measure in ("RR", "OR") else "risk difference"
        conv["zero_cells"] = (f"add {add} to every cell of studies with a zero cell (to='{to}'); "
                              + ("double-zero studies dropped" if drop00 else
                                 "double-zero studies kept (metafor drop00=FALSE)"))
        if method in ("MH", "PETO"):
            conv["zero_cells"] = ("pooled estimate from raw counts; Q from yi/vi with 1/2 added to "
                                  "studies with a zero cell and double-zero studies dropped (metafor)")
    if measure == "MD":
        conv["md_variance"] = "sd1^2/n1 + sd2^2/n2 (metafor vtype='LS')"
    return conv


def fit_one(yi: np.ndarray | Sequence[float], vi: np.ndarray | Sequence[float],
            labels: Sequence[str], *, measure: str = "GEN", method: str = "REML",
            test: str = "z", alpha: float = 0.05, pi_df: str = "metafor",
            arms: Mapping[str, np.ndarray] | None = None,
            conventions: Mapping[str, Any] | None = None,
            tau2: float | None = None) -> FitResult:
    """Fit one meta-analysis to checked ``yi``/``vi`` (shape (k,)).

    Parameters
    ----------
    yi, vi : array_like of shape (k,)
        Effect sizes and sampling variances (checked: finite, vi > 0; NaN
        only for double-zero studies dropped under ``drop00``).
    labels : sequence of str
        k study labels.
    measure : str
        Labels the scale (log for RR, OR, ROM).
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML", "MH", "PETO"}
    test : {"z", "knha", "adhoc"}
    alpha : float
        Intervals have nominal coverage ``1 - alpha``.
    pi_df : {"metafor", "k-1", "k-2", "z"}
    arms : mapping of str to ndarray of shape (k,), optional
        ``ai n1i ci n2i``: needed by MH and Peto.
    conventions : mapping, optional
        Written into the result (see :func:`describe_conventions`).
    tau2 : float, optional
        Fixes the heterogeneity variance (a subgroup under a common tau2)
        instead of estimating it; the tau2 CI is then not defined.

    Returns
    -------
    FitResult

    Raises
    ------
    InputError
        With no usable study.
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = int(np.sum(np.isfinite(yi) & np.isfinite(vi)))
    warnings = []
    z = distributions.norm.isf(alpha / 2)
    if method in ("MH", "PETO"):
        a, n1, c, n2 = arms["ai"], arms["n1i"], arms["ci"], arms["n2i"]
        if method == "MH":
            r = binary.mantel_haenszel(a, n1 - a, c, n2 - c, measure, alpha)
        else:
            r = binary.peto(a, n1 - a, c, n2 - c, alpha)
            yi, vi = r.yi, r.vi
        if not np.isfinite(r.estimate):
            warnings.append("MH estimate undefined: no events in one arm across all studies")
        studies = tuple(
            StudyRow(lbl, float(y), float(v), float(math.sqrt(v)) if np.isfinite(v) else math.nan,
                     float(y - z * math.sqrt(v)) if np.isfinite(v) else math.nan,
                     float(y + z * math.sqrt(v)) if np.isfinite(v) else math.nan, float(w))
            for lbl, y, v, w in zip(labels, yi, vi, r.weights))
        return FitResult(k=len(a), measure=measure, method=method, test="z", estimate=r.estimate,
                         se=r.se, stat=r.stat, df=None, ci_lb=r.ci_lb, ci_ub=r.ci_ub, pval=r.pval,
                         tau2=0.0, tau2_ci=(None, None), tau=0.0, I2=r.I2, H2=r.H2, Q=r.Q,
                         Q_df=r.Q_df, Q_p=r.Q_p, pi_lb=None, pi_ub=None, alpha=alpha,
                         conventions={**(conventions or {}), **r.extra} if r.extra else (conventions or {}),
                         studies=studies, warnings=tuple(warnings))
    if k == 0:
        raise InputError("no studies with a usable effect size")
    if k == 1:
        warnings.append("k = 1: tau2 is set to 0 and there is no heterogeneity test")
        if test != "z":
            # a t test on 0 df is undefined (metafor returns NA); the one study's
            # own Wald interval keeps a single-study subgroup in the subgroup test
            warnings.append(f"k = 1: test '{test}' needs k >= 2; the study's Wald z interval is shown")
            test = "z"
    if k == 2 and method not in ("FE",):
        warnings.append("k = 2: tau2 is very imprecisely estimated")
    bf = fit.rma(yi, vi, method, test, alpha=alpha, tau2=None if tau2 is None else [tau2])
    if not bf.converged[0]:
        warnings.append(f"{method} did not converge in {int(bf.iterations[0])} iterations")
    if method != "FE" and k > 1 and bf.tau2[0] == 0:
        warnings.append("tau2 estimated at the boundary (0)")
    if method != "FE" and k > 1:
        if tau2 is None:
            lb, ub = fit.q_profile_ci(yi, vi, alpha=alpha)
            tau2_ci = (float(lb[0]), float(ub[0]))
        else:
            tau2_ci = (None, None)
        pi_lb, pi_ub = fit.prediction_interval(bf, pi_df=pi_df)
        pi_lb, pi_ub = float(pi_lb[0]), float(pi_ub[0])
        if not np.isfinite(pi_lb):
            pi_lb = pi_ub = None
    else:
        tau2_ci = (None, None)
        pi_lb = pi_ub = None
    sei = np.sqrt(vi)
    studies = tuple(
        StudyRow(lbl, float(y), float(v), float(s), float(y - z * s), float(y + z * s), float(w))
        for lbl, y, v, s, w in zip(labels, yi, vi, sei, bf.weights[:, 0]))
    df = bf.df[0]
    return FitResult(
        k=k, measure=measure, method=method, test=test, estimate=float(bf.beta[0, 0]),
        se=float(bf.se[0, 0]), stat=float(bf.stat[0, 0]), df=None if np.isnan(df) else float(df),
        ci_lb=float(bf.ci_lb[0, 0]), ci_ub=float(bf.ci_ub[0, 0]), pval=float(bf.pval[0, 0]),
        tau2=float(bf.tau2[0]), tau2_ci=tau2_ci, tau=float(math.sqrt(bf.tau2[0])),
        I2=float(bf.I2[0]) if k > 1 else None, H2=float(bf.H2[0]) if k > 1 else None,
        Q=float(bf.Q[0]) if k > 1 else None, Q_df=int(bf.Q_df[0]),
        Q_p=float(bf.Q_p[0]) if k > 1 else None, pi_lb=pi_lb, pi_ub=pi_ub, alpha=alpha,
        conventions=conventions or {}, studies=studies, warnings=tuple(warnings),
        converged=bool(bf.converged[0]), iterations=int(bf.iterations[0]))


def pool_effects(yi: np.ndarray | Sequence[float], vi: np.ndarray | Sequence[float],
                 labels: Sequence[str], *, measure: str, method: str = "REML",
                 test: str = "z", by: str | None = None, groups: Sequence[str] | None = None,
                 alpha: float = 0.05, pi_df: str = "metafor",
                 arms: Mapping[str, np.ndarray] | None = None,
                 subgroup_tau2: str = "separate",
                 conventions: Mapping[str, Any] | None = None) -> PoolResult:
    """Pool precomputed effects ``yi``/``vi`` (shape (k,)), optionally by subgroup.

    The workhorse behind :func:`metaanalysis.api.pool`, for callers (the
    protocol pipeline) whose effects come from mixed sources: per-arm data
    for some studies and reported differences for others.

    Parameters
    ----------
    yi, vi : array_like of shape (k,)
    labels : sequence of str
        k study labels.
    measure : str
        Labels the scale (log for RR, OR, ROM).
    method, test, alpha, pi_df, arms
        As :func:`fit_one`.
    by : str, optional
        Name of the subgrouping; when set, ``groups`` gives each study's level.
    groups : sequence of str, optional
        k subgroup levels; subgroups keep their order of first appearance.
    subgroup_tau2 : {"separate", "common"}
        Each subgroup its own tau2 (Q_between from the subgroup estimates),
        or one tau2 shared by all (metafor's QM test of the moderator).
    conventions : mapping, optional
        Default: :func:`describe_conventions` with metafor's effect-size options.

    Returns
    -------
    PoolResult
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    conv = conventions if conventions is not None else describe_conventions(
        measure, method, test, pi_df, "exact", 0.5, "only0", False)
    overall = fit_one(yi, vi, labels, measure=measure, method=method, test=test, alpha=alpha,
                      pi_df=pi_df, arms=arms, conventions=conv)
    if by is None:
        return PoolResult(overall=overall)
    levels = list(dict.fromkeys(groups))
    subs = []
    for lvl in levels:
        idx = np.array([g == lvl for g in groups])
        sub_arms = None if arms is None else {c: a[idx] for c, a in arms.items()}
        sub_labels = [lbl for lbl, keep in zip(labels, idx) if keep]
        subs.append((lvl, fit_one(yi[idx], vi[idx], sub_labels, measure=measure, method=method,
                                  test=test, alpha=alpha, pi_df=pi_df, arms=sub_arms,
                                  conventions=conv)))
    if subgroup_tau2 == "separate":
        Qb, Qb_df, Qb_p = subgroup_difference([f.estimate for _, f in subs], [f.se for _, f in subs])
        label = "separate tau2 per subgroup; Q_between from subgroup estimates (inverse-variance)"
    else:
        if method in ("MH", "PETO"):
            raise InputError("subgroup_tau2='common' needs an inverse-variance method")
        D = np.column_stack([np.array([g == lvl for g in groups], dtype=float) for lvl in levels])
        X = np.column_stack([np.ones(len(groups)), D[:, 1:]])
        bf = fit.rma(yi, vi, method, test, X=X, alpha=alpha)
        Qb, Qb_p = float(bf.QM[0]), float(bf.QM_p[0])
        subs = _common_tau2_levels(yi, vi, labels, groups, levels, D, bf, measure=measure,
                                   method=method, test=test, alpha=alpha, pi_df=pi_df,
                                   conventions=conv)
        Qb_df = len(levels) - 1
        label = "common tau2: mixed-effects model with the subgroup as moderator (metafor QM)"
        if test != "z":
            label += f"; F-test with df ({Qb_df}, {int(bf.QM_df[1][0])})"
    return PoolResult(overall=overall, by=by, subgroups=tuple(subs), Q_between=Qb,
                      Q_between_df=Qb_df, Q_between_p=Qb_p, subgroup_test=label)


def _common_tau2_levels(yi: np.ndarray, vi: np.ndarray, labels: Sequence[str],
                        groups: Sequence[str], levels: Sequence[str], D: np.ndarray,
                        full: fit.BatchFit, *, measure: str, method: str, test: str,
                        alpha: float, pi_df: str,
                        conventions: Mapping[str, Any]) -> tuple[tuple[str, FitResult], ...]:
    """Subgroup rows under one tau2 shared by all subgroups (R meta's
    ``tau.common``; metafor's no-intercept model ``mods = ~ factor(g) - 1``).

    Each level's estimate, SE, test and CI come from the no-intercept
    mixed-effects model (under knha with its k - p df and scaling); its Q and
    I2 describe the level's own studies with the common tau2; the prediction
    interval uses the common tau2.
    """
    t2 = float(full.tau2[0])
    res0 = fit.rma(yi, vi, method, test, X=D, alpha=alpha, tau2=[t2])
    if test == "z" or pi_df == "z":
        crit = distributions.norm.isf(alpha / 2)
    else:
        crit = distributions.t.isf(alpha / 2, float(res0.df[0]))
    conv = {**conventions, "subgroup_tau2": "common tau2 across subgroups (R meta tau.common; "
                                            "metafor mods = ~ factor(g) - 1)"}
    out = []
    for j, lvl in enumerate(levels):
        idx = np.array([g == lvl for g in groups])
        sub = fit_one(yi[idx], vi[idx], [l for l, keep in zip(labels, idx) if keep],
                      measure=measure, method=method, test="z", alpha=alpha, pi_df=pi_df,
                      conventions=conv, tau2=t2)
        est, se = float(res0.beta[j, 0]), float(res0.se[j, 0])
        half = crit * math.sqrt(t2 + se**2)
        df = None if test == "z" else float(res0.df[0])
        out.append((lvl, FitResult(**{
            **sub.__dict__, "test": test, "estimate": est, "se": se,
            "stat": float(res0.stat[j, 0]), "df": df, "pval": float(res0.pval[j, 0]),
            "ci_lb": float(res0.ci_lb[j, 0]), "ci_ub": float(res0.ci_ub[j, 0]),
            "pi_lb": est - half if method != "FE" else None,
            "pi_ub": est + half if method != "FE" else None})))
    return tuple(out)


def subgroup_difference(estimates: Sequence[float | None] | np.ndarray,
                        ses: Sequence[float | None] | np.ndarray
                        ) -> tuple[float | None, int, float | None]:
    """Test for subgroup differences from subgroup estimates and SEs.

    ``Q_between = sum w_j (b_j - b_bar)^2`` with ``w_j = 1/se_j^2``, on
    ``J - 1`` df (Borenstein et al. 2009, ch. 19; RevMan; R meta). Subgroups
    whose estimate is undefined are left out.

    Parameters
    ----------
    estimates, ses : array_like of shape (J,)
        One per subgroup; None or NaN for an undefined one.

    Returns
    -------
    Q : float or None
    df : int
    p : float or None
        ``(None, 0, None)`` with fewer than two subgroups.
    """
    b = np.asarray(estimates, dtype=float)
    s = np.asarray(ses, dtype=float)
    ok = np.isfinite(b) & np.isfinite(s) & (s > 0)
    b, s = b[ok], s[ok]
    if len(b) < 2:
        return None, 0, None
    w = 1 / s**2
    mu = np.sum(w * b) / w.sum()
    Q = float(np.sum(w * (b - mu) ** 2))
    return Q, len(b) - 1, float(distributions.chi2.sf(Q, len(b) - 1))


def regress_effects(yi: np.ndarray | Sequence[float], vi: np.ndarray | Sequence[float],
                    X: np.ndarray, names: Sequence[str], *, method: str = "REML",
                    test: str = "z", alpha: float = 0.05) -> RegressionResult:
    """Meta-regression on precomputed ``yi``/``vi`` (k,) and design ``X`` (k, p).

    Parameters
    ----------
    yi, vi : array_like of shape (k,)
    X : ndarray of shape (k, p)
        Design matrix, first column the intercept.
    names : sequence of str
        p coefficient names.
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"}
    test : {"z", "knha", "adhoc"}
    alpha : float

    Returns
    -------
    RegressionResult
        R2 is metafor's pseudo-R2 (for FE, the adjusted R2 of the weighted
        regression), in percent.

    Raises
    ------
    InputError
        With k <= p.
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k, p = X.shape
    if k <= p:
        raise InputError(f"meta-regression with {p} coefficients needs more than {p} studies (k = {k})")
    bf = fit.rma(yi, vi, method, test, X=X, alpha=alpha)
    warnings = []
    if not bf.converged[0]:
        warnings.append(f"{method} did not converge")
    if method != "FE":
        t0 = fit.estimate_tau2(yi, vi, method).tau2[0]
        R2 = 0.0 if t0 <= 0 else max(0.0, 100 * (t0 - bf.tau2[0]) / t0)
        r2_text = "max(0, (tau2_RE - tau2_ME)/tau2_RE) in percent (metafor)"
    else:
        # metafor's rma.uni for FE with moderators: the adjusted R2 of the
        # weighted regression lm(yi ~ X, weights=1/vi), truncated at 0. Its
        # total and residual sums of squares are the intercept-only Q and QE.
        Q0 = float(fit.rma(yi, vi, "FE").Q[0])
        R2 = 0.0 if Q0 <= 0 else max(0.0, 100 * (1 - (bf.Q[0] / (k - p)) / (Q0 / (k - 1))))
        r2_text = "max(0, adjusted R2 of the weighted regression (weights 1/vi)) in percent (metafor, FE)"
    qm_df = bf.QM_df[0] if test == "z" else (int(bf.QM_df[0]), int(bf.QM_df[1][0]))
    return RegressionResult(
        k=k, method=method, test=test, coef_names=tuple(names),
        beta=tuple(float(x) for x in bf.beta[:, 0]), se=tuple(float(x) for x in bf.se[:, 0]),
        stat=tuple(float(x) for x in bf.stat[:, 0]), pval=tuple(float(x) for x in bf.pval[:, 0]),
        ci_lb=tuple(float(x) for x in bf.ci_lb[:, 0]), ci_ub=tuple(float(x) for x in bf.ci_ub[:, 0]),
        df=None if test == "z" else float(bf.df[0]), tau2=float(bf.tau2[0]),
        I2=float(bf.I2[0]), H2=float(bf.H2[0]), R2=R2, QE=float(bf.Q[0]), QE_df=int(bf.Q_df[0]),
        QE_p=float(bf.Q_p[0]), QM=float(bf.QM[0]), QM_df=qm_df, QM_p=float(bf.QM_p[0]),
        alpha=alpha, conventions={"tau2_estimator": method, "test": TEST_TEXT[test],
                                  "R2": r2_text},
        warnings=tuple(warnings))
