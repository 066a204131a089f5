"""The other figures of a review: contour-enhanced funnel plot, leave-one-out
and cumulative forest plots, the meta-regression bubble plot, and the
risk-of-bias summaries (robvis-style traffic-light plot and bar chart).

Like :mod:`metaanalysis.render.forest`, these functions only draw numbers
they are given (arrays or fitted results); they never fit anything. Effects
come on the analysis scale (log for RR/OR) and are drawn on the display
scale (ratios on a log axis). The leave-one-out and cumulative plots are
tables laid out by :mod:`metaanalysis.render.layout`, as the forest plots
are; they and the traffic-light plot split into pages (``page=``,
:func:`rows_page_count`, :func:`rob_page_count`) rather than grow taller than
a page.

Artists carry gids so that tests and SVG post-processing can find them:
``contour-<level>``, ``contour-background``, ``study-points``,
``filled-points``, ``egger-line``, ``pooled-line``, ``pseudo-ci``,
``loo-point``/``cumulative-point``, ``diamond-total``, ``bubbles``,
``regression-line``, ``regression-band``, ``rob-dot-<level>``,
``rob-bar-<level>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from metaanalysis.render import fmt, layout
from metaanalysis.render._common import (
    FONT_FAMILY,
    ROB2_DOMAINS,
    ROB_COLORS,
    ROB_LABELS,
    ROB_MARKERS,
    TextMeasure,
    new_figure,
    nice_limits,
    rob_level,
    save_figure,
    tick_label,
)
from metaanalysis.render.fmt import MEASURE_NAMES, MINUS, RATIO_MEASURES, is_number
from metaanalysis.render.layout import (
    BASELINE_EM,
    DIAMOND_HALF_ROWS,
    FOREST_STYLE,
    INTERVAL_STYLE,
    LINE_WIDTH_PT,
    MARGIN_IN,
    NOTE_SIZE_STEP,
    RULE_COLOR,
    TITLE_SIZE_STEP,
    Column,
    Row,
    TableCanvas,
    auto_ticks,
    interval_panel,
    paginate,
    panel_width,
    put_favours,
    vertical_bands,
    wrap_notes,
)
from metaanalysis.stats import distributions
from metaanalysis.stats.results import FitResult, PoolResult, RegressionResult

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (render/_common.py)
    from matplotlib.figure import Figure

__all__ = [
    "rows_page_count",
    "funnel_plot",
    "leave_one_out_plot",
    "cumulative_plot",
    "bubble_plot",
    "rob_traffic_light",
    "rob_page_count",
    "rob_summary",
    "save_figure",
]

MEASURE_AXIS = MEASURE_NAMES  # axis titles: the one house style of render/fmt.py

#: metafor's contour shades for levels 90/95/99% (funnel(level=c(90,95,99),
#: shade=c("white","gray55","gray75"), back="lightgray")).
CONTOUR_SHADES = ("white", "#8C8C8C", "#BFBFBF", "#D3D3D3", "#E6E6E6")


def _as_1d(x, name):
    a = np.asarray(x, dtype=float).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


def _display(measure):
    ratio = measure in RATIO_MEASURES
    return ratio, (np.exp if ratio else (lambda v: np.asarray(v, dtype=float)))


def _open_frame(ax) -> None:
    """Only the left and bottom axis lines (the house style of the xy plots)."""
    for side in ("right", "top"):
        ax.spines[side].set_visible(False)


def _style_axis(ax, fs: float) -> None:
    """Open frame, tick labels in the figure font."""
    _open_frame(ax)
    ax.tick_params(labelsize=fs)
    for t in ax.get_xticklabels() + ax.get_yticklabels():
        t.set_family(FONT_FAMILY)


def _ratio_ticks(ax, lo, hi):
    """Plain-number ticks (0.1, 0.2, 0.5, 1, 2, ...) on a log axis."""
    from matplotlib.ticker import NullLocator

    cands = [m * 10.0**e for e in range(-4, 5) for m in (1, 2, 5)]
    inside = [t for t in cands if lo <= t <= hi]
    if len(inside) > 7:
        inside = [t for t in inside if round(math.log10(t), 6).is_integer() or t == 1]
    ax.set_xticks(inside, [tick_label(t, True) for t in inside])
    ax.xaxis.set_minor_locator(NullLocator())


# ----------------------------------------------------------------------------
# funnel plot


def funnel_plot(
    yi: ArrayLike,
    vi: ArrayLike,
    estimate: float,
    *,
    contours: Sequence[float] = (0.10, 0.05, 0.01),
    egger: tuple[float, float] | None = None,
    filled: tuple | None = None,
    measure: str = "GEN",
    null: float | None = None,
    pseudo_ci: bool = True,
    alpha: float = 0.05,
    title: str | None = None,
    xlabel: str | None = None,
    fontsize: float = 8.0,
    size: tuple[float, float] = (4.6, 4.2),
) -> Figure:
    """Contour-enhanced funnel plot (Peters et al. 2008).

    Parameters
    ----------
    yi, vi : array_like of shape (k,)
        Observed effects (analysis scale) and their sampling variances.
    estimate : float
        The pooled estimate (analysis scale): a vertical line, and the centre
        of the pseudo confidence-interval funnel.
    contours : sequence of float
        Significance levels of the shaded contours, centred on no effect
        (two-sided tests of each study against ``null``).
    egger : (float, float), optional
        ``(intercept, slope)`` of the regression of ``yi`` on ``sei``
        (Egger's test as metafor's ``regtest(model="rma", predictor="sei")``);
        drawn as the line ``yi = intercept + slope * sei``.
    filled : (array_like, array_like), optional
        ``(yi, vi)`` of the studies imputed by trim-and-fill: open circles.
    measure : str
        Effect measure; RR and OR are drawn as ratios on a log axis.
    null : float, optional
        No effect on the analysis scale (default 0).
    pseudo_ci : bool
        Draw ``estimate ± z_(1-alpha/2) se`` as dashed lines.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Polygon
    from matplotlib.ticker import FuncFormatter

    yi = _as_1d(yi, "yi")
    vi = _as_1d(vi, "vi")
    if yi.shape != vi.shape or np.any(vi <= 0):
        raise ValueError("yi and vi must have the same length and vi must be > 0")
    levels = sorted((float(a) for a in contours), reverse=True)  # 0.10, 0.05, 0.01
    if any(not fmt.P_FLOOR <= a < 1 for a in levels):
        # the legend prints them as p-values, and those stop at "< 0.001"
        raise ValueError(f"contour levels must be in [{fmt.P_FLOOR:g}, 1)")
    ratio, disp = _display(measure)
    null = 0.0 if null is None else float(null)
    sei = np.sqrt(vi)
    fy = fv = None
    if filled is not None:
        fy, fv = _as_1d(filled[0], "filled yi"), _as_1d(filled[1], "filled vi")
        if fy.shape != fv.shape:
            raise ValueError("filled yi and vi must have the same length")
    all_se = np.concatenate([sei, np.sqrt(fv)]) if fv is not None else sei
    all_y = np.concatenate([yi, fy]) if fy is not None else yi
    se_max = float(all_se.max()) * 1.08
    zmax = distributions.norm.isf(min(levels) / 2) if levels else 1.96
    half = max(float(np.max(np.abs(all_y - null))) * 1.05, zmax * se_max,
               abs(estimate - null) + distributions.norm.isf(alpha / 2) * se_max)
    lo, hi = null - half, null + half

    fig = new_figure(*size)
    fs = fontsize
    ax_in = (0.7, 0.55, size[0] - 0.85, size[1] - 0.55 - (0.45 if title else 0.2))
    ax = fig.add_axes([0, 0, 1, 1])
    if ratio:
        ax.set_xscale("log")
    ax.set_xlim(disp(lo), disp(hi))
    ax.set_ylim(se_max, 0)  # se on an inverted axis: precise studies on top

    ### significance contours, from the outside in
    se_grid = np.array([0.0, se_max])
    shades = CONTOUR_SHADES[: len(levels) + 1][::-1]  # outermost first
    ax.add_patch(Polygon([(disp(lo), 0), (disp(hi), 0), (disp(hi), se_max), (disp(lo), se_max)],
                         facecolor=shades[0], edgecolor="none", zorder=0,
                         gid="contour-background"))
    handles = []
    band_labels = []
    for j, a in enumerate(sorted(levels)):  # 0.01 (widest) first
        z = distributions.norm.isf(a / 2)
        left = disp(null - z * se_grid)
        right = disp(null + z * se_grid)
        verts = [(left[0], 0), (right[0], 0), (right[1], se_max), (left[1], se_max)]
        ax.add_patch(Polygon(verts, facecolor=shades[j + 1], edgecolor="none", zorder=0.5 + j,
                             gid=f"contour-{a:g}"))
    # legend: p ranges from the highest to the lowest
    bounds = [1.0] + levels + [0.0]
    fills = shades[::-1]  # innermost (white) first

    for j in range(len(bounds) - 1):
        hi_p, lo_p = bounds[j], bounds[j + 1]
        if hi_p == 1.0:
            text = f"p > {fmt.p_value(lo_p)}" if lo_p > 0 else "all p"
        elif lo_p == 0.0:
            text = f"p < {fmt.p_value(hi_p)}"
        else:
            text = f"{fmt.p_value(lo_p)} < p < {fmt.p_value(hi_p)}"
        handles.append(Patch(facecolor=fills[j], edgecolor="0.4", lw=0.5))
        band_labels.append(text)

    ### pseudo-CI funnel and the pooled estimate
    ax.axvline(disp(estimate), color="black", lw=0.9, zorder=3, gid="pooled-line")
    if pseudo_ci:
        z = distributions.norm.isf(alpha / 2)
        ax.add_collection(LineCollection(
            [[(disp(estimate), 0), (disp(estimate - z * se_max), se_max)],
             [(disp(estimate), 0), (disp(estimate + z * se_max), se_max)]],
            colors="black", linestyles="--", linewidths=0.8, zorder=3, gid="pseudo-ci"))
        handles.append(Line2D([], [], color="black", ls="--", lw=0.8))
        band_labels.append(f"Pseudo {100 * (1 - alpha):g}% CI")
    if egger is not None:
        b0, b1 = float(egger[0]), float(egger[1])
        s = np.linspace(0, se_max, 50)
        ax.plot(disp(b0 + b1 * s), s, color="#B03A2E", lw=1.2, zorder=4, gid="egger-line")
        handles.append(Line2D([], [], color="#B03A2E", lw=1.2))
        band_labels.append("Egger regression")

    ### studies
    ax.scatter(disp(yi), sei, s=22, color="black", zorder=5, linewidths=0, gid="study-points")
    handles.append(Line2D([], [], ls="none", marker="o", color="black", ms=4.5))
    band_labels.append("Studies")
    if fy is not None and len(fy):
        ax.scatter(disp(fy), np.sqrt(fv), s=22, facecolors="white", edgecolors="black",
                   linewidths=0.9, zorder=5, gid="filled-points")
        handles.append(Line2D([], [], ls="none", marker="o", mfc="white", mec="black", ms=4.5))
        band_labels.append("Imputed (trim and fill)")

    if ratio:
        _ratio_ticks(ax, disp(lo), disp(hi))
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_label(v, False)))
    ax.set_xlabel(xlabel or MEASURE_AXIS.get(measure, measure), fontsize=fs + 1, family=FONT_FAMILY)
    ax.set_ylabel("Standard error", fontsize=fs + 1, family=FONT_FAMILY)
    if title:
        ax.set_title(title, fontsize=fs + 2, family=FONT_FAMILY, loc="left")
    _style_axis(ax, fs)
    leg = fig.legend(handles, band_labels, loc="upper left", frameon=False,
                     bbox_to_anchor=(ax_in[0] + ax_in[2] + 0.2, ax_in[1] + ax_in[3]),
                     bbox_transform=fig.dpi_scale_trans, prop={"family": FONT_FAMILY, "size": fs})
    leg.set_gid("funnel-legend")
    _grow_for_legend(fig, ax, ax_in, leg)
    return fig


def _grow_for_legend(fig, ax, ax_in, leg, margin=0.12):
    """Widen the figure so that a legend right of the axes is not cut off;
    the axes keep their size in inches."""
    bbox = leg.get_window_extent(fig.canvas.get_renderer())
    w = max(fig.get_figwidth(), bbox.x1 / fig.dpi + margin)
    h = fig.get_figheight()
    fig.set_size_inches(w, h)
    ax.set_position([ax_in[0] / w, ax_in[1] / h, ax_in[2] / w, ax_in[3] / h])


# ----------------------------------------------------------------------------
# leave-one-out and cumulative forest plots (one interval per row)


#: The marks of a leave-one-out or cumulative row: area (pt²) of the point and
#: its colour (the forest plots' square colour).
POINT_SIZE = 24
POINT_COLOR = "#1F4E79"


def _page_title(title: str | None, page: int, n: int) -> str:
    """The title of one page of ``n``: "<title> (page 2 of 3)" or "Page 2 of 3"."""
    return f"{title} (page {page} of {n})" if title else f"Page {page} of {n}"


def rows_page_count(n_rows: int, pooled: bool = False, rows_per_page: int | None = None) -> int:
    """How many pages a leave-one-out or cumulative plot of ``n_rows`` rows
    (``pooled``: the last one is the overall diamond) is split into."""
    return len(_row_pages(n_rows, pooled, rows_per_page))


def _row_pages(n_rows: int, pooled: bool, rows_per_page: int | None) -> list[range]:
    per_page = layout.MAX_ROWS_PER_PAGE if rows_per_page is None else rows_per_page
    kinds = ["study"] * (n_rows - pooled) + ["total"] * pooled
    return paginate(kinds, per_page, tail=int(pooled))


def _interval_rows_plot(labels: Sequence[str], est, lb, ub, *, measure: str, header: str,
                        pooled: tuple | None, ref: float | None, marker: str, gid: str,
                        extra_cols: list[tuple[str, list[str]]],
                        favours: tuple[str, str] | None, fontsize: float, plot_width: float,
                        label_width: float, digits: int, title: str | None, xlim, alpha: float,
                        note: str | None = None, page: int | None = None,
                        rows_per_page: int | None = None) -> Figure:
    """One pooled interval per row (leave-one-out, cumulative) in the table
    layout of the forest plots (:mod:`metaanalysis.render.layout`): label,
    extra columns, the estimate and CI as text, the panel; a diamond for
    ``pooled`` (label, est, lb, ub) and a dashed line at ``ref``. ``page``
    draws one page of at most ``rows_per_page`` rows (columns and axis of
    the whole table, the diamond on the last page)."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Polygon

    ratio, disp = _display(measure)
    est, lb, ub = (np.asarray(a, dtype=float).reshape(-1) for a in (est, lb, ub))
    k = len(est)
    if not (len(lb) == len(ub) == k == len(labels)):
        raise ValueError("labels, estimates and CI bounds must have the same length")
    fig = new_figure()
    tm = TextMeasure(fig)
    st = INTERVAL_STYLE.with_fontsize(fontsize)
    fs, row_h, pad = st.fontsize, st.row_h, st.pad

    def f(x):
        if not is_number(x):
            return "NA"
        return fmt.ratio(math.exp(x), digits) if ratio else fmt.num(x, digits, minus=MINUS)

    rows = [Row("study", label=str(l), effect=(f(e), f"[{f(a)},", f"{f(b)}]"),
                draw=("point", e, a, b)) for l, e, a, b in zip(labels, est, lb, ub)]
    if pooled is not None:
        lab, e, a, b = pooled
        rows.append(Row("total", label=lab, bold=True, effect=(f(e), f"[{f(a)},", f"{f(b)}]"),
                        draw=("diamond", e, a, b, "total")))

    ### columns: label, extra columns, the effect as three right-aligned parts
    label_w = min(label_width, max(tm.width(r.label, fs, r.bold) for r in rows) + pad)
    label_w = max(label_w, tm.width(header, fs, True) + pad)
    cols = [Column("label", header, "left", width=label_w, x0=MARGIN_IN)]
    for name, vals in extra_cols:
        w = max([tm.width(str(v), fs) for v in vals] + [tm.width(name, fs, True)]) + pad
        cols.append(Column(name, name, "right", group="extra", width=w))
    ecol = [max(tm.width(r.effect[i], fs, True) for r in rows) + pad for i in range(3)]
    eff_title = f"{measure if measure != 'GEN' else 'Estimate'} [{fmt.ci_label(alpha)}]"
    space = tm.width(" ", fs)
    eff_w = sum(ecol) + 2 * space
    if tm.width(eff_title, fs, True) > eff_w:
        ecol[0] += tm.width(eff_title, fs, True) - eff_w
    eff_cols = [Column(f"e{i}", "", "right", group="effect", width=w) for i, w in enumerate(ecol)]
    # left to right: a column gap after the label and after each extra column,
    # one space between the parts of the effect (each step adds width and gap
    # together, as the committed figures were laid out: the panel's position
    # must not move by a rounding error)
    x = cols[0].x1 + st.col_gap
    for c in cols[1:]:
        c.x0 = x
        x += c.width + st.col_gap
    eff_cols[0].x0 = x
    for prev, c in zip(eff_cols, eff_cols[1:]):
        c.x0 = prev.x1 + space
    cols += eff_cols
    left_x1 = eff_cols[-1].x1

    ### limits
    ext = [abs(v) for v in np.concatenate([est, lb, ub]) if is_number(v)]
    if pooled is not None:
        ext += [abs(v) for v in pooled[1:] if is_number(v)]
    if xlim is None:
        (lo, hi), ticks = nice_limits(max(ext + [1e-12]), ratio)
    else:
        lo, hi = xlim
        ticks = auto_ticks(lo, hi, ratio)
    ### the rows of this page (widths and limits above are of every row)
    shown = range(len(rows))
    if page is not None:
        pages = _row_pages(len(rows), pooled is not None, rows_per_page)
        if not 1 <= page <= len(pages):
            raise ValueError(f"page must be 1 to {len(pages)}, got {page!r}")
        if len(pages) > 1:
            shown = pages[page - 1]
            title = _page_title(title, page, len(pages))
    fav_w = max(tm.width(favours[0], fs), tm.width(favours[1], fs)) if favours else 0
    panel_title = MEASURE_AXIS.get(measure, measure)
    panel_w = panel_width(plot_width, fav_w, [tm.width(panel_title, fs, True)])
    panel_x0 = left_x1 + st.col_gap + st.tick_overhang_in
    fig_w = panel_x0 + panel_w + st.tick_overhang_in + MARGIN_IN

    ### vertical layout; the note says the model of every row, as the
    # forest plots' header does
    note_lines = wrap_notes([note] if note else [], tm, fig_w - 2 * MARGIN_IN, st)
    bands = vertical_bands(st, title=bool(title), head_rows=1, n_rows=len(shown),
                           note_rows=len(note_lines))
    fig.set_size_inches(fig_w, bands.fig_h)
    canvas = TableCanvas(fig, st)
    canvas.notes(note_lines, bands.notes_top, gid="note")
    if title:
        canvas.title(title, tm, bands)
    hy = bands.body_top - 0.5 * row_h
    for c in cols[:-3]:
        canvas.text_in(c, hy, c.title, bold=True)
    canvas.text((eff_cols[0].x0 + eff_cols[-1].x1) / 2, hy, eff_title, "center", bold=True)
    canvas.text(panel_x0 + panel_w / 2, hy, panel_title, "center", bold=True)
    canvas.rule(MARGIN_IN, fig_w - MARGIN_IN, bands.body_top)
    for y, i in enumerate(shown):
        r = rows[i]
        yc = bands.row_centre(y, row_h)
        canvas.text(cols[0].x0, yc, tm.fit(r.label, label_w - pad, fs, r.bold), bold=r.bold)
        for c, (_name, vals) in zip(cols[1:], extra_cols):
            if i < len(vals):
                canvas.text_in(c, yc, str(vals[i]), bold=r.bold)
        for c, s in zip(eff_cols, r.effect):
            canvas.text_in(c, yc, s, bold=r.bold)

    ### the panel
    null = 1.0 if ratio else 0.0
    ax = interval_panel(fig, canvas, bands, x0=panel_x0, width=panel_w, n_rows=len(shown), lo=lo,
                        hi=hi, ratio=ratio, ticks=ticks, null=null)
    if ref is not None and is_number(ref):
        ax.axvline(disp(ref), color=RULE_COLOR, lw=LINE_WIDTH_PT, ls="--", zorder=1,
                   gid="reference-line")
    segs = []
    for i, r in enumerate(rows[j] for j in shown):
        e, a, b = r.draw[1:4]
        if r.draw[0] == "diamond":
            h = DIAMOND_HALF_ROWS
            ax.add_patch(Polygon([(disp(a), i), (disp(e), i - h), (disp(b), i),
                                  (disp(e), i + h)], facecolor="black", edgecolor="black",
                                 lw=0.5, zorder=4, gid="diamond-total"))
        else:
            segs.append([(max(disp(a), lo), i), (min(disp(b), hi), i)])
    ax.add_collection(LineCollection(segs, colors="black", linewidths=LINE_WIDTH_PT, zorder=3,
                                     gid="ci"))
    on_page = np.array([j for j in shown if j < k], dtype=int)
    ax.scatter(disp(est[on_page]), on_page - shown.start, marker=marker, s=POINT_SIZE,
               color=POINT_COLOR, zorder=4, linewidths=0, gid=gid)
    if favours:
        put_favours(canvas, tm, favours, x0=panel_x0, width=panel_w, lo=lo, hi=hi, ratio=ratio,
                    null=null, y=bands.fav_y)
    return fig


def _pooled_tuple(overall, label):
    if overall is None:
        return None
    if isinstance(overall, PoolResult):
        overall = overall.overall
    if isinstance(overall, FitResult):
        return (f"{label} (k = {overall.k})", overall.estimate, overall.ci_lb, overall.ci_ub)
    e, a, b = overall
    return (label, float(e), float(a), float(b))


def _favours(favours, arms, benefit):
    if favours is not None:
        return favours
    good, bad = f"Favours {arms[0].lower()}", f"Favours {arms[1].lower()}"
    return (good, bad) if benefit == "lower" else (bad, good)


def leave_one_out_plot(
    estimates: ArrayLike,
    ci_lb: ArrayLike,
    ci_ub: ArrayLike,
    labels: Sequence[str],
    *,
    overall: FitResult | PoolResult | tuple | None = None,
    measure: str = "GEN",
    tau2: ArrayLike | None = None,
    I2: ArrayLike | None = None,
    favours: tuple[str, str] | None = None,
    arms: tuple[str, str] = ("Probiotic", "Control"),
    benefit: str = "lower",
    digits: int = 2,
    title: str | None = None,
    fontsize: float = 8.0,
    plot_width: float = 2.6,
    label_width: float = 2.2,
    xlim: tuple[float, float] | None = None,
    alpha: float = 0.05,
    note: str | None = None,
    page: int | None = None,
    rows_per_page: int | None = None,
) -> Figure:
    """Leave-one-out plot: the pooled estimate with each study omitted in turn.

    Parameters
    ----------
    estimates, ci_lb, ci_ub : array_like of shape (k,)
        Pooled estimate and CI without study i (analysis scale).
    labels : sequence of str, length k
        The omitted study of each row (printed as "Omitting <label>").
    overall : FitResult, PoolResult or (est, lb, ub), optional
        The estimate with all studies: a diamond at the bottom and a dashed
        reference line.
    tau2, I2 : array_like of shape (k,), optional
        Extra columns (I² in percent).
    page, rows_per_page : int, optional
        Draw only page ``page`` (1-based) of rows split into pages of at most
        ``rows_per_page`` (default :data:`~metaanalysis.render.layout.MAX_ROWS_PER_PAGE`)
        rows, the overall diamond on the last (:func:`rows_page_count`).
    """
    pooled = _pooled_tuple(overall, "All studies")
    extra = []
    if tau2 is not None:
        # the same decimals as the forest plots' Tau² (issue 15)
        extra.append(("Tau\u00b2", [fmt.small(t, digits, minus=MINUS) for t in tau2]))
    if I2 is not None:
        extra.append(("I\u00b2", [f"{fmt.num(v, 0, minus=MINUS)}%" if is_number(v) else "NA"
                                   for v in I2]))
    if extra and pooled is not None and isinstance(overall, (FitResult, PoolResult)):
        fo = overall.overall if isinstance(overall, PoolResult) else overall
        if tau2 is not None:
            extra[0][1].append(fmt.small(fo.tau2, digits, minus=MINUS))
        if I2 is not None:
            extra[-1][1].append(f"{fmt.num(fo.I2, 0, minus=MINUS)}%" if is_number(fo.I2) else "NA")
    return _interval_rows_plot(
        [f"Omitting {l}" for l in labels], estimates, ci_lb, ci_ub, measure=measure,
        header="Study omitted", pooled=pooled, ref=None if pooled is None else pooled[1],
        marker="s", gid="loo-point", extra_cols=extra, favours=_favours(favours, arms, benefit),
        fontsize=fontsize, plot_width=plot_width, label_width=label_width, digits=digits,
        title=title, xlim=xlim, alpha=alpha, note=note, page=page, rows_per_page=rows_per_page)


def cumulative_plot(
    estimates: ArrayLike,
    ci_lb: ArrayLike,
    ci_ub: ArrayLike,
    labels: Sequence[str],
    *,
    years: Sequence[int | None] | None = None,
    measure: str = "GEN",
    favours: tuple[str, str] | None = None,
    arms: tuple[str, str] = ("Probiotic", "Control"),
    benefit: str = "lower",
    digits: int = 2,
    title: str | None = None,
    fontsize: float = 8.0,
    plot_width: float = 2.6,
    label_width: float = 2.2,
    xlim: tuple[float, float] | None = None,
    alpha: float = 0.05,
    note: str | None = None,
    page: int | None = None,
    rows_per_page: int | None = None,
) -> Figure:
    """Cumulative forest plot: the pooled estimate as studies are added in
    order of publication.

    Parameters
    ----------
    estimates, ci_lb, ci_ub : array_like of shape (k,)
        Pooled estimate and CI of the first i studies (analysis scale), in
        the order they were added.
    labels : sequence of str, length k
        The study added at each step (printed as "+ <label>").
    years : array_like of shape (k,), optional
        Publication years (a column); the caller sorts by year.
    page, rows_per_page : int, optional
        As in :func:`leave_one_out_plot`.
    """
    extra = []
    if years is not None:
        extra.append(("Year", [str(int(y)) if is_number(y) else "" for y in years]))
    extra.append(("k", [str(i + 1) for i in range(len(labels))]))
    return _interval_rows_plot(
        [f"+ {l}" for l in labels], estimates, ci_lb, ci_ub, measure=measure,
        header="Study added", pooled=None, ref=None, marker="o", gid="cumulative-point",
        extra_cols=extra, favours=_favours(favours, arms, benefit), fontsize=fontsize,
        plot_width=plot_width, label_width=label_width, digits=digits, title=title, xlim=xlim,
        alpha=alpha, note=note, page=page, rows_per_page=rows_per_page)


# ----------------------------------------------------------------------------
# bubble plot for meta-regression


#: Most bubbles a bubble plot labels. Up to it every bubble is labelled (at
#: the spot that covers the fewest bubbles and labels); beyond it only this
#: many, the largest weights first, and only where a label covers no other:
#: at 1,000 trials the 130 labels of one moderator stacked on each other
#: (several at one spot), unreadable, and placing them took seconds. metafor's
#: ``regplot`` labels a chosen subset the same way (its ``label`` argument).
BUBBLE_LABELS_MAX = 20

#: Height (in) added under a bubble plot for the note that says which
#: bubbles are labelled when not all are.
_BUBBLE_NOTE_IN = 0.22


def bubble_plot(
    x: ArrayLike,
    yi: ArrayLike,
    weights: ArrayLike,
    *,
    regression: RegressionResult | None = None,
    coef: int | str = 1,
    band: tuple | None = None,
    labels: Sequence[str] | None = None,
    measure: str = "GEN",
    xlabel: str = "Baseline severity (SCORAD)",
    ylabel: str | None = None,
    title: str | None = None,
    fontsize: float = 8.0,
    size: tuple[float, float] = (5.2, 4.0),
) -> Figure:
    """Bubble plot of effects against a moderator, with the fitted line.

    Parameters
    ----------
    x, yi : array_like of shape (k,)
        Moderator values and observed effects (analysis scale).
    weights : array_like of shape (k,)
        Study weights (any scale): bubble areas are proportional to them.
    regression : RegressionResult, optional
        Its ``beta[0] + beta[coef] * x`` is drawn as the fitted line.
    coef : int or str
        Index or name of the moderator's coefficient.
    band : (xgrid, lb, ub), optional
        The fitted line's confidence band (analysis scale), as predicted by
        the fitting code (the plot does not compute it).
    labels : sequence of str, optional
        Study labels written next to the bubbles: all of them when there are
        at most :data:`BUBBLE_LABELS_MAX`, else that many of the largest
        weights where a label fits, as a note under the plot says.
    """
    from matplotlib.ticker import FuncFormatter, NullLocator

    x = _as_1d(x, "x")
    yi = _as_1d(yi, "yi")
    w = _as_1d(weights, "weights")
    if not (len(x) == len(yi) == len(w)):
        raise ValueError("x, yi and weights must have the same length")
    if np.any(w < 0):
        raise ValueError("weights must be >= 0")
    ratio, disp = _display(measure)
    fs = fontsize
    capped = labels is not None and len(labels) > BUBBLE_LABELS_MAX
    width, height = size
    total = height + _BUBBLE_NOTE_IN if capped else height
    fig = new_figure(width, total)
    if capped:  # the same axes (in inches), with room under them for the note
        ax = fig.add_axes([0.13, (0.13 * height + _BUBBLE_NOTE_IN) / total, 0.82,
                           0.78 * height / total])
    else:
        ax = fig.add_axes([0.13, 0.13, 0.82, 0.78])
    if ratio:
        ax.set_yscale("log")
    area = 30 + 470 * (w / w.max() if w.max() > 0 else np.ones_like(w))
    ax.scatter(x, disp(yi), s=area, facecolors="#9DB9D5", edgecolors="#1F4E79", linewidths=0.8,
               alpha=0.85, zorder=3, gid="bubbles")
    xs = np.linspace(x.min(), x.max(), 100) if len(x) else np.array([])
    if band is not None:
        bx, blb, bub = (np.asarray(a, dtype=float) for a in band)
        ax.fill_between(bx, disp(blb), disp(bub), color="#B03A2E", alpha=0.15, lw=0, zorder=1,
                        gid="regression-band")
    if regression is not None:
        j = regression.coef_names.index(coef) if isinstance(coef, str) else int(coef)
        b0, b1 = regression.beta[0], regression.beta[j]
        ax.plot(xs, disp(b0 + b1 * xs), color="#B03A2E", lw=1.4, zorder=4, gid="regression-line")
        p = regression.pval[j]
        ptxt = fmt.p_phrase(p)
        r2 = ("" if regression.R2 is None
              else f", R\u00b2 = {fmt.num(regression.R2, 0, minus=MINUS)}%")
        slope = fmt.small(b1, 2, minus=MINUS)
        ax.text(0.02, 0.97, f"slope = {slope} ({ptxt}){r2}", transform=ax.transAxes,
                ha="left", va="top", fontsize=fs, family=FONT_FAMILY, parse_math=False,
                gid="regression-text")
    ax.axhline(1.0 if ratio else 0.0, color="black", lw=0.7, ls=":", zorder=2, gid="null-line")
    ax.margins(0.08)
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())  # freeze: labels are placed in display space
    ax.set_ylim(ax.get_ylim())
    if labels is not None:
        shown = _label_bubbles(fig, ax, x, disp(yi), np.sqrt(area) / 2, [str(v) for v in labels],
                               fs - 1, limit=BUBBLE_LABELS_MAX if capped else None)
        if capped:
            fig.text(0.13, 0.06 / total,
                     f"Labelled: {shown} of the {fmt.thousands(len(labels))} bubbles, the "
                     f"largest weights where a label fits (at most {BUBBLE_LABELS_MAX}).",
                     ha="left", va="bottom", fontsize=fs - 1, family=FONT_FAMILY,
                     parse_math=False, gid="bubble-label-note")
    if ratio:
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_label(v, True)))
    else:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_label(v, False)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: tick_label(v, False)))
    ax.set_xlabel(xlabel, fontsize=fs + 1, family=FONT_FAMILY)
    ax.set_ylabel(ylabel or MEASURE_AXIS.get(measure, measure), fontsize=fs + 1, family=FONT_FAMILY)
    if title:
        ax.set_title(title, fontsize=fs + 2, family=FONT_FAMILY, loc="left")
    _style_axis(ax, fs)
    return fig


def _label_bubbles(fig, ax, x, y, radius_pt, labels, fs, limit=None) -> int:
    """Write each label beside its bubble where it covers no bubble (its own
    included) and no label already placed, inside the axes; return how many
    were written.

    Greedy, largest bubbles first: eight directions around the bubble, then
    the same farther out (with a thin leader line back to the bubble); when
    no spot is free, the one that covers the fewest bubbles and labels.
    With ``limit``, only the ``limit`` largest bubbles are tried, and one
    whose best spot covers a label or leaves the axes is not labelled.
    """
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed = [t.get_window_extent(renderer) for t in ax.texts]  # e.g. the slope text
    centres = ax.transData.transform(np.column_stack([x, y]))
    px = fig.dpi / 72
    radii = np.asarray(radius_pt) * px  # display pixels

    cx, cy = centres[:, 0], centres[:, 1]
    r2 = radii**2

    def hits_circles(bb):
        """How many bubbles the box covers: the box's point nearest each
        centre lies inside that bubble. (Over all bubbles at once: a label
        tried against every bubble one by one was 2 s at 130 bubbles.)"""
        nx = np.minimum(np.maximum(cx, bb.x0), bb.x1)
        ny = np.minimum(np.maximum(cy, bb.y0), bb.y1)
        return int(np.count_nonzero((nx - cx) ** 2 + (ny - cy) ** 2 < r2))

    def boxes(bbs):
        """Extents as rows (x0, y0, x1, y1), each ordered low to high (as Bbox.overlaps)."""
        e = np.array([b.extents for b in bbs], dtype=float).reshape(-1, 4)
        return np.column_stack([np.minimum(e[:, 0], e[:, 2]), np.minimum(e[:, 1], e[:, 3]),
                                np.maximum(e[:, 0], e[:, 2]), np.maximum(e[:, 1], e[:, 3])])

    def overlaps(bb, others):
        """How many of ``others`` (rows of :func:`boxes`) ``bb`` overlaps (Bbox.overlaps)."""
        ax1, ay1, ax2, ay2 = boxes([bb])[0]
        return int(np.count_nonzero(~((others[:, 2] < ax1) | (others[:, 0] > ax2)
                                      | (others[:, 3] < ay1) | (others[:, 1] > ay2))))

    # the fitted line is an obstacle too: a label crossed by it is hard to read
    line_pts = np.vstack([ax.transData.transform(ln.get_xydata()) for ln in ax.lines
                          if ln.get_gid() == "regression-line"] or [np.empty((0, 2))])
    placed_boxes = boxes(placed)

    def inside(bb):
        return (bb.x0 >= frame.x0 and bb.x1 <= frame.x1 and bb.y0 >= frame.y0
                and bb.y1 <= frame.y1)

    def cost(bb):
        n = hits_circles(bb)
        if len(line_pts):
            n += int(np.any((line_pts[:, 0] >= bb.x0) & (line_pts[:, 0] <= bb.x1)
                            & (line_pts[:, 1] >= bb.y0) & (line_pts[:, 1] <= bb.y1)))
        n += overlaps(bb, placed_boxes)
        return n + (0 if inside(bb) else 100)

    d = 0.7071
    directions = ((1, 0, "left", "center"), (-1, 0, "right", "center"),
                  (0, 1, "center", "bottom"), (0, -1, "center", "top"),
                  (d, d, "left", "bottom"), (d, -d, "left", "top"),
                  (-d, d, "right", "bottom"), (-d, -d, "right", "top"))
    order = np.argsort(-np.asarray(radius_pt), kind="stable")
    written = 0
    for i in order if limit is None else order[:limit]:
        best = None
        for reach in (1.0, 1.7, 2.6):
            for ux, uy, ha, va in directions:
                off = radius_pt[i] * reach + 2.0  # points beyond the centre
                t = ax.annotate(labels[i], (x[i], y[i]), xytext=(ux * off, uy * off),
                                textcoords="offset points", ha=ha, va=va, fontsize=fs,
                                family=FONT_FAMILY, parse_math=False, annotation_clip=False,
                                gid="bubble-label")
                bb = t.get_window_extent(renderer)
                c = cost(bb)
                if best is None or c < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (c, t, bb, reach)
                else:
                    t.remove()
                if c == 0:
                    break
            if best[0] == 0:
                break
        _c, t, bb, reach = best
        if limit is not None and (overlaps(bb, placed_boxes) or not inside(bb)):
            t.remove()  # among many bubbles: no label rather than one over another
            continue
        written += 1
        if reach > 1.0:  # away from its bubble: a leader line says whose label it is
            ax.annotate("", (x[i], y[i]), xytext=(t.xyann), textcoords="offset points",
                        arrowprops=dict(arrowstyle="-", lw=0.5, color="#555555", shrinkA=0,
                                        shrinkB=radius_pt[i]), annotation_clip=False,
                        gid="bubble-leader")
        placed_boxes = np.vstack([placed_boxes, boxes([bb])])
    return written


# ----------------------------------------------------------------------------
# risk of bias (robvis-style)


def _rob_table(judgements: Mapping[str, Mapping[str, str]], domains):
    if not judgements:
        raise ValueError("no risk-of-bias judgements")
    if domains is None:
        found = []
        for d in judgements.values():
            for k in d:
                if k not in found:
                    found.append(k)
        domains = [k for k in ROB2_DOMAINS if k in found] if set(found) <= set(ROB2_DOMAINS) \
            else found
    table = {s: [rob_level((d or {}).get(k)) for k in domains] for s, d in judgements.items()}
    return list(domains), table


#: Rows and columns of the traffic-light plot are this many inches: room for
#: a dot of 0.78 of a cell (its symbol 0.45 of the dot), robvis's proportions.
ROB_CELL_IN = 0.3
ROB_DOT_FRACTION = 0.78
ROB_SYMBOL_FRACTION = 0.45
#: Its border (a little wider than the tables', which have no grid to frame),
#: the header and title rows, and the study labels: at most 2.6 in (longer
#: labels get an ellipsis), 0.1 in clear of the first dot.
ROB_MARGIN_IN = 0.15
ROB_HEAD_IN = 0.3
ROB_LABEL_MAX_IN = 2.6
ROB_LABEL_PAD_IN = 0.1
#: The legend: 0.3 in right of the grid, 0.22 in per judgement, its key (dot
#: and gap) 0.35 in before the label text.
ROB_LEGEND_GAP_IN = 0.3
ROB_LEGEND_ROW_IN = 0.22
ROB_LEGEND_KEY_IN = 0.35
#: The domain captions: 0.15 in below the grid, 0.17 in per line (notes size).
ROB_CAPTION_GAP_IN = 0.15
ROB_CAPTION_LINE_IN = 0.17


def rob_page_count(n_studies: int, rows_per_page: int | None = None) -> int:
    """How many pages a traffic-light plot of ``n_studies`` studies is split into."""
    return len(_rob_pages(n_studies, rows_per_page))


def _rob_pages(n_studies: int, rows_per_page: int | None) -> list[range]:
    # as many rows as fit in the table height of a forest plot's page
    per_page = rows_per_page or max(2, int(layout.MAX_ROWS_PER_PAGE * FOREST_STYLE.row_h
                                           // ROB_CELL_IN))
    return paginate(["study"] * n_studies, per_page)


def rob_traffic_light(
    judgements: Mapping[str, Mapping[str, str]],
    *,
    domains: Sequence[str] | None = None,
    title: str | None = None,
    fontsize: float = 8.0,
    page: int | None = None,
    rows_per_page: int | None = None,
) -> Figure:
    """robvis-style traffic-light plot: studies x domains, one coloured dot
    with a symbol per judgement (+ low, − some concerns, × high, ? no
    information).

    Parameters
    ----------
    judgements : mapping of study label to {domain: judgement}
        Judgements "low", "some_concerns", "high" or "no_information"
        (missing domains count as no information).
    domains : sequence of str, optional
        Domain keys in column order (default: D1-D5 and Overall as found).
    page, rows_per_page : int, optional
        Draw only page ``page`` (1-based) of the studies split into pages of
        at most ``rows_per_page`` rows (default: as many 0.3 in rows as the
        forest plots' page holds, :func:`rob_page_count`); the label column
        and legend are those of every study, so pages line up.
    """
    from matplotlib.lines import Line2D

    domains, table = _rob_table(judgements, domains)
    studies = list(table)
    fig = new_figure()
    tm = TextMeasure(fig)
    fs = fontsize
    cell = ROB_CELL_IN
    margin = ROB_MARGIN_IN
    label_w = min(ROB_LABEL_MAX_IN, max(tm.width(s, fs) for s in studies) + ROB_LABEL_PAD_IN)
    if page is not None:
        pages = _rob_pages(len(studies), rows_per_page)
        if not 1 <= page <= len(pages):
            raise ValueError(f"page must be 1 to {len(pages)}, got {page!r}")
        if len(pages) > 1:
            studies = [studies[i] for i in pages[page - 1]]
            title = _page_title(title, page, len(pages))
    legend_items = [lv for lv in ROB_COLORS if any(lv in row for row in table.values())]
    legend_w = max(tm.width(ROB_LABELS[lv], fs) for lv in ROB_COLORS) + ROB_LEGEND_KEY_IN
    # column heads: D1-D5 and O, or letters for longer domain names (their
    # full names in the caption, as in the forest plots)
    heads = ["O" if k == "Overall" else k if len(k) <= 3 else chr(ord("A") + j)
             for j, k in enumerate(domains)]
    caption = [f"{h}: {ROB2_DOMAINS.get(k, k.replace('_', ' '))}" for h, k in zip(heads, domains)]
    ax_w = cell * len(domains)
    title_h = ROB_HEAD_IN if title else 0.0
    head_h = ROB_HEAD_IN
    fig_w = margin + label_w + ax_w + ROB_LEGEND_GAP_IN + legend_w + margin
    ax_h = cell * len(studies)
    cap_lines = []
    for c in caption:
        cap_lines += tm.wrap(c, fig_w - 2 * margin, fs + NOTE_SIZE_STEP)
    fig_h = (margin + title_h + head_h + ax_h + ROB_CAPTION_GAP_IN
             + ROB_CAPTION_LINE_IN * len(cap_lines) + margin)
    fig_h = max(fig_h, margin + title_h + head_h + ROB_LEGEND_ROW_IN * (len(legend_items) + 1)
                + margin)
    fig.set_size_inches(fig_w, fig_h)
    x0 = margin + label_w
    y_top = fig_h - margin - title_h - head_h
    ax = fig.add_axes([x0 / fig_w, (y_top - ax_h) / fig_h, ax_w / fig_w, ax_h / fig_h])
    ax.set_xlim(-0.5, len(domains) - 0.5)
    ax.set_ylim(len(studies) - 0.5, -0.5)
    ax.set_axis_off()
    for i in range(len(studies) + 1):  # light grid, as robvis
        ax.axhline(i - 0.5, color="0.85", lw=0.5, zorder=0)
    d = cell * 72 * ROB_DOT_FRACTION
    for lv in ROB_COLORS:
        pts = [(j, i) for i, s in enumerate(studies) for j, v in enumerate(table[s]) if v == lv]
        if not pts:
            continue
        px, py = [p[0] for p in pts], [p[1] for p in pts]
        ax.plot(px, py, ls="none", marker="o", ms=d, mew=0, color=ROB_COLORS[lv], zorder=2,
                gid=f"rob-dot-{lv}")
        ax.plot(px, py, ls="none", marker=ROB_MARKERS[lv], ms=d * ROB_SYMBOL_FRACTION, mew=1.3,
                color="black" if lv == "some_concerns" else "white", zorder=3,
                gid=f"rob-symbol-{lv}")
    base = BASELINE_EM * fs / 72

    def put(xx, yy, s, ha="left", bold=False, size=None):
        fig.text(xx, yy - base, s, transform=fig.dpi_scale_trans, ha=ha, va="baseline",
                 fontsize=size or fs, family=FONT_FAMILY, fontweight="bold" if bold else "normal",
                 parse_math=False)

    if title:
        put(margin, fig_h - margin - title_h / 2, title, bold=True, size=fs + TITLE_SIZE_STEP)
    for j, k in enumerate(domains):
        put(x0 + (j + 0.5) * cell, y_top + head_h / 2, heads[j], "center", bold=True)
    put(margin, y_top + head_h / 2, "Study", bold=True)
    for i, s in enumerate(studies):
        put(margin, y_top - (i + 0.5) * cell, tm.fit(s, label_w - ROB_LABEL_PAD_IN, fs))
    # legend
    lx = x0 + ax_w + ROB_LEGEND_GAP_IN
    put(lx, y_top + head_h / 2, "Judgement", bold=True)
    for i, lv in enumerate(ROB_COLORS):
        yy = y_top - (i + 0.5) * ROB_LEGEND_ROW_IN
        fig.add_artist(Line2D([lx + 0.08], [yy], ls="none", marker="o", ms=9, mew=0,
                              color=ROB_COLORS[lv], transform=fig.dpi_scale_trans))
        fig.add_artist(Line2D([lx + 0.08], [yy], ls="none", marker=ROB_MARKERS[lv], ms=4.5,
                              mew=1.1, color="black" if lv == "some_concerns" else "white",
                              transform=fig.dpi_scale_trans))
        put(lx + 0.22, yy, ROB_LABELS[lv])
    yy = y_top - ax_h - ROB_CAPTION_GAP_IN
    for line in cap_lines:
        put(margin, yy - ROB_CAPTION_LINE_IN / 2, line, size=fs + NOTE_SIZE_STEP)
        yy -= ROB_CAPTION_LINE_IN
    return fig


def rob_summary(
    judgements: Mapping[str, Mapping[str, str]],
    *,
    weights: Mapping[str, float] | None = None,
    domains: Sequence[str] | None = None,
    title: str | None = None,
    fontsize: float = 8.0,
    width: float = 7.0,
) -> Figure:
    """robvis-style summary: per domain, the proportion of studies (or of
    the weight, when ``weights`` is given) judged low, some concerns, high
    or no information, as stacked horizontal bars.

    Parameters
    ----------
    judgements : mapping of study label to {domain: judgement}
    weights : mapping of study label to weight, optional
        e.g. the weight % in the pooled analysis (robvis ``weighted=TRUE``).
    domains : sequence of str, optional
    """
    from matplotlib.patches import Patch

    domains, table = _rob_table(judgements, domains)
    studies = list(table)
    if weights is not None:
        missing = [s for s in studies if s not in weights]
        if missing:
            raise ValueError(f"no weight for {', '.join(missing)}")
        w = np.array([float(weights[s]) for s in studies])
    else:
        w = np.ones(len(studies))
    if w.sum() <= 0:
        raise ValueError("weights must not all be zero")
    fig = new_figure()
    tm = TextMeasure(fig)
    fs = fontsize
    names = [ROB2_DOMAINS.get(k, k) for k in domains]
    label_w = max(tm.width(s, fs) for s in names) + 0.15
    bar_h = 0.32
    fig_h = 0.62 + bar_h * len(domains) + 0.3 + (0.25 if title else 0)
    fig_w = max(width, label_w + 3.0)
    fig.set_size_inches(fig_w, fig_h)
    ax_x0 = 0.15 + label_w
    ax_w = fig_w - ax_x0 - 0.3
    ax_h = bar_h * len(domains)
    ax = fig.add_axes([ax_x0 / fig_w, 0.62 / fig_h, ax_w / fig_w, ax_h / fig_h])
    levels = ["low", "some_concerns", "high", "no_information"]
    # robvis stacks from low on the left
    props = np.zeros((len(domains), len(levels)))
    for j in range(len(domains)):
        for i, s in enumerate(studies):
            props[j, levels.index(table[s][j])] += w[i]
    props = 100 * props / w.sum()
    left = np.zeros(len(domains))
    for li, lv in enumerate(levels):
        bars = ax.barh(np.arange(len(domains)), props[:, li], left=left, height=0.72,
                       color=ROB_COLORS[lv], edgecolor="black", linewidth=0.4,
                       label=ROB_LABELS[lv])
        for bar in bars:
            bar.set_gid(f"rob-bar-{lv}")
        left += props[:, li]
    ax.set_ylim(len(domains) - 0.5, -0.5)
    ax.set_xlim(0, 100)
    ax.set_yticks(np.arange(len(domains)), names, fontsize=fs, family=FONT_FAMILY)
    ax.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"], fontsize=fs,
                  family=FONT_FAMILY)
    ax.tick_params(axis="y", length=0)
    _open_frame(ax)
    head = title or ""
    note = "Weighted by study weight" if weights is not None else "Proportion of studies"
    if head:
        fig.text(0.15 / fig_w, 1 - 0.2 / fig_h, head, fontsize=fs + 1, fontweight="bold",
                 family=FONT_FAMILY, parse_math=False, va="center")
    fig.text((ax_x0 + ax_w) / fig_w, (0.62 + ax_h + 0.08) / fig_h, note, fontsize=fs - 0.5,
             family=FONT_FAMILY, parse_math=False, va="baseline", ha="right", style="italic",
             gid="rob-summary-note")
    fig.legend(handles=[Patch(facecolor=ROB_COLORS[lv], edgecolor="black", lw=0.4)
                        for lv in levels],
               labels=[ROB_LABELS[lv] for lv in levels], loc="lower center",
               bbox_to_anchor=((ax_x0 + ax_w / 2) / fig_w, 0.0), ncols=4, frameon=False,
               prop={"family": FONT_FAMILY, "size": fs}, handlelength=1.2, columnspacing=1.2)
    return fig
