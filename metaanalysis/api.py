"""The public Python API: ``pool`` and ``regress`` over a pandas DataFrame.

This layer checks the input (one clear error naming the row and column),
computes effect sizes, calls the batched numerics with d = 1 and wraps the
result in the frozen containers of :mod:`metaanalysis.stats.results`.
"""

from __future__ import annotations

import math

import numpy as np

from metaanalysis.stats import binary, distributions, fit
from metaanalysis.stats.effects import BINARY, MEASURES, escalc
from metaanalysis.errors import InputError
from metaanalysis.stats.results import FitResult, PoolResult, RegressionResult, StudyRow

ALL_METHODS = fit.METHODS + ("MH", "PETO")

COLUMNS = {
    "MD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "SMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "ROM": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "RR": ("ai", "n1i", "ci", "n2i"),
    "OR": ("ai", "n1i", "ci", "n2i"),
    "RD": ("ai", "n1i", "ci", "n2i"),
}

TEST_TEXT = {
    "z": "Wald-type z tests and intervals",
    "knha": "Hartung-Knapp-Sidik-Jonkman: t with k-1 df, variance scaled by Q_w/(k-1)",
    "adhoc": "Knapp-Hartung with metafor's ad hoc modification: scaling factor truncated below at 1",
}


# ----------------------------------------------------------------------------
# input checking


#: Minus-like characters that are not ASCII '-' (float() refuses them): the
#: error says what they are instead of just "not a number".
_LOOKALIKE_MINUS = "\u2212\u2010\u2011\u2012\u2013\u2014\ufe63\uff0d"
#: Columns that count people or events: whole numbers only.
COUNT_COLUMNS = ("n1i", "n2i", "ai", "ci")


def _numeric_column(data, col, file=None):
    """Return a float array for ``col`` or raise naming the first bad row."""
    if col not in data.columns:
        raise InputError(f"missing column '{col}'", file=file, column=col)
    if list(data.columns).count(col) > 1:
        raise InputError("duplicate column", file=file, column=col)
    out = np.empty(len(data))
    for i, val in enumerate(data[col].tolist()):
        if val is None or (isinstance(val, str) and not val.strip()) or (
                isinstance(val, float) and math.isnan(val)):
            raise InputError("empty cell, expected a number", file=file, row=i + 1, column=col)
        if isinstance(val, bool):
            raise InputError(f"expected a number, got {val!r}", file=file, row=i + 1, column=col)
        try:
            x = float(val)
        except (TypeError, ValueError, OverflowError):
            hint = ""
            if isinstance(val, str) and any(c in val for c in _LOOKALIKE_MINUS):
                hint = " (it contains a dash or Unicode minus sign; write the minus as '-')"
            raise InputError(f"expected a number, got {str(val)[:40]!r}{hint}", file=file,
                             row=i + 1, column=col) from None
        if not math.isfinite(x):
            raise InputError(f"expected a finite number, got {str(val)[:40]!r}", file=file,
                             row=i + 1, column=col)
        if col in COUNT_COLUMNS and not x.is_integer():
            raise InputError(f"a count must be a whole number, got {val!r}", file=file,
                             row=i + 1, column=col)
        out[i] = x
    return out


def _check_finite_effects(yi, vi, data, cols, file):
    """Every row's effect size and variance is a finite number (vi > 0)."""
    bad = np.flatnonzero(~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0)))
    if bad.size:
        i = int(bad[0])
        col = _largest_column(data, cols, i)
        raise InputError(f"the effect size cannot be computed in double precision from this "
                         f"row (yi = {float(yi[i])!r}, vi = {float(vi[i])!r}); check its values",
                         file=file, row=i + 1, column=col)


def _largest_column(data, cols, row=None):
    """(column) of the largest |value| among ``cols`` (in ``row``, or anywhere)."""
    best, where = -1.0, None
    for c in cols:
        if c not in data.columns:
            continue
        for i, v in enumerate(data[c].tolist()):
            if row is not None and i != row:
                continue
            try:
                a = abs(float(v))
            except (TypeError, ValueError):
                continue
            if a > best:
                best, where = a, (c, i)
    return where if row is None else (where[0] if where else None)


def _check(cond, msg, col, file):
    bad = np.flatnonzero(~cond)
    if bad.size:
        raise InputError(msg, file=file, row=int(bad[0]) + 1, column=col)


def effect_sizes(data, measure, *, smd_correction="exact", add=0.5, to="only0", drop00=False,
                 file=None):
    """Validate ``data`` and compute ``(yi, vi, arms)`` for ``measure``.

    ``arms`` holds the checked arm-level arrays (or None for generic input),
    for the MH/Peto fits and for the forest plot's data columns.
    """
    measure = str(measure).upper()
    if measure not in MEASURES:
        raise InputError(f"unknown measure '{measure}'; expected one of {', '.join(MEASURES)}",
                         file=file)
    if len(data) == 0:
        raise InputError("no rows", file=file)
    if measure == "GEN":
        if "yi" not in data.columns:
            raise InputError("missing column 'yi': measure GEN needs columns yi and vi (or yi and "
                             "sei)", file=file, column="yi")
        yi = _numeric_column(data, "yi", file)
        if "vi" in data.columns:
            vi = _numeric_column(data, "vi", file)
            _check(vi > 0, "sampling variance must be > 0", "vi", file)
        elif "sei" in data.columns:
            sei = _numeric_column(data, "sei", file)
            _check(sei > 0, "standard error must be > 0", "sei", file)
            with np.errstate(over="ignore", under="ignore"):
                vi = sei**2
        else:
            raise InputError("missing column 'vi' (or 'sei'); measure GEN needs columns yi and "
                             "vi (or yi and sei)", file=file, column="vi")
        _check_finite_effects(yi, vi, data, ("yi", "vi", "sei"), file)
        return yi, vi, None
    _require_columns(data, measure, file)
    cols = {c: _numeric_column(data, c, file) for c in COLUMNS[measure]}
    for c in ("n1i", "n2i"):
        _check(cols[c] > 0, "sample size must be > 0", c, file)
    if measure in ("MD", "SMD", "ROM"):
        for c in ("sd1i", "sd2i"):
            _check(cols[c] > 0, "standard deviation must be > 0", c, file)
        if measure == "ROM":
            for c in ("m1i", "m2i"):
                _check(cols[c] > 0, "a ratio of means needs means > 0", c, file)
        if measure == "SMD":
            _check(cols["n1i"] + cols["n2i"] > 3, "SMD needs n1i + n2i > 3", "n2i", file)
        with np.errstate(all="ignore"):
            yi, vi = escalc(measure, smd_correction=smd_correction, **cols)
        _check_finite_effects(yi, vi, data, COLUMNS[measure], file)
        return yi, vi, cols
    for e, n in (("ai", "n1i"), ("ci", "n2i")):
        _check(cols[e] >= 0, "event count must be >= 0", e, file)
        _check(cols[e] <= cols[n], f"events exceed the group size {n}", e, file)
    with np.errstate(all="ignore"):
        yi, vi = escalc(measure, ai=cols["ai"], n1i=cols["n1i"], ci=cols["ci"], n2i=cols["n2i"],
                        add=add, to=to, drop00=drop00)
    # drop00 leaves double-zero studies undefined on purpose (NaN), and with
    # add=0 a zero cell gives an infinite log ratio that MH/Peto never use:
    # neither is an input error
    if add > 0:
        skip = (np.isnan(yi) & np.isnan(vi)) if drop00 else np.zeros(len(yi), bool)
        _check_finite_effects(np.where(skip, 0.0, yi), np.where(skip, 1.0, vi), data,
                              COLUMNS[measure], file)
    return yi, vi, cols


def needed_columns(measure: str) -> tuple[str, ...]:
    """The columns ``measure`` reads ("GEN": yi and vi; sei may replace vi)."""
    measure = str(measure).upper()
    return ("yi", "vi") if measure == "GEN" else tuple(COLUMNS.get(measure, ()))


def _require_columns(data, measure, file=None):
    """Name every missing column and the whole set the measure needs
    ("missing column 'ai': measure RR needs columns ai, n1i, ci, n2i")."""
    need = needed_columns(measure)
    missing = [c for c in need if c not in data.columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''} {names}: measure "
                         f"{measure} needs columns {', '.join(need)}", file=file, column=missing[0])


def drop_incomplete(data, measure, *, by=None, file=None):
    """Rows with every column ``measure`` needs (and ``by``) filled in, and
    the 1-based numbers of the rows left out.

    Like metafor's ``na.action = "na.omit"``: a row with an empty cell is
    left out instead of stopping the analysis; the caller warns with the
    list. A non-numeric value is still an error (caught later), since it is
    a typo rather than a missing value.

    Returns
    -------
    (pandas.DataFrame, list of int)
    """
    measure = str(measure).upper()
    need = list(needed_columns(measure))
    if measure == "GEN" and "vi" not in data.columns and "sei" in data.columns:
        need = ["yi", "sei"]
    if measure != "GEN":
        _require_columns(data, measure, file)
    cols = [c for c in need + ([by] if by else []) if c in data.columns]
    empty = data[cols].isna() | data[cols].apply(
        lambda col: col.astype(str).str.strip().eq(""))
    bad = empty.any(axis=1).to_numpy()
    dropped = [int(i) + 1 for i in np.flatnonzero(bad)]
    return data.loc[~bad].reset_index(drop=True), dropped


def _labels(data, study_col="study"):
    if study_col in data.columns:
        return [str(s) for s in data[study_col].tolist()]
    return [f"Study {i + 1}" for i in range(len(data))]


# ----------------------------------------------------------------------------
# single fits


def _conventions(measure, method, test, pi_df, smd_correction, add, to, drop00):
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


def fit_one(yi, vi, labels, *, measure="GEN", method="REML", test="z", alpha=0.05,
            pi_df="metafor", arms=None, conventions=None, tau2=None) -> FitResult:
    """Fit one meta-analysis to checked ``yi``/``vi`` (shape (k,)).

    ``tau2`` fixes the heterogeneity variance (a subgroup under a common tau2)
    instead of estimating it; the tau2 CI is then not defined.
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


def _check_options(measure, method, test, alpha, pi_df):
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


def pool(data, measure="MD", method="REML", test="z", by=None, alpha=0.05, *,
         pi_df="metafor", smd_correction="exact", add=0.5, to="only0", drop00=False,
         subgroup_tau2="separate", study_col="study", file=None) -> PoolResult:
    """Pool the studies in ``data``; optionally by subgroup.

    Parameters
    ----------
    data : pandas.DataFrame
        metafor's column names: ``m1i sd1i n1i m2i sd2i n2i`` (continuous,
        group 1 = treatment), ``ai n1i ci n2i`` (binary), ``yi vi`` or
        ``yi sei`` (generic). An optional ``study`` column labels rows.
    measure : {"MD", "SMD", "RR", "OR", "RD", "GEN"}
    method : {"FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML", "MH", "PETO"}
    test : {"z", "knha", "adhoc"}
    by : str, optional
        Column whose levels are fitted separately; adds the test for subgroup
        differences.
    alpha : float
        Intervals have nominal coverage ``1 - alpha``.
    pi_df : {"metafor", "k-1", "k-2", "z"}
        Prediction-interval distribution (metafor: z, or t(k-1) under knha).
    subgroup_tau2 : {"separate", "common"}
        ``separate`` (RevMan, R meta): each subgroup its own tau2; Q_between
        from the subgroup estimates and SEs with inverse-variance weights.
        ``common``: a mixed-effects model with the subgroup as a categorical
        moderator and metafor's QM test.

    Returns
    -------
    PoolResult
        Frozen; ``.to_dict()`` gives plain Python values.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"yi": [0.1, 0.5, 0.9], "vi": [0.01, 0.02, 0.03]})
    >>> round(pool(df, "GEN", "DL").estimate, 4)
    0.4842
    """
    measure, method = _check_options(measure, method, test, alpha, pi_df)
    if subgroup_tau2 not in ("separate", "common"):
        raise InputError("subgroup_tau2 must be 'separate' or 'common'")
    yi, vi, arms = effect_sizes(data, measure, smd_correction=smd_correction, add=add, to=to,
                                drop00=drop00, file=file)
    labels = _labels(data, study_col)
    groups = None
    if by is not None:
        if by not in data.columns:
            raise InputError(f"missing column '{by}' (named by --by)", file=file, column=by)
        groups = []
        for i, g in enumerate(data[by].tolist()):
            if g is None or (isinstance(g, float) and math.isnan(g)) or not str(g).strip():
                # an empty level would become a subgroup called "nan" or ""
                raise InputError("empty subgroup value (every row needs a level of the --by "
                                 "column)", file=file, row=i + 1, column=by)
            groups.append(str(g).strip() if isinstance(g, str) else str(g))
    with np.errstate(all="ignore"):
        res = pool_effects(yi, vi, labels, measure=measure, method=method, test=test, by=by,
                           groups=groups, alpha=alpha, pi_df=pi_df, arms=arms,
                           subgroup_tau2=subgroup_tau2,
                           conventions=_conventions(measure, method, test, pi_df,
                                                    smd_correction, add, to, drop00))
    _check_finite_result(res, method, data, COLUMNS.get(measure, ("yi", "vi", "sei")), file)
    return res


def _check_finite_result(res: PoolResult, method, data, cols, file):
    """Refuse a result that overflowed (tau2 = inf from values near 1e308).

    A Mantel-Haenszel or Peto estimate may be undefined (no events in one
    arm across all studies): that is reported as a warning, not here.
    """
    fits = [("", res.overall)] + [(f" (subgroup {lvl})", f) for lvl, f in res.subgroups]
    for where, f in fits:
        if method in ("MH", "PETO"):
            continue
        for name in ("estimate", "se", "tau2", "ci_lb", "ci_ub"):
            val = getattr(f, name)
            if val is None or not math.isfinite(val):
                big = _largest_column(data, cols)
                at = (f"; the largest value is in row {big[1] + 1} (line {big[1] + 2}), column "
                      f"'{big[0]}'" if big else "")
                raise InputError(f"the result is not finite ({name} = {val}{where}): the values "
                                 f"are too large (or too small) to pool in double precision"
                                 f"{at}", file=file)


def pool_effects(yi, vi, labels, *, measure, method="REML", test="z", by=None, groups=None,
                 alpha=0.05, pi_df="metafor", arms=None, subgroup_tau2="separate",
                 conventions=None) -> PoolResult:
    """Pool precomputed effects ``yi``/``vi`` (shape (k,)), optionally by subgroup.

    The workhorse behind :func:`pool`, for callers (the protocol pipeline)
    whose effects come from mixed sources: per-arm data for some studies and
    reported differences for others. ``measure`` labels the scale (log for
    RR/OR); ``groups`` gives each study's subgroup level when ``by`` is set.
    """
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    conv = conventions if conventions is not None else _conventions(
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


def _common_tau2_levels(yi, vi, labels, groups, levels, D, full, *, measure, method, test,
                        alpha, pi_df, conventions):
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


def subgroup_difference(estimates, ses):
    """Test for subgroup differences from subgroup estimates and SEs.

    ``Q_between = sum w_j (b_j - b_bar)^2`` with ``w_j = 1/se_j^2``, on
    ``J - 1`` df (Borenstein et al. 2009, ch. 19; RevMan; R meta). Subgroups
    whose estimate is undefined are left out.

    Returns
    -------
    (Q, df, p) : tuple; ``(None, 0, None)`` with fewer than two subgroups.
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


# ----------------------------------------------------------------------------
# meta-regression


def design_matrix(data, mods):
    """Build ``X`` (k, p) with an intercept from moderator columns.

    Numeric columns enter as they are; other columns become treatment-coded
    dummies with the first level (in order of appearance) as reference.
    """
    cols = [np.ones(len(data))]
    names = ["intrcpt"]
    for mod in mods:
        if mod not in data.columns:
            raise InputError(f"missing moderator column '{mod}'", column=mod)
        series = data[mod]
        try:
            vals = np.array([float(x) for x in series.tolist()])
            if not np.all(np.isfinite(vals)):
                raise ValueError
            cols.append(vals)
            names.append(mod)
        except (TypeError, ValueError):
            lv = list(dict.fromkeys(str(x) for x in series.tolist()))
            for lvl in lv[1:]:
                cols.append(np.array([str(x) == lvl for x in series.tolist()], dtype=float))
                names.append(f"{mod}{lvl}")
    X = np.column_stack(cols)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InputError(f"moderators {', '.join(mods)} give a rank-deficient design matrix")
    return X, tuple(names)


def regress(data, mods, measure="GEN", method="REML", test="z", alpha=0.05, *,
            smd_correction="exact", file=None) -> RegressionResult:
    """Mixed-effects meta-regression, as metafor's ``rma(yi, vi, mods=...)``.

    Parameters
    ----------
    data : pandas.DataFrame
    mods : sequence of str
        Moderator columns (numeric, or categorical -> dummies).

    Returns
    -------
    RegressionResult
        Coefficients with SEs and CIs, QM (omnibus test of the moderators),
        QE (residual heterogeneity), tau2 and R2 (percent of tau2 explained
        relative to the intercept-only model, truncated at 0, metafor's
        pseudo-R2; for FE, metafor's adjusted R2 of the weighted regression).
    """
    measure, method = _check_options(measure, method, test, alpha, "metafor")
    if method in ("MH", "PETO"):
        raise InputError("meta-regression needs an inverse-variance method")
    if isinstance(mods, str):
        mods = [mods]
    yi, vi, _ = effect_sizes(data, measure, smd_correction=smd_correction, file=file)
    X, names = design_matrix(data, mods)
    return regress_effects(yi, vi, X, names, method=method, test=test, alpha=alpha)


def regress_effects(yi, vi, X, names, *, method="REML", test="z", alpha=0.05) -> RegressionResult:
    """Meta-regression on precomputed ``yi``/``vi`` (k,) and design ``X`` (k, p)."""
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
