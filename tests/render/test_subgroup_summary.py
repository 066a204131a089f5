"""Subgroup forest plots at scale: one row per subgroup (issue 14).

A subgroup forest plot repeats every study row of the main forest plot; past
a page (layout.MAX_ROWS_PER_PAGE) that is pages again for every stratum. Such
a plot is drawn as R meta's ``forest(..., study.results = FALSE)``: one row
per subgroup (pooled estimate, CI, k, participants, its heterogeneity and
test lines), the overall result and the test for subgroup differences, on
one page. Read back from the saved SVG's text.
"""

from __future__ import annotations

import importlib.util
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import metaanalysis as m
from metaanalysis.render import figures, layout
from metaanalysis.render.forest import SUMMARY_NOTE, forest_page_count, forest_plot, save_figure
from tests.render.test_render import arm_data, synthetic

SVG = "{http://www.w3.org/2000/svg}"

#: Copies of every bundled study file: the prevention protocol's 24
#: comparisons become 96, more than a page holds.
COPIES = 4


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [s for s in ("".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")) if s]


def test_a_forest_plot_without_study_rows_shows_the_subgroups(tmp_path):
    df = synthetic(90, 3, by=["mild", "moderate", "severe"], binary=True)
    res = m.pool(df, "RR", "REML", by="severity")
    sd = arm_data(df)
    assert forest_page_count(res, study_data=sd) > 1
    assert forest_page_count(res, study_data=sd, study_results=False) == 1
    fig = forest_plot(res, study_data=sd, study_results=False, prediction=True)
    texts = svg_texts(save_figure(fig, tmp_path / "f", formats=("svg",))[0])
    assert not [t for t in texts if t.startswith("Trial ")]  # no study row
    for level, fit in res.subgroups:
        assert f"Severity: {level}" in texts
        assert f"k = {fit.k} studies, {sum(df.n1i[df.severity == level]) + sum(df.n2i[df.severity == level])} participants" in texts
    assert sum(t.startswith("Heterogeneity: Tau²") for t in texts) == 4  # 3 subgroups + overall
    assert any(t.startswith("Test for subgroup differences: Chi²") for t in texts)
    assert "Total (95% CI)" in texts and SUMMARY_NOTE in texts
    # only the arms' totals (events and totals of a binary outcome), no RoB dots
    assert texts.count("Events") == 2 and texts.count("Total") == 2
    assert "Risk of Bias" not in texts


def test_a_subgroups_name_is_not_cut_to_an_ambiguous_prefix(tmp_path):
    # two species sharing their first 17 characters: a study-label width cuts both
    # to "Species: Bifidobacterium a…"; the summary's label column fits them
    df = synthetic(90, 3, by=["Bifidobacterium animalis", "Bifidobacterium adolescentis",
                              "Lacticaseibacillus rhamnosus"], binary=True)
    df = df.rename(columns={"severity": "species"})
    res = m.pool(df, "RR", "REML", by="species")
    sd = arm_data(df)
    texts = svg_texts(save_figure(forest_plot(res, study_data=sd, study_results=False),
                                  tmp_path / "f", formats=("svg",))[0])
    for level, _ in res.subgroups:
        assert f"Species: {level}" in texts
    narrow = svg_texts(save_figure(forest_plot(res, study_data=sd, study_results=False,
                                               label_width=1.9), tmp_path / "g",
                                   formats=("svg",))[0])
    assert not any(t == "Species: Bifidobacterium animalis" for t in narrow)  # the test can fail


def _replica():
    """benchmarks/scaling.py's ``replica`` (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "scaling", Path(__file__).resolve().parents[2] / "benchmarks" / "scaling.py")
    scaling = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scaling)
    return scaling.replica


def _copies(bundled: Path, dest: Path, copies: int) -> Path:
    """The bundled studies ``copies`` times over, each copy another trial (as
    benchmarks/scaling.py makes them: own id, DOI and cohort; no PMID)."""
    replica = _replica()
    src = bundled / "studies"
    shutil.copytree(src, dest)
    for p in sorted(src.glob("*.yaml")):
        if p.name == "strains.yaml":
            continue
        text = p.read_text(encoding="utf-8")
        for c in range(1, copies):
            (dest / f"{p.stem}_r{c}.yaml").write_text(replica(text, p.stem, c), encoding="utf-8")
    return dest


@pytest.fixture(scope="module")
def big_run(bundled, tmp_path_factory):
    from metaanalysis.analysis.pipeline import run_protocol
    from metaanalysis.runner import load_inputs

    studies = _copies(bundled, tmp_path_factory.mktemp("many") / "studies", COPIES)
    loaded, registry, ((_, proto),), _ = load_inputs(
        [bundled / "protocols" / "prevention-eczema.yaml"], studies)
    return run_protocol(proto, loaded, registry)


def test_subgroup_forests_of_a_large_run_are_one_page_each(big_run, tmp_path):
    run = big_run
    assert len(run.comparisons) > layout.MAX_ROWS_PER_PAGE
    jobs = figures.plan_figures(run)
    ids = [j.id for j in jobs]
    assert "forest_main_p2" in ids  # the main forest plot keeps every study row, in pages
    strata = [a.name for a in run.strata if a.result is not None]
    summarised = [j for j in jobs if j.id.startswith("forest_") and j.kwargs.get("study_results") is False]
    assert summarised  # the run is large enough for at least one
    for name in strata:
        # one figure per stratum, never pages of subgroup forests
        assert f"forest_{name}" in ids and f"forest_{name}_p1" not in ids
    for job in summarised:
        assert job.page_of is None
        assert "main forest plot" in job.caption and "main forest plot" in job.kwargs["title"]
    keys = {c.key for c in run.comparisons}
    job = summarised[0]
    texts = svg_texts(figures.draw_figure(job, tmp_path)[0])
    assert not keys & {t.split(" ")[0] for t in texts}  # no study row
    assert any("one row per subgroup" in t for t in texts)
    assert any(t.startswith("Test for subgroup differences") for t in texts)
    levels = [lvl for lvl, _ in job.args[0].subgroups]
    assert len([t for t in texts if t.startswith("k = ")]) == len(levels)
