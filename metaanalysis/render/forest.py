"""Forest plots in the layout of Cochrane's RevMan.

The plot only draws a fitted result (:class:`~metaanalysis.stats.results.FitResult`
or :class:`~metaanalysis.stats.results.PoolResult`); it never refits. Every number
is rounded here, at drawing time.

Layout
------
The figure is a table laid out in inches: the left columns (study label,
optional free columns such as strain or dose, the per-arm data, weight, the
effect with its CI), the plot panel, and the risk-of-bias dots on the right.
Every text is measured with the Agg renderer before it is placed, so columns
are exactly as wide as their widest cell, long labels are cut with an
ellipsis, and the figure grows with the number of rows. The plot panel is one
Axes whose y data coordinate is the row index, so squares, diamonds and text
rows line up exactly.

Artists carry gids that tests (and anyone post-processing the SVG) can find:
``study-square`` (one PathCollection with one square per drawn study),
``study-ci`` (LineCollection), ``ci-arrow-left``/``ci-arrow-right``,
``diamond-subtotal``/``diamond-total`` (Polygons, clipped to the axis),
``diamond-arrow-left``/``-right`` (Polygon arrowheads), ``prediction-interval``
(Rectangle, clipped), ``pi-arrow-left``/``-right`` (Polygons), ``null-line``, ``rob-dot``.

Axis limits
-----------
By default the axis is symmetric around no effect and shows every central
estimate and the study CIs (with 10 or more studies, the widest 10% may end
in arrows). Pooled intervals (diamonds, prediction intervals) widen it only
while they stay within ``AXIS_STRETCH`` times that range, and a ratio axis
stops at 1/100-100 (``RATIO_AXIS_MAX``) unless an estimate lies beyond:
anything longer (a two-trial Knapp-Hartung interval of 0.02-35, say) is cut
at the axis and ends in an arrow. Ratio bounds in the text columns are never
printed as "0.00" (see :func:`metaanalysis.render.fmt.ratio`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.markers import MarkerStyle
from matplotlib.patches import Polygon, Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.ticker import NullLocator

from metaanalysis.render._common import (
    FONT_FAMILY,
    ROB2_DOMAINS,
    ROB_COLORS,
    ROB_LABELS,
    ROB_MARKERS,
    ROB_SYMBOLS,
    TextMeasure,
    fmt_data,
    fmt_num,
    fmt_p,
    fmt_ratio,
    fmt_small,
    fmt_value,
    is_number,
    new_figure,
    nice_limits,
    rob_level,
    save_figure,
    tick_label,
)
from metaanalysis.render.fmt import MEASURE_NAMES, RATIO_MEASURES
from metaanalysis.stats.results import FitResult, PoolResult

__all__ = ["forest_plot", "save_figure", "DEFAULT_COLUMNS", "MEASURE_NAMES"]

METHOD_NAMES = {"FE": "IV, Fixed", "MH": "M-H, Fixed", "PETO": "Peto, Fixed"}  # else IV, Random

#: How a random-effects fit's test is named in the header, after the tau²
#: estimator ("IV, Random (REML, HKSJ), 95% CI"); the footnote spells it out.
TEST_ABBREV = {"knha": "HKSJ", "adhoc": "mHKSJ"}
TEST_NOTES = {
    "knha": "HKSJ: Hartung-Knapp-Sidik-Jonkman; CI and test from the t distribution with k − 1 df.",
    "adhoc": "mHKSJ: modified Hartung-Knapp-Sidik-Jonkman (metafor test = \"adhoc\"); t distribution "
             "with k − 1 df, the CI never narrower than the Wald CI.",
}
#: Names of the tau² estimators for the footnote.
TAU2_NAMES = {
    "DL": "DerSimonian-Laird", "REML": "restricted maximum likelihood", "ML": "maximum likelihood",
    "PM": "Paule-Mandel", "EB": "empirical Bayes", "HE": "Hedges", "SJ": "Sidik-Jonkman",
}
COMMON_EFFECT = ("FE", "MH", "PETO")


def method_label(f: FitResult) -> str:
    """The model as fitted, RevMan style: "IV, Random (REML, HKSJ)", "M-H, Fixed".

    Random-effects fits name their tau² estimator and, under knha/adhoc, the
    test, so the header never claims RevMan's DerSimonian-Laird Z test for a
    REML/HKSJ fit.
    """
    if f.method in COMMON_EFFECT:
        return METHOD_NAMES[f.method]
    parts = [f.method] + ([TEST_ABBREV[f.test]] if f.test in TEST_ABBREV else [])
    return f"IV, Random ({', '.join(parts)})"


def statistic_name(f: FitResult) -> str:
    """"t" when the fit tested against a t distribution (df set), else "Z"."""
    return "t" if f.df is not None else "Z"


#: RevMan's default columns. "data" and "rob" appear only when ``study_data``
#: holds arm data / RoB judgements. Any other key (e.g. "strain", "dose",
#: "severity") is a free column read from ``study_data[label][key]``.
DEFAULT_COLUMNS = ("data", "weight", "effect", "rob")

CONTINUOUS_ARM = (("m{}i", "Mean"), ("sd{}i", "SD"), ("n{}i", "Total"))
BINARY_ARM = (("{e}", "Events"), ("n{}i", "Total"))

#: Printed in a count cell of a study that does not report it, and the
#: footnote that explains a total over the studies that do.
NOT_REPORTED = "n.r."
COUNT_KEYS = ("n1i", "n2i", "ai", "ci")
PARTIAL_TOTAL_NOTE = "Total of the studies that report it (RevMan adds up the reported counts)."

FOOTNOTE_MARKS = ("*", "\u2020", "\u2021", "\u00a7", "\u00b6", "**", "\u2020\u2020", "\u2021\u2021")
DERIVED_TEXT = {
    "p-value": "Effect derived from a reported P value",
    "p_value": "Effect derived from a reported P value",
    "pvalue": "Effect derived from a reported P value",
    "figure": "Data read from a published figure",
    True: "Effect derived from a P value or read from a figure",
}

#: Intervals may run this far (x the range the estimates and study CIs need,
#: on the analysis scale) before the axis stops growing for them and they end
#: in an arrow instead.
AXIS_STRETCH = 1.5
#: The widest default ratio axis is 1/100 to 100 (RevMan's widest usual
#: scale); only a central estimate beyond it widens the axis further.
RATIO_AXIS_MAX = 100.0
#: Length (inches) of the arrowhead that ends a clipped diamond or prediction
#: interval: long enough to read as an arrow next to the bar it ends.
ARROW_HEAD_IN = 0.09

COLORS = {
    "square": "#1F4E79",
    "ci": "black",
    "diamond": "black",
    "prediction": "#B03A2E",
    "null": "black",
    "rule": "#555555",
}


@dataclass
class _Row:
    kind: str  # header | study | subtotal | total | events | pi | text | blank
    label: str = ""
    bold: bool = False
    italic: bool = False
    span: bool = False  # label spans the whole left region
    cells: dict = field(default_factory=dict)
    effect: tuple = ()  # (est, "[lb,", "ub]") or ("Not estimable",)
    draw: tuple | None = None  # ("square", yi, lb, ub, weight) | ("diamond", ...) | ("pi", lb, ub)


@dataclass
class _Col:
    key: str
    title: str
    align: str  # left | right | center
    group: str | None = None
    cap: float | None = None  # maximum width (inches); longer text gets an ellipsis
    width: float = 0.0
    x0: float = 0.0

    @property
    def x1(self):
        return self.x0 + self.width


# ----------------------------------------------------------------------------
# text of the summary lines (RevMan wording)


def heterogeneity_text(f: FitResult, *, digits: int = 2, i2_from: str = "fit") -> str:
    """``Heterogeneity: Tau² = 0.04; Chi² = 10.47, df = 5 (P = 0.06); I² = 52%``.

    ``i2_from="fit"`` prints the fit's own I² (for REML/ML/... metafor's
    tau²-based I², the value reported everywhere else); ``"Q"`` prints
    RevMan's ``(Q - df)/Q``. Common-effect fits have no Tau² term.
    """
    if f.Q is None or f.k < 2:
        return "Heterogeneity: Not applicable"
    if i2_from == "Q":
        i2 = max(0.0, (f.Q - f.Q_df) / f.Q) * 100 if f.Q > 0 else 0.0
    else:
        i2 = f.I2
    i2s = "NA" if not is_number(i2) else f"{fmt_num(i2, 0)}%"
    chi = f"Chi\u00b2 = {fmt_num(f.Q, 2)}, df = {f.Q_df} ({fmt_p(f.Q_p)}); I\u00b2 = {i2s}"
    if f.method in COMMON_EFFECT:
        return f"Heterogeneity: {chi}"
    # the estimator is named: RevMan's line always means DerSimonian-Laird
    return f"Heterogeneity: Tau\u00b2 ({f.method}) = {fmt_small(f.tau2, digits)}; {chi}"


def overall_effect_text(f: FitResult) -> str:
    """``Test for overall effect: Z = −2.31 (P = 0.02)``; under knha/adhoc
    ``t = −1.64, df = 8 (P = 0.14)``.

    The statistic keeps its sign (estimate / SE on the analysis scale), as
    ``report.md`` and ``meta pool`` print it; RevMan prints |Z|.
    """
    if not is_number(f.stat):
        return "Test for overall effect: Not applicable"
    if f.df is not None:
        return (f"Test for overall effect: t = {fmt_num(f.stat, 2)}, df = {f.df:g} "
                f"({fmt_p(f.pval)})")
    return f"Test for overall effect: Z = {fmt_num(f.stat, 2)} ({fmt_p(f.pval)})"


def subgroup_text(res: PoolResult) -> str:
    """``Test for subgroup differences: Chi² = 1.23, df = 1 (P = 0.27), I² = 19%``
    with I² = max(0, (Q - df)/Q)."""
    Q, df, p = res.Q_between, res.Q_between_df, res.Q_between_p
    if not is_number(Q) or not df:
        return "Test for subgroup differences: Not applicable"
    if res.subgroup_test and "F-test" in res.subgroup_test:
        return f"Test for subgroup differences: F = {Q:.2f}, df = {df} ({fmt_p(p)})"
    i2 = max(0.0, (Q - df) / Q) * 100 if Q > 0 else 0.0
    return (f"Test for subgroup differences: Chi\u00b2 = {fmt_num(Q)}, df = {df} ({fmt_p(p)}), "
            f"I\u00b2 = {fmt_num(i2, 0)}%")


# ----------------------------------------------------------------------------
# the plot


def forest_plot(
    result: PoolResult | FitResult,
    *,
    study_data: dict[str, dict] | None = None,
    columns=DEFAULT_COLUMNS,
    column_titles: dict[str, str] | None = None,
    arms: tuple[str, str] = ("Probiotic", "Control"),
    favours: tuple[str, str] | None = None,
    benefit: str = "lower",
    prediction: bool | str = False,
    xlim: tuple[float, float] | None = None,
    ticks=None,
    digits: int = 2,
    data_digits: int = 2,
    i2_from: str = "fit",
    title: str | None = None,
    subgroup_titles: dict[str, str] | None = None,
    rob_domains=None,
    footnotes=(),
    fontsize: float = 8.0,
    plot_width: float = 2.6,
    label_width: float = 1.9,
    max_column_width: float = 1.4,
    colors: dict | None = None,
) -> Figure:
    """Draw a RevMan-style forest plot of a fitted meta-analysis.

    Parameters
    ----------
    result : PoolResult or FitResult
        What :func:`metaanalysis.pool` returned. A PoolResult with subgroups
        gives one block per subgroup (header, studies, subtotal diamond,
        heterogeneity and overall-effect lines), then the overall diamond and
        the test for subgroup differences.
    study_data : dict of str to dict, optional
        Per-study extras keyed by study label: arm data (``m1i sd1i n1i m2i
        sd2i n2i`` or ``ai n1i ci n2i``; group 1 = probiotic), ``rob``
        (``{domain: "low" | "some_concerns" | "high" | "no_information"}``,
        RoB 2 domains D1-D5 and Overall), ``derived`` (True, "p-value" or
        "figure", or a footnote text: the label gets a footnote mark), and
        any free column named in ``columns``.
    columns : sequence of str
        Left-to-right columns after the study label: ``"data"`` (per-arm
        data), ``"weight"``, ``"effect"`` (effect and CI as text), ``"rob"``
        (risk-of-bias dots, right of the plot), or any other key read from
        ``study_data`` (e.g. ``"strain"``, ``"dose"``, ``"severity"``).
    column_titles : dict, optional
        Header text for free columns (default: the key, capitalised).
    arms : (str, str)
        Names of the experimental and control groups (data column headers).
    favours : (str, str), optional
        Labels under the left and right half of the axis. Default from
        ``arms`` and ``benefit``.
    benefit : {"lower", "higher"}
        Which side favours the experimental arm: ``"lower"`` when effects
        below no effect are good for the probiotic (SCORAD as probiotic
        minus control; RR of developing eczema), ``"higher"`` otherwise.
    prediction : bool or "all"
        Draw the prediction interval (when the fit has one) below the overall
        diamond (True) or below every diamond ("all").
    xlim : (float, float), optional
        Axis limits on the display scale (ratios for RR/OR). CIs beyond them
        end in an arrow. Default: symmetric around no effect, covering the
        pooled intervals and (nearly) all study CIs.
    ticks : sequence of float, optional
        Tick positions on the display scale.
    digits : int
        Decimals of effects, CIs and Tau².
    data_digits : int
        Maximum decimals of the arm means and SDs.
    i2_from : {"fit", "Q"}
        I² in the heterogeneity lines: the fit's own (default) or (Q-df)/Q.
    title : str, optional
        A title line above the table.
    subgroup_titles : dict, optional
        Header text per subgroup level (default ``"<By>: <level>"``, e.g.
        ``"Severity: moderate"``).
    rob_domains : sequence of str, optional
        RoB domain keys, in order (default: D1-D5 and Overall, or the keys
        found in ``study_data``).
    footnotes : sequence of str
        Extra lines printed at the bottom.
    fontsize : float
        Points; every text uses it (the title is one point larger).
    plot_width, label_width, max_column_width : float
        Inches: the plot panel (widened if the favours labels need it), the
        width study labels may claim (longer ones are cut with an ellipsis;
        the column can be wider when the heterogeneity lines need the room,
        and labels then use it), and the maximum width of free columns.
    colors : dict, optional
        Overrides of ``COLORS`` (square, ci, diamond, prediction, null, rule).

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas; save it with :func:`save_figure`.
    """
    if isinstance(result, FitResult):
        result = PoolResult(overall=result)
    if not isinstance(result, PoolResult):
        raise TypeError(f"forest_plot draws a FitResult or PoolResult, got {type(result).__name__}")
    if benefit not in ("lower", "higher"):
        raise ValueError("benefit must be 'lower' or 'higher'")
    if prediction not in (True, False, "all"):
        raise ValueError("prediction must be True, False or 'all'")
    if i2_from not in ("fit", "Q"):
        raise ValueError("i2_from must be 'fit' or 'Q'")
    study_data = study_data or {}
    column_titles = column_titles or {}
    colors = {**COLORS, **(colors or {})}
    overall = result.overall
    measure = overall.measure
    ratio = measure in RATIO_MEASURES
    null = 1.0 if ratio else 0.0
    ci_text = f"{100 * (1 - overall.alpha):g}% CI"
    if favours is None:
        good, bad = f"Favours {arms[0].lower()}", f"Favours {arms[1].lower()}"
        favours = (good, bad) if benefit == "lower" else (bad, good)

    def disp(x):  # analysis scale -> display scale
        return math.exp(x) if ratio else x

    def eff_text(est, lb, ub):
        if not (is_number(est) and is_number(lb) and is_number(ub)):
            return ("Not estimable",)
        f = (lambda x: fmt_ratio(math.exp(x), digits)) if ratio else (lambda x: fmt_num(x, digits))
        return (f(est), f"[{f(lb)},", f"{f(ub)}]")

    ### per-arm data columns
    binary = measure in ("RR", "OR", "RD") or (
        measure == "GEN" and any("ai" in d for d in study_data.values()))
    continuous = not binary and any("m1i" in d for d in study_data.values())
    show_data = "data" in columns and (binary or continuous) and any(
        ("ai" in d) if binary else ("m1i" in d) for d in study_data.values())
    arm_spec = []
    if show_data:
        for a, (arm_name, e_key) in enumerate(zip(arms, ("ai", "ci")), start=1):
            spec = BINARY_ARM if binary else CONTINUOUS_ARM
            arm_spec.append([(k.format(a, e=e_key), t, f"arm{a}") for k, t in spec])

    ### risk-of-bias domains
    rob_keys: list[str] = []
    if "rob" in columns:
        found = []
        for d in study_data.values():
            for key in (d.get("rob") or {}):
                if key not in found:
                    found.append(key)
        if found:
            if rob_domains is not None:
                rob_keys = list(rob_domains)
            elif set(found) <= set(ROB2_DOMAINS):
                rob_keys = [k for k in ROB2_DOMAINS if k in found]
            else:
                rob_keys = found
    free_cols = [c for c in columns if c not in ("data", "weight", "effect", "rob")]

    ### footnote marks for derived data
    marks: dict[str, str] = {}  # footnote text -> mark

    def mark_of(text):
        if text not in marks:
            marks[text] = FOOTNOTE_MARKS[len(marks) % len(FOOTNOTE_MARKS)]
        return marks[text]

    def mark_for(label):
        d = study_data.get(label, {})
        texts = []
        derived = d.get("derived")
        if derived:
            texts.append(DERIVED_TEXT.get(derived if derived is True else str(derived).lower(),
                                          str(derived)))
        texts += [t for t in (d.get("notes") or ()) if t]
        return "".join(mark_of(t) for t in dict.fromkeys(texts))

    missing_marked = False  # a study row printed NOT_REPORTED

    ### overall weights, matched by label in order (labels may repeat)
    pool_w: dict[str, list[float]] = {}
    for s in overall.studies:
        pool_w.setdefault(s.study, []).append(s.weight)

    ### rows
    rows: list[_Row] = []
    bottom_lines: list[str] = []
    blocks = list(result.subgroups) if result.subgroups else [(None, overall)]

    def study_rows(fit, used):
        nonlocal missing_marked
        block_n = {"n1i": [], "n2i": [], "ai": [], "ci": []}
        weights = []
        for s in fit.studies:
            lst = pool_w.get(s.study, [])
            i = used.get(s.study, 0)
            w = lst[i] if i < len(lst) else s.weight
            used[s.study] = i + 1
            weights.append(w)
            d = study_data.get(s.study, {})
            cells = {}
            cell_notes = d.get("cell_notes") or {}
            for arm in arm_spec:
                for key, _t, _g in arm:
                    v = fmt_data(d.get(key), data_digits if key[0] in "ms" else 0)
                    if not v and key in COUNT_KEYS:
                        # RevMan leaves these blank; a reader cannot tell blank
                        # from zero or from a layout slip, so say it
                        v = NOT_REPORTED
                        missing_marked = True
                    elif v and cell_notes.get(key):
                        v += mark_of(cell_notes[key])
                    cells[key] = v
            for key in ("n1i", "n2i", "ai", "ci"):
                block_n[key].append(d.get(key))
            for c in free_cols:
                cells[c] = fmt_value(d.get(c))
            estimable = is_number(s.yi) and is_number(s.vi)
            cells["weight"] = f"{w:.1f}%" if estimable and is_number(w) else ""
            if "rob" in columns:
                cells["rob"] = {k: rob_level((d.get("rob") or {}).get(k)) for k in rob_keys} \
                    if d.get("rob") else {}
            lb, ub = s.ci_lb, s.ci_ub
            shown = _paper_ci(d.get("ci_shown"), s.yi, lb, ub, ratio)
            if shown is not None:
                # the paper's own interval (e.g. a t interval), not the Wald
                # interval rebuilt from the SE that was derived from it
                lb, ub = shown
            row = _Row("study", label=s.study + mark_for(s.study), cells=cells,
                       effect=eff_text(s.yi, lb, ub),
                       draw=("square", s.yi, lb, ub, w) if estimable else None)
            rows.append(row)
        return block_n, weights

    def pooled_rows(fit, kind, label, block_n, weights):
        def total(key):
            # RevMan adds up the trials that report the count; when some do
            # not, the total is marked as partial (footnote says how)
            vals = block_n[key]
            got = [float(v) for v in vals if is_number(v)]
            if not got:
                return NOT_REPORTED if vals else ""
            s_ = fmt_data(sum(got), 0)
            return s_ + mark_of(PARTIAL_TOTAL_NOTE) if len(got) < len(vals) else s_

        cells = {}
        if show_data:
            cells["n1i"] = total("n1i")
            cells["n2i"] = total("n2i")
        wsum = sum(w for w in weights if is_number(w))
        cells["weight"] = f"{wsum:.1f}%" if kind == "subtotal" else "100.0%"
        row = _Row(kind, label=label, bold=True, cells=cells,
                   effect=eff_text(fit.estimate, fit.ci_lb, fit.ci_ub),
                   draw=("diamond", fit.estimate, fit.ci_lb, fit.ci_ub, kind)
                   if is_number(fit.estimate) else None)
        rows.append(row)
        if show_data and binary:
            rows.append(_Row("events", label="Total events",
                             cells={"ai": total("ai"), "ci": total("ci")}))
        want_pi = prediction == "all" or (prediction is True and kind == "total")
        if want_pi and is_number(fit.pi_lb) and is_number(fit.pi_ub):
            f = (lambda x: fmt_ratio(math.exp(x), digits)) if ratio else (lambda x: fmt_num(x, digits))
            rows.append(_Row("pi", label="Prediction interval", italic=True,
                             effect=("", f"[{f(fit.pi_lb)},", f"{f(fit.pi_ub)}]"),
                             draw=("pi", fit.pi_lb, fit.pi_ub)))

    used: dict[str, int] = {}
    for level, fit in blocks:
        if level is not None:
            by = str(result.by).replace("_", " ")
            head = (subgroup_titles or {}).get(level, f"{by[:1].upper()}{by[1:]}: {level}")
            rows.append(_Row("header", label=head, bold=True, span=True))
        block_n, weights = study_rows(fit, used)
        if level is not None:
            pooled_rows(fit, "subtotal", f"Subtotal ({ci_text})", block_n, weights)
            rows.append(_Row("text", label=heterogeneity_text(fit, digits=digits, i2_from=i2_from),
                             span=True))
            rows.append(_Row("text", label=overall_effect_text(fit), span=True))
            rows.append(_Row("blank"))
    all_n = {key: [study_data.get(s.study, {}).get(key) for s in overall.studies]
             for key in ("n1i", "n2i", "ai", "ci")}
    pooled_rows(overall, "total", f"Total ({ci_text})", all_n, [s.weight for s in overall.studies])
    bottom_lines.append(heterogeneity_text(overall, digits=digits, i2_from=i2_from))
    bottom_lines.append(overall_effect_text(overall))
    if result.subgroups:
        bottom_lines.append(subgroup_text(result))

    ### footnotes
    notes = [f"{m} {t}" for t, m in marks.items()]
    if missing_marked:
        notes.append(f"{NOT_REPORTED}: not reported (the study was entered as an effect and its SE, "
                     "or the paper gives no count).")
    fits = [overall] + [f for _lvl, f in (result.subgroups or ())]
    stats = {statistic_name(f) for f in fits if is_number(f.stat)}
    if len(stats) > 1:
        notes.append("Tests: t where the fit used a t distribution; Z for a subgroup with one "
                     "study (no t distribution with 0 df).")
    test_notes = [TEST_NOTES[f.test] for f in fits if f.method not in COMMON_EFFECT
                  and f.test in TEST_NOTES]
    notes += list(dict.fromkeys(test_notes))
    if overall.method not in COMMON_EFFECT:
        i2_how = ("I\u00b2 = (Chi\u00b2 \u2212 df)/Chi\u00b2" if i2_from == "Q" or overall.method == "DL"
                  else "I\u00b2 from Tau\u00b2 (metafor)")
        notes.append(f"Tau\u00b2 estimator: {overall.method} "
                     f"({TAU2_NAMES.get(overall.method, overall.method)}); {i2_how}.")
    if rob_keys:
        parts = []
        for i, k in enumerate(rob_keys):
            parts.append(f"{_rob_short(k, i)}: {ROB2_DOMAINS.get(k, k.replace('_', ' '))}")
        legend = "; ".join(parts)
        sym = ", ".join(f"{ROB_SYMBOLS[v]} {ROB_LABELS[v].lower()}" for v in ROB_COLORS)
        notes.append(f"Risk of bias (RoB 2): {legend}. Dots: {sym}.")
    notes.extend(footnotes)

    return _layout_and_draw(
        rows=rows, bottom_lines=bottom_lines, notes=notes, title=title, measure=measure,
        method=method_label(overall), ci_text=ci_text, arms=arms, arm_spec=arm_spec, free_cols=free_cols,
        column_titles=column_titles, columns=columns, rob_keys=rob_keys, ratio=ratio, null=null,
        favours=favours, xlim=xlim, ticks=ticks, fontsize=fontsize, plot_width=plot_width,
        label_width=label_width, max_column_width=max_column_width, colors=colors, disp=disp,
        prediction=prediction)


def _paper_ci(shown, yi, lb, ub, ratio):
    """The paper's own interval on the analysis scale, oriented like ``yi``.

    ``shown`` is (lower, upper) as printed (natural scale for ratios). A paper
    may report a reduction as positive (CI 15.0 to 23.4 for yi = -19.2): the
    interval is then mirrored. None when it does not match the study's own
    interval (then the Wald interval is shown).
    """
    if not shown or not all(is_number(v) for v in (yi, lb, ub)):
        return None
    a, b = (float(v) for v in shown)
    if ratio:
        if a <= 0 or b <= 0:
            return None
        a, b = math.log(a), math.log(b)
    width = ub - lb
    for c_lo, c_hi in ((a, b), (-b, -a)):
        # the same interval up to its critical value (t vs z) and rounding
        if c_lo <= yi <= c_hi and abs((c_hi - c_lo) - width) <= 0.25 * width:
            return c_lo, c_hi
    return None


def _rob_short(key: str, i: int) -> str:
    if key == "Overall":
        return "O"
    if len(key) <= 3:
        return key
    return chr(ord("A") + i)


def _clip_x(verts, lo, hi):
    """Clip a convex polygon to lo <= x <= hi (Sutherland-Hodgman, two edges)."""

    def clip(pts, inside, cross):
        out = []
        for j, cur in enumerate(pts):
            prev = pts[j - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cross(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cross(prev, cur))
        return out

    def at(x0):
        def cross(p, q):
            t = (x0 - p[0]) / (q[0] - p[0])
            return (x0, p[1] + t * (q[1] - p[1]))
        return cross

    pts = clip(list(verts), lambda p: p[0] >= lo, at(lo))
    if pts:
        pts = clip(pts, lambda p: p[0] <= hi, at(hi))
    return pts


def _arrow_head(side, tip, y, length, half_height, to_an, disp, color, gid) -> Polygon:
    """A filled arrowhead with its tip at ``tip`` (display scale) on row ``y``,
    ``length`` long on the analysis scale, pointing off the axis."""
    base = disp(to_an(tip) + (length if side == "left" else -length))
    return Polygon([(tip, y), (base, y - half_height), (base, y + half_height)], closed=True,
                   facecolor=color, edgecolor=color, lw=0.5, zorder=5, gid=gid)


def _arrow_marker(direction: str) -> MarkerStyle:
    """A filled triangle whose tip is at the data point."""
    s = -1 if direction == "left" else 1
    verts = [(0, 0), (-s * 1.0, 0.55), (-s * 1.0, -0.55), (0, 0)]
    return MarkerStyle(MplPath(verts, [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO,
                                       MplPath.CLOSEPOLY]))


def _layout_and_draw(*, rows, bottom_lines, notes, title, measure, method, ci_text, arms, arm_spec,
                     free_cols, column_titles, columns, rob_keys, ratio, null, favours, xlim, ticks,
                     fontsize, plot_width, label_width, max_column_width, colors, disp, prediction):
    fig = new_figure()
    tm = TextMeasure(fig)
    fs = fontsize
    row_h = fs * 1.55 / 72  # inches per table row
    margin = 0.12
    col_gap = fs * 0.9 / 72
    pad = fs * 0.35 / 72  # small safety pad inside column widths

    def width(s, bold=False, italic=False):
        return tm.width(s, fs, bold, italic)

    ### columns (left of the plot)
    method_text = f"{method}, {ci_text}"
    cols = [_Col("label", "Study or Subgroup", "left", cap=label_width)]
    for c in free_cols:
        cols.append(_Col(c, column_titles.get(c, c.replace("_", " ").capitalize()), "left",
                         cap=max_column_width))
    groups = {}
    for arm_name, arm in zip(arms, arm_spec):
        for key, t, g in arm:
            cols.append(_Col(key, t, "right", group=g))
        groups[arm[0][2]] = arm_name
    if "weight" in columns:
        cols.append(_Col("weight", "Weight", "right"))
    if "effect" in columns:
        for k in ("e0", "e1", "e2"):
            cols.append(_Col(k, "", "right", group="effect"))
        groups["effect"] = MEASURE_NAMES.get(measure, measure)

    # widths from cell contents
    for c in cols:
        if c.key == "label":
            ws = [width(r.label, r.bold, r.italic) for r in rows if not r.span]
        elif c.key in ("e0", "e1", "e2"):
            i = int(c.key[1])
            ws = [width(r.effect[i], r.bold, r.italic) for r in rows if len(r.effect) == 3]
        else:
            ws = [width(r.cells.get(c.key, ""), r.bold) for r in rows]
        ws.append(width(c.title, True))
        w = max(ws) + pad
        if c.cap is not None:
            w = min(w, c.cap)
        c.width = w
    # "Not estimable" is right-aligned at the end of the effect column: it must
    # fit in the whole effect group, not in e0
    eff_cols = [c for c in cols if c.group == "effect"]
    space = width(" ")
    if eff_cols:
        need = max([width(r.effect[0]) for r in rows if len(r.effect) == 1] + [0.0])
        have = sum(c.width for c in eff_cols) + 2 * space
        if need > have:
            eff_cols[0].width += need - have

    # gaps: a normal gap between columns, a wider one between column groups,
    # one space inside the effect text ("-0.52 [-1.03, -0.01]")
    def gap_before(prev, cur):
        if prev.group == "effect" and cur.group == "effect":
            return space
        if prev.group != cur.group:
            return col_gap * 1.6
        return col_gap

    # group headers (arm names, measure name) must fit over their columns
    group_title = {}
    for g, name in groups.items():
        members = [c for c in cols if c.group == g]
        span_w = (sum(c.width for c in members)
                  + sum(gap_before(a, b) for a, b in zip(members, members[1:])))
        need = max(width(name, True), width(method_text, True) if g == "effect" else 0)
        if need > span_w:
            members[0].width += need - span_w
        group_title[g] = name

    # the left region must hold the spanning texts (subgroup headers,
    # heterogeneity lines); widen the label column for them
    x = margin
    for prev, c in zip([None] + cols[:-1], cols):
        if prev is not None:
            x += gap_before(prev, c)
        c.x0 = x
        x += c.width
    left_w = x - margin
    span_need = max([width(r.label, r.bold, r.italic) for r in rows if r.span]
                    + [width(s) for s in bottom_lines] + [0.0]) + pad
    if span_need > left_w:
        extra = span_need - left_w
        cols[0].width += extra
        for c in cols[1:]:
            c.x0 += extra
        left_w = span_need
    label_fit = cols[0].width - pad

    ### the plot panel: limits and ticks on the display scale
    # Distances from no effect on the analysis scale. The axis always shows
    # every central estimate; it covers the study CIs (see below) and the
    # pooled intervals (diamonds, prediction intervals) only while they stay
    # near that range: a two-trial HKSJ interval of 0.02-35 must not squeeze
    # every study into the middle of a 0.002-500 axis. Whatever runs beyond
    # the axis ends in an arrow.
    xs_centre, xs_study, xs_pooled = [], [], []
    for r in rows:
        if r.draw is None:
            continue
        if r.draw[0] == "square":
            _, y, lb, ub, _w = r.draw
            xs_centre.append(abs(y))
            xs_study.append(max(abs(lb), abs(ub)))
        elif r.draw[0] == "diamond":
            _, y, lb, ub, _k = r.draw
            xs_centre.append(abs(y))
            xs_pooled += [abs(lb), abs(ub)]
        else:
            xs_pooled += [abs(r.draw[1]), abs(r.draw[2])]
    xs_centre = [v for v in xs_centre if is_number(v)]
    xs_study = [v for v in xs_study if is_number(v)]
    xs_pooled = [v for v in xs_pooled if is_number(v)]
    if xlim is None:
        centre = max(xs_centre + [1e-12])
        if xs_study:
            # cover (nearly) every study CI; with 10 or more studies the widest
            # 10% may end in an arrow instead of squeezing every other study
            # into the middle
            q = float(np.quantile(xs_study, 0.9)) if len(xs_study) >= 10 else max(xs_study)
            ext = max(centre, q)
            if max(xs_study) <= AXIS_STRETCH * ext:
                ext = max(ext, max(xs_study))
        else:
            ext = max([centre] + xs_pooled)
        if xs_pooled and max(xs_pooled) <= AXIS_STRETCH * ext:
            ext = max(ext, max(xs_pooled))
        if ratio:
            ext = min(ext, max(centre, math.log(RATIO_AXIS_MAX)))
        (lo, hi), auto_ticks = nice_limits(ext, ratio)
    else:
        lo, hi = float(xlim[0]), float(xlim[1])
        if not lo < hi or (ratio and lo <= 0):
            raise ValueError(f"xlim must be increasing{' and positive for ratios' if ratio else ''}")
        auto_ticks = None
    if ticks is None:
        if auto_ticks is None:
            from matplotlib.ticker import LogLocator, MaxNLocator

            loc = LogLocator(base=10, subs=(1.0, 2.0, 5.0)) if ratio else MaxNLocator(5)
            auto_ticks = [t for t in loc.tick_values(lo, hi) if lo <= t <= hi]
        ticks = auto_ticks
    ticks = [float(t) for t in ticks]
    tick_labels = [tick_label(t, ratio) for t in ticks]

    ### panel width and gaps: favours labels, headers and tick labels must fit
    fav_w = max(width(favours[0]), width(favours[1]))
    panel_w = max(plot_width, 2 * fav_w + 0.3, width(method_text, True) + 0.1,
                  width(group_title.get("effect", ""), True) + 0.1)
    half_tick = max([width(t) for t in tick_labels] + [0.0]) / 2
    gap_side = max(col_gap * 2, half_tick + col_gap)  # tick labels overhang the panel
    gap_l = gap_side
    panel_x0 = margin + left_w + gap_l
    panel_x1 = panel_x0 + panel_w

    ### risk-of-bias columns (right of the plot)
    rob_cols = []
    x = panel_x1 + gap_side
    rob_title = "Risk of Bias"
    if rob_keys:
        for i, k in enumerate(rob_keys):
            w = max(row_h * 1.05, width(_rob_short(k, i), True) + pad)
            rob_cols.append(_Col(k, _rob_short(k, i), "center", group="rob", width=w, x0=x))
            x += w + space
        x -= space
        total = x - rob_cols[0].x0
        if width(rob_title, True) > total:
            grow = (width(rob_title, True) - total) / len(rob_cols)
            xx = rob_cols[0].x0
            for c in rob_cols:
                c.width += grow
                c.x0 = xx
                xx += c.width + space
            x = xx - space
    fig_w = (x if rob_cols else panel_x1 + half_tick) + margin

    ### vertical layout (inches from the top)
    n = len(rows)
    title_h = (fs + 1) * 1.9 / 72 if title else 0.0
    top = margin + title_h
    head_h = 2 * row_h
    body_top = top + head_h
    body_bot = body_top + n * row_h
    tick_len = 3.0 / 72
    tick_pad = 2.5 / 72
    tick_h = fs * 1.25 / 72
    fav_y = body_bot + tick_len + tick_pad + tick_h + 0.55 * row_h  # centre of the favours row
    axis_band = fav_y + 0.6 * row_h - body_bot
    bottom_band = max(axis_band, len(bottom_lines) * row_h + 0.25 * row_h)
    fig_w_inner = fig_w - 2 * margin
    note_lines = []
    for note in notes:
        note_lines += tm.wrap(note, fig_w_inner, fs - 0.5)
    notes_top = body_bot + bottom_band + (0.3 * row_h if note_lines else 0)
    fig_h = notes_top + len(note_lines) * row_h * 0.92 + margin
    fig.set_size_inches(fig_w, fig_h)

    def Y(y_from_top):  # inches from the top -> figure inches from the bottom
        return fig_h - y_from_top

    baseline = 0.36 * fs / 72  # centre of the cap height above the baseline

    def put(xx, yc, s, ha="left", bold=False, italic=False, size=None, color="black", gid=None):
        if not s:
            return None
        return fig.text(xx, Y(yc) - baseline, s, transform=fig.dpi_scale_trans, ha=ha,
                        va="baseline", fontsize=size or fs, family=FONT_FAMILY,
                        fontweight="bold" if bold else "normal",
                        fontstyle="italic" if italic else "normal", color=color,
                        parse_math=False, gid=gid)

    def put_in_col(c, yc, s, bold=False, italic=False):
        if c.align == "left":
            return put(c.x0, yc, s, "left", bold, italic)
        if c.align == "right":
            return put(c.x1, yc, s, "right", bold, italic)
        return put((c.x0 + c.x1) / 2, yc, s, "center", bold, italic)

    ### title and header rows
    if title:
        put(margin, margin + title_h / 2, tm.fit(title, fig_w_inner, fs + 1, True), bold=True,
            size=fs + 1)
    h1 = top + 0.5 * row_h
    h2 = top + 1.5 * row_h
    for g, name in group_title.items():
        members = [c for c in cols if c.group == g]
        cx = (members[0].x0 + members[-1].x1) / 2
        put(cx, h1, name, "center", bold=True)
        if g.startswith("arm"):
            # a thin rule under the arm name, as in RevMan Web
            yy = Y(top + row_h) + 0.1 * row_h
            fig.add_artist(Line2D([members[0].x0, members[-1].x1], [yy, yy],
                                  transform=fig.dpi_scale_trans, lw=0.5, color=colors["rule"]))
    for c in cols:
        if c.group == "effect":
            continue
        put_in_col(c, h2, c.title, bold=True)
    if eff_cols:
        put((eff_cols[0].x0 + eff_cols[-1].x1) / 2, h2, method_text, "center", bold=True)
    pcx = (panel_x0 + panel_x1) / 2
    put(pcx, h1, MEASURE_NAMES.get(measure, measure), "center", bold=True)
    put(pcx, h2, method_text, "center", bold=True)
    if rob_cols:
        put((rob_cols[0].x0 + rob_cols[-1].x1) / 2, h1, rob_title, "center", bold=True)
        for c in rob_cols:
            put_in_col(c, h2, c.title, bold=True)
    rule_y = Y(body_top) + 0.08 * row_h
    fig.add_artist(Line2D([margin, fig_w - margin], [rule_y, rule_y],
                          transform=fig.dpi_scale_trans, lw=0.7, color=colors["rule"],
                          gid="header-rule"))

    ### table body
    by_key = {c.key: c for c in cols}
    for i, r in enumerate(rows):
        yc = body_top + (i + 0.5) * row_h
        if r.kind == "blank":
            continue
        if r.span:
            put(margin, yc, r.label, bold=r.bold, italic=r.italic)
            continue
        put(margin, yc, tm.fit(r.label, label_fit, fs, r.bold, r.italic), bold=r.bold,
            italic=r.italic)
        for key, s in r.cells.items():
            if key in by_key and key != "label":
                c = by_key[key]
                s = tm.fit(s, c.width, fs, r.bold) if c.cap is not None else s
                put_in_col(c, yc, s, bold=r.bold)
        if eff_cols and r.effect:
            if len(r.effect) == 1:
                put(eff_cols[-1].x1, yc, r.effect[0], "right", r.bold, r.italic)
            else:
                for c, s in zip(eff_cols, r.effect):
                    put_in_col(c, yc, s, bold=r.bold, italic=r.italic)
    for j, s in enumerate(bottom_lines):
        put(margin, body_bot + (j + 0.5) * row_h, s)
    for j, s in enumerate(note_lines):
        put(margin, notes_top + (j + 0.5) * row_h * 0.92, s, size=fs - 0.5)

    ### the plot panel
    ax = fig.add_axes([panel_x0 / fig_w, Y(body_bot) / fig_h, panel_w / fig_w, n * row_h / fig_h])
    ax.set_gid("forest-panel")
    if ratio:
        ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(n - 0.5, -0.5)
    ax.patch.set_visible(False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_linewidth(0.8)
    ax.set_yticks([])
    ax.set_xticks(ticks, tick_labels, fontsize=fs, family=FONT_FAMILY)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", direction="out", length=tick_len * 72, width=0.8, pad=tick_pad * 72)
    ax.axvline(null, color=colors["null"], lw=0.8, zorder=1, gid="null-line")

    pt_per_row = row_h * 72
    max_side = 0.82 * pt_per_row
    squares_x, squares_y, squares_s = [], [], []
    segs, arrows_l, arrows_r = [], [], []

    def to_an(v):  # display scale -> analysis scale
        return math.log(v) if ratio else v

    # the length of an arrowhead of a clipped diamond or prediction interval,
    # on the analysis scale
    head = ARROW_HEAD_IN / panel_w * (to_an(hi) - to_an(lo))
    w_all = [r.draw[4] for r in rows if r.draw and r.draw[0] == "square" and is_number(r.draw[4])]
    w_ref = max(w_all + [15.0])  # squares shrink when no study dominates
    for i, r in enumerate(rows):
        if r.draw is None:
            continue
        kind = r.draw[0]
        if kind == "square":
            _, y, lb, ub, w = r.draw
            yd, lbd, ubd = disp(y), disp(lb), disp(ub)
            if lo <= yd <= hi:
                side = max(2.2, max_side * math.sqrt(max(w, 0) / w_ref)) if is_number(w) else 2.2
                squares_x.append(yd)
                squares_y.append(i)
                squares_s.append(side**2)
            a, b = max(lbd, lo), min(ubd, hi)
            if a < b:
                segs.append([(a, i), (b, i)])
            if lbd < lo:
                arrows_l.append((lo, i))
            if ubd > hi:
                arrows_r.append((hi, i))
        elif kind == "diamond":
            _, est, lb, ub, k = r.draw
            h = 0.34
            # a clipped end stops one arrow length inside the limit; the
            # arrowhead fills that length, tip on the limit
            a_lo = to_an(lo) + head if disp(lb) < lo else -math.inf
            a_hi = to_an(hi) - head if disp(ub) > hi else math.inf
            # clip on the analysis scale, where the diamond's edges are straight
            verts = _clip_x([(lb, i), (est, i - h), (ub, i), (est, i + h)], a_lo, a_hi)
            if verts:
                ax.add_patch(Polygon([(disp(x), y) for x, y in verts], closed=True,
                                     facecolor=colors["diamond"], edgecolor=colors["diamond"],
                                     lw=0.5, zorder=4, gid=f"diamond-{k}"))
            for side, clipped in (("left", disp(lb) < lo), ("right", disp(ub) > hi)):
                if clipped:
                    ax.add_patch(_arrow_head(side, lo if side == "left" else hi, i, head, h,
                                             to_an, disp, colors["diamond"], f"diamond-arrow-{side}"))
        elif kind == "pi":
            _, lb, ub = r.draw
            a = max(disp(lb), disp(to_an(lo) + head)) if disp(lb) < lo else disp(lb)
            b = min(disp(ub), disp(to_an(hi) - head)) if disp(ub) > hi else disp(ub)
            if a < b:
                ax.add_patch(Rectangle((a, i - 0.11), b - a, 0.22, facecolor=colors["prediction"],
                                       edgecolor="none", zorder=4, gid="prediction-interval"))
            for side, clipped in (("left", disp(lb) < lo), ("right", disp(ub) > hi)):
                if clipped:
                    ax.add_patch(_arrow_head(side, lo if side == "left" else hi, i, head, 0.24,
                                             to_an, disp, colors["prediction"], f"pi-arrow-{side}"))
    ax.scatter(squares_x, squares_y, s=squares_s, marker="s", color=colors["square"],
               linewidths=0, zorder=2, gid="study-square")
    ax.add_collection(LineCollection(segs, colors=colors["ci"], linewidths=0.8, zorder=3,
                                     gid="study-ci"))
    for pts, d in ((arrows_l, "left"), (arrows_r, "right")):
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=_arrow_marker(d), s=30,
                       color=colors["ci"], linewidths=0, zorder=3, clip_on=False,
                       gid=f"ci-arrow-{d}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(n - 0.5, -0.5)

    ### favours labels: each within its half of the panel
    def to_in(v):
        f = math.log if ratio else (lambda t: t)
        return panel_x0 + (f(v) - f(lo)) / (f(hi) - f(lo)) * panel_w

    x_null = to_in(null) if lo < null < hi else pcx
    gap = 0.06
    # keep each label inside the panel even when no effect is off-centre
    left_x = max(x_null - gap, panel_x0 + width(favours[0]))
    right_x = min(x_null + gap, panel_x1 - width(favours[1]))
    put(left_x, fav_y, favours[0], "right", gid="favours-left")
    put(right_x, fav_y, favours[1], "left", gid="favours-right")

    ### risk-of-bias dots
    if rob_cols:
        for j, c in enumerate(rob_cols):
            xs, ys, cs, lv = [], [], [], []
            for i, r in enumerate(rows):
                rob = r.cells.get("rob")
                if not rob:
                    continue
                level = rob.get(c.key, "no_information")
                xs.append((c.x0 + c.x1) / 2)
                ys.append(Y(body_top + (i + 0.5) * row_h))
                cs.append(ROB_COLORS[level])
                lv.append(level)
            if not xs:
                continue
            d = 0.8 * row_h * 72
            for level in ROB_COLORS:
                pts = [(xx, yy) for xx, yy, ll in zip(xs, ys, lv) if ll == level]
                if not pts:
                    continue
                px, py = [p[0] for p in pts], [p[1] for p in pts]
                fig.add_artist(Line2D(px, py, ls="none", marker="o", ms=d, mew=0,
                                      color=ROB_COLORS[level], transform=fig.dpi_scale_trans,
                                      gid=f"rob-dot-{level}"))
                fig.add_artist(Line2D(px, py, ls="none", marker=ROB_MARKERS[level], ms=d * 0.5,
                                      mew=1.0, color="black" if level == "some_concerns" else "white",
                                      transform=fig.dpi_scale_trans, gid=f"rob-symbol-{level}"))
    return fig

