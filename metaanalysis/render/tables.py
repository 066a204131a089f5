"""The CSV tables of one protocol's run: a RunResult -> name -> CSV text.

:func:`tables` lays out the run's numbers as rows and columns (studies,
effects, pooled estimates, heterogeneity, subgroup tests, sensitivity
analyses, claims); :mod:`metaanalysis.write` only writes the text. Unlike the
reports, the tables keep numbers at full precision: a float is written as its
``repr`` (the double, byte-stable), a missing or non-finite value as an empty
cell, like ``null`` in results.json. Text that a spreadsheet would run as a
formula gets a leading ``'`` (:func:`csv_cell`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from typing import TYPE_CHECKING, Any

from metaanalysis.render import claims_text
from metaanalysis.stats.results import _plain

if TYPE_CHECKING:
    from metaanalysis.analysis.pipeline import Analysis, RunResult
    from metaanalysis.stats.results import FitResult

__all__ = ["FORMULA_STARTS", "FIT_COLS", "csv_cell", "csv_text", "tables"]

#: A text cell starting with one of these is a formula to a spreadsheet
#: (OWASP "CSV injection": = + - @, tab and carriage return).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

#: A text cell that is just a number (e.g. "-1.5") is data, not a formula: left as is.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")

#: The columns of one fitted model in pooled.csv and sensitivity.csv.
FIT_COLS = ["k", "estimate", "se", "ci_lb", "ci_ub", "pval", "pi_lb", "pi_ub", "tau2", "tau2_ci_lb",
            "tau2_ci_ub", "I2", "H2", "Q", "Q_df", "Q_p", "method", "test"]

#: The columns of heterogeneity.csv (main analysis and strata).
HET_COLS = ["analysis", "level", "k", "tau2", "tau2_ci_lb", "tau2_ci_ub", "I2", "H2", "Q", "Q_df",
            "Q_p", "pi_lb", "pi_ub"]

#: The effects.csv columns taken from each comparison as they are.
_EFFECT_FIELDS = ("key", "study", "arm", "outcome", "timepoint_weeks", "scale", "yi", "vi", "sei",
                  "year", "baseline_score", "log10_dose", "duration_weeks", "n_total",
                  "rob_overall")


def csv_cell(value: Any) -> str | int:
    """One CSV cell as ``meta run`` writes it: the one place for the rule.

    Parameters
    ----------
    value : Any
        A number, text, None or a bool.

    Returns
    -------
    str or int
        None (and a non-finite float, null in results.json) is empty, a float
        is ``repr`` (full precision), an int is itself, and text that a
        spreadsheet would run as a formula gets a leading ``'`` (OWASP's
        rule). Text that is only a number is written unchanged.
    """
    value = _plain(value)  # numpy scalars as Python numbers, NaN as None
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """``rows`` as CSV text with a header of ``columns`` (other keys ignored, "\\n" line ends).

    Parameters
    ----------
    rows : list of dict
        One dict per row, column name -> value (a missing key is an empty cell).
    columns : list of str
        The columns, in order.

    Returns
    -------
    str
        The CSV text, every cell written by :func:`csv_cell`.
    """
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: csv_cell(r.get(k)) for k in columns})
    return buf.getvalue()


def _fit_row(fit: FitResult) -> dict:
    """One fitted model's :data:`FIT_COLS` (``tau2_ci`` split into its bounds)."""
    row = {k: getattr(fit, k, None) for k in FIT_COLS}
    ci = fit.tau2_ci or (None, None)
    row["tau2_ci_lb"], row["tau2_ci_ub"] = ci[0], ci[1]
    return row


def _effect_row(c, strata_names: list[str]) -> dict:
    """One comparison's row of effects.csv."""
    row = {k: getattr(c, k) for k in _EFFECT_FIELDS if k != "sei"}
    row["sei"] = math.sqrt(c.vi)
    row = {k: row[k] for k in _EFFECT_FIELDS}  # the column order above
    row.update({f"stratum_{n}": c.attrs.get(n) for n in strata_names})
    row["flags"] = ";".join(c.flags)
    row["derivations"] = " | ".join(d.method + ": " + d.formula for d in c.extraction.derivations)
    return row


def tables(run: RunResult) -> dict[str, str]:
    """The CSV tables of a run.

    Parameters
    ----------
    run : RunResult
        One protocol's run (:func:`metaanalysis.analysis.pipeline.run_protocol`).

    Returns
    -------
    dict of str to str
        File name (``studies.csv``, ``effects.csv``, ``pooled.csv``,
        ``heterogeneity.csv``, ``subgroup_tests.csv``, ``sensitivity.csv``,
        ``claims.csv``) -> its CSV text.
    """
    studies = [{**s, "comparisons": ";".join(s.get("comparisons", []) or [])} for s in run.studies]
    strata_names = [s.name for s in run.protocol.strata]
    effects = [_effect_row(c, strata_names) for c in run.comparisons]
    pooled: list[dict] = []
    het: list[dict] = []

    def add(analysis: Analysis, kind: str) -> None:
        res = analysis.result
        if res is None:
            pooled.append({"analysis": analysis.name, "kind": kind, "level": "",
                           "note": analysis.note})
            return
        pooled.append({"analysis": analysis.name, "kind": kind, "level": "overall",
                       **_fit_row(res.overall)})
        if res.by is None:
            return
        for lvl, sub in res.subgroups:
            pooled.append({"analysis": analysis.name, "kind": kind, "level": lvl, **_fit_row(sub)})
        het.append({"analysis": analysis.name, "by": res.by, "Q_between": res.Q_between,
                    "Q_between_df": res.Q_between_df, "Q_between_p": res.Q_between_p,
                    "subgroup_test": res.subgroup_test})

    add(run.main, "main")
    for a in run.strata:
        add(a, "stratum")
    for a in run.sensitivity:
        add(a, "sensitivity")
    heterogeneity = [{"analysis": r["analysis"], "level": r["level"],
                      **{k: r.get(k) for k in HET_COLS[2:]}}
                     for r in pooled if r.get("kind") in ("main", "stratum") and "k" in r]
    sens = [r for r in pooled if r.get("kind") == "sensitivity"]
    claims = [{"id": c.id, "verdict": c.verdict, "certainty": c.certainty, "finding": c.finding,
               "summary": claims_text.verdict_summary(c)} for c in run.claims]
    return {
        "studies.csv": csv_text(studies, ["id", "purpose", "status", "reason", "awaiting_data",
                                          "comparisons"]),
        "effects.csv": csv_text(effects, list(effects[0].keys()) if effects else ["key"]),
        "pooled.csv": csv_text(pooled, ["analysis", "kind", "level", "note"] + FIT_COLS),
        "heterogeneity.csv": csv_text(heterogeneity, HET_COLS),
        "subgroup_tests.csv": csv_text(het, ["analysis", "by", "Q_between", "Q_between_df",
                                             "Q_between_p", "subgroup_test"]),
        "sensitivity.csv": csv_text(sens, ["analysis", "level", "note"] + FIT_COLS),
        "claims.csv": csv_text(claims, ["id", "verdict", "certainty", "finding", "summary"]),
    }
