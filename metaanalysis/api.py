"""The public Python API: ``pool`` and ``regress`` over a pandas DataFrame.

This layer is the pandas front end: it checks the input (one clear error
naming the row and column), computes effect sizes and hands the checked
``(k,)`` arrays to :mod:`metaanalysis.stats.pool`, which fits them and
returns the frozen containers of :mod:`metaanalysis.stats.results`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from metaanalysis.errors import InputError
from metaanalysis.stats.effects import escalc
from metaanalysis.stats.measures import CONTINUOUS, MEASURES
# the array-to-result layer is stats/pool.py; this module is its pandas front end
from metaanalysis.stats.pool import check_options, describe_conventions, pool_effects, regress_effects
from metaanalysis.stats.results import PoolResult, RegressionResult

if TYPE_CHECKING:
    import pandas as pd

#: The columns each measure reads from the data frame (metafor's names).
COLUMNS = {
    "MD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "SMD": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "ROM": ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i"),
    "RR": ("ai", "n1i", "ci", "n2i"),
    "OR": ("ai", "n1i", "ci", "n2i"),
    "RD": ("ai", "n1i", "ci", "n2i"),
}


# ----------------------------------------------------------------------------
# input checking


#: Minus-like characters that are not ASCII '-' (float() refuses them): the
#: error says what they are instead of just "not a number".
_LOOKALIKE_MINUS = "\u2212\u2010\u2011\u2012\u2013\u2014\ufe63\uff0d"
#: Columns that count people or events: whole numbers only.
COUNT_COLUMNS = ("n1i", "n2i", "ai", "ci")


def _numeric_column(data: pd.DataFrame, col: str, file: str | None = None) -> np.ndarray:
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


def _check_finite_effects(yi: np.ndarray, vi: np.ndarray, data: pd.DataFrame,
                          cols: Sequence[str], file: str | None) -> None:
    """Every row's effect size and variance is a finite number (vi > 0)."""
    bad = np.flatnonzero(~(np.isfinite(yi) & np.isfinite(vi) & (vi > 0)))
    if bad.size:
        i = int(bad[0])
        col = _largest_column(data, cols, i)
        raise InputError(f"the effect size cannot be computed in double precision from this "
                         f"row (yi = {float(yi[i])!r}, vi = {float(vi[i])!r}); check its values",
                         file=file, row=i + 1, column=col)


def _largest_column(data: pd.DataFrame, cols: Sequence[str], row: int | None = None) -> Any:
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


def _check(cond: np.ndarray, msg: str, col: str, file: str | None) -> None:
    """Raise naming the first row where ``cond`` (k,) is False."""
    bad = np.flatnonzero(~cond)
    if bad.size:
        raise InputError(msg, file=file, row=int(bad[0]) + 1, column=col)


def effect_sizes(data: pd.DataFrame, measure: str, *, smd_correction: str = "exact",
                 add: float = 0.5, to: str = "only0", drop00: bool = False,
                 file: str | None = None
                 ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray] | None]:
    """Validate ``data`` and compute ``(yi, vi, arms)`` for ``measure``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per study, metafor's column names (see :func:`pool`).
    measure : {"MD", "SMD", "ROM", "RR", "OR", "RD", "GEN"}
    smd_correction, add, to, drop00
        As :func:`metaanalysis.stats.effects.escalc`.
    file : str, optional
        Named in every error.

    Returns
    -------
    yi, vi : ndarray of shape (k,)
    arms : dict of str to ndarray of shape (k,), or None
        The checked arm-level arrays (None for generic input), for the
        MH/Peto fits and for the forest plot's data columns.

    Raises
    ------
    InputError
        Naming the first bad row and column.
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
    if measure in CONTINUOUS:
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
    """The columns ``measure`` reads ("GEN": yi and vi; sei may replace vi).

    Parameters
    ----------
    measure : str
        A measure code, any case.

    Returns
    -------
    tuple of str
        Empty for an unknown measure.
    """
    measure = str(measure).upper()
    return ("yi", "vi") if measure == "GEN" else tuple(COLUMNS.get(measure, ()))


def _require_columns(data: pd.DataFrame, measure: str, file: str | None = None) -> None:
    """Name every missing column and the whole set the measure needs
    ("missing column 'ai': measure RR needs columns ai, n1i, ci, n2i")."""
    need = needed_columns(measure)
    missing = [c for c in need if c not in data.columns]
    if missing:
        names = ", ".join(f"'{c}'" for c in missing)
        raise InputError(f"missing column{'s' if len(missing) > 1 else ''} {names}: measure "
                         f"{measure} needs columns {', '.join(need)}", file=file, column=missing[0])


def drop_incomplete(data: pd.DataFrame, measure: str, *, by: str | None = None,
                    file: str | None = None) -> tuple[pd.DataFrame, list[int]]:
    """Rows with every column ``measure`` needs (and ``by``) filled in, and
    the 1-based numbers of the rows left out.

    Like metafor's ``na.action = "na.omit"``: a row with an empty cell is
    left out instead of stopping the analysis; the caller warns with the
    list. A non-numeric value is still an error (caught later), since it is
    a typo rather than a missing value.

    Parameters
    ----------
    data : pandas.DataFrame
    measure : str
    by : str, optional
        A subgroup column that must be filled in too.
    file : str, optional
        Named in the error for a missing column.

    Returns
    -------
    kept : pandas.DataFrame
        The complete rows, renumbered from 0.
    dropped : list of int
        1-based numbers of the rows left out.
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


def _labels(data: pd.DataFrame, study_col: str = "study") -> list[str]:
    """Study labels: the ``study_col`` column, else "Study 1", "Study 2", ..."""
    if study_col in data.columns:
        return [str(s) for s in data[study_col].tolist()]
    return [f"Study {i + 1}" for i in range(len(data))]


# ----------------------------------------------------------------------------
# pooling


def pool(data: pd.DataFrame, measure: str = "MD", method: str = "REML", test: str = "z",
         by: str | None = None, alpha: float = 0.05, *, pi_df: str = "metafor",
         smd_correction: str = "exact", add: float = 0.5, to: str = "only0",
         drop00: bool = False, subgroup_tau2: str = "separate", study_col: str = "study",
         file: str | None = None) -> PoolResult:
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
    smd_correction, add, to, drop00
        Effect-size options, as :func:`metaanalysis.stats.effects.escalc`.
    subgroup_tau2 : {"separate", "common"}
        ``separate`` (RevMan, R meta): each subgroup its own tau2; Q_between
        from the subgroup estimates and SEs with inverse-variance weights.
        ``common``: a mixed-effects model with the subgroup as a categorical
        moderator and metafor's QM test.
    study_col : str
        Column of study labels.
    file : str, optional
        Named in every error.

    Returns
    -------
    PoolResult
        Frozen; ``.to_dict()`` gives plain Python values.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"yi": [0.1, 0.5, 0.9], "vi": [0.01, 0.02, 0.03]})
    >>> round(pool(df, "GEN", "DL").estimate, 4)
    0.4835
    """
    measure, method = check_options(measure, method, test, alpha, pi_df)
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
                           conventions=describe_conventions(measure, method, test, pi_df,
                                                            smd_correction, add, to, drop00))
    _check_finite_result(res, method, data, COLUMNS.get(measure, ("yi", "vi", "sei")), file)
    return res


def _check_finite_result(res: PoolResult, method: str, data: pd.DataFrame, cols: Sequence[str],
                         file: str | None) -> None:
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


# ----------------------------------------------------------------------------
# meta-regression


def design_matrix(data: pd.DataFrame, mods: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Build ``X`` (k, p) with an intercept from moderator columns.

    Numeric columns enter as they are; other columns become treatment-coded
    dummies with the first level (in order of appearance) as reference.

    Parameters
    ----------
    data : pandas.DataFrame
        k rows.
    mods : sequence of str
        Moderator columns.

    Returns
    -------
    X : ndarray of shape (k, p)
        First column the intercept.
    names : tuple of str
        p coefficient names, metafor's ("intrcpt", "x", "groupB", ...).
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


def regress(data: pd.DataFrame, mods: str | Sequence[str], measure: str = "GEN",
            method: str = "REML", test: str = "z", alpha: float = 0.05, *,
            smd_correction: str = "exact", file: str | None = None) -> RegressionResult:
    """Mixed-effects meta-regression, as metafor's ``rma(yi, vi, mods=...)``.

    Parameters
    ----------
    data : pandas.DataFrame
    mods : str or sequence of str
        Moderator columns (numeric, or categorical -> dummies).
    measure, method, test, alpha, smd_correction, file
        As :func:`pool` (no MH or Peto).

    Returns
    -------
    RegressionResult
        Coefficients with SEs and CIs, QM (omnibus test of the moderators),
        QE (residual heterogeneity), tau2 and R2 (percent of tau2 explained
        relative to the intercept-only model, truncated at 0, metafor's
        pseudo-R2; for FE, metafor's adjusted R2 of the weighted regression).
    """
    measure, method = check_options(measure, method, test, alpha, "metafor")
    if method in ("MH", "PETO"):
        raise InputError("meta-regression needs an inverse-variance method")
    if isinstance(mods, str):
        mods = [mods]
    yi, vi, _ = effect_sizes(data, measure, smd_correction=smd_correction, file=file)
    X, names = design_matrix(data, mods)
    return regress_effects(yi, vi, X, names, method=method, test=test, alpha=alpha)

