"""Forest plot: read the figure back and check what a reader would see.

Squares and diamonds are counted through their gids (see the docstring of
metaanalysis/render/forest.py), texts through the figure's Text artists, and
"no overlap" through the renderer's bounding boxes after a full draw. The
fits come from metaanalysis.pool on the normand1999 example or on generated
data; a few FitResults are edited with dataclasses.replace to pin the exact
RevMan strings of the issue.
"""

import dataclasses
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Polygon, Rectangle

import metaanalysis as m
from metaanalysis.render.forest import forest_plot, save_figure

ROOT = Path(__file__).resolve().parents[2]
MINUS = "\u2212"


# ----------------------------------------------------------------------------
# data


def normand():
    return pd.read_csv(ROOT / "examples" / "normand1999.csv")


def arm_data(df):
    return {r["study"]: dict(r) for r in df.to_dict("records")}


def synthetic(k, seed=0, by=None, binary=False):
    """k generated two-arm trials (SCORAD-like means or event counts)."""
    rng = np.random.default_rng(seed)
    n1 = rng.integers(15, 150, k)
    n2 = rng.integers(15, 150, k)
    df = pd.DataFrame({"study": [f"Trial {i + 1:02d} ({2000 + i % 25})" for i in range(k)],
                       "n1i": n1, "n2i": n2})
    if binary:
        df["ai"] = (n1 * rng.uniform(0.05, 0.4, k)).astype(int)
        df["ci"] = (n2 * rng.uniform(0.15, 0.45, k)).astype(int)
    else:
        m2 = rng.normal(35, 6, k)
        df["m1i"] = (m2 + rng.normal(-4, 5, k)).round(1)
        df["m2i"] = m2.round(1)
        df["sd1i"] = rng.uniform(6, 16, k).round(1)
        df["sd2i"] = rng.uniform(6, 16, k).round(1)
    if by is not None:
        df["severity"] = [by[i % len(by)] for i in range(k)]
    return df


# ----------------------------------------------------------------------------
# reading the figure


def panel(fig):
    (ax,) = [a for a in fig.axes if a.get_gid() == "forest-panel"]
    return ax


def by_gid(ax, gid, kind):
    return [a for a in ax.get_children() if isinstance(a, kind) and a.get_gid() == gid]


def squares(fig):
    (coll,) = by_gid(panel(fig), "study-square", PathCollection)
    return coll


def diamonds(fig, kind):
    return by_gid(panel(fig), f"diamond-{kind}", Polygon)


def arrows(fig, side):
    coll = by_gid(panel(fig), f"ci-arrow-{side}", PathCollection)
    return coll[0].get_offsets() if coll else np.empty((0, 2))


def text_row(fig, text):
    """y (display) of the text exactly equal to ``text``; fails if absent."""
    hits = [t for t in fig.texts if t.get_text() == text]
    assert hits, f"no text {text!r}"
    return hits[0].get_position()[1]


# ----------------------------------------------------------------------------
# squares, diamonds, text


def test_one_square_per_study_and_one_diamond():
    res = m.pool(normand(), "MD", "REML", "knha")
    fig = forest_plot(res)
    assert isinstance(fig, Figure)
    assert len(squares(fig).get_offsets()) == res.k == 9
    assert len(diamonds(fig, "total")) == 1
    assert diamonds(fig, "subtotal") == []
    # the diamond spans the pooled CI and peaks at the estimate
    xy = diamonds(fig, "total")[0].get_xy()
    assert xy[:, 0].min() == pytest.approx(res.ci_lb)
    assert xy[:, 0].max() == pytest.approx(res.ci_ub)
    assert xy[1, 0] == pytest.approx(res.estimate)


def test_squares_sit_at_the_estimates_and_grow_with_weight():
    res = m.pool(normand(), "MD", "DL")
    fig = forest_plot(res)
    coll = squares(fig)
    xs = coll.get_offsets()[:, 0]
    np.testing.assert_allclose(xs, [s.yi for s in res.overall.studies])
    sizes = coll.get_sizes()
    w = np.array([s.weight for s in res.overall.studies])
    # area proportional to weight (the smallest squares may be floored)
    assert np.all(np.diff(sizes[np.argsort(w)]) >= -1e-9)
    big = sizes > 2.2**2
    np.testing.assert_allclose(sizes[big] / sizes[big].max(), w[big] / w[big].max(), rtol=1e-9)


def test_revman_text_for_normand1999(figure_reader):
    # tau2 = 684.646, Q = 238.916 on 8 df, I2 = 98.97 %, t = -1.642 (p = 0.139)
    res = m.pool(normand(), "MD", "REML", "knha")
    fig = forest_plot(res, study_data=arm_data(normand()))
    texts = figure_reader.texts(fig)
    # the header and the heterogeneity line name the model as fitted (issue 15)
    assert ("Heterogeneity: Tau\u00b2 (REML) = 684.65; Chi\u00b2 = 238.92, df = 8 (P < 0.001); "
            "I\u00b2 = 99%") in texts
    # signed, as report.md and meta pool print it
    assert f"Test for overall effect: t = {MINUS}1.64, df = 8 (P = 0.14)" in texts
    for s in res.overall.studies:
        assert s.study in texts
    assert "Favours probiotic" in texts and "Favours control" in texts
    assert "Mean difference" in texts and "IV, Random (REML, HKSJ), 95% CI" in texts
    assert any(t.startswith("HKSJ: Hartung-Knapp-Sidik-Jonkman") for t in texts)
    assert any(t.startswith("Tau\u00b2 estimator: REML (restricted maximum likelihood)") for t in texts)
    # Edinburgh: -20 [-32.47, -7.53], on one row with its data 55, 47, 155
    row = text_row(fig, "Edinburgh")
    for piece in (f"{MINUS}20.00", f"[{MINUS}32.47,", f"{MINUS}7.53]", "55", "47", "155", "11.0%"):
        assert row in [t.get_position()[1] for t in fig.texts if t.get_text() == piece], piece
    # totals row: sum of n1i and n2i
    total = text_row(fig, "Total (95% CI)")
    assert total in [t.get_position()[1] for t in fig.texts if t.get_text() == str(normand().n1i.sum())]
    assert total in [t.get_position()[1] for t in fig.texts if t.get_text() == str(normand().n2i.sum())]


def test_exact_revman_strings_of_the_issue(figure_reader):
    base = m.pool(normand(), "MD", "DL").overall
    fit = dataclasses.replace(base, tau2=0.04, Q=10.47, Q_df=5, Q_p=0.0628, I2=52.2,
                              stat=-2.31, pval=0.0209, df=None)
    texts = figure_reader.texts(forest_plot(fit))
    assert "Heterogeneity: Tau\u00b2 (DL) = 0.04; Chi\u00b2 = 10.47, df = 5 (P = 0.06); I\u00b2 = 52%" in texts
    assert f"Test for overall effect: Z = {MINUS}2.31 (P = 0.02)" in texts
    assert "IV, Random (DL), 95% CI" in texts


def test_common_effect_heterogeneity_has_no_tau2(figure_reader):
    res = m.pool(synthetic(6, 4, binary=True), "RR", "MH")
    texts = figure_reader.texts(forest_plot(res))
    het = [t for t in texts if t.startswith("Heterogeneity:")]
    assert len(het) == 1 and "Tau" not in het[0] and het[0].startswith("Heterogeneity: Chi\u00b2 = ")
    assert "M-H, Fixed, 95% CI" in texts


# ----------------------------------------------------------------------------
# axis: scale, limits, arrows


def test_linear_axis_contains_every_ci_for_md():
    res = m.pool(normand(), "MD", "REML")
    ax = panel(forest_plot(res))
    assert ax.get_xscale() == "linear"
    lo, hi = ax.get_xlim()
    assert lo <= min(s.ci_lb for s in res.overall.studies) and hi >= max(s.ci_ub for s in res.overall.studies)
    assert lo <= res.ci_lb and hi >= res.ci_ub
    assert lo == -hi  # symmetric around no effect
    assert len(arrows(forest_plot(res), "left")) == len(arrows(forest_plot(res), "right")) == 0


def test_clipped_cis_end_in_arrows():
    res = m.pool(normand(), "MD", "REML")
    fig = forest_plot(res, xlim=(-60, 60))
    assert panel(fig).get_xlim() == (-60, 60)
    studies = res.overall.studies
    clipped = [i for i, s in enumerate(studies) if s.ci_lb < -60]
    assert clipped == [2, 3]  # Orpington-Moderate [-62.8, -47.2] and -Severe [-95.0, -47.0]
    assert not any(s.ci_ub > 60 for s in studies)
    left = arrows(fig, "left")
    assert len(arrows(fig, "right")) == 0
    # one arrow at the axis limit on each clipped study's row
    assert np.all(left[:, 0] == -60) and sorted(left[:, 1]) == clipped
    # the visible part of the CI runs from the limit
    (segs,) = by_gid(panel(fig), "study-ci", LineCollection)
    starts = {seg[0, 1]: seg[0, 0] for seg in segs.get_segments()}
    assert all(starts[i] == -60 for i in clipped)
    assert all(starts[i] == pytest.approx(s.ci_lb) for i, s in enumerate(studies) if i not in clipped)
    # a square whose estimate is off the axis is not drawn (RevMan draws the arrow only)
    assert len(squares(fig).get_offsets()) == sum(-60 <= s.yi <= 60 for s in studies) == 8


def test_many_studies_either_inside_or_arrowed():
    df = synthetic(60, 11)
    df.loc[5, ["sd1i", "sd2i"]] = 60.0  # one very imprecise study
    df.loc[5, ["n1i", "n2i"]] = 8
    res = m.pool(df, "MD", "REML")
    fig = forest_plot(res)
    lo, hi = panel(fig).get_xlim()
    out_l = sum(s.ci_lb < lo for s in res.overall.studies)
    out_r = sum(s.ci_ub > hi for s in res.overall.studies)
    assert out_l >= 1  # the imprecise study is not allowed to squeeze the rest
    assert len(arrows(fig, "left")) == out_l and len(arrows(fig, "right")) == out_r
    assert lo <= res.ci_lb and hi >= res.ci_ub


def test_ratio_measures_use_a_log_axis_and_exponentiated_text(figure_reader):
    df = synthetic(7, 5, binary=True)
    res = m.pool(df, "RR", "DL")
    fig = forest_plot(res, study_data=arm_data(df))
    ax = panel(fig)
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo > 0 and lo * hi == pytest.approx(1.0)  # symmetric on the log scale
    (null,) = [a for a in ax.get_lines() if a.get_gid() == "null-line"]
    assert null.get_xdata()[0] == 1.0
    np.testing.assert_allclose(squares(fig).get_offsets()[:, 0],
                               [math.exp(s.yi) for s in res.overall.studies])
    texts = figure_reader.texts(fig)
    assert f"{math.exp(res.estimate):.2f}" in texts
    assert "Risk ratio" in texts and "Events" in texts and "Total events" in texts
    assert str(df.ai.sum()) in texts and str(df.ci.sum()) in texts
    # tick labels are plain ratios at the tick positions, no-effect included
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert "1" in labels
    np.testing.assert_allclose([float(t) for t in labels], ax.get_xticks(), rtol=0.02)


def test_not_estimable_study_has_no_square(figure_reader):
    df = synthetic(5, 6, binary=True)
    df.loc[2, ["ai", "ci"]] = 0
    res = m.pool(df, "RR", "DL", drop00=True)
    fig = forest_plot(res)
    assert "Not estimable" in figure_reader.texts(fig)
    assert len(squares(fig).get_offsets()) == 4


# ----------------------------------------------------------------------------
# subgroups


def test_subgroup_blocks(figure_reader):
    df = synthetic(9, 3, by=["mild", "moderate", "severe"])
    res = m.pool(df, "MD", "DL", by="severity")
    fig = forest_plot(res, study_data=arm_data(df))
    texts = figure_reader.texts(fig)
    assert len(diamonds(fig, "subtotal")) == 3 and len(diamonds(fig, "total")) == 1
    assert len(squares(fig).get_offsets()) == 9
    assert texts.count("Subtotal (95% CI)") == 3
    assert sum(t.startswith("Heterogeneity:") for t in texts) == 4
    assert sum(t.startswith("Test for overall effect:") for t in texts) == 4
    q, d = res.Q_between, res.Q_between_df
    line = [t for t in texts if t.startswith("Test for subgroup differences:")]
    assert line and line[0].startswith(f"Test for subgroup differences: Chi\u00b2 = {q:.2f}, df = {d} (P = ")
    assert line[0].endswith(f"I\u00b2 = {max(0, (q - d) / q) * 100:.0f}%")
    # each header sits above its studies, and its subtotal below them
    y = {t.get_text(): t.get_position()[1] for t in fig.texts}
    for (level, fit), nxt in zip(res.subgroups, [*res.subgroups[1:], None]):
        head = y[f"Severity: {level}"]
        rows = [y[s.study] for s in fit.studies]
        assert all(head > r for r in rows)
        if nxt is not None:
            assert all(r > y[f"Severity: {nxt[0]}"] for r in rows)
    # subgroup weights are shares of the overall analysis
    assert f"{sum(s.weight for s in res.overall.studies[0::3]):.1f}%" in texts


def test_subgroup_differences_string_of_the_issue(figure_reader):
    res = m.pool(synthetic(6, 8, by=["a", "b"]), "MD", "DL", by="severity")
    res = dataclasses.replace(res, Q_between=1.23, Q_between_df=1, Q_between_p=0.267)
    texts = figure_reader.texts(forest_plot(res))
    # I2 = (1.23 - 1)/1.23 = 18.7 %
    assert "Test for subgroup differences: Chi\u00b2 = 1.23, df = 1 (P = 0.27), I\u00b2 = 19%" in texts


# ----------------------------------------------------------------------------
# readability: 2 to 60 studies, no overlaps, nothing clipped


@pytest.mark.parametrize("k", [2, 60])
def test_readable_from_2_to_60_studies(k, figure_reader):
    df = synthetic(k, k)
    res = m.pool(df, "SMD", "REML")
    fig = forest_plot(res, study_data=arm_data(df))
    assert len(squares(fig).get_offsets()) == k
    assert figure_reader.overlaps(fig) == []
    assert figure_reader.outside(fig) == []
    texts = figure_reader.texts(fig)
    assert all(s.study in texts for s in res.overall.studies)
    # the row pitch (and so the font) does not shrink with k: the figure grows
    ys = sorted(text_row(fig, s.study) for s in res.overall.studies)  # inches
    pitch = np.diff(ys)
    assert np.allclose(pitch, pitch[0]) and pitch[0] >= 8 * 1.3 / 72


def test_height_grows_with_rows():
    h = [forest_plot(m.pool(synthetic(k, 1), "MD", "DL")).get_figheight() for k in (2, 10, 60)]
    assert h[0] < h[1] < h[2]
    assert (h[2] - h[1]) == pytest.approx((h[1] - h[0]) * 50 / 8)


@pytest.mark.parametrize("case", ["subgroups", "binary", "all-columns", "ratio-arrows"])
def test_no_text_overlap(case, figure_reader):
    if case == "subgroups":
        df = synthetic(12, 2, by=["mild", "moderate to severe (SCORAD > 25)"])
        fig = forest_plot(m.pool(df, "MD", "REML", "knha", by="severity"),
                          study_data=arm_data(df), prediction="all")
    elif case == "binary":
        df = synthetic(8, 3, binary=True)
        fig = forest_plot(m.pool(df, "OR", "MH"), study_data=arm_data(df))
    elif case == "all-columns":
        df = synthetic(6, 4)
        sd = arm_data(df)
        for i, d in enumerate(sd.values()):
            d.update(strain="Lactobacillus rhamnosus GG + Bifidobacterium animalis subsp. lactis BB-12",
                     dose=10 ** (8 + i), severity="moderate",
                     rob={"D1": "low", "D2": "high", "D3": "some_concerns", "D4": None,
                          "D5": "low", "Overall": "high"},
                     derived="p-value" if i == 1 else ("figure" if i == 2 else None))
        fig = forest_plot(m.pool(df, "MD", "REML"), study_data=sd, prediction=True,
                          columns=("strain", "dose", "severity", "data", "weight", "effect", "rob"),
                          title="SCORAD at the end of treatment")
    else:
        df = synthetic(9, 5, binary=True)
        fig = forest_plot(m.pool(df, "RR", "DL"), xlim=(0.5, 2))
    assert figure_reader.overlaps(fig) == []
    assert figure_reader.outside(fig) == []


def test_the_overlap_and_clipping_checks_can_fail(figure_reader):
    fig = forest_plot(m.pool(normand(), "MD", "DL"))
    assert figure_reader.overlaps(fig) == [] and figure_reader.outside(fig) == []
    (label,) = [t for t in fig.texts if t.get_text() == "Umea"]
    x, y = label.get_position()
    fig.text(x + 0.05, y, "intruder", transform=label.get_transform())
    fig.text(fig.get_figwidth() - 0.05, y, "cut off", transform=label.get_transform())
    assert ("Umea", "intruder") in figure_reader.overlaps(fig)
    assert figure_reader.outside(fig) == ["cut off"]


def test_long_labels_are_cut_with_an_ellipsis(figure_reader):
    df = synthetic(3, 9)
    long = "Navarro-L\u00f3pez 2018 (Bifidobacterium animalis subsp. lactis CECT 8145, B. longum CECT 7347 and L. casei CECT 9104)"
    df.loc[0, "study"] = long
    fig = forest_plot(m.pool(df, "MD", "DL"), study_data=arm_data(df), label_width=1.5)
    texts = figure_reader.texts(fig)
    assert long not in texts
    (cut,) = [t for t in figure_reader.text_objects(fig) if t.get_text().startswith("Navarro")]
    assert cut.get_text().endswith("\u2026") and long.startswith(cut.get_text()[:-1].rstrip())
    width_in = cut.get_window_extent(fig.canvas.get_renderer()).width / fig.dpi
    assert width_in <= 1.5
    assert figure_reader.overlaps(fig) == []


def test_text_layout_does_not_depend_on_the_resolution(figure_reader):
    # Agg's hinting would change text widths with the dpi; the layout is in
    # inches, so the texts must not overlap at any resolution.
    df = synthetic(8, 12)
    fig = forest_plot(m.pool(df, "MD", "REML"), study_data=arm_data(df))
    widths = []
    for dpi in (72, 100, 150, 300):
        fig.set_dpi(dpi)
        assert figure_reader.overlaps(fig) == [], dpi
        (t,) = [t for t in figure_reader.text_objects(fig) if t.get_text().startswith("Heterogeneity")]
        widths.append(t.get_window_extent(fig.canvas.get_renderer()).width / dpi)
    assert max(widths) - min(widths) < 0.01  # inches


# ----------------------------------------------------------------------------
# options


def test_favours_labels_follow_the_direction_of_benefit(figure_reader):
    res = m.pool(normand(), "MD", "DL")
    fig = forest_plot(res)
    left = [t for t in fig.texts if t.get_gid() == "favours-left"][0]
    right = [t for t in fig.texts if t.get_gid() == "favours-right"][0]
    assert (left.get_text(), right.get_text()) == ("Favours probiotic", "Favours control")
    # left label ends left of the no-effect line, right label starts right of it
    ax = panel(fig)
    r = fig.canvas.get_renderer()
    fig.canvas.draw()
    x_null = ax.transData.transform((0, 0))[0]
    assert left.get_window_extent(r).x1 < x_null < right.get_window_extent(r).x0
    fig = forest_plot(res, benefit="higher")
    labels = [t.get_text() for t in fig.texts if t.get_gid() in ("favours-left", "favours-right")]
    assert labels == ["Favours control", "Favours probiotic"]
    fig = forest_plot(res, favours=("Favours LGG", "Favours placebo"), arms=("LGG", "Placebo"),
                      study_data=arm_data(normand()))
    texts = figure_reader.texts(fig)
    assert "Favours LGG" in texts and "Favours placebo" in texts
    assert "LGG" in texts and "Placebo" in texts  # the arm headers of the data columns


def test_prediction_interval_bar():
    res = m.pool(normand(), "MD", "REML")
    assert res.pi_lb is not None
    assert by_gid(panel(forest_plot(res)), "prediction-interval", Rectangle) == []
    fig = forest_plot(res, prediction=True, xlim=(-100, 100))
    (bar,) = by_gid(panel(fig), "prediction-interval", Rectangle)
    assert bar.get_x() == pytest.approx(res.pi_lb)
    assert bar.get_x() + bar.get_width() == pytest.approx(res.pi_ub)
    assert "Prediction interval" in [t.get_text() for t in fig.texts]


def test_risk_of_bias_dots_and_footnotes(figure_reader):
    df = synthetic(4, 2)
    sd = arm_data(df)
    levels = ["low", "some_concerns", "high", "low"]
    for i, d in enumerate(sd.values()):
        d["rob"] = {"D1": levels[i], "D2": "low", "D3": "low", "D4": "low", "D5": "low",
                    "Overall": levels[i]}
    first = df.study[0]
    sd[first]["derived"] = "p-value"
    fig = forest_plot(m.pool(df, "MD", "DL"), study_data=sd)
    dots = {lv: sum(len(a.get_xdata()) for a in fig.artists if a.get_gid() == f"rob-dot-{lv}")
            for lv in ("low", "some_concerns", "high", "no_information")}
    assert dots == {"low": 4 * 6 - 4, "some_concerns": 2, "high": 2, "no_information": 0}
    colors = {a.get_gid(): a.get_color() for a in fig.artists
              if (a.get_gid() or "").startswith("rob-dot")}
    assert colors["rob-dot-low"].upper() == "#02C100" and colors["rob-dot-high"].upper() == "#BF0000"
    texts = figure_reader.texts(fig)
    assert {"D1", "D5", "O", "Risk of Bias"} <= set(texts)
    assert f"{first}*" in texts and "* Effect derived from a reported P value" in texts
    assert any(t.startswith("Risk of bias (RoB 2): D1: Bias arising") for t in texts)


def test_free_columns(figure_reader):
    df = synthetic(3, 2)
    sd = arm_data(df)
    for d, strain in zip(sd.values(), ["LGG", "L. reuteri DSM 17938", "B. lactis Bb-12"]):
        d.update(strain=strain, dose=1e9)
    texts = figure_reader.texts(forest_plot(m.pool(df, "MD", "DL"), study_data=sd,
                                            columns=("strain", "dose", "weight", "effect")))
    assert {"Strain", "Dose", "LGG", "L. reuteri DSM 17938", "1\u00d710\u2079"} <= set(texts)
    assert "Mean" not in texts  # no data column unless asked for


def test_invalid_options_are_rejected():
    res = m.pool(normand(), "MD", "DL")
    with pytest.raises(ValueError, match="benefit"):
        forest_plot(res, benefit="left")
    with pytest.raises(ValueError, match="xlim"):
        forest_plot(res, xlim=(5, -5))
    with pytest.raises(TypeError):
        forest_plot(res.overall.studies)
    with pytest.raises(ValueError, match="risk-of-bias"):
        forest_plot(res, study_data={"Edinburgh": {"rob": {"D1": "probably fine"}}})


# ----------------------------------------------------------------------------
# drawing only: no refit, no pyplot state, no matplotlib outside render/


def test_forest_plot_never_refits(monkeypatch):
    res = m.pool(normand(), "MD", "REML", by=None)
    from metaanalysis import api
    from metaanalysis.stats import fit, pool

    def boom(*a, **k):
        raise AssertionError("the plot refitted")

    for mod, name in ((fit, "rma"), (fit, "estimate_tau2"), (api, "pool"), (pool, "fit_one"),
                      (pool, "pool_effects")):
        monkeypatch.setattr(mod, name, boom)
    forest_plot(res, prediction=True).canvas.draw()


def test_no_pyplot_figures_accumulate():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    for _ in range(3):
        forest_plot(m.pool(normand(), "MD", "DL"))
    assert plt.get_fignums() == before


def test_pooling_does_not_import_matplotlib():
    # which modules may import it is an import rule: tests/test_layers.py
    code = ("import sys, pandas as pd, metaanalysis as m; "
            "m.pool(pd.DataFrame({'yi': [0.1, 0.3], 'vi': [0.01, 0.02]}), 'GEN', 'DL'); "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------
# saving


def test_save_figure_writes_deterministic_files(tmp_path):
    df = synthetic(5, 7)
    fig = forest_plot(m.pool(df, "MD", "REML"), study_data=arm_data(df))
    a = save_figure(fig, tmp_path / "a" / "forest")
    b = save_figure(fig, tmp_path / "b" / "forest")
    assert [p.suffix for p in a] == [".svg", ".png", ".pdf"]
    for pa, pb in zip(a, b):
        assert pa.exists() and pa.stat().st_size > 1000
        assert pa.read_bytes() == pb.read_bytes(), pa.suffix
    # and from a freshly built figure, too
    c = save_figure(forest_plot(m.pool(df, "MD", "REML"), study_data=arm_data(df)),
                    tmp_path / "c" / "forest", formats=("svg", "pdf"))
    assert c[0].read_bytes() == a[0].read_bytes() and c[1].read_bytes() == a[2].read_bytes()
    svg = a[0].read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    pdf = a[2].read_bytes()
    assert b"/CreationDate" not in pdf and b"/Producer" not in pdf
    png = a[1].read_bytes()
    assert b"Software" not in png
    # 300 dpi: pixel width = inches * 300
    import struct

    width_px = struct.unpack(">I", png[16:20])[0]
    assert abs(width_px - fig.get_figwidth() * 300) <= 1


def test_saved_files_do_not_depend_on_the_process(tmp_path):
    # svg ids are hashes: without a fixed svg.hashsalt they change with the
    # process (PYTHONHASHSEED); dates would change with the clock
    code = ("import sys, pandas as pd, metaanalysis as m; "
            "from metaanalysis.render.forest import forest_plot, save_figure; "
            "d = pd.read_csv(sys.argv[1]); "
            "save_figure(forest_plot(m.pool(d, 'MD', 'REML'), prediction=True), sys.argv[2], "
            "formats=('svg', 'pdf'))")
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "SOURCE_DATE_EPOCH": seed + "00000000"}
        subprocess.run([sys.executable, "-c", code, str(ROOT / "examples" / "normand1999.csv"),
                        str(tmp_path / seed / "f")], check=True, env=env)
    for ext in ("svg", "pdf"):
        assert (tmp_path / "1" / f"f.{ext}").read_bytes() == (tmp_path / "2" / f"f.{ext}").read_bytes()


def test_save_figure_rejects_unknown_formats(tmp_path):
    fig = forest_plot(m.pool(normand(), "MD", "DL"))
    with pytest.raises(ValueError, match="format"):
        save_figure(fig, tmp_path / "x", formats=("gif",))


# ----------------------------------------------------------------------------
# small-k intervals: the axis follows the studies, long pooled intervals end in arrows


def two_trials():
    """Allen 2014 and Kim 2010 (eczema, RR): REML + HKSJ on two trials gives
    RR 0.81 [0.019, 34.91] and a prediction interval of 0.002-324."""
    return pd.DataFrame({"study": ["Allen2014", "Kim2010"], "ai": [73, 12], "n1i": [214, 33],
                         "ci": [72, 22], "n2i": [222, 35]})


def test_a_wide_pooled_interval_does_not_stretch_a_log_axis(figure_reader):
    df = two_trials()
    res = m.pool(df, "RR", "REML", "knha")
    assert math.exp(res.ci_lb) < 0.02 and math.exp(res.ci_ub) > 30  # the case of the issue
    fig = forest_plot(res, study_data=arm_data(df), prediction=True)
    ax = panel(fig)
    lo, hi = ax.get_xlim()
    # the axis covers the studies' CIs (0.34-1.37), not the pooled 0.019-34.9
    assert lo <= min(math.exp(s.ci_lb) for s in res.overall.studies)
    assert hi >= max(math.exp(s.ci_ub) for s in res.overall.studies)
    assert (lo, hi) == (0.2, 5.0)
    # the diamond is cut inside the axis and ends in an arrowhead on each side
    (dia,) = diamonds(fig, "total")
    xs = dia.get_xy()[:, 0]
    assert xs.min() > lo and xs.max() < hi
    for side, limit in (("left", lo), ("right", hi)):
        (head,) = by_gid(ax, f"diamond-arrow-{side}", Polygon)
        tip = head.get_xy()[0]
        assert tip[0] == pytest.approx(limit) and tip[1] == 2  # the total's row
    # so does the prediction interval
    (bar,) = by_gid(ax, "prediction-interval", Rectangle)
    assert bar.get_x() > lo and bar.get_x() + bar.get_width() < hi
    assert len(by_gid(ax, "pi-arrow-left", Polygon)) == len(by_gid(ax, "pi-arrow-right", Polygon)) == 1
    # study CIs inside the axis have no arrows
    assert len(arrows(fig, "left")) == len(arrows(fig, "right")) == 0
    # the text columns keep the real bounds, never "0.00"
    texts = figure_reader.texts(fig)
    assert "[0.019," in texts and "34.91]" in texts and "[0.0020," in texts and "324.2]" in texts
    assert not any(re.fullmatch(r"\[?0\.00,?\]?", t) for t in texts)


def test_intervals_inside_the_axis_have_no_arrows():
    res = m.pool(normand(), "MD", "REML")
    fig = forest_plot(res, prediction=True)
    ax = panel(fig)
    for gid in ("diamond-arrow-left", "diamond-arrow-right", "pi-arrow-left", "pi-arrow-right"):
        assert by_gid(ax, gid, Polygon) == []
    lo, hi = ax.get_xlim()
    assert lo <= res.pi_lb and hi >= res.pi_ub


def test_a_diamond_beyond_a_given_xlim_is_clipped_with_arrows():
    res = m.pool(normand(), "MD", "REML", "knha")
    fig = forest_plot(res, xlim=(-5, 5), prediction=True)
    ax = panel(fig)
    (dia,) = diamonds(fig, "total")
    assert dia.get_xy()[:, 0].min() >= -5
    assert res.ci_lb < -5
    assert len(by_gid(ax, "diamond-arrow-left", Polygon)) == 1
    assert (len(by_gid(ax, "diamond-arrow-right", Polygon)) == 1) == (res.ci_ub > 5)


def test_a_ratio_axis_stops_at_one_hundredth_to_one_hundred():
    # one trial with a CI of 0.001-1100 (a tiny trial with a zero cell): the
    # axis stops at 0.01-100 and that CI ends in arrows on both sides
    fit = m.pool(two_trials(), "RR", "DL").overall
    wide = dataclasses.replace(fit.studies[1], ci_lb=-7.0, ci_ub=7.0)
    fit = dataclasses.replace(fit, studies=(fit.studies[0], wide))
    fig = forest_plot(fit)
    assert panel(fig).get_xlim() == (0.01, 100.0)
    assert arrows(fig, "left")[:, 1].tolist() == arrows(fig, "right")[:, 1].tolist() == [1]
