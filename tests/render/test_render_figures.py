"""Every figure of the bundled run, read back from its SVG (issue 15).

``svg.fonttype = "none"`` keeps each text a ``<text>`` element, so these tests
read what a reader of the report reads: one house style for numbers and
names across all figures, forest plots that name the model as it was fitted,
statistics with the sign the text outputs print, and a PRISMA diagram whose
counts are the studies' fates in results.json. Figures drawn from small
hand-made inputs check the marks (n.r., derived SDs, change vs final, the
paper's own CI) and the bubble plot's band and labels.
"""

import dataclasses
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaanalysis as m
from metaanalysis.render import fmt, prisma
from metaanalysis.render.forest import forest_plot
from metaanalysis.render.plots import bubble_plot

SVG = "{http://www.w3.org/2000/svg}"
MINUS = "\u2212"
ROOT = Path(__file__).resolve().parents[2]

#: Display names in another case than fmt.MEASURE_NAMES (RevMan's title case).
WRONG_CASE = ("Mean Difference", "Risk Ratio", "Odds Ratio", "Risk Difference",
              "Standardised Mean Difference", "Standardized Mean Difference")


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    out = []
    for t in root.iter(f"{SVG}text"):
        s = "".join(t.itertext()).strip()
        if s:
            out.append(s)
    return out


@pytest.fixture(scope="module")
def figures(bundled_run):
    """(protocol id, results.json, figure id, title, caption, texts) for every figure."""
    done, _ = bundled_run
    rows = []
    for o in done:
        folder = Path(o.out_dir)
        data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        index = json.loads((folder / "figures" / "index.json").read_text(encoding="utf-8"))
        for f in index:
            svg = next(p for p in f["files"] if p.endswith(".svg"))
            rows.append((o.protocol_id, data, f["id"], f["title"], f["caption"],
                         svg_texts(folder / svg)))
    assert rows
    return rows


def _fmt_signed(x):
    return fmt.num(x, 2, minus=MINUS)


# ----------------------------------------------------------------------------
# one house style, every figure


def test_every_figure_uses_one_number_and_name_style(figures):
    for pid, _data, fid, title, caption, texts in figures:
        where = f"{pid}/{fid}"
        assert title[:1].isupper(), f"{where}: title {title!r} starts lower-case"
        assert caption[:1].isupper(), f"{where}: caption {caption!r} starts lower-case"
        for s in texts:
            # a number's minus is the typographic one (as matplotlib's ticks)
            assert not re.search(r"(?<![\w)])-\d", s), f"{where}: ASCII minus in {s!r}"
            # nothing rounds to a signed zero
            assert not re.search(rf"[-{MINUS}]0\.0+(?!\d)", s), f"{where}: signed zero in {s!r}"
            for wrong in WRONG_CASE:
                assert wrong not in s, f"{where}: {wrong!r} (house style: sentence case)"
            # ratio bounds are never 0.00
            assert "[0.00," not in s, f"{where}: a ratio printed as 0.00 in {s!r}"


def test_tau2_has_the_same_decimals_in_every_figure(figures):
    seen = 0
    for pid, _data, fid, _t, _c, texts in figures:
        values = []
        for s in texts:
            values += re.findall(r"Tau\u00b2 \(\w+\) = ([\d.]+)", s)
        if fid == "leave_one_out":
            i = texts.index("Tau\u00b2")
            # the column under the header: numbers until the I² column's first "%"
            values += [s for s in texts[i + 1:] if re.fullmatch(r"[\d.]+", s)]
        for v in values:
            seen += 1
            decimals = len(v.split(".")[1]) if "." in v else 0
            assert decimals == 2 or (float(v) < 0.005 and decimals > 2), \
                f"{pid}/{fid}: Tau\u00b2 {v} (house style: 2 decimals, 2 significant digits below 0.005)"
    assert seen > 10


def test_forest_plots_name_the_model_as_fitted_and_sign_the_statistic(figures):
    checked = 0
    for pid, data, fid, _t, _c, texts in figures:
        if not fid.startswith("forest_"):
            continue
        model = data["protocol"]["model"]
        assert model["method"] == "REML" and model["test"] == "adhoc"  # the bundled protocols
        assert "IV, Random (REML, mHKSJ), 95% CI" in texts, f"{pid}/{fid}"
        assert "IV, Random, 95% CI" not in texts  # RevMan's DL/Z label would claim another model
        assert any(s.startswith("mHKSJ: modified Hartung-Knapp-Sidik-Jonkman (metafor test = "
                                "\"adhoc\")") for s in texts), f"{pid}/{fid}"
        het = [s for s in texts if s.startswith("Heterogeneity: Tau")]
        assert het and all(s.startswith("Heterogeneity: Tau\u00b2 (REML) = ") for s in het)
        tests = [s for s in texts if s.startswith("Test for overall effect:")]
        kinds = {s.split(": ")[1][:1] for s in tests if "Not applicable" not in s}
        if len(kinds) > 1:  # t and Z in one figure: a footnote says why
            assert any(s.startswith("Tests: t where the fit used a t distribution") for s in texts)
        if fid == "forest_main":
            main = data["main"]["result"]
            want = (f"Test for overall effect: t = {_fmt_signed(main['stat'])}, "
                    f"df = {main['df']:g} ({fmt.p_phrase(main['pval'], 'P')})")
            assert want in texts, f"{pid}: {want!r} not in the main forest plot"
            checked += 1
    assert checked >= 2


def test_subgroup_forest_plots_say_which_strata_the_test_compares(figures):
    # the bottom line gives the statistic; a footnote says from what SEs and
    # which strata are shown but left out of it (results.json's subgroup_test)
    seen = 0
    for pid, data, fid, _title, _caption, texts in figures:
        stratum = next((s for s in data.get("strata", []) if f"forest_{s['name']}" == fid), None)
        if stratum is None or not (stratum.get("result") or {}).get("subgroup_test"):
            continue
        how = stratum["result"]["subgroup_test"]
        notes = " ".join(texts)  # a long footnote wraps onto several lines
        if how.startswith("no test: "):
            assert "Subgroup differences not tested: " + how[len("no test: "):][:40] in notes, fid
        else:
            assert "Subgroup differences tested by chi-square on the strata" in notes, fid
            for part in re.findall(r"\(k = \d+\)", how):
                assert part in notes, (pid, fid, part)
        seen += 1
    assert seen >= 10


def test_main_forest_totals_and_marks(figures):
    for pid, data, fid, _t, _c, texts in figures:
        if fid != "forest_main":
            continue
        comps = data["comparisons"]
        n1 = [c["extraction"]["n1i"] for c in comps]
        if any(v is None for v in n1):
            # RevMan's total of what is reported, marked as partial; "n.r." in the rows
            total = fmt.num(sum(v for v in n1 if v is not None), 0)
            assert any(re.fullmatch(rf"{total}\W+", s) for s in texts), f"{pid}: total {total}"
            assert "n.r." in texts
            assert any(s.startswith("n.r.: not reported") for s in texts)
        if any(c["scale"] == "change" for c in comps):
            assert "Scale" in texts and "Change" in texts
            if any(c["scale"] == "final" for c in comps):
                assert "Final" in texts
        if any("sd_from_se" in [d["method"] for d in c["extraction"]["derivations"]]
               and "se_from_p" in [d["method"] for d in c["extraction"]["derivations"]]
               for c in comps):
            assert any("SD back-calculated from the reported P value" in s for s in texts)


def test_prisma_counts_are_the_studies_fates(figures):
    n = 0
    for pid, data, fid, _t, _c, texts in figures:
        if fid != "prisma":
            continue
        n += 1
        purpose = data["protocol"]["eligibility"]["purpose"]
        studies = data["studies"]
        this = [s for s in studies if s["purpose"] == purpose]
        analysed = [s for s in this if s["status"] == "analysed"]
        assert f"(n = {len(studies)})" in texts
        assert f"(n = {len(studies) - len(this)})" in texts
        assert f"(n = {len(this)})" in texts
        assert f"Not analysed (n = {len(this) - len(analysed)}):" in texts
        assert f"(n = {len(analysed)})" in texts
        assert f"Comparisons in the main analysis (n = {len(data['comparisons'])})" in texts
        # the reasons add up to the studies not analysed
        per_reason = [int(x) for s in texts for x in re.findall(r"^[A-Z][^:]*\(n = (\d+)\)$", s)
                      if not s.startswith(("Not analysed", "Comparisons", "Study files"))]
        assert sum(per_reason) == len(this) - len(analysed), texts
    assert n >= 2


# ----------------------------------------------------------------------------
# hand-made inputs


def _gen_table():
    return pd.DataFrame({"study": ["Arms A", "Effect B", "Arms C"],
                         "yi": [-5.0, -3.0, -8.0], "vi": [4.0, 6.0, 5.0]})


def test_counts_not_reported_are_marked_and_totals_add_the_reported(figure_reader):
    sd = {"Arms A": {"m1i": 10.0, "sd1i": 5.0, "n1i": 40, "m2i": 15.0, "sd2i": 5.0, "n2i": 42,
                     "scale": "Change", "cell_notes": {"sd1i": "SD note", "sd2i": "SD note"}},
          "Effect B": {"scale": "Final", "notes": ["From a news report"]},
          "Arms C": {"m1i": 12.0, "sd1i": 6.0, "n1i": 30, "m2i": 20.0, "sd2i": 6.0, "n2i": 31,
                     "scale": "Change"}}
    gen = m.pool(_gen_table(), "GEN", "REML")
    # shown as a mean difference, so the continuous arm columns are drawn
    res_md = dataclasses.replace(gen, overall=dataclasses.replace(gen.overall, measure="MD"))
    fig = forest_plot(res_md, study_data=sd, columns=("scale", "data", "weight", "effect"))
    texts = figure_reader.texts(fig)
    assert texts.count("n.r.") == 2  # Effect B's two Total cells
    assert "70*" not in texts
    marks = [s for s in texts if s.startswith(("70", "73"))]
    assert len(marks) == 2 and all(len(s) == 3 for s in marks)  # 70 + mark, 73 + mark
    assert {"Change", "Final", "Scale"} <= set(texts)
    assert "5*" in texts  # the SD cells carry their mark
    assert any(s.endswith("From a news report") for s in texts)
    assert any(s.startswith("n.r.: not reported") for s in texts)
    assert figure_reader.overlaps(fig) == []


def test_paper_ci_is_shown_as_printed(figure_reader):
    # a t interval: wider than the Wald interval from the SE derived from it
    df = pd.DataFrame({"study": ["T"], "yi": [-5.43], "vi": [(10.44 / (2 * 2.0)) ** 2]})
    res = m.pool(pd.concat([df, _gen_table()]), "GEN", "REML")
    sd = {"T": {"ci_shown": (-10.65, -0.21)}}
    texts = figure_reader.texts(forest_plot(res, study_data=sd))
    assert f"[{MINUS}10.65," in texts and f"{MINUS}0.21]" in texts
    # mirrored when the paper reports the reduction as positive
    sd = {"T": {"ci_shown": (0.21, 10.65)}}
    texts = figure_reader.texts(forest_plot(res, study_data=sd))
    assert f"[{MINUS}10.65," in texts
    # an interval that does not match the study is ignored (the Wald one is shown)
    sd = {"T": {"ci_shown": (1.0, 2.0)}}
    texts = figure_reader.texts(forest_plot(res, study_data=sd))
    assert f"[{MINUS}10.65," not in texts


def test_bubble_band_is_the_predicted_ci_and_labels_clear_the_bubbles(figure_reader):
    from matplotlib.collections import PolyCollection

    from metaanalysis.stats.pool import regress_effects
    from metaanalysis.render.figures import _regression_band

    rng = np.random.default_rng(3)
    k = 9
    x = np.array([8, 9, 12, 12, 12, 12, 13, 10, 11], dtype=float)
    vi = rng.uniform(4, 30, k)
    yi = -10 + 0.8 * x + rng.normal(0, 3, k)
    for test in ("z", "knha", "adhoc"):
        reg = regress_effects(yi, vi, np.column_stack([np.ones(k), x]), ("intrcpt", "x"),
                              method="REML", test=test)
        xs, lb, ub = _regression_band(reg, x, vi)
        # at any x0, the band is the intercept's CI of the same model with x - x0
        for j in (0, 37, 99):
            shifted = regress_effects(yi, vi, np.column_stack([np.ones(k), x - xs[j]]),
                                      ("intrcpt", "x"), method="REML", test=test)
            assert lb[j] == pytest.approx(shifted.ci_lb[0], rel=1e-6, abs=1e-8)
            assert ub[j] == pytest.approx(shifted.ci_ub[0], rel=1e-6, abs=1e-8)
    labels = [f"Trial{i}" for i in range(k)]
    fig = bubble_plot(x, yi, 1 / (vi + reg.tau2), regression=reg, band=(xs, lb, ub),
                      labels=labels, measure="MD", xlabel="Weeks")
    ax = fig.axes[0]
    assert [c for c in ax.collections if isinstance(c, PolyCollection)
            and c.get_gid() == "regression-band"]
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    bubbles = [c for c in ax.collections if c.get_gid() == "bubbles"][0]
    centres = ax.transData.transform(bubbles.get_offsets())
    radii = np.sqrt(bubbles.get_sizes()) / 2 * fig.dpi / 72
    texts = [t for t in ax.texts if t.get_gid() == "bubble-label"]
    assert sorted(t.get_text() for t in texts) == sorted(labels)
    for t in texts:
        bb = t.get_window_extent(r)
        for (cx, cy), rad in zip(centres, radii):
            nx, ny = min(max(cx, bb.x0), bb.x1), min(max(cy, bb.y0), bb.y1)
            assert (nx - cx) ** 2 + (ny - cy) ** 2 >= rad**2 - 1, f"{t.get_text()} covers a bubble"
    assert figure_reader.overlaps(fig) == []


def test_prisma_figure_from_fates(figure_reader):
    studies = ([{"id": f"A{i}", "purpose": "treatment", "status": "analysed"} for i in range(5)]
               + [{"id": "X", "purpose": "treatment", "status": "not analysed",
                   "reason": "excluded in its file: no control"},
                  {"id": "Y", "purpose": "treatment", "status": "not analysed",
                   "reason": "no usable data for this outcome: medians only"},
                  {"id": "P", "purpose": "prevention", "status": "not analysed",
                   "reason": "purpose is prevention"}])
    c = prisma.flow_counts(studies, "treatment", 6)
    assert (c["records"], c["other_question"], c["screened"], c["not_analysed"], c["analysed"]) \
        == (8, 1, 7, 2, 5)
    fig = prisma.prisma_flow(c)
    texts = figure_reader.texts(fig)
    assert {"(n = 8)", "(n = 7)", "(n = 5)", "Not analysed (n = 2):",
            "Excluded at extraction (n = 1)", "No usable data for this outcome (n = 1)",
            "Comparisons in the main analysis (n = 6)", "Identification", "Screening",
            "Included"} <= set(texts)
    assert figure_reader.overlaps(fig) == []
    assert figure_reader.outside(fig) == []


# ----------------------------------------------------------------------------
# every figure of the report, as drawn: no text box overlaps another


def test_no_figure_of_the_bundled_run_has_overlapping_text(bundled, tmp_path, monkeypatch,
                                                            figure_reader):
    """make_figures on every bundled protocol, each Figure caught before it is
    saved and read back with the renderer's text boxes (the SVG has none)."""
    from metaanalysis.analysis.pipeline import run_protocol
    from metaanalysis.render import figures as figures_mod
    from metaanalysis.render import forest
    from metaanalysis.runner import load_inputs

    caught = []

    def catch(fig, stem, formats=("svg",), dpi=300):
        caught.append((Path(stem).name, fig))
        return [Path(f"{stem}.{f}") for f in formats]

    monkeypatch.setattr(forest, "save_figure", catch)
    protos = sorted((bundled / "protocols").glob("*.yaml"))
    studies, registry, loaded, _ = load_inputs(protos, bundled / "studies")
    for path, proto in loaded:
        run = run_protocol(proto, studies, registry)
        before = len(caught)
        index = figures_mod.make_figures(run, tmp_path / proto.id)
        assert len(caught) - before == len(index)
    assert {"prisma", "forest_main", "leave_one_out"} <= {name for name, _ in caught}
    for name, fig in caught:
        assert figure_reader.overlaps(fig) == [], f"{name}: overlapping texts"
        assert figure_reader.outside(fig) == [], f"{name}: texts outside the figure"


# ----------------------------------------------------------------------------
# a forest plot longer than a page: its pages are figures of the index


def test_plan_emits_the_pages_of_a_long_forest_plot(bundled, tmp_path, monkeypatch):
    """With the page limit lowered, the bundled treatment-scorad forest plots
    over the limit become pages (each a figure in the index, the main one's
    as SVG) or, a subgroup forest plot, one row per subgroup
    (test_subgroup_summary.py); shorter ones stay whole."""
    from metaanalysis.analysis.pipeline import run_protocol
    from metaanalysis.render import figures as figures_mod
    from metaanalysis.render import layout
    from metaanalysis.runner import load_inputs

    proto_path = bundled / "protocols" / "treatment-scorad.yaml"
    studies, registry, loaded, _ = load_inputs([proto_path], bundled / "studies")
    [(_, proto)] = loaded
    run = run_protocol(proto, studies, registry)
    whole = {j.id: j for j in figures_mod.plan_figures(run)}
    monkeypatch.setattr(layout, "MAX_ROWS_PER_PAGE", 45)
    jobs = {j.id: j for j in figures_mod.plan_figures(run)}
    # up to 27 rows: one page, drawn as before
    for name in ("forest_main", "forest_severity", "forest_mixture"):
        assert jobs[name].kwargs == whole[name].kwargs
    # 52 rows: the 8 species alone (42 rows), on one page; their studies are on forest_main
    assert "forest_species_p1" not in jobs
    assert jobs["forest_species"].kwargs["study_results"] is False
    assert "study_results" not in whole["forest_species"].kwargs
    # 11 rows over pages of 4: the main forest plot's pages
    monkeypatch.setattr(layout, "MAX_ROWS_PER_PAGE", 4)
    jobs = figures_mod.plan_figures(run)
    ids = [j.id for j in jobs]
    pages = [j for j in jobs if j.page_of == "forest_main"]
    assert "forest_main" not in ids and len(pages) >= 3
    n = len(pages)
    assert [j.id for j in pages] == [f"forest_main_p{i}" for i in range(1, n + 1)]
    assert [j.base_id for j in pages] == ["forest_main"] * n
    # pages are SVG (PDF with --pdf), not the whole plot's 300 dpi PNG
    assert whole["forest_main"].formats == ("svg", "png")
    assert all(j.formats == ("svg",) for j in pages)
    with_pdf = [j for j in figures_mod.plan_figures(run, pdf=True) if j.page_of == "forest_main"]
    assert with_pdf and all(j.formats == ("svg", "pdf") for j in with_pdf)
    every = [j for j in figures_mod.plan_figures(run, all_formats=True) if j.page_of == "forest_main"]
    assert every and all(j.formats == ("svg", "png", "pdf") for j in every)
    assert all(j.title.endswith(f"(page {i} of {n})") for i, j in enumerate(pages, start=1))
    assert ids.index(pages[0].id) == ids.index(pages[-1].id) - (n - 1)  # in order, together
    # drawn and read back: each study once, the overall result on the last page
    figdir = tmp_path / "figures"
    texts = []
    for j in pages:
        svg = figures_mod.draw_figure(j, figdir)[0]
        texts.append(svg_texts(svg))
    keys = {c.key for c in run.comparisons}
    seen = [t.rstrip("*\u2020\u2021\u00a7\u00b6") for page in texts for t in page
            if t.rstrip("*\u2020\u2021\u00a7\u00b6") in keys]
    assert sorted(seen) == sorted(s.study for s in run.main.result.overall.studies)
    has_total = [any(t.startswith("Total (") for t in page) for page in texts]
    assert has_total == [False] * (n - 1) + [True]
    # the leave-one-out (k + 1 rows) and cumulative (k rows) plots page the same way
    monkeypatch.setattr(layout, "MAX_ROWS_PER_PAGE", 6)
    ids = [j.id for j in figures_mod.plan_figures(run)]
    for name in ("leave_one_out", "cumulative"):
        assert name not in ids and f"{name}_p1" in ids and f"{name}_p2" in ids


def test_every_bundled_figure_fits_one_page(figures):
    """The bundled forest plots (at most 63 rows) are under the page limit, so
    the committed outputs keep one file per figure."""
    assert [fid for _proto, _data, fid, *_rest in figures if re.search(r"_p[0-9]+$", fid)] == []
