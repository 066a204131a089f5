"""Cochrane reviews in: read a RevMan Web "Data and analyses" CSV export,
infer each analysis's effect measure and model, recompute and compare.

A RevMan export gives, per study row, the input data (2x2 counts, means/SDs,
GIV estimate/SE or O-E/Variance) and RevMan's own printed effect, confidence
interval and % weight, but not the measure, method or model used. This module

1. reads the export (``read_export``), with one-line errors naming the row
   and column of anything it cannot use;
2. infers, per analysis, the data type and measure from the printed effects
   and intervals (``infer_measures``), and the pooling method, model and the
   scope of the printed weights from the printed weights (``infer_models``);
3. recomputes every study row and reports whether the analysis reproduces
   to RevMan's printed precision (``reproduce``), with the pooled result
   under the inferred model;
4. re-analyses every pooled analysis under Cochrane's 2025 defaults
   (``reanalyse``).

Every computation over analyses is batched: the study rows of all analyses
(or subgroups) that share a candidate model are laid out as one ``(k, d)``
array with a mask, and pooled in one call (``fit.rma`` for inverse variance,
``_mh_batch`` for Mantel-Haenszel).

RevMan conventions (Deeks JJ, Higgins JPT. Statistical algorithms in Review
Manager 5, 2010; checked here against the printed numbers of 24 reviews):

* Zero cells: a study with a zero cell gets 0.5 added to all four cells for
  its own estimate and variance (RR, OR, RD). OR: a study with no events, or
  only events, in both arms is "not estimable" (no estimate, no weight).
  RR: only no events in both arms is not estimable; events in every
  participant of both arms give RR = 1 exactly, with the corrected variance.
  RD: always estimable; the difference itself comes from the raw
  proportions (0 for a double-zero study), only its variance from the
  corrected cells. (Each rule is what the printed rows of the 24 reviews
  require; e.g. CD016002 1.1, CD015087 3.9, CD013278 1.3.)
* Mantel-Haenszel weights (fixed effect) use the corrected cells for studies
  with a zero cell (21 of the 24 reviews' MH analyses fail without this);
  random effects with MH data use DerSimonian-Laird with Q computed about
  the MH fixed estimate and inverse-variance study weights.
* Random effects: DerSimonian-Laird (RevMan 5 and RevMan Web until 2024) or
  REML (RevMan's 2025 default; CD013801, CD016064 print REML weights).
* Peto odds ratio per study: ``exp((O - E)/V)`` with ``SE = 1/sqrt(V)``;
  weights proportional to V.
* SMD: Hedges' adjusted g, ``J = 1 - 3/(4N - 9)``, variance
  ``1/n1 + 1/n2 + g^2/(2(N - 3.94))`` (``effects.escalc(..., smd_correction="revman")``).
* Confidence level: inferred per analysis from the printed interval width
  against the standard error (95% nearly everywhere; 90% and 99% exist).
* Weights in analyses with subgroups sum to 100 over the analysis (overall
  total shown) or within each subgroup (subgroup totals only; each subgroup
  then has its own tau2); both are tried.

Dependency rule: numpy, scipy and the statistical core only; formatting is in
``render/revman.py``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from metaanalysis.stats import distributions
from metaanalysis.stats.effects import escalc
from metaanalysis.errors import InputError
from metaanalysis.stats.results import PoolResult
from metaanalysis.stats.fit import prediction_interval, q_profile_ci, rma

# ----------------------------------------------------------------------------
# reading

#: columns every export has; the data columns below may be absent only if
#: no row needs them (older exports lack some)
REQUIRED = ("Analysis group", "Analysis number", "Analysis name", "Study", "Weight",
            "Mean", "CI start", "CI end")
NUMERIC = ("GIV Mean", "GIV SE", "Experimental mean", "Experimental SD", "Experimental cases",
           "Experimental N", "Control mean", "Control SD", "Control cases", "Control N",
           "O-E", "Variance", "Weight", "Mean", "CI start", "CI end")
#: data columns: an export must carry at least one complete set
DATA_SETS = {
    "dichotomous": ("Experimental cases", "Experimental N", "Control cases", "Control N"),
    "continuous": ("Experimental mean", "Experimental SD", "Experimental N", "Control mean",
                   "Control SD", "Control N"),
    "generic inverse variance": ("GIV Mean", "GIV SE"),
    "O-E and variance": ("O-E", "Variance"),
}
ROB2_DOMAINS = ("Bias arising from the randomization process", "Bias due to deviations from intended interventions",
                "Bias due to missing outcome data", "Bias in measurement of the outcome",
                "Bias in selection of the reported result", "Overall bias")
#: RevMan prints per-study results with 6 decimals; half a unit of the last
#: printed digit is the rounding floor under the 1e-4 relative criterion
PRINT_FLOOR = 5e-7
#: the issue's criterion: effect and CI to 1e-4 relative ...
EFFECT_RTOL = 1e-4
#: ... and weights to 0.01 percentage points
WEIGHT_ATOL = 0.01
#: confidence levels RevMan offers (alpha = 1 - level)
ALPHAS = (0.05, 0.01, 0.10)


@dataclass
class Export:
    """Columns of one RevMan export; numeric columns are float arrays (NaN = empty)."""

    path: str
    n: int
    text: dict  # column -> list[str]
    num: dict  # column -> ndarray (n,)
    line: np.ndarray  # CSV line number of each row (header = line 1)

    @property
    def nz(self) -> dict:
        """Numeric columns with empty cells as 0 (RevMan writes unused fields as 0)."""
        if not hasattr(self, "_nz"):
            self._nz = {c: np.nan_to_num(self.num[c], nan=0.0) for c in NUMERIC}
        return self._nz


def _err(path, row, column, msg, lines=None):
    """One-line error naming the data row, its CSV line and the column.

    Quoted cells (RoB 2 support text) may span several lines, so the line
    is the reader's, not ``row + 1``.
    """
    line = lines[row - 1] if lines is not None else row + 1
    where = f"row {row} (line {line})" + (f", column '{column}'" if column else "")
    err = InputError(f"{where}: {msg}", file=str(path))
    err.row, err.column = row, column
    return err


def read_export(path: str | os.PathLike) -> Export:
    """Read a RevMan Web "Data and analyses" CSV export.

    Raises
    ------
    InputError
        Missing file or columns, a truncated row, text in a number cell,
        a group/number that is not an integer, or no analyses at all; the
        message names the row and column.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    if p.is_dir():
        raise InputError("is a folder, expected a RevMan CSV export", file=str(p))
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=str(p)) from None
    if not text.strip():
        raise InputError("empty file: no header and no analyses", file=str(p))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        rows = []
        lines = []
        start = reader.line_num + 1
        for r in reader:
            if r and any(c.strip() for c in r):
                rows.append(r)
                lines.append(start)  # the line the record starts on
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"not a valid CSV table (line {reader.line_num}): {exc}", file=str(p)) from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(f"missing column(s) {', '.join(repr(c) for c in missing)}; is this a RevMan "
                         "'Data and analyses' CSV export?", file=str(p))
    if not any(all(c in header for c in cols) for cols in DATA_SETS.values()):
        raise InputError("no data columns: expected the dichotomous, continuous, GIV or O-E/Variance "
                         "columns of a RevMan export", file=str(p))
    if not rows:
        raise InputError("no analyses: the export has a header but no data rows", file=str(p))
    idx = {h: i for i, h in enumerate(header)}
    for i, r in enumerate(rows, start=1):
        if len(r) != len(header):
            what = "truncated" if len(r) < len(header) else "too long"
            col = header[len(r)] if len(r) < len(header) else None
            raise _err(p, i, col, f"row is {what}: {len(r)} cells, the header has {len(header)}", lines)
    n = len(rows)
    tcols = {h: [r[idx[h]].strip() for r in rows] for h in header}
    num = {}
    for col in NUMERIC:
        arr = np.full(n, np.nan)
        if col in idx:
            for i, s in enumerate(tcols[col]):
                if s in ("", "NA"):
                    continue
                try:
                    arr[i] = float(s)
                except ValueError:
                    raise _err(p, i + 1, col, f"expected a number, got {s[:40]!r}", lines) from None
                if not math.isfinite(arr[i]):
                    raise _err(p, i + 1, col, f"expected a finite number, got {s[:40]!r}", lines)
        num[col] = arr
    for col in ("Analysis group", "Analysis number"):
        for i, s in enumerate(tcols[col]):
            try:
                v = float(s)
                if v != int(v) or v < 0:
                    raise ValueError
            except ValueError:
                raise _err(p, i + 1, col, f"expected a non-negative integer, got {s[:40]!r}", lines) from None
        num[col] = np.array([int(float(s)) for s in tcols[col]], dtype=float)
    for i, s in enumerate(tcols["Study"]):
        if not s:
            raise _err(p, i + 1, "Study", "empty study label", lines)
    for col in ("Experimental cases", "Experimental N", "Control cases", "Control N", "Experimental SD",
                "Control SD", "GIV SE", "Variance"):
        bad = np.flatnonzero(num[col] < 0)
        if bad.size:
            raise _err(p, int(bad[0]) + 1, col, f"must not be negative, got {num[col][bad[0]]:g}", lines)
    return Export(str(p), n, tcols, num, np.array(lines))


# ----------------------------------------------------------------------------
# analyses and candidates


@dataclass
class Analysis:
    """One forest plot of the export: its rows and what was inferred."""

    group: int
    number: int
    name: str
    rows: np.ndarray  # indices into the export
    subgroup: list  # per row: str | None (a key: heading plus subgroup number)
    subgroup_name: list  # per row: the heading as printed, or None
    applicability: list  # per row: SUBGROUP_AND_OVERALL | SUBGROUP_ONLY | OVERALL_ONLY | ""
    data_type: str = ""
    measure: str = ""
    alpha: float = 0.05
    model: str = ""
    weight_scope: str = ""  # "overall" | "subgroup" | "none"
    effect: np.ndarray = None  # recomputed, printed scale (k,)
    ci_lb: np.ndarray = None
    ci_ub: np.ndarray = None
    weight: np.ndarray = None  # percent, NaN = not estimable / no weight
    yi: np.ndarray = None
    vi: np.ndarray = None
    reproduced: bool = False
    reason: str = ""
    dev: dict = field(default_factory=dict)
    pooled: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.group}.{self.number}"


def split_analyses(ex: Export) -> list[Analysis]:
    """Group rows by (Analysis group, Analysis number), in file order."""
    g = ex.num["Analysis group"].astype(int)
    nr = ex.num["Analysis number"].astype(int)
    order: dict = {}
    for i, key in enumerate(zip(g, nr)):
        order.setdefault((int(key[0]), int(key[1])), []).append(i)
    subs = ex.text.get("Subgroup", [""] * ex.n)
    subn = ex.text.get("Subgroup number", [""] * ex.n)
    out = []
    for (gg, nn), rows in order.items():
        # two subgroups may share a heading: the subgroup number (where
        # present) tells them apart; without it, a heading that comes back
        # after another one starts a new subgroup (RevMan writes a
        # subgroup's rows together)
        sg, seen, prev = [], {}, object()
        for i in rows:
            if subn[i]:
                sg.append(f"{subs[i]}\x00{subn[i]}")
                continue
            head = subs[i] or None
            if head != prev:
                seen[head] = seen.get(head, -1) + 1
                prev = head
            sg.append(head if head is None or seen[head] == 0 else f"{head}\x00#{seen[head]}")
        out.append(Analysis(gg, nn, ex.text["Analysis name"][rows[0]], np.array(rows), sg,
                            [subs[i] or None for i in rows],
                            [ex.text.get("Applicability", [""] * ex.n)[i] for i in rows]))
    return out


def _nz(x):
    return np.nan_to_num(x, nan=0.0)


RATIO = {"RR", "OR", "Peto OR", "ratio"}


def _candidate_effects(ex: Export, data_type: str, measure: str):
    """Per-row (yi, vi, bad, usable) of one candidate for every row of the export.

    ``yi``/``vi`` are on the analysis scale (log for ratios); NaN = not
    estimable. ``bad`` marks rows whose data rule the candidate out for their
    whole analysis (e.g. a non-integer event count for dichotomous data);
    an analysis also needs at least one ``usable`` row (e.g. one with SDs).
    """
    nm = ex.nz
    n = ex.n
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if data_type == "dichotomous":
            a, n1, c, n2 = nm["Experimental cases"], nm["Experimental N"], nm["Control cases"], nm["Control N"]
            bad = (n1 <= 0) | (n2 <= 0) | (a > n1) | (c > n2) | (a != np.round(a)) | (c != np.round(c))
            # keep the arithmetic finite on rows that are ruled out anyway
            n1, n2 = np.where(bad, 1.0, n1), np.where(bad, 1.0, n2)
            a, c = np.where(bad, 0.0, a), np.where(bad, 0.0, c)
            if measure == "Peto OR":
                N = n1 + n2
                xt = a + c
                E = xt * n1 / N
                V = xt * (N - xt) * n1 * n2 / (N**2 * (N - 1))
                return (np.where(V > 0, (a - E) / V, np.nan), np.where(V > 0, 1 / V, np.nan), bad,
                        np.ones(n, bool))
            yi, vi = escalc(measure, ai=a, n1i=n1, ci=c, n2i=n2, add=0.5, to="only0")
            if measure == "RR":
                # RevMan: RR is not estimable only with no events in both arms;
                # with events in all participants of both arms it is exactly 1
                # (the 0.5-corrected cells enter only its variance)
                yi = np.where((a == n1) & (c == n2), 0.0, yi)
                dead = (a == 0) & (c == 0)
                yi, vi = np.where(dead, np.nan, yi), np.where(dead, np.nan, vi)
            if measure == "OR":
                # no events, or only events, in both arms: not estimable
                dead = ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))
                yi, vi = np.where(dead, np.nan, yi), np.where(dead, np.nan, vi)
            if measure == "RD":
                # RevMan: the risk difference itself from the raw proportions
                # (0 for a double-zero study); only its variance uses the
                # zero-cell-corrected counts
                yi = a / n1 - c / n2
            return yi, vi, bad, np.ones(n, bool)
        if data_type == "continuous":
            m1, s1, n1 = nm["Experimental mean"], nm["Experimental SD"], nm["Experimental N"]
            m2, s2, n2 = nm["Control mean"], nm["Control SD"], nm["Control N"]
            bad = (n1 <= 0) | (n2 <= 0)
            ok = (s1 > 0) & (s2 > 0) & ~bad
            yi, vi = escalc(measure, m1i=m1, sd1i=s1, n1i=np.where(bad, 2.0, n1), m2i=m2, sd2i=s2,
                            n2i=np.where(bad, 2.0, n2), smd_correction="revman")
            return np.where(ok, yi, np.nan), np.where(ok, vi, np.nan), bad, ok
        if data_type == "generic inverse variance":
            y, se = nm["GIV Mean"], nm["GIV SE"]
            ok = se > 0
            return np.where(ok, y, np.nan), np.where(ok, se**2, np.nan), np.zeros(n, bool), ok
        if data_type == "O-E and variance":
            oe, v = nm["O-E"], nm["Variance"]
            ok = v > 0
            return np.where(ok, oe / v, np.nan), np.where(ok, 1 / v, np.nan), np.zeros(n, bool), ok
    raise ValueError(data_type)


#: (data type, measure) candidates in order of preference when two fit
#: equally well (raw data before derived GIV numbers)
CANDIDATES = (
    ("O-E and variance", "Peto OR"),
    ("dichotomous", "RR"), ("dichotomous", "OR"), ("dichotomous", "RD"), ("dichotomous", "Peto OR"),
    ("continuous", "MD"), ("continuous", "SMD"),
    ("generic inverse variance", "difference"), ("generic inverse variance", "ratio"),
)


def printed_scale(measure: str, yi: np.ndarray, vi: np.ndarray,
                  alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Effect and CI on RevMan's printed scale (ratios exponentiated)."""
    z = distributions.norm.isf(alpha / 2)
    se = np.sqrt(vi)
    lb, ub = yi - z * se, yi + z * se
    if measure in RATIO:
        with np.errstate(over="ignore"):
            return np.exp(yi), np.exp(lb), np.exp(ub)
    return yi, lb, ub


def _rel_dev(calc, printed):
    """Relative deviation, with RevMan's 6-decimal printing as the floor."""
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.maximum(np.abs(calc - printed) - PRINT_FLOOR, 0.0)
        return excess / np.maximum(np.abs(printed), 1e-300)


def _per_analysis_max(values, order, starts):
    """Max of a per-row array within each analysis (rows grouped by ``order``)."""
    return np.maximum.reduceat(values[order], starts)


def infer_measures(ex: Export, analyses: list[Analysis]) -> None:
    """Pick each analysis's data type, measure and confidence level.

    Every candidate (data type, measure) and confidence level is evaluated
    for all rows of the export at once; the worst row deviation per analysis
    comes from one ``reduceat``. The first candidate (in ``CANDIDATES``
    order) within the tolerance wins, else the closest one.
    """
    order = np.concatenate([an.rows for an in analyses])
    starts = np.cumsum([0] + [len(an.rows) for an in analyses[:-1]])
    pm, pl, pu = ex.num["Mean"], ex.num["CI start"], ex.num["CI end"]
    printed_ = np.isfinite(pm)
    na = len(analyses)
    best_dev = np.full(na, np.inf)
    best = np.full(na, -1)
    best_alpha = np.full(na, np.nan)
    found = np.zeros(na, bool)
    cand_data = []
    for ci_, (dt, ms) in enumerate(CANDIDATES):
        yi, vi, bad, usable = _candidate_effects(ex, dt, ms)
        cand_data.append((yi, vi))
        ruled_out = (_per_analysis_max(bad.astype(float), order, starts) > 0) | \
            (_per_analysis_max(usable.astype(float), order, starts) == 0)
        est = np.isfinite(yi) & np.isfinite(vi)
        mism = (printed_ != est).astype(float)
        n_mism = np.add.reduceat(mism[order], starts)
        both = printed_ & est
        for alpha in ALPHAS:
            e, lb, ub = printed_scale(ms, yi, vi, alpha)
            with np.errstate(invalid="ignore"):
                row = np.fmax(np.fmax(_rel_dev(e, pm), _rel_dev(lb, pl)), _rel_dev(ub, pu))
            row = np.where(both, np.where(np.isnan(row), np.inf, row), 0.0)
            dev = _per_analysis_max(row, order, starts)
            # a disagreement on "not estimable" always fails
            dev = np.where(n_mism > 0, np.maximum(dev, 1.0 + n_mism), dev)
            dev = np.where(ruled_out, np.inf, dev)
            take = ~found & (dev < best_dev)
            best_dev = np.where(take, dev, best_dev)
            best = np.where(take, ci_, best)
            best_alpha = np.where(take, alpha, best_alpha)
            found |= best_dev <= EFFECT_RTOL
    for j, an in enumerate(analyses):
        if best[j] < 0:  # every candidate ruled out by the data columns
            an.data_type, an.measure, an.reason = "unknown", "unknown", "no usable data in any layout"
            an.yi = an.vi = np.full(len(an.rows), np.nan)
            continue
        dt, ms = CANDIDATES[best[j]]
        yi, vi = cand_data[best[j]]
        an.data_type, an.measure, an.alpha = dt, ms, float(best_alpha[j])
        an.yi, an.vi = yi[an.rows], vi[an.rows]
        an.dev["effect_rel"] = float(best_dev[j])
        an.effect, an.ci_lb, an.ci_ub = printed_scale(ms, an.yi, an.vi, an.alpha)


# ----------------------------------------------------------------------------
# pooling, batched over units (an analysis, or one subgroup of it)

#: model candidates per measure: (method, model); RevMan offers MH, IV and
#: Peto for dichotomous data and IV for the rest (Peto, fixed, for O-E data)
MODELS = {
    "RR": (("MH", "fixed"), ("MH", "random"), ("IV", "fixed"), ("IV", "random"), ("IV", "random-REML")),
    "OR": (("MH", "fixed"), ("MH", "random"), ("IV", "fixed"), ("IV", "random"), ("IV", "random-REML")),
    "RD": (("MH", "fixed"), ("MH", "random"), ("IV", "fixed"), ("IV", "random"), ("IV", "random-REML")),
    "Peto OR": (("Peto", "fixed"), ("IV", "random"), ("IV", "random-REML")),
}
#: "random" is DerSimonian-Laird (RevMan 5 and RevMan Web before 2025);
#: "random-REML" is RevMan's 2025 default tau2 estimator (reviews published
#: since then print REML weights)
IV_MODELS = (("IV", "fixed"), ("IV", "random"), ("IV", "random-REML"))


@dataclass
class Unit:
    """Rows pooled together: positions within the analysis (estimable rows only)."""

    analysis: int  # index into the list of analyses
    subgroup: str | None
    pos: np.ndarray


def _cells(ex, an, pos):
    rows = an.rows[pos]
    a = _nz(ex.num["Experimental cases"][rows])
    n1 = _nz(ex.num["Experimental N"][rows])
    c = _nz(ex.num["Control cases"][rows])
    n2 = _nz(ex.num["Control N"][rows])
    return a, n1 - a, c, n2 - c


def _pad(cols, kmax, fill):
    out = np.full((kmax, len(cols)), fill, dtype=float)
    for j, col in enumerate(cols):
        out[: len(col), j] = col
    return out


def _mh_batch(a, b, c, d, mask, measure):
    """Mantel-Haenszel estimate (log scale for RR/OR), its variance and the
    study weights, for d units at once. Arrays (k, d); masked rows are zero.

    Studies with a zero cell enter with 0.5 added to each cell, as RevMan
    does for its MH computations (checked against the printed MH weights).
    Variances: Robins, Breslow & Greenland (1986) for OR, Greenland & Robins
    (1985) for RR and RD (the formulas in Deeks & Higgins 2010).
    """
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    inc = np.where(zero & mask, 0.5, 0.0)
    a, b, c, d = ((x + inc) * mask for x in (a, b, c, d))
    n1, n2 = a + b, c + d
    N = np.where(mask, n1 + n2, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "OR":
            R, S = a * d / N, b * c / N
            P, Q = (a + d) / N, (b + c) / N
            sR, sS = R.sum(0), S.sum(0)
            est = np.log(sR / sS)
            var = ((P * R).sum(0) / (2 * sR**2) + (P * S + Q * R).sum(0) / (2 * sR * sS)
                   + (Q * S).sum(0) / (2 * sS**2))
            w = S
        elif measure == "RR":
            R, S = a * n2 / N, c * n1 / N
            sR, sS = R.sum(0), S.sum(0)
            est = np.log(sR / sS)
            var = ((n1 * n2 * (a + c) / N**2 - a * c / N) * mask).sum(0) / (sR * sS)
            w = S
        elif measure == "RD":
            w = n1 * n2 / N
            sw = w.sum(0)
            est = ((a * n2 - c * n1) / N).sum(0) / sw
            var = (((a * b * n2**3 + c * d * n1**3) / (n1 * n2 * N**2)) * mask).sum(0) / sw**2
        else:
            raise ValueError(measure)
    w = w * mask
    return est, var, w


def pool_units(ex: Export, analyses: list[Analysis], units: list[Unit], method: str,
               model: str) -> tuple[list[np.ndarray], list[dict]]:
    """Pool every unit under one (method, model); one batched call.

    Returns
    -------
    weights : list of ndarray
        Per unit, the percent weights of its rows (summing to 100 within the unit).
    pooled : list of dict
        Per unit: estimate, se, ci (analysis scale), tau2, Q, Q_df, I2, k.
    """
    if not units:
        return [], []
    kmax = max(len(u.pos) for u in units)
    ys = [analyses[u.analysis].yi[u.pos] for u in units]
    vs = [analyses[u.analysis].vi[u.pos] for u in units]
    Y = _pad(ys, kmax, 0.0)
    V = _pad(vs, kmax, 1.0)
    M = _pad([np.ones(len(u.pos)) for u in units], kmax, 0.0) > 0
    alphas = np.array([analyses[u.analysis].alpha for u in units])
    if method == "MH":
        measure = analyses[units[0].analysis].measure
        cells = [_cells(ex, analyses[u.analysis], u.pos) for u in units]
        A, B, C, D = (_pad([c[i] for c in cells], kmax, 0.0) for i in range(4))
        est, var, w = _mh_batch(A, B, C, D, M, measure)
        # heterogeneity: Q about the MH estimate with inverse-variance weights
        wi = M / V
        Q = (wi * (Y - est) ** 2).sum(0)
        dfq = M.sum(0) - 1
        if model == "fixed":
            tau2 = np.zeros(len(units))
            se = np.sqrt(var)
        else:
            # DerSimonian-Laird on the MH-fixed Q (RevMan's MH random effects)
            c_ = wi.sum(0) - (wi**2).sum(0) / wi.sum(0)
            with np.errstate(divide="ignore", invalid="ignore"):
                # one study: no heterogeneity to estimate (c_ = 0)
                tau2 = np.where((dfq > 0) & (c_ > 0), np.maximum(0.0, (Q - dfq) / c_), 0.0)
            fit = rma(Y, V, "DL", mask=M, tau2=tau2)
            w = fit.weights
            est, se = fit.beta[0], fit.se[0]
    else:
        fit = rma(Y, V, {"fixed": "FE", "random": "DL", "random-REML": "REML"}[model], mask=M)
        w = fit.weights
        est, se, tau2, Q, dfq = fit.beta[0], fit.se[0], fit.tau2, fit.Q, fit.Q_df
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100 * w / w.sum(0)
        I2 = np.where((dfq > 0) & (Q > 0), np.maximum(0.0, (Q - dfq) / Q) * 100, 0.0)
    z = distributions.norm.isf(alphas / 2)
    weights, pooled = [], []
    for j, u in enumerate(units):
        k = len(u.pos)
        weights.append(pct[:k, j])
        pooled.append({"k": k, "estimate": float(est[j]), "se": float(se[j]),
                       "ci_lb": float(est[j] - z[j] * se[j]), "ci_ub": float(est[j] + z[j] * se[j]),
                       "tau2": float(tau2[j]), "Q": float(Q[j]), "Q_df": int(dfq[j]),
                       "I2": float(I2[j])})
    return weights, pooled


def _units_for(ai, an, scope):
    ok = np.isfinite(an.yi) & np.isfinite(an.vi)
    # RevMan's Applicability: a SUBGROUP_ONLY row is left out of the overall
    # total, an OVERALL_ONLY row out of its subgroup's (none of the 24 shared
    # reviews uses either; all rows there are SUBGROUP_AND_OVERALL)
    app = np.array([a.strip().upper() for a in an.applicability])
    if scope == "overall":
        est = np.flatnonzero(ok & (app != "SUBGROUP_ONLY"))
        return [Unit(ai, None, est)] if est.size else []
    est = np.flatnonzero(ok & (app != "OVERALL_ONLY"))
    out = []
    for sg in dict.fromkeys(an.subgroup):
        pos = np.array([i for i in est if an.subgroup[i] == sg], dtype=int)
        if pos.size:
            out.append(Unit(ai, sg, pos))
    return out


def _model_key(an, method, model, scope):
    return (method, model, an.measure if method == "MH" else "", scope)


def _candidates_for(an):
    scopes = ("overall", "subgroup") if any(s is not None for s in an.subgroup) else ("overall",)
    return [(meth, mod, sc) for meth, mod in MODELS.get(an.measure, IV_MODELS) for sc in scopes]


def _weights_by_key(ex, analyses, wanted):
    """wanted: {key: [analysis index, ...]} -> {(key, ai): (weights (k,), pooled per unit)}."""
    out = {}
    for key, ais in wanted.items():
        method, model, _, scope = key
        units = [u for ai in ais for u in _units_for(ai, analyses[ai], scope)]
        ws, pooled = pool_units(ex, analyses, units, method, model)
        for u, w, p in zip(units, ws, pooled):
            an = analyses[u.analysis]
            vec, plist = out.setdefault((key, u.analysis), (np.full(len(an.rows), np.nan), []))
            vec[u.pos] = w
            plist.append((u.subgroup, p))
    return out


def infer_models(ex: Export, analyses: list[Analysis],
                 progress: Callable[[], object] | None = None) -> None:
    """Pick each analysis's method, model and weight scope from the printed weights.

    All analyses that share a candidate (method, model, measure, scope) are
    pooled in one batched call per candidate.
    """
    pw = {ai: ex.num["Weight"][an.rows] for ai, an in enumerate(analyses)}
    wanted: dict = {}
    for ai, an in enumerate(analyses):
        if an.measure == "unknown":
            continue
        if not np.any(_nz(pw[ai]) > 0):
            an.weight_scope, an.model = "none", "no totals"
            continue
        for meth, mod, sc in _candidates_for(an):
            wanted.setdefault(_model_key(an, meth, mod, sc), []).append(ai)
    got = _weights_by_key(ex, analyses, wanted)
    for ai, an in enumerate(analyses):
        if progress:
            progress()
        if an.measure == "unknown" or an.weight_scope == "none":
            an.weight = np.where(np.isfinite(an.yi), 0.0, np.nan) if an.weight_scope == "none" else None
            continue
        scored = []
        for meth, mod, sc in _candidates_for(an):
            w, plist = got[(_model_key(an, meth, mod, sc), ai)]
            p = pw[ai]
            both = np.isfinite(p) & np.isfinite(w)
            mism = int(np.sum(np.isfinite(p) != np.isfinite(w)))
            dev = float(np.max(np.abs(w[both] - p[both]))) if both.any() else 0.0
            if mism:
                dev = max(dev, 100.0 + mism)
            scored.append((dev, meth, mod, sc, w, plist))
        best = min(scored, key=lambda t: t[0])  # first of equals: fixed before random
        dev, meth, mod, sc, w, plist = best
        an.model = f"{meth}, {mod}" if meth != "Peto" else "Peto, fixed"
        an.weight_scope = sc
        an.weight = w
        an.dev["weight_pp"] = dev
        an.pooled = {"method": meth, "model": mod, "weight_scope": sc,
                     "alternatives": [f"{m1}, {m2} ({s})" for d, m1, m2, s, _, _ in scored
                                      if d <= WEIGHT_ATOL and (m1, m2, s) != (meth, mod, sc)],
                     "_units": plist}


# ----------------------------------------------------------------------------
# reproduce


def _to_printed(measure, est, lb, ub):
    if measure in RATIO:
        return math.exp(est), math.exp(lb), math.exp(ub)
    return est, lb, ub


def _summarise(an, p, label=None):
    e, lb, ub = _to_printed(an.measure, p["estimate"], p["ci_lb"], p["ci_ub"])
    out = {"estimate": e, "ci_lb": lb, "ci_ub": ub, "tau2": p["tau2"], "I2": p["I2"],
           "Q": p["Q"], "Q_df": p["Q_df"], "k": p["k"]}
    if label is not None:
        out = {"subgroup": label, **out}
    return out


def _nonevent_rr_matches(ex, an) -> bool:
    """Does the printed RR equal the risk ratio of NON-events (cases read as non-cases)?"""
    rows = an.rows
    a, n1 = _nz(ex.num["Experimental cases"][rows]), _nz(ex.num["Experimental N"][rows])
    c, n2 = _nz(ex.num["Control cases"][rows]), _nz(ex.num["Control N"][rows])
    if np.any(n1 <= 0) or np.any(n2 <= 0):
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        yi, vi = escalc("RR", ai=n1 - a, n1i=n1, ci=n2 - c, n2i=n2, add=0.5, to="only0")
    e, lb, ub = printed_scale("RR", yi, vi, an.alpha)
    pm = ex.num["Mean"][rows]
    ok = np.isfinite(pm)
    return bool(ok.any()) and float(np.nanmax(_rel_dev(e[ok], pm[ok]))) <= EFFECT_RTOL


def _finish(ex: Export, an: Analysis) -> None:
    """Deviations from the printed numbers, the verdict and its reason."""
    pm, pl, pu = ex.num["Mean"][an.rows], ex.num["CI start"][an.rows], ex.num["CI end"][an.rows]
    pw = ex.num["Weight"][an.rows]
    if an.measure == "unknown":
        an.dev = {"effect": None, "ci": None, "weight": None}
        an.reproduced = False
        return
    both = np.isfinite(pm) & np.isfinite(an.effect)
    with np.errstate(invalid="ignore"):
        de = float(np.max(_rel_dev(an.effect[both], pm[both]), initial=0.0))
        dc = float(max(np.max(_rel_dev(an.ci_lb[both], pl[both]), initial=0.0),
                       np.max(_rel_dev(an.ci_ub[both], pu[both]), initial=0.0)))
    est_mism = int(np.sum(np.isfinite(pm) != np.isfinite(an.effect)))
    if an.weight_scope == "none":
        dw = 0.0
        w_mism = 0
    else:
        wb = np.isfinite(pw) & np.isfinite(an.weight)
        dw = float(np.max(np.abs(an.weight[wb] - pw[wb]), initial=0.0))
        w_mism = int(np.sum(np.isfinite(pw) != np.isfinite(an.weight)))
    an.dev = {"effect": de, "ci": dc, "weight": dw, "not_estimable_mismatches": est_mism + w_mism}
    reasons = []
    if est_mism or de > EFFECT_RTOL or dc > EFFECT_RTOL:
        why = (f"the printed study effects match no measure at 90/95/99% confidence; closest is "
               f"{an.measure} ({an.data_type}) with relative deviation {max(de, dc):.3g}")
        if est_mism:
            why += f" and {est_mism} row(s) disagree on 'not estimable'"
        if an.data_type == "dichotomous" and _nonevent_rr_matches(ex, an):
            why = ("the printed effects are the risk ratio of NON-events (the export's cases read as "
                   "non-cases), which the export's columns do not say")
        reasons.append(why)
    if dw > WEIGHT_ATOL or w_mism:
        alts = _all_model_names(an)
        reasons.append(f"the printed weights match no model ({' | '.join(alts)}; per analysis or per "
                       f"subgroup); closest is {an.model} ({an.weight_scope}) within {dw:.3g} "
                       "percentage points")
        if an.model.startswith("IV, random") and an.weight_scope == "overall" and not w_mism:
            t_fit, d_fit = _tau2_from_weights(an.vi, pw)
            if d_fit <= WEIGHT_ATOL:
                reasons[-1] += (f"; the printed weights are inverse-variance weights with tau2 = "
                                f"{t_fit:.5g} (within {d_fit:.2g} pp), not the converged "
                                f"{'REML' if an.model.endswith('REML') else 'DL'} tau2 "
                                f"{an.pooled['overall']['tau2']:.5g} (presumably a looser "
                                "convergence criterion in RevMan's iteration)")
    an.reproduced = not reasons
    an.reason = "; ".join(reasons)


def _tau2_from_weights(vi, printed_w):
    """The tau2 whose inverse-variance weights 1/(vi + tau2) come closest to
    the printed weights (a diagnostic for weights no estimator reproduces)."""
    from scipy.optimize import minimize_scalar

    ok = np.isfinite(vi) & np.isfinite(printed_w)

    def dev(t):
        w = 1 / (vi[ok] + t)
        return float(np.max(np.abs(100 * w / w.sum() - printed_w[ok])))

    hi = max(10 * float(np.nanmax(vi[ok])), 1.0)
    grid = np.linspace(0.0, hi, 2001)
    t0 = grid[int(np.argmin([dev(t) for t in grid]))]
    step = grid[1]
    res = minimize_scalar(dev, bounds=(max(0.0, t0 - step), t0 + step), method="bounded",
                          options={"xatol": 1e-10})
    return float(res.x), float(res.fun)


def _all_model_names(an):
    return [f"{m}, {mo}" for m, mo in MODELS.get(an.measure, IV_MODELS)]


def _pooled(ex, analyses) -> None:
    """Pooled totals under each analysis's inferred model: the analysis total
    (when weights are per analysis) and every subgroup total, batched."""
    wanted: dict = {}
    for ai, an in enumerate(analyses):
        if an.weight_scope in ("overall", "subgroup") and any(s is not None for s in an.subgroup):
            meth, mod = an.pooled["method"], an.pooled["model"]
            wanted.setdefault(_model_key(an, meth, mod, "subgroup"), []).append(ai)
    got = _weights_by_key(ex, analyses, wanted)
    for ai, an in enumerate(analyses):
        if an.weight_scope not in ("overall", "subgroup"):
            an.pooled = {"shown": False, "note": "RevMan shows this analysis without totals"
                         if an.weight_scope == "none" else "not reproduced: no usable data"}
            continue
        units = an.pooled.pop("_units")
        names = {k: n for k, n in zip(an.subgroup, an.subgroup_name)}
        overall = None
        if an.weight_scope == "overall":
            overall = _summarise(an, units[0][1])
        subs = []
        if any(s is not None for s in an.subgroup):
            plist = units if an.weight_scope == "subgroup" else \
                got[(_model_key(an, an.pooled["method"], an.pooled["model"], "subgroup"), ai)][1]
            subs = [_summarise(an, p, names[s]) for s, p in plist]
        an.pooled.update({"shown": True, "alpha": an.alpha, "overall": overall, "subgroups": subs})


@dataclass
class Review:
    """A reproduced review: its analyses, in file order."""

    path: str
    analyses: list
    export: Export = field(repr=False, default=None)

    def to_dict(self) -> dict:
        """Exactly the JSON of ``meta revman reproduce --json``."""
        out = []
        for an in self.analyses:
            studies = []
            for i, r in enumerate(an.rows):
                def f(x):
                    return None if x is None or not np.isfinite(x[i]) else float(x[i])
                studies.append({"study": _study_label(self.export, r), "subgroup": an.subgroup_name[i],
                                "effect": f(an.effect), "ci_lb": f(an.ci_lb), "ci_ub": f(an.ci_ub),
                                "weight": f(an.weight)})
            md = dict(an.dev)
            md["reason"] = an.reason or None
            out.append({"group": an.group, "number": an.number, "name": an.name,
                        "data_type": an.data_type, "measure": an.measure,
                        "model": an.model, "studies": studies, "pooled": _clean(an.pooled),
                        "reproduced": bool(an.reproduced), "max_deviation": _clean(md)})
        return {"analyses": out}


def _study_label(ex, r):
    return ex.text["Study"][r]


def _clean(obj):
    """JSON-safe: numpy scalars to float/int, NaN/inf to None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def reproduce(path: str | os.PathLike, progress: Callable[[], object] | None = None) -> Review:
    """Read a RevMan export and reproduce every analysis.

    Parameters
    ----------
    path : str or Path
        The review's "Data and analyses" CSV export.
    progress : callable, optional
        Called once per analysis (for a progress bar).

    Returns
    -------
    Review
        ``.analyses`` carries, per analysis, the inferred data type, measure,
        model, confidence level and weight scope, the recomputed study rows,
        the pooled totals, the deviations and (if not reproduced) the reason.
    """
    ex = read_export(path)
    analyses = split_analyses(ex)
    infer_measures(ex, analyses)
    for an in analyses:
        if an.measure == "unknown":
            an.effect = an.ci_lb = an.ci_ub = np.full(len(an.rows), np.nan)
    infer_models(ex, analyses, progress=progress)
    for an in analyses:
        if an.weight is None:
            an.weight = np.full(len(an.rows), np.nan)
    _pooled(ex, analyses)
    for an in analyses:
        _finish(ex, an)
    return Review(str(path), analyses, ex)


def summary_by_type(reviews: Iterable[Review]) -> dict[str, tuple[int, int]]:
    """{data type: (reproduced, total)} over reviews."""
    out: dict = {}
    for rev in reviews:
        for an in rev.analyses:
            r, t = out.get(an.data_type, (0, 0))
            out[an.data_type] = (r + int(an.reproduced), t + 1)
    return out


# ----------------------------------------------------------------------------
# re-analysis under Cochrane's 2025 random-effects defaults

#: Cochrane 2025 (RevMan since January 2025; Handbook chapter 10): REML tau2,
#: Q-profile CI for tau2, Hartung-Knapp-Sidik-Jonkman CI for the mean
#: (untruncated, t with k - 1 df) and a prediction interval (t, k - 1 df;
#: with the HKSJ standard error of the mean, as metafor's predict() under knha)
COCHRANE_2025 = {"method": "REML", "test": "knha", "tau2_ci": "Q-profile", "pi_df": "k-1"}
#: RevMan shows a prediction interval only with at least 3 studies
PI_MIN_K = 3


def _null_excluded(measure, lb, ub):
    """Does the interval exclude no effect (0, or 1 for ratios)?"""
    null = 1.0 if measure in RATIO else 0.0
    return lb > null or ub < null


#: Why a conclusion changes under the 2025 defaults (:class:`Change`.kind).
CHANGE_KINDS = ("ci_now_includes_null", "ci_now_excludes_null", "pi_crosses_null")


@dataclass(frozen=True)
class Change:
    """One change of conclusion under Cochrane's 2025 defaults, with the
    numbers behind it (the render layer words it).

    ``kind`` is one of :data:`CHANGE_KINDS`; the CI changes carry the
    review's model and tau2, the 2025 tau2 and the HKSJ degrees of freedom.
    """

    kind: str
    review_model: str = ""
    review_tau2: float | None = None
    tau2: float | None = None
    df: int | None = None


@dataclass(frozen=True)
class Reanalysed:
    """One pooled unit (an analysis, or one subgroup where RevMan shows
    subgroup totals only) under the review's inferred settings and under
    Cochrane's 2025 defaults.

    ``review`` holds estimate, ci_lb, ci_ub, tau2 and I2 on the printed
    scale; ``cochrane2025`` the same plus tau2_ci_lb/ub, pi_lb/pi_ub and df
    (None where missing or not finite). ``yi``/``vi`` (k,) are the unit's
    effects and variances on the analysis scale, for its forest plot.
    """

    analysis: str
    name: str
    measure: str
    model: str
    k: int
    alpha: float
    review: dict
    cochrane2025: dict
    changes: tuple[Change, ...]
    studies: tuple[str, ...]
    yi: tuple[float | None, ...]
    vi: tuple[float | None, ...]


def reanalyse(review: Review) -> list[Reanalysed]:
    """Every pooled analysis (or subgroup, where RevMan shows subgroup totals
    only) under the review's inferred settings and under Cochrane's 2025
    defaults, with the changes of conclusion and why.

    The 2025 fits for all units are one batched ``rma(..., "REML", "knha")``
    call, one ``q_profile_ci`` call and one ``prediction_interval`` call.

    Returns
    -------
    list of Reanalysed
        In the review's order; :attr:`Reanalysed.changes` is empty when the
        conclusion stands.
    """
    items = []  # (analysis, label, review summary, positions)
    for an in review.analyses:
        p = an.pooled
        if not p.get("shown"):
            continue
        # the same units (rows) the review's totals were computed from
        units = _units_for(0, an, an.weight_scope)
        if an.weight_scope == "overall":
            items.append((an, an.label, p["overall"], units[0].pos))
        else:
            for u, summ in zip(units, p["subgroups"]):
                items.append((an, f"{an.label} / {summ['subgroup']}", summ, u.pos))
    items = [it for it in items if len(it[3]) >= 2]  # one study: nothing to re-analyse
    if not items:
        return []
    kmax = max(len(it[3]) for it in items)
    Y = _pad([it[0].yi[it[3]] for it in items], kmax, 0.0)
    V = _pad([it[0].vi[it[3]] for it in items], kmax, 1.0)
    M = _pad([np.ones(len(it[3])) for it in items], kmax, 0.0) > 0
    # confidence level: each review's own (the same for all its analyses in practice)
    out = []
    for alpha in sorted({it[0].alpha for it in items}):
        sel = np.array([it[0].alpha == alpha for it in items])
        fit = rma(Y[:, sel], V[:, sel], COCHRANE_2025["method"], COCHRANE_2025["test"],
                  mask=M[:, sel], alpha=alpha)
        tlb, tub = q_profile_ci(Y[:, sel], V[:, sel], mask=M[:, sel], alpha=alpha)
        plb, pub = prediction_interval(fit, pi_df=COCHRANE_2025["pi_df"])
        for j, idx in enumerate(np.flatnonzero(sel)):
            an, label, old, pos = items[idx]
            k = len(pos)
            e, lb, ub = _to_printed(an.measure, fit.beta[0, j], fit.ci_lb[0, j], fit.ci_ub[0, j])
            has_pi = k >= PI_MIN_K
            pl_, pu_ = (_to_printed(an.measure, 0.0, plb[j], pub[j])[1:] if has_pi else (None, None))
            new = {"estimate": e, "ci_lb": lb, "ci_ub": ub, "tau2": float(fit.tau2[j]),
                   "tau2_ci_lb": float(tlb[j]), "tau2_ci_ub": float(tub[j]), "I2": float(fit.I2[j]),
                   "pi_lb": pl_, "pi_ub": pu_, "df": k - 1}
            changes = []
            was = _null_excluded(an.measure, old["ci_lb"], old["ci_ub"])
            now = _null_excluded(an.measure, lb, ub)
            if was != now:
                changes.append(Change("ci_now_excludes_null" if now else "ci_now_includes_null",
                                      an.model, _clean(old["tau2"]), new["tau2"], k - 1))
            if has_pi and now and not _null_excluded(an.measure, pl_, pu_):
                changes.append(Change("pi_crosses_null"))
            out.append((int(idx), Reanalysed(
                analysis=label, name=an.name, measure=an.measure, model=an.model, k=k, alpha=alpha,
                review=_clean(old), cochrane2025=_clean(new), changes=tuple(changes),
                studies=tuple(review.export.text["Study"][an.rows[i]] for i in pos),
                yi=tuple(_clean(list(an.yi[pos]))), vi=tuple(_clean(list(an.vi[pos]))))))
    out.sort(key=lambda t: t[0])
    return [r for _, r in out]


#: measure codes of metaanalysis.api for the forest plots (Peto OR is drawn
#: as an odds ratio; GIV ratios on the log scale as generic effects)
_API_MEASURE = {"RR": "RR", "OR": "OR", "Peto OR": "OR", "RD": "RD", "MD": "MD", "SMD": "SMD",
                "difference": "GEN", "ratio": "GEN"}


def forest_result(row: Reanalysed) -> PoolResult:
    """The 2025 fit of one re-analysed unit as a PoolResult, for a forest plot."""
    from metaanalysis.stats.pool import pool_effects

    return pool_effects(np.asarray(row.yi, float), np.asarray(row.vi, float), list(row.studies),
                        measure=_API_MEASURE[row.measure], method=COCHRANE_2025["method"],
                        test=COCHRANE_2025["test"], alpha=row.alpha, pi_df=COCHRANE_2025["pi_df"])


# ----------------------------------------------------------------------------
# import: one analysis's studies as extraction files

#: export column (judgement) -> RoB 2 domain key of the study schema
ROB2_COLUMNS = {
    "randomisation": "Bias arising from the randomization process",
    "deviations": "Bias due to deviations from intended interventions",
    "missing_data": "Bias due to missing outcome data",
    "measurement": "Bias in measurement of the outcome",
    "selection": "Bias in selection of the reported result",
}
ROB2_JUDGEMENTS = {"low risk": "low", "some concerns": "some_concerns", "high risk": "high"}
PURPOSES = ("treatment", "prevention")
COMPARATORS = ("placebo", "prebiotic", "none", "usual_care", "active")


def strip_html(text: str) -> str:
    """RevMan's RoB 2 support HTML as plain text: block-level tags (paragraphs,
    list items, line breaks) separate words, inline tags do not
    (``<i>Lacto</i>bacillus`` stays one word), entities are decoded
    (``&amp;`` -> ``&``). The one implementation; tools/cochrane_import.py uses it."""
    import html
    import re

    t = re.sub(r"</?(p|li|ul|ol|div|br|tr|td|h\d)(\s[^>]*)?/?>", " ", text, flags=re.I)
    t = re.sub(r"<[^>]+>", "", t)
    t = html.unescape(t).replace("\xa0", " ")
    return re.sub(r"\s+", " ", t).strip()


# hygiene (issue 16): the one RoB 2 reader of an export row, shared with tools/cochrane_import.py
def rob2_cells(cell: Callable[[str], str]) -> dict[str, tuple[str, str | None, str]]:
    """The RoB 2 columns of one export row.

    Parameters
    ----------
    cell : callable
        ``cell(column) -> str``: the row's text in ``column`` ("" if absent).

    Returns
    -------
    dict
        Domain key of :data:`ROB2_COLUMNS` (and ``"overall"``) ->
        ``(judgement as exported, schema value or None, support text)``;
        the value is None when the judgement is not one of
        :data:`ROB2_JUDGEMENTS`; the support text is :func:`strip_html`'s.
    """
    out = {}
    for key, head in (*ROB2_COLUMNS.items(), ("overall", "Overall bias")):
        j = cell(f"{head} (judgement)")
        out[key] = (j, ROB2_JUDGEMENTS.get(j.strip().lower()), strip_html(cell(f"{head} (support)")))
    return out


def _study_id(label: str, year: str, taken: set) -> str:
    import re

    base = re.sub(r"[^A-Za-z0-9]", "", label) or "Study"
    if not base[0].isalpha():
        base = "S" + base
    base = base[:70]
    sid, i = base, 2
    while sid in taken:
        sid, i = f"{base}_{i}", i + 1
    taken.add(sid)
    return sid


def import_analysis(path: str | os.PathLike, analysis: str, out_dir: str | os.PathLike, *, purpose: str, comparator: str,
                    outcome: str = "other") -> list[Path]:
    """Write the studies of one analysis as study extraction files.

    Each study row becomes ``OUT/<id>.yaml``: the export's data row is the
    verbatim quote behind every number, the review is the (secondary)
    source, RoB 2 judgements in the export are carried over. What the export
    does not hold (strains, dose, comparator, purpose) is either given by
    the caller (``purpose``, ``comparator``) or left for the extractor and
    said so in ``awaiting_data``.

    Parameters
    ----------
    analysis : str
        ``"G.N"``, e.g. ``"1.2"``.
    purpose : {"treatment", "prevention"}
    comparator : {"placebo", "prebiotic", "none", "usual_care", "active"}
    outcome : str
        The schema's outcome kind (default ``"other"``, labelled with the
        analysis name).

    Returns
    -------
    list of Path
        The files written.
    """
    from ruamel.yaml import YAML

    if purpose not in PURPOSES:
        raise InputError(f"--purpose must be one of {', '.join(PURPOSES)} (the export does not say)")
    if comparator not in COMPARATORS:
        raise InputError(f"--comparator must be one of {', '.join(COMPARATORS)} (the export does not say)")
    rev = reproduce(path)
    ex = rev.export
    found = [an for an in rev.analyses if an.label == analysis]
    if not found:
        known = ", ".join(an.label for an in rev.analyses[:12])
        raise InputError(f"no analysis {analysis!r} in the export (analyses: {known}, ...)",
                         file=str(path))
    an = found[0]
    if an.data_type not in ("dichotomous", "continuous"):
        raise InputError(f"analysis {analysis} holds {an.data_type} data; only dichotomous and "
                         "continuous analyses have per-arm data for study files", file=str(path))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    taken = {p.stem for p in out.glob("*.yaml")}
    url = ex.text.get("review_url", [""] * ex.n)
    doi = ex.text.get("review_doi", [""] * ex.n)
    cols = (("Experimental cases", "Experimental N", "Control cases", "Control N")
            if an.data_type == "dichotomous" else
            ("Experimental mean", "Experimental SD", "Experimental N", "Control mean", "Control SD",
             "Control N"))
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False
    written = []
    for i, r in enumerate(an.rows):
        label = ex.text["Study"][r]
        year_txt = ex.text.get("Study year", [""] * ex.n)[r]
        try:
            year = int(float(year_txt))
        except ValueError:
            import re

            m = re.search(r"(19|20)\d\d", label)
            if not m:
                raise _err(ex.path, int(r) + 1, "Study year", f"no study year for {label!r}",
                           ex.line) from None
            year = int(m.group(0))
        sid = _study_id(label, year_txt, taken)
        row_text = "; ".join([f"Study: {label}"]
                             + ([f"Subgroup: {an.subgroup_name[i]}"] if an.subgroup_name[i] else [])
                             + [f"{c}: {ex.text[c][r]}" for c in cols]
                             + [f"{c}: {ex.text[c][r]}" for c in ("Weight", "Mean", "CI start", "CI end")
                                if c in ex.text])

        def num(col):
            v = float(ex.num[col][r])
            if not np.isfinite(v):
                raise _err(ex.path, int(r) + 1, col, f"empty cell in analysis {analysis}", ex.line)
            return {"value": int(v) if v.is_integer() else v, "quote": "q1"}

        if an.data_type == "dichotomous":
            per_arm = {"probiotic": {"events": num("Experimental cases"), "n": num("Experimental N")},
                       "control": {"events": num("Control cases"), "n": num("Control N")}}
            scale = "events"
        else:
            per_arm = {"probiotic": {"mean": num("Experimental mean"), "sd": num("Experimental SD"),
                                     "n": num("Experimental N")},
                       "control": {"mean": num("Control mean"), "sd": num("Control SD"),
                                   "n": num("Control N")}}
            scale = "final"
        printed_txt = ("not estimable" if not np.isfinite(ex.num["Mean"][r]) else
                       f"{ex.text['Mean'][r]} [{ex.text['CI start'][r]}, {ex.text['CI end'][r]}]")
        study = {
            "schema_version": 1, "id": sid,
            "citation": f"{label}; data as given in Cochrane review {doi[r] or '(DOI not in export)'}, "
                        f"Analysis {analysis}",
            "doi": None, "pmid": None, "year": year, "design": "parallel", "purpose": purpose,
            "status": "included",
            "awaiting_data": "Imported from a RevMan export: strains, dose, duration and the "
                             "comparator's description come from the primary report, not the export; "
                             "check scale (final vs change) for continuous data.",
            "flags": ["secondary_source"],
            "sources": {"s1": {"citation": f"Cochrane review {doi[r] or ''}, Data and analyses, "
                                           f"Analysis {analysis}: {an.name} (RevMan Web CSV export)".strip(),
                               "url": url[r] or None, "kind": "secondary review table",
                               "secondary": True}},
            "quotes": {"q1": {"source": "s1", "location": f"Analysis {analysis}, data row of {label} "
                                                          f"(CSV line {int(ex.line[r])})",
                              "text": row_text}},
            "arms": [
                {"id": "probiotic", "role": "intervention", "name": "experimental arm of the review",
                 "intervention": {"strains": [{"as_written": "not in the RevMan export (see the "
                                                             "primary report)", "registry": None}]}},
                {"id": "control", "role": "control", "name": "control arm of the review",
                 "comparator": comparator},
            ],
            "outcomes": [{"id": f"revman_{an.group}_{an.number}", "outcome": outcome,
                          "outcome_label": an.name, "scale": scale, "per_arm": per_arm,
                          "note": f"RevMan printed {an.measure} {printed_txt}"
                                  + (f", weight {ex.text['Weight'][r]}%" if ex.text["Weight"][r] else "")
                                  + (f"; subgroup: {an.subgroup_name[i]}" if an.subgroup_name[i] else "")}],
        }
        domains = {}
        cells = rob2_cells(lambda col: ex.text.get(col, [""] * ex.n)[r])  # hygiene: shared reader
        for key in ROB2_COLUMNS:
            _, value, sup = cells[key]
            if value is not None:
                d = {"judgement": value}
                if sup:
                    d["note"] = sup[:19_000]
                domains[key] = d
        ov = cells["overall"][1]
        if domains or ov is not None:
            study["rob"] = {"tool": "RoB2", "source": f"Cochrane review {doi[r] or ''} (RevMan export)".strip(),
                            "domains": domains}
            if ov is not None:
                study["rob"]["overall"] = {"judgement": ov}
        target = out / f"{sid}.yaml"
        with target.open("w", encoding="utf-8") as fh:
            yaml.dump(study, fh)
        written.append(target)
    return written
