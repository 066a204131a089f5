"""Funnel, leave-one-out, cumulative, bubble and risk-of-bias figures, read
back from the figure (gids are listed in metaanalysis/render/plots.py)."""

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle
from scipy import stats

import metaanalysis as m
from metaanalysis.render.plots import (
    bubble_plot,
    cumulative_plot,
    funnel_plot,
    leave_one_out_plot,
    rob_summary,
    rob_page_count,
    rob_traffic_light,
    rows_page_count,
)

ROB_HEX = {"low": "#02C100", "some_concerns": "#E2DF07", "high": "#BF0000",
           "no_information": "#4EA1F7"}


def gid(fig, name, kind=object):
    return [a for a in fig.findobj(lambda a: isinstance(a, kind) and a.get_gid() == name)]


def offsets(fig, name):
    (coll,) = gid(fig, name, PathCollection)
    return coll.get_offsets()


@pytest.fixture
def data():
    rng = np.random.default_rng(42)
    k = 12
    vi = rng.uniform(0.01, 0.2, k)
    yi = rng.normal(-0.3, np.sqrt(vi + 0.02))
    return yi, vi


# ----------------------------------------------------------------------------
# funnel


def test_funnel_contours_points_and_axis(data, figure_reader):
    yi, vi = data
    fig = funnel_plot(yi, vi, -0.3, measure="SMD")
    (ax,) = fig.axes
    # one shaded region per contour level, plus the background (p below the smallest level)
    for a in (0.10, 0.05, 0.01):
        assert len(gid(fig, f"contour-{a:g}", Polygon)) == 1
    assert len(gid(fig, "contour-background", Polygon)) == 1
    np.testing.assert_allclose(offsets(fig, "study-points"), np.column_stack([yi, np.sqrt(vi)]))
    assert gid(fig, "filled-points") == [] and gid(fig, "egger-line") == []
    # standard error on an inverted axis covering every study
    top, bottom = ax.get_ylim()[1], ax.get_ylim()[0]
    assert top == 0 and bottom >= np.sqrt(vi).max()
    # the 5% contour is 0 -/+ 1.96 se at the bottom of the plot
    (c05,) = gid(fig, "contour-0.05", Polygon)
    xy = c05.get_xy()
    z = stats.norm.isf(0.025)
    assert xy[:, 0].max() == pytest.approx(z * bottom) and xy[:, 0].min() == pytest.approx(-z * bottom)
    # every point and the funnel fit inside the x-limits
    lo, hi = ax.get_xlim()
    assert lo <= yi.min() and hi >= yi.max()
    texts = figure_reader.texts(fig)
    assert {"p > 0.10", "0.05 < p < 0.10", "0.01 < p < 0.05", "p < 0.01", "Standard error"} <= set(texts)
    assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []


def test_funnel_contour_levels_are_configurable(data):
    yi, vi = data
    fig = funnel_plot(yi, vi, -0.3, contours=(0.05,))
    assert len(gid(fig, "contour-0.05", Polygon)) == 1
    assert gid(fig, "contour-0.1", Polygon) == [] and gid(fig, "contour-0.01", Polygon) == []


def test_funnel_egger_line_and_trim_and_fill(data, figure_reader):
    yi, vi = data
    fy, fv = np.array([0.2, 0.35, 0.5]), np.array([0.05, 0.1, 0.15])
    fig = funnel_plot(yi, vi, -0.3, egger=(0.1, -2.0), filled=(fy, fv))
    (line,) = gid(fig, "egger-line", Line2D)
    x, y = line.get_xdata(), line.get_ydata()
    np.testing.assert_allclose(x, 0.1 - 2.0 * y)  # yi = b0 + b1 * sei
    assert y.min() == 0
    filled = offsets(fig, "filled-points")
    assert len(filled) == 3
    np.testing.assert_allclose(filled, np.column_stack([fy, np.sqrt(fv)]))
    (coll,) = gid(fig, "filled-points", PathCollection)
    assert tuple(coll.get_facecolors()[0]) == (1, 1, 1, 1)  # open circles
    texts = figure_reader.texts(fig)
    assert "Egger regression" in texts and "Imputed (trim and fill)" in texts
    assert figure_reader.outside(fig) == []  # the legend widens the figure


def test_funnel_ratio_measure_is_drawn_on_a_log_axis(data):
    yi, vi = data
    fig = funnel_plot(yi, vi, -0.3, measure="RR", egger=(0.0, -1.0))
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(offsets(fig, "study-points")[:, 0], np.exp(yi))
    (pooled,) = gid(fig, "pooled-line", Line2D)
    assert pooled.get_xdata()[0] == pytest.approx(math.exp(-0.3))


def test_funnel_rejects_bad_input():
    with pytest.raises(ValueError):
        funnel_plot([0.1, 0.2], [0.01, 0.0], 0.1)
    with pytest.raises(ValueError):
        funnel_plot([0.1, 0.2], [0.01, 0.02], 0.1, contours=(1.5,))


# ----------------------------------------------------------------------------
# leave-one-out and cumulative


def _fits(yi, vi, subsets):
    return [m.pool(pd.DataFrame({"yi": yi[s], "vi": vi[s]}), "GEN", "REML").overall for s in subsets]


def test_leave_one_out_plot(data, figure_reader):
    yi, vi = data
    k = len(yi)
    labels = [f"Study {i + 1}" for i in range(k)]
    fits = _fits(yi, vi, [np.arange(k) != i for i in range(k)])
    overall = m.pool(pd.DataFrame({"yi": yi, "vi": vi}), "GEN", "REML")
    fig = leave_one_out_plot([f.estimate for f in fits], [f.ci_lb for f in fits],
                             [f.ci_ub for f in fits], labels, overall=overall,
                             tau2=[f.tau2 for f in fits], I2=[f.I2 for f in fits])
    pts = offsets(fig, "loo-point")
    assert len(pts) == k
    np.testing.assert_allclose(pts[:, 0], [f.estimate for f in fits])
    (diamond,) = gid(fig, "diamond-total", Polygon)
    assert diamond.get_xy()[:, 0].min() == pytest.approx(overall.ci_lb)
    (ref,) = gid(fig, "reference-line", Line2D)
    assert ref.get_xdata()[0] == pytest.approx(overall.estimate)
    texts = figure_reader.texts(fig)
    assert all(f"Omitting {lab}" in texts for lab in labels)
    assert f"All studies (k = {k})" in texts and "I\u00b2" in texts
    assert f"{fits[0].I2:.0f}%" in texts
    assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []


def test_cumulative_plot(data, figure_reader):
    yi, vi = data
    k = len(yi)
    fits = _fits(yi, vi, [np.arange(k) <= i for i in range(k)])
    labels = [f"Trial {i}" for i in range(k)]
    years = list(range(2001, 2001 + k))
    fig = cumulative_plot([f.estimate for f in fits], [f.ci_lb for f in fits],
                          [f.ci_ub for f in fits], labels, years=years, measure="OR")
    pts = offsets(fig, "cumulative-point")
    assert len(pts) == k
    np.testing.assert_allclose(pts[:, 0], np.exp([f.estimate for f in fits]))
    assert fig.axes[0].get_xscale() == "log"
    texts = figure_reader.texts(fig)
    assert "+ Trial 0" in texts and str(years[-1]) in texts and str(k) in texts
    assert gid(fig, "diamond-total", Polygon) == []
    assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []


def test_long_leave_one_out_and_cumulative_plots_are_split_into_pages(figure_reader):
    """250 rows: every page within the page limit, each row on exactly one
    page, the overall diamond and its reference line where they belong, the
    same axis and width on every page."""
    from metaanalysis.render.layout import MAX_ROWS_PER_PAGE

    k = 250
    rng = np.random.default_rng(7)
    est = rng.normal(-0.3, 0.05, k)
    lb, ub = est - 0.2, est + 0.2
    labels = [f"S{i:03d}" for i in range(k)]
    n = rows_page_count(k + 1, pooled=True)
    assert n == math.ceil((k + 1) / MAX_ROWS_PER_PAGE)
    assert rows_page_count(10, pooled=True) == 1
    seen, widths, ticks = [], set(), set()
    for p in range(1, n + 1):
        fig = leave_one_out_plot(est, lb, ub, labels, overall=(-0.3, -0.35, -0.25), page=p,
                                 title="LOO")
        texts = figure_reader.texts(fig)
        rows = [t for t in texts if t.startswith("Omitting S")]
        assert 0 < len(rows) <= MAX_ROWS_PER_PAGE and f"LOO (page {p} of {n})" in texts
        seen += rows
        assert len(offsets(fig, "loo-point")) == len(rows)
        assert len(gid(fig, "diamond-total", Polygon)) == (p == n)
        assert ("All studies" in texts) == (p == n)
        assert len(gid(fig, "reference-line", Line2D)) == 1  # on every page
        widths.add(round(fig.get_figwidth(), 9))
        ticks.add(tuple(t.get_text() for t in fig.axes[0].get_xticklabels()))
        assert figure_reader.outside(fig) == []
    assert seen == [f"Omitting {s}" for s in labels] and len(widths) == len(ticks) == 1
    last = cumulative_plot(est, lb, ub, labels, page=rows_page_count(k))
    assert len(offsets(last, "cumulative-point")) == k - (rows_page_count(k) - 1) * MAX_ROWS_PER_PAGE
    with pytest.raises(ValueError, match="page must be"):
        cumulative_plot(est, lb, ub, labels, page=rows_page_count(k) + 1)


# ----------------------------------------------------------------------------
# bubble plot


def test_bubble_plot_draws_the_regression_it_is_given(figure_reader):
    rng = np.random.default_rng(7)
    k = 10
    x = rng.uniform(20, 60, k)
    vi = rng.uniform(0.02, 0.1, k)
    yi = -0.2 - 0.01 * (x - 40) + rng.normal(0, 0.1, k)
    reg = m.regress(pd.DataFrame({"yi": yi, "vi": vi, "scorad": x}), ["scorad"], "GEN", "REML")
    w = 1 / vi
    grid = np.linspace(x.min(), x.max(), 20)
    band = (grid, reg.beta[0] + reg.beta[1] * grid - 0.2, reg.beta[0] + reg.beta[1] * grid + 0.2)
    fig = bubble_plot(x, yi, w, regression=reg, coef="scorad", band=band,
                      labels=[f"S{i}" for i in range(k)])
    (coll,) = gid(fig, "bubbles", PathCollection)
    np.testing.assert_allclose(coll.get_offsets(), np.column_stack([x, yi]))
    sizes = coll.get_sizes()
    assert np.argmax(sizes) == np.argmax(w) and np.argmin(sizes) == np.argmin(w)
    (line,) = gid(fig, "regression-line", Line2D)
    np.testing.assert_allclose(line.get_ydata(), reg.beta[0] + reg.beta[1] * line.get_xdata())
    assert len(gid(fig, "regression-band", PolyCollection)) == 1
    texts = figure_reader.texts(fig)
    assert all(f"S{i}" in texts for i in range(k))
    assert any(t.startswith("slope = ") for t in texts)
    assert figure_reader.outside(fig) == []
    # without a regression: bubbles only
    fig = bubble_plot(x, yi, w)
    assert gid(fig, "regression-line") == [] and gid(fig, "regression-band") == []


def test_a_bubble_plot_of_many_studies_labels_the_largest_where_they_fit(figure_reader):
    # at 1,000 trials every one of 130 bubbles was labelled, labels stacked
    # on each other: now the largest weights, none over another, and a note
    from metaanalysis.render.plots import BUBBLE_LABELS_MAX

    rng = np.random.default_rng(11)
    k = 300
    x = rng.integers(8, 14, k).astype(float)  # few distinct durations: crowded columns
    yi = rng.normal(-5, 3, k)
    w = rng.uniform(0.1, 1.0, k)
    labels = [f"Trial{i:03d}" for i in range(k)]
    fig = bubble_plot(x, yi, w, labels=labels, xlabel="Weeks")
    shown = [t for t in figure_reader.text_objects(fig) if t.get_gid() == "bubble-label"]
    assert 0 < len(shown) <= BUBBLE_LABELS_MAX
    largest = {labels[i] for i in np.argsort(-w, kind="stable")[:BUBBLE_LABELS_MAX]}
    assert {t.get_text() for t in shown} <= largest
    assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []
    (note,) = [t for t in figure_reader.texts(fig) if t.startswith("Labelled:")]
    assert note == (f"Labelled: {len(shown)} of the 300 bubbles, the largest weights where a "
                    f"label fits (at most {BUBBLE_LABELS_MAX}).")
    # up to the limit every bubble keeps its label, and no note
    few = bubble_plot(x[:BUBBLE_LABELS_MAX], yi[:BUBBLE_LABELS_MAX], w[:BUBBLE_LABELS_MAX],
                      labels=labels[:BUBBLE_LABELS_MAX])
    texts = figure_reader.texts(few)
    assert set(labels[:BUBBLE_LABELS_MAX]) <= set(texts)
    assert not any(t.startswith("Labelled:") for t in texts)


# ----------------------------------------------------------------------------
# risk of bias


@pytest.fixture
def rob():
    return {
        "Kalliomaki 2001": {"D1": "low", "D2": "low", "D3": "some_concerns", "D4": "low",
                            "D5": "low", "Overall": "some_concerns"},
        "Taylor 2007": {"D1": "low", "D2": "high", "D3": "low", "D4": "low", "D5": "low",
                        "Overall": "high"},
        "Wickens 2008": {"D1": "low", "D2": "low", "D3": "low", "D4": None, "D5": "low",
                         "Overall": "low"},
    }


def test_traffic_light_plot(rob, figure_reader):
    fig = rob_traffic_light(rob, title="Risk of bias")
    counts = {}
    for lv, colour in ROB_HEX.items():
        arts = gid(fig, f"rob-dot-{lv}", Line2D)
        counts[lv] = sum(len(a.get_xdata()) for a in arts)
        for a in arts:
            assert a.get_color().upper() == colour
    assert counts == {"low": 13, "some_concerns": 2, "high": 2, "no_information": 1}
    # dot positions: column = domain, row = study
    (high,) = gid(fig, "rob-dot-high", Line2D)
    assert sorted(zip(high.get_xdata(), high.get_ydata())) == [(1, 1), (5, 1)]
    texts = figure_reader.texts(fig)
    assert {"D1", "D5", "O", "Low risk", "Some concerns", "High risk", "No information"} <= set(texts)
    assert all(s in texts for s in rob)
    assert "D1: Bias arising from the randomisation process" in texts
    assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []


def test_summary_bars_unweighted_and_weighted(rob, figure_reader):
    def widths(fig):
        out = {}
        for lv in ROB_HEX:
            bars = gid(fig, f"rob-bar-{lv}", Rectangle)
            out[lv] = [b.get_width() for b in bars]
            for b in bars:
                assert tuple(b.get_facecolor()[:3]) == pytest.approx(
                    tuple(int(ROB_HEX[lv][i:i + 2], 16) / 255 for i in (1, 3, 5)))
        return out

    w = widths(rob_summary(rob))
    totals = np.sum([w[lv] for lv in ROB_HEX], axis=0)
    np.testing.assert_allclose(totals, 100)  # every domain sums to 100 %
    assert w["low"][1] == pytest.approx(200 / 3) and w["high"][1] == pytest.approx(100 / 3)  # D2
    w = widths(rob_summary(rob, weights={"Kalliomaki 2001": 1, "Taylor 2007": 3, "Wickens 2008": 0}))
    assert w["high"][1] == pytest.approx(75) and w["low"][1] == pytest.approx(25)
    assert w["some_concerns"][5] == pytest.approx(25)  # Overall
    fig = rob_summary(rob, title="Summary")
    texts = figure_reader.texts(fig)
    assert "Bias arising from the randomisation process" in texts and "Overall risk of bias" in texts
    assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []
    with pytest.raises(ValueError, match="no weight"):
        rob_summary(rob, weights={"Taylor 2007": 1})


def test_a_long_traffic_light_plot_is_split_into_pages(figure_reader):
    """120 studies: pages of at most the page's rows, each study once, the
    same label column on every page, and the legend on each."""
    studies = {f"Trial {i:03d}": {"D1": "low", "D2": "high", "Overall": "high"}
               for i in range(120)}
    n = rob_page_count(len(studies))
    assert n > 1 and rob_page_count(10) == 1
    seen, widths = [], set()
    for p in range(1, n + 1):
        fig = rob_traffic_light(studies, page=p)
        texts = figure_reader.texts(fig)
        rows = [t for t in texts if t.startswith("Trial ")]
        assert f"Page {p} of {n}" in texts and "Judgement" in texts
        dots = sum(len(line.get_xdata()) for line in gid(fig, "rob-dot-high", Line2D))
        assert dots == 2 * len(rows)  # D2 and Overall are high
        seen += rows
        widths.add(round(fig.get_figwidth(), 9))
        assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []
    assert seen == list(studies) and len(widths) == 1
    with pytest.raises(ValueError, match="page must be"):
        rob_traffic_light(studies, page=n + 1)
