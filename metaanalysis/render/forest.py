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
rows line up exactly. The sizes, the column model, text placement and the
panel's axes come from :mod:`metaanalysis.render.layout`, which the
leave-one-out and cumulative plots share.

The drawing is done in steps: :func:`_forest_table` builds the rows, cells
and footnotes (nothing measured); :func:`_left_columns` sizes and places the
columns; :func:`_axis_limits` chooses the axis; :func:`_draw` lays out the
bands and calls :func:`_draw_header`, :func:`_draw_body`,
:func:`_draw_marks` and :func:`_draw_rob`.

Pages
-----
A table with more rows than ``layout.MAX_ROWS_PER_PAGE`` is never drawn
small: ``forest_plot(..., page=i)`` draws page i of
:func:`forest_page_count` pages, each with the columns, axis and square
sizes of the whole table (pages line up), a split subgroup's header repeated
with "(continued)", the footnotes, and the overall result with its tests on
the last page. Without ``page`` every row is drawn in one figure.

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

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from dataclasses import dataclass

import numpy as np

from metaanalysis.render import fmt, layout
from metaanalysis.render._common import (
    ROB2_DOMAINS,
    ROB_COLORS,
    ROB_LABELS,
    ROB_MARKERS,
    ROB_SYMBOLS,
    TextMeasure,
    new_figure,
    nice_limits,
    rob_level,
    save_figure,
    tick_label,
)
from metaanalysis.render.fmt import MEASURE_NAMES, MINUS, RATIO_MEASURES, is_number
from metaanalysis.render.layout import (
    DIAMOND_HALF_ROWS,
    FOREST_STYLE,
    LINE_WIDTH_PT,
    MARGIN_IN,
    Bands,
    Column,
    Row,
    TableCanvas,
    TableStyle,
    auto_ticks,
    interval_panel,
    paginate,
    panel_width,
    place_columns,
    put_favours,
    vertical_bands,
    wrap_notes,
)
from metaanalysis.stats.results import FitResult, PoolResult

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (render/_common.py)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.markers import MarkerStyle
    from matplotlib.patches import Polygon

__all__ = ["forest_plot", "forest_page_count", "save_figure", "DEFAULT_COLUMNS", "MEASURE_NAMES"]

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
    i2s = "NA" if not is_number(i2) else f"{fmt.num(i2, 0, minus=MINUS)}%"
    chi = (f"Chi\u00b2 = {fmt.num(f.Q, 2, minus=MINUS)}, df = {f.Q_df} "
           f"({fmt.p_phrase(f.Q_p, symbol='P')}); I\u00b2 = {i2s}")
    if f.method in COMMON_EFFECT:
        return f"Heterogeneity: {chi}"
    # the estimator is named: RevMan's line always means DerSimonian-Laird
    tau2 = fmt.small(f.tau2, digits, minus=MINUS)
    return f"Heterogeneity: Tau\u00b2 ({f.method}) = {tau2}; {chi}"


def overall_effect_text(f: FitResult) -> str:
    """``Test for overall effect: Z = −2.31 (P = 0.02)``; under knha/adhoc
    ``t = −1.64, df = 8 (P = 0.14)``.

    The statistic keeps its sign (estimate / SE on the analysis scale), as
    ``report.md`` and ``meta pool`` print it; RevMan prints |Z|.
    """
    if not is_number(f.stat):
        return "Test for overall effect: Not applicable"
    if f.df is not None:
        return (f"Test for overall effect: t = {fmt.num(f.stat, 2, minus=MINUS)}, df = {f.df:g} "
                f"({fmt.p_phrase(f.pval, symbol='P')})")
    return (f"Test for overall effect: Z = {fmt.num(f.stat, 2, minus=MINUS)} "
            f"({fmt.p_phrase(f.pval, symbol='P')})")


def subgroup_text(res: PoolResult) -> str:
    """``Test for subgroup differences: Chi² = 1.23, df = 1 (P = 0.27), I² = 19%``
    with I² = max(0, (Q - df)/Q)."""
    Q, df, p = res.Q_between, res.Q_between_df, res.Q_between_p
    if not is_number(Q) or not df:
        return "Test for subgroup differences: Not applicable"
    if res.subgroup_test and "F-test" in res.subgroup_test:
        return (f"Test for subgroup differences: F = {Q:.2f}, df = {df} "
                f"({fmt.p_phrase(p, symbol='P')})")
    i2 = max(0.0, (Q - df) / Q) * 100 if Q > 0 else 0.0
    return (f"Test for subgroup differences: Chi\u00b2 = {fmt.num(Q, 2, minus=MINUS)}, df = {df} "
            f"({fmt.p_phrase(p, symbol='P')}), "
            f"I\u00b2 = {fmt.num(i2, 0, minus=MINUS)}%")


def subgroup_test_note(how: str) -> str:
    """The footnote saying how the subgroups were compared and which were not
    (``PoolResult.subgroup_test``): the bottom line gives the statistic, the
    reader must also see which strata it leaves out and from what SEs."""
    if how.startswith(NO_TEST):
        return f"Subgroup differences not tested: {how[len(NO_TEST):]}."
    return f"Subgroup differences tested by {how}."


#: How the analysis labels a stratification without a test (analysis/pipeline.py).
NO_TEST = "no test: "


# ----------------------------------------------------------------------------
# the plot



def forest_plot(
    result: PoolResult | FitResult,
    *,
    study_data: dict[str, dict] | None = None,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    column_titles: dict[str, str] | None = None,
    arms: tuple[str, str] = ("Probiotic", "Control"),
    favours: tuple[str, str] | None = None,
    benefit: str = "lower",
    prediction: bool | str = False,
    xlim: tuple[float, float] | None = None,
    ticks: Sequence[float] | None = None,
    digits: int = 2,
    data_digits: int = 2,
    i2_from: str = "fit",
    title: str | None = None,
    subgroup_titles: dict[str, str] | None = None,
    rob_domains: Sequence[str] | None = None,
    footnotes: Sequence[str] = (),
    fontsize: float = 8.0,
    plot_width: float = 2.6,
    label_width: float | None = None,
    max_column_width: float = 1.4,
    colors: dict | None = None,
    page: int | None = None,
    rows_per_page: int | None = None,
    study_results: bool = True,
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
        and labels then use it; default :data:`LABEL_WIDTH`, or
        :data:`SUMMARY_LABEL_WIDTH` without ``study_results``), and the
        maximum width of free columns.
    colors : dict, optional
        Overrides of ``COLORS`` (square, ci, diamond, prediction, null, rule).
    page : int, optional
        Draw only page ``page`` (1-based) of a table split into pages of at
        most ``rows_per_page`` rows (:func:`forest_page_count` says how many):
        the overall result and its tests are on the last page, the footnotes
        on every page, and every page has the columns and axis of the whole
        table. None draws every row in one figure, however tall.
    rows_per_page : int, optional
        Body rows per page; default
        :data:`~metaanalysis.render.layout.MAX_ROWS_PER_PAGE`.
    study_results : bool
        False draws no study rows, as R meta's ``forest(...,
        study.results = FALSE)``: one row per subgroup (its pooled estimate
        and CI, its k and participants, its heterogeneity and test lines),
        then the overall result and the test for subgroup differences. For
        a subgroup plot whose studies would fill pages (they are all on the
        main forest plot). Only the data, weight and effect columns are kept.

    Returns
    -------
    matplotlib.figure.Figure
        With an Agg canvas; save it with :func:`save_figure`.
    """

    result = _as_pool_result(result)
    if benefit not in ("lower", "higher"):
        raise ValueError("benefit must be 'lower' or 'higher'")
    if prediction not in (True, False, "all"):
        raise ValueError("prediction must be True, False or 'all'")
    if i2_from not in ("fit", "Q"):
        raise ValueError("i2_from must be 'fit' or 'Q'")
    ### rows, columns and footnotes (no drawing)
    table = _forest_table(
        result, study_data=study_data or {}, columns=columns, arms=arms, prediction=prediction,
        digits=digits, data_digits=data_digits, i2_from=i2_from, subgroup_titles=subgroup_titles,
        rob_domains=rob_domains, footnotes=footnotes, study_results=study_results)
    if favours is None:
        good, bad = f"Favours {arms[0].lower()}", f"Favours {arms[1].lower()}"
        favours = (good, bad) if benefit == "lower" else (bad, good)
    if label_width is None:
        label_width = LABEL_WIDTH if study_results else SUMMARY_LABEL_WIDTH
    look = _Look(title=title, favours=favours, column_titles=column_titles or {}, xlim=xlim,
                 ticks=ticks, style=FOREST_STYLE.with_fontsize(fontsize), plot_width=plot_width,
                 label_width=label_width, max_column_width=max_column_width,
                 colors={**COLORS, **(colors or {})})
    pages = _pages(table, rows_per_page)
    if page is None:
        return _draw(table, look, None)
    if not 1 <= page <= len(pages):
        raise ValueError(f"page must be 1 to {len(pages)}, got {page!r}")
    return _draw(table, look, pages[page - 1] if len(pages) > 1 else None,
                 (page, len(pages)) if len(pages) > 1 else None)


def forest_page_count(result: PoolResult | FitResult, *, rows_per_page: int | None = None,
                      **kwargs: Any) -> int:
    """How many pages :func:`forest_plot` splits this forest plot into.

    Takes the same keyword arguments as :func:`forest_plot` (those that do not
    change the rows are ignored) and draws nothing.
    """
    result = _as_pool_result(result)
    keys = ("study_data", "columns", "arms", "prediction", "digits", "data_digits", "i2_from",
            "subgroup_titles", "rob_domains", "footnotes", "study_results")
    opts = {k: kwargs[k] for k in keys if k in kwargs}
    opts["study_data"] = opts.get("study_data") or {}
    defaults = dict(columns=DEFAULT_COLUMNS, arms=("Probiotic", "Control"), prediction=False,
                    digits=2, data_digits=2, i2_from="fit", subgroup_titles=None,
                    rob_domains=None, footnotes=())
    table = _forest_table(result, **{**defaults, **opts})
    return len(_pages(table, rows_per_page))


def _pages(table: "_Table", rows_per_page: int | None) -> list[range]:
    """The table's pages; the overall result and its lines stay together."""
    per_page = layout.MAX_ROWS_PER_PAGE if rows_per_page is None else rows_per_page
    kinds = [r.kind for r in table.rows]
    if "header" in kinds:
        per_page = max(2, per_page - 1)  # room for a split subgroup's "(continued)" header
    return paginate(kinds, per_page, tail=table.tail)


def _page_rows(table: "_Table", page: range | None) -> list[Row]:
    """The rows of one page; a page that starts inside a subgroup repeats
    its header, marked "(continued)"."""
    if page is None:
        return table.rows
    rows = [table.rows[i] for i in page]
    if rows and rows[0].kind != "header":
        # inside a subgroup when, looking back, its header comes before a blank row
        before = (table.rows[i] for i in range(page.start - 1, -1, -1))
        head = next((r for r in before if r.kind in ("header", "blank")), None)
        if head is not None and head.kind == "header":
            rows.insert(0, dataclasses.replace(head, label=f"{head.label} (continued)"))
    return rows


def _as_pool_result(result: PoolResult | FitResult) -> PoolResult:
    if isinstance(result, FitResult):
        result = PoolResult(overall=result)
    if not isinstance(result, PoolResult):
        raise TypeError(f"forest_plot draws a FitResult or PoolResult, got {type(result).__name__}")
    return result


# ----------------------------------------------------------------------------
# the table: rows, cells and footnotes


@dataclass
class _Table:
    """What a forest plot shows, before any measuring."""

    rows: list[Row]
    bottom_lines: list[str]   # heterogeneity and tests of the overall result
    notes: list[str]          # footnotes, unwrapped
    measure: str
    method_text: str          # "IV, Random (REML), 95% CI"
    arms: tuple[str, str]
    arm_spec: list            # per arm: [(key, column title, group)]
    free_cols: list[str]
    columns: tuple
    rob_keys: list[str]
    ratio: bool
    tail: int                 # rows of the overall result, at the end of ``rows``

    @property
    def null(self) -> float:
        return 1.0 if self.ratio else 0.0


@dataclass(frozen=True)
class _Look:
    """How a forest plot is drawn (the caller's options)."""

    title: str | None
    favours: tuple[str, str]
    column_titles: dict
    xlim: tuple | None
    ticks: Sequence[float] | None
    style: TableStyle
    plot_width: float
    label_width: float
    max_column_width: float
    colors: dict


class _Marks:
    """Footnote marks in order of first use: one mark per footnote text."""

    def __init__(self) -> None:
        self.marks: dict[str, str] = {}  # footnote text -> mark

    def of(self, text: str) -> str:
        if text not in self.marks:
            self.marks[text] = FOOTNOTE_MARKS[len(self.marks) % len(FOOTNOTE_MARKS)]
        return self.marks[text]

    def for_study(self, d: dict) -> str:
        """The marks of a study label: derived effect, then its notes."""
        texts = []
        derived = d.get("derived")
        if derived:
            texts.append(DERIVED_TEXT.get(derived if derived is True else str(derived).lower(),
                                          str(derived)))
        texts += [t for t in (d.get("notes") or ()) if t]
        return "".join(self.of(t) for t in dict.fromkeys(texts))


def _arm_spec(measure: str, study_data: dict[str, dict],
              columns: Sequence[str]) -> tuple[bool, bool, list]:
    """(binary, show_data, per-arm [(key, title, group)]) of the data columns."""
    binary = measure in ("RR", "OR", "RD") or (
        measure == "GEN" and any("ai" in d for d in study_data.values()))
    continuous = not binary and any("m1i" in d for d in study_data.values())
    show_data = "data" in columns and (binary or continuous) and any(
        ("ai" in d) if binary else ("m1i" in d) for d in study_data.values())
    arm_spec = []
    if show_data:
        for a, e_key in enumerate(("ai", "ci"), start=1):
            spec = BINARY_ARM if binary else CONTINUOUS_ARM
            arm_spec.append([(k.format(a, e=e_key), t, f"arm{a}") for k, t in spec])
    return binary, show_data, arm_spec


def _rob_keys(study_data: dict[str, dict], columns: Sequence[str],
              rob_domains: Sequence[str] | None) -> list[str]:
    """The risk-of-bias domains to show, in order (none without judgements)."""
    if "rob" not in columns:
        return []
    found: list[str] = []
    for d in study_data.values():
        for key in (d.get("rob") or {}):
            if key not in found:
                found.append(key)
    if not found:
        return []
    if rob_domains is not None:
        return list(rob_domains)
    if set(found) <= set(ROB2_DOMAINS):
        return [k for k in ROB2_DOMAINS if k in found]
    return found


def _forest_table(result: PoolResult, *, study_data: dict[str, dict], columns: Sequence[str],
                  arms: tuple[str, str], prediction: bool | str, digits: int, data_digits: int,
                  i2_from: str, subgroup_titles: dict[str, str] | None,
                  rob_domains: Sequence[str] | None, footnotes: Sequence[str],
                  study_results: bool = True) -> _Table:
    """The rows of a forest plot: per block (subgroup) a header, the studies,
    the subtotal and its tests; then the overall result; and the footnotes.
    Without ``study_results``, a block is its subtotal row (labelled with the
    subgroup), its k and participants, and its tests."""
    overall = result.overall
    if not study_results:
        # a pooled row has no cell of a study's own (free columns, RoB dots)
        columns = tuple(c for c in columns if c in ("data", "weight", "effect"))
    measure = overall.measure
    ratio = measure in RATIO_MEASURES
    ci_text = f"{100 * (1 - overall.alpha):g}% CI"

    def bound(x):  # a bound or estimate (analysis scale) as printed
        return fmt.ratio(math.exp(x), digits) if ratio else fmt.num(x, digits, minus=MINUS)

    def eff_text(est, lb, ub):
        if not (is_number(est) and is_number(lb) and is_number(ub)):
            return ("Not estimable",)
        return (bound(est), f"[{bound(lb)},", f"{bound(ub)}]")

    binary, show_data, arm_spec = _arm_spec(measure, study_data, columns)
    if not study_results:  # pooled rows show the arms' totals, never a mean or SD
        arm_spec = [[c for c in arm if c[0] in COUNT_KEYS] for arm in arm_spec]
    rob_keys = _rob_keys(study_data, columns, rob_domains)
    free_cols = [c for c in columns if c not in ("data", "weight", "effect", "rob")]
    marks = _Marks()
    missing_marked = False  # a study row printed NOT_REPORTED

    ### overall weights, matched by label in order (labels may repeat)
    pool_w: dict[str, list[float]] = {}
    for s in overall.studies:
        pool_w.setdefault(s.study, []).append(s.weight)

    rows: list[Row] = []
    blocks = list(result.subgroups) if result.subgroups else [(None, overall)]

    def study_rows(fit, used, show=True):
        """The block's study rows (none unless ``show``); its counts and weights."""
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
            for key in ("n1i", "n2i", "ai", "ci"):
                block_n[key].append(d.get(key))
            if not show:
                continue
            cells = {}
            cell_notes = d.get("cell_notes") or {}
            for arm in arm_spec:
                for key, _t, _g in arm:
                    v = fmt.entered(d.get(key), data_digits if key[0] in "ms" else 0, minus=MINUS)
                    if not v and key in COUNT_KEYS:
                        # RevMan leaves these blank; a reader cannot tell blank
                        # from zero or from a layout slip, so say it
                        v = NOT_REPORTED
                        missing_marked = True
                    elif v and cell_notes.get(key):
                        v += marks.of(cell_notes[key])
                    cells[key] = v
            for c in free_cols:
                cells[c] = fmt.cell(d.get(c), minus=MINUS)
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
            row = Row("study", label=s.study + marks.for_study(d), cells=cells,
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
            s_ = fmt.entered(sum(got), 0, minus=MINUS)
            return s_ + marks.of(PARTIAL_TOTAL_NOTE) if len(got) < len(vals) else s_

        cells = {}
        if show_data:
            cells["n1i"] = total("n1i")
            cells["n2i"] = total("n2i")
        wsum = sum(w for w in weights if is_number(w))
        cells["weight"] = f"{wsum:.1f}%" if kind == "subtotal" else "100.0%"
        row = Row(kind, label=label, bold=True, cells=cells,
                   effect=eff_text(fit.estimate, fit.ci_lb, fit.ci_ub),
                   draw=("diamond", fit.estimate, fit.ci_lb, fit.ci_ub, kind)
                   if is_number(fit.estimate) else None)
        rows.append(row)
        if show_data and binary:
            rows.append(Row("events", label="Total events",
                             cells={"ai": total("ai"), "ci": total("ci")}))
        want_pi = prediction == "all" or (prediction is True and kind == "total")
        if want_pi and is_number(fit.pi_lb) and is_number(fit.pi_ub):
            rows.append(Row("pi", label="Prediction interval", italic=True,
                             effect=("", f"[{bound(fit.pi_lb)},", f"{bound(fit.pi_ub)}]"),
                             draw=("pi", fit.pi_lb, fit.pi_ub)))

    used: dict[str, int] = {}
    for level, fit in blocks:
        if level is not None:
            by = str(result.by).replace("_", " ")
            head = (subgroup_titles or {}).get(level, f"{by[:1].upper()}{by[1:]}: {level}")
            if study_results:
                rows.append(Row("header", label=head, bold=True, span=True))
        block_n, weights = study_rows(fit, used, show=study_results)
        if level is not None:
            if study_results:
                pooled_rows(fit, "subtotal", f"Subtotal ({ci_text})", block_n, weights)
            else:  # the subgroup's row is its subtotal, and says what it pools
                pooled_rows(fit, "subtotal", head, block_n, weights)
                rows.append(Row("text", label=_studies_text(fit.k, block_n), span=True))
            rows.append(Row("text", label=heterogeneity_text(fit, digits=digits, i2_from=i2_from),
                             span=True))
            rows.append(Row("text", label=overall_effect_text(fit), span=True))
            rows.append(Row("blank"))
    all_n = {key: [study_data.get(s.study, {}).get(key) for s in overall.studies]
             for key in ("n1i", "n2i", "ai", "ci")}
    n_before_total = len(rows)
    pooled_rows(overall, "total", f"Total ({ci_text})", all_n, [s.weight for s in overall.studies])
    bottom_lines = [heterogeneity_text(overall, digits=digits, i2_from=i2_from),
                    overall_effect_text(overall)]
    if result.subgroups:
        bottom_lines.append(subgroup_text(result))

    notes = _footnotes(result, marks, missing_marked, rob_keys, i2_from) + list(footnotes)
    if not study_results:
        notes.insert(0, SUMMARY_NOTE)
    return _Table(rows=rows, bottom_lines=bottom_lines, notes=notes, measure=measure,
                  method_text=f"{method_label(overall)}, {ci_text}", arms=arms, arm_spec=arm_spec,
                  free_cols=free_cols, columns=tuple(columns), rob_keys=rob_keys, ratio=ratio,
                  tail=len(rows) - n_before_total)


#: The footnote of a forest plot drawn without its study rows.
#: Inches a study label may claim (an author-year id fits; longer ones are cut).
LABEL_WIDTH = 1.9
#: ... and a subgroup's label, when the subgroups alone are drawn: the label is
#: "Species: <full name>", which must not be cut to an ambiguous prefix
#: ("Bifidobacterium a…" for two species); the summary has no mean or SD
#: columns, so the figure stays about as wide as a full one.
SUMMARY_LABEL_WIDTH = 3.8

SUMMARY_NOTE = ("One row per subgroup: its pooled estimate; its studies are not drawn "
                "(R meta's study.results = FALSE).")


def _studies_text(k: int, block_n: dict[str, list]) -> str:
    """``k = 12 studies, 1480 participants``: participants are both arms'
    totals of the studies that report them (how many do, when not all)."""
    both = [float(a) + float(b) for a, b in zip(block_n["n1i"], block_n["n2i"])
            if is_number(a) and is_number(b)]
    text = f"k = {k} {'study' if k == 1 else 'studies'}"
    if not both:
        return text
    n = fmt.entered(sum(both), 0, minus=MINUS)
    if len(both) < len(block_n["n1i"]):
        return f"{text}, {n} participants in the {len(both)} that report them"
    return f"{text}, {n} participants"


def _footnotes(result: PoolResult, marks: _Marks, missing_marked: bool, rob_keys: list[str],
               i2_from: str) -> list[str]:
    """The footnotes: marked texts, then the model's abbreviations and RoB legend."""
    overall = result.overall
    notes = [f"{m} {t}" for t, m in marks.marks.items()]
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
    if result.subgroups and result.subgroup_test:
        notes.append(subgroup_test_note(result.subgroup_test))
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
    return notes



def _paper_ci(shown, yi: float, lb: float, ub: float,
              ratio: bool) -> tuple[float, float] | None:
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


def _clip_x(verts: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
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


def _arrow_head(side: str, tip: float, y: float, length: float, half_height: float,
                to_an: Callable[[float], float], disp: Callable[[float], float], color: str,
                gid: str) -> Polygon:
    """A filled arrowhead with its tip at ``tip`` (display scale) on row ``y``,
    ``length`` long on the analysis scale, pointing off the axis."""
    from matplotlib.patches import Polygon

    base = disp(to_an(tip) + (length if side == "left" else -length))
    return Polygon([(tip, y), (base, y - half_height), (base, y + half_height)], closed=True,
                   facecolor=color, edgecolor=color, lw=0.5, zorder=5, gid=gid)


def _arrow_marker(direction: str) -> MarkerStyle:
    """A filled triangle whose tip is at the data point."""
    from matplotlib.markers import MarkerStyle
    from matplotlib.path import Path as MplPath

    s = -1 if direction == "left" else 1
    verts = [(0, 0), (-s * 1.0, 0.55), (-s * 1.0, -0.55), (0, 0)]
    return MarkerStyle(MplPath(verts, [MplPath.MOVETO, MplPath.LINETO, MplPath.LINETO,
                                       MplPath.CLOSEPOLY]))



# ----------------------------------------------------------------------------
# layout and drawing

#: Study squares: the largest is this many rows wide (its neighbours' CIs stay
#: visible), the smallest this many points (still a square, not a dot); the
#: area grows with the weight relative to the largest weight or 15%,
#: whichever is larger, so squares shrink when no study dominates.
SQUARE_MAX_ROWS = 0.82
SQUARE_MIN_PT = 2.2
SQUARE_REF_WEIGHT = 15.0
#: Half the height of the prediction-interval bar and of its arrowheads, in rows.
PI_HALF_ROWS = 0.11
PI_ARROW_HALF_ROWS = 0.24
#: Area (pt²) of the arrow marker that ends a clipped study CI.
CI_ARROW_SIZE = 30
#: Risk-of-bias dots are this many rows across (the symbol half that); a RoB
#: column is at least 1.05 rows wide so neighbouring dots never touch.
ROB_DOT_ROWS = 0.8
ROB_SYMBOL_FRACTION = 0.5
ROB_COL_MIN_ROWS = 1.05
ROB_TITLE = "Risk of Bias"
#: The arm rule sits this many rows above the top of the second header row,
#: the header rule this many above the first body row.
ARM_RULE_LIFT_ROWS = 0.1
HEADER_RULE_LIFT_ROWS = 0.08


@dataclass
class _Left:
    """The placed columns left of the panel."""

    cols: list[Column]
    eff_cols: list[Column]
    group_title: dict[str, str]
    width: float      # from the margin to the right edge of the last column
    label_fit: float  # the width a (non-spanning) row label may take


def _left_columns(table: _Table, look: _Look, tm: TextMeasure) -> _Left:
    """Columns left of the panel, each as wide as its widest cell (within
    its cap), group headers fitting over their columns, and the label column
    widened for the texts that span the left region."""
    st = look.style
    fs, pad, col_gap = st.fontsize, st.pad, st.col_gap
    rows = table.rows

    def width(s, bold=False, italic=False):
        return tm.width(s, fs, bold, italic)

    cols = [Column("label", "Study or Subgroup", "left", cap=look.label_width)]
    for c in table.free_cols:
        cols.append(Column(c, look.column_titles.get(c, c.replace("_", " ").capitalize()), "left",
                         cap=look.max_column_width))
    groups = {}
    for arm_name, arm in zip(table.arms, table.arm_spec):
        for key, t, g in arm:
            cols.append(Column(key, t, "right", group=g))
        groups[arm[0][2]] = arm_name
    if "weight" in table.columns:
        cols.append(Column("weight", "Weight", "right"))
    if "effect" in table.columns:
        for k in ("e0", "e1", "e2"):
            cols.append(Column(k, "", "right", group="effect"))
        groups["effect"] = MEASURE_NAMES.get(table.measure, table.measure)

    ### widths from cell contents
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
            return col_gap * st.group_gap_factor
        return col_gap

    ### group headers (arm names, measure name) must fit over their columns
    group_title = {}
    for g, name in groups.items():
        members = [c for c in cols if c.group == g]
        span_w = (sum(c.width for c in members)
                  + sum(gap_before(a, b) for a, b in zip(members, members[1:])))
        need = max(width(name, True), width(table.method_text, True) if g == "effect" else 0)
        if need > span_w:
            members[0].width += need - span_w
        group_title[g] = name

    ### the left region must hold the spanning texts (subgroup headers,
    # heterogeneity lines); widen the label column for them
    left_w = place_columns(cols, MARGIN_IN, gap_before) - MARGIN_IN
    span_need = max([width(r.label, r.bold, r.italic) for r in rows if r.span]
                    + [width(s) for s in table.bottom_lines] + [0.0]) + pad
    if span_need > left_w:
        extra = span_need - left_w
        cols[0].width += extra
        for c in cols[1:]:
            c.x0 += extra
        left_w = span_need
    return _Left(cols, eff_cols, group_title, left_w, cols[0].width - pad)


def _axis_limits(rows: list[Row], xlim: tuple[float, float] | None, ticks: Sequence[float] | None,
                 ratio: bool) -> tuple[float, float, list[float]]:
    """(lo, hi, ticks) of the panel on the display scale.

    Distances from no effect on the analysis scale. The axis always shows
    every central estimate; it covers the study CIs (see below) and the
    pooled intervals (diamonds, prediction intervals) only while they stay
    near that range: a two-trial HKSJ interval of 0.02-35 must not squeeze
    every study into the middle of a 0.002-500 axis. Whatever runs beyond
    the axis ends in an arrow.
    """
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
        (lo, hi), auto = nice_limits(ext, ratio)
    else:
        lo, hi = float(xlim[0]), float(xlim[1])
        if not lo < hi or (ratio and lo <= 0):
            raise ValueError(f"xlim must be increasing{' and positive for ratios' if ratio else ''}")
        auto = None
    if ticks is None:
        ticks = auto if auto is not None else auto_ticks(lo, hi, ratio)
    return lo, hi, [float(t) for t in ticks]


def _rob_columns(rob_keys: list[str], x: float, tm: TextMeasure,
                 st: TableStyle) -> tuple[list[Column], float]:
    """The risk-of-bias columns from ``x`` (right of the panel), widened
    together when the group title is wider than they are; and their right edge."""
    fs, space = st.fontsize, tm.width(" ", st.fontsize)
    rob_cols = []
    for i, k in enumerate(rob_keys):
        w = max(st.row_h * ROB_COL_MIN_ROWS, tm.width(_rob_short(k, i), fs, True) + st.pad)
        rob_cols.append(Column(k, _rob_short(k, i), "center", group="rob", width=w, x0=x))
        x += w + space
    x -= space
    title_w = tm.width(ROB_TITLE, fs, True)
    total = x - rob_cols[0].x0
    if title_w > total:
        grow = (title_w - total) / len(rob_cols)
        xx = rob_cols[0].x0
        for c in rob_cols:
            c.width += grow
            c.x0 = xx
            xx += c.width + space
        x = xx - space
    return rob_cols, x


def _draw(table: _Table, look: _Look, page: range | None,
          page_of: tuple[int, int] | None = None) -> Figure:
    """Measure, lay out and draw the table; ``page`` limits the body to
    those rows (columns and axis are those of the whole table, so pages
    line up)."""
    st = look.style
    fs, row_h = st.fontsize, st.row_h
    fig = new_figure()
    tm = TextMeasure(fig)
    left = _left_columns(table, look, tm)
    lo, hi, ticks = _axis_limits(table.rows, look.xlim, look.ticks, table.ratio)
    tick_labels = [tick_label(t, table.ratio) for t in ticks]

    ### panel width and gaps: favours labels, headers and tick labels must fit
    fav_w = max(tm.width(look.favours[0], fs), tm.width(look.favours[1], fs))
    panel_w = panel_width(look.plot_width, fav_w,
                          [tm.width(table.method_text, fs, True),
                           tm.width(left.group_title.get("effect", ""), fs, True)])
    half_tick = max([tm.width(t, fs) for t in tick_labels] + [0.0]) / 2
    gap_side = max(st.col_gap * 2, half_tick + st.col_gap)  # tick labels overhang the panel
    panel_x0 = MARGIN_IN + left.width + gap_side
    panel_x1 = panel_x0 + panel_w
    rob_cols: list[Column] = []
    if table.rob_keys:
        rob_cols, rob_x1 = _rob_columns(table.rob_keys, panel_x1 + gap_side, tm, st)
    fig_w = (rob_x1 if rob_cols else panel_x1 + half_tick) + MARGIN_IN

    ### vertical layout; a page shows its own rows, the last page the tests
    rows = _page_rows(table, page)
    last = page is None or page.stop == len(table.rows)
    bottom_lines = table.bottom_lines if last else []
    note_lines = wrap_notes(table.notes, tm, fig_w - 2 * MARGIN_IN, st)
    title = look.title
    if page_of is not None:
        title = (f"{title} (page {page_of[0]} of {page_of[1]})" if title
                 else f"Page {page_of[0]} of {page_of[1]}")
    bands = vertical_bands(st, title=bool(title), head_rows=2, n_rows=len(rows),
                           bottom_rows=len(bottom_lines), note_rows=len(note_lines))
    fig.set_size_inches(fig_w, bands.fig_h)
    canvas = TableCanvas(fig, st)

    if title:
        canvas.title(title, tm, bands)
    _draw_header(canvas, table, left, rob_cols, bands, panel_x0, panel_x1, look.colors["rule"])
    _draw_body(canvas, tm, rows, left, bands)
    for j, s in enumerate(bottom_lines):
        canvas.text(MARGIN_IN, bands.body_bot + (j + 0.5) * row_h, s)
    canvas.notes(note_lines, bands.notes_top)

    ### the plot panel
    ax = interval_panel(fig, canvas, bands, x0=panel_x0, width=panel_w, n_rows=len(rows), lo=lo,
                        hi=hi, ratio=table.ratio, ticks=ticks, null=table.null,
                        null_color=look.colors["null"], gid="forest-panel")
    _draw_marks(ax, rows, lo, hi, panel_w, table.ratio, row_h, look.colors,
                _square_ref(table.rows))
    ax.set_xlim(lo, hi)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    put_favours(canvas, tm, look.favours, x0=panel_x0, width=panel_w, lo=lo, hi=hi,
                ratio=table.ratio, null=table.null, y=bands.fav_y)
    if rob_cols:
        _draw_rob(canvas, rows, rob_cols, bands)
    return fig


def _draw_header(canvas: TableCanvas, table: _Table, left: _Left, rob_cols: list[Column],
                 bands: Bands, panel_x0: float, panel_x1: float, rule_color: str) -> None:
    """The two header rows: group titles over their columns, column titles,
    the measure and model over the panel, RoB domains; the header rule."""
    row_h = canvas.style.row_h
    h1 = bands.top + 0.5 * row_h
    h2 = bands.top + 1.5 * row_h
    cols = left.cols
    for g, name in left.group_title.items():
        members = [c for c in cols if c.group == g]
        cx = (members[0].x0 + members[-1].x1) / 2
        canvas.text(cx, h1, name, "center", bold=True)
        if g.startswith("arm"):
            # a thin rule under the arm name, as in RevMan Web
            canvas.rule(members[0].x0, members[-1].x1, bands.top + row_h,
                        lift=ARM_RULE_LIFT_ROWS * row_h, lw=0.5, color=rule_color)
    for c in cols:
        if c.group == "effect":
            continue
        canvas.text_in(c, h2, c.title, bold=True)
    if left.eff_cols:
        canvas.text((left.eff_cols[0].x0 + left.eff_cols[-1].x1) / 2, h2, table.method_text,
                    "center", bold=True)
    pcx = (panel_x0 + panel_x1) / 2
    canvas.text(pcx, h1, MEASURE_NAMES.get(table.measure, table.measure), "center", bold=True)
    canvas.text(pcx, h2, table.method_text, "center", bold=True)
    if rob_cols:
        canvas.text((rob_cols[0].x0 + rob_cols[-1].x1) / 2, h1, ROB_TITLE, "center", bold=True)
        for c in rob_cols:
            canvas.text_in(c, h2, c.title, bold=True)
    canvas.rule(MARGIN_IN, canvas.fig_w - MARGIN_IN, bands.body_top,
                lift=HEADER_RULE_LIFT_ROWS * row_h, color=rule_color, gid="header-rule")


def _draw_body(canvas: TableCanvas, tm: TextMeasure, rows: list[Row], left: _Left,
               bands: Bands) -> None:
    """The text of the body rows: labels (cut to their column), cells, effects."""
    fs, row_h = canvas.style.fontsize, canvas.style.row_h
    by_key = {c.key: c for c in left.cols}
    eff_cols = left.eff_cols
    for i, r in enumerate(rows):
        yc = bands.row_centre(i, row_h)
        if r.kind == "blank":
            continue
        if r.span:
            canvas.text(MARGIN_IN, yc, r.label, bold=r.bold, italic=r.italic)
            continue
        canvas.text(MARGIN_IN, yc, tm.fit(r.label, left.label_fit, fs, r.bold, r.italic),
                    bold=r.bold, italic=r.italic)
        for key, s in r.cells.items():
            if key in by_key and key != "label":
                c = by_key[key]
                s = tm.fit(s, c.width, fs, r.bold) if c.cap is not None else s
                canvas.text_in(c, yc, s, bold=r.bold)
        if eff_cols and r.effect:
            if len(r.effect) == 1:
                canvas.text(eff_cols[-1].x1, yc, r.effect[0], "right", bold=r.bold,
                            italic=r.italic)
            else:
                for c, s in zip(eff_cols, r.effect):
                    canvas.text_in(c, yc, s, bold=r.bold, italic=r.italic)


def _square_ref(rows: list[Row]) -> float:
    """The weight of the largest square: the largest study weight (on every
    page), or SQUARE_REF_WEIGHT when no study weighs more."""
    w_all = [r.draw[4] for r in rows if r.draw and r.draw[0] == "square" and is_number(r.draw[4])]
    return max(w_all + [SQUARE_REF_WEIGHT])


def _draw_marks(ax: Axes, rows: list[Row], lo: float, hi: float, panel_w: float, ratio: bool,
                row_h: float, colors: dict, w_ref: float) -> None:
    """Squares and CI lines of the studies, diamonds, prediction intervals;
    whatever runs beyond the axis ends in an arrow."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon, Rectangle

    def disp(x):  # analysis scale -> display scale
        return math.exp(x) if ratio else x

    def to_an(v):  # display scale -> analysis scale
        return math.log(v) if ratio else v

    max_side = SQUARE_MAX_ROWS * (row_h * 72)
    squares_x, squares_y, squares_s = [], [], []
    segs, arrows_l, arrows_r = [], [], []
    # the length of an arrowhead of a clipped diamond or prediction interval,
    # on the analysis scale
    head = ARROW_HEAD_IN / panel_w * (to_an(hi) - to_an(lo))
    for i, r in enumerate(rows):
        if r.draw is None:
            continue
        kind = r.draw[0]
        if kind == "square":
            _, y, lb, ub, w = r.draw
            yd, lbd, ubd = disp(y), disp(lb), disp(ub)
            if lo <= yd <= hi:
                side = (max(SQUARE_MIN_PT, max_side * math.sqrt(max(w, 0) / w_ref))
                        if is_number(w) else SQUARE_MIN_PT)
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
            h = DIAMOND_HALF_ROWS
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
                ax.add_patch(Rectangle((a, i - PI_HALF_ROWS), b - a, 2 * PI_HALF_ROWS,
                                       facecolor=colors["prediction"], edgecolor="none", zorder=4,
                                       gid="prediction-interval"))
            for side, clipped in (("left", disp(lb) < lo), ("right", disp(ub) > hi)):
                if clipped:
                    ax.add_patch(_arrow_head(side, lo if side == "left" else hi, i, head,
                                             PI_ARROW_HALF_ROWS, to_an, disp, colors["prediction"],
                                             f"pi-arrow-{side}"))
    ax.scatter(squares_x, squares_y, s=squares_s, marker="s", color=colors["square"],
               linewidths=0, zorder=2, gid="study-square")
    ax.add_collection(LineCollection(segs, colors=colors["ci"], linewidths=LINE_WIDTH_PT, zorder=3,
                                     gid="study-ci"))
    for pts, d in ((arrows_l, "left"), (arrows_r, "right")):
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=_arrow_marker(d),
                       s=CI_ARROW_SIZE, color=colors["ci"], linewidths=0, zorder=3, clip_on=False,
                       gid=f"ci-arrow-{d}")


def _draw_rob(canvas: TableCanvas, rows: list[Row], rob_cols: list[Column], bands: Bands) -> None:
    """The risk-of-bias dots (robvis colours and symbols), one Line2D per
    domain and judgement."""
    from matplotlib.lines import Line2D

    row_h = canvas.style.row_h
    fig = canvas.fig
    for c in rob_cols:
        xs, ys, lv = [], [], []
        for i, r in enumerate(rows):
            rob = r.cells.get("rob")
            if not rob:
                continue
            xs.append((c.x0 + c.x1) / 2)
            ys.append(canvas.y(bands.row_centre(i, row_h)))
            lv.append(rob.get(c.key, "no_information"))
        if not xs:
            continue
        d = ROB_DOT_ROWS * row_h * 72
        for level in ROB_COLORS:
            pts = [(xx, yy) for xx, yy, ll in zip(xs, ys, lv) if ll == level]
            if not pts:
                continue
            px, py = [p[0] for p in pts], [p[1] for p in pts]
            fig.add_artist(Line2D(px, py, ls="none", marker="o", ms=d, mew=0,
                                  color=ROB_COLORS[level], transform=fig.dpi_scale_trans,
                                  gid=f"rob-dot-{level}"))
            fig.add_artist(Line2D(px, py, ls="none", marker=ROB_MARKERS[level],
                                  ms=d * ROB_SYMBOL_FRACTION, mew=1.0,
                                  color="black" if level == "some_concerns" else "white",
                                  transform=fig.dpi_scale_trans, gid=f"rob-symbol-{level}"))
