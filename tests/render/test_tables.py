"""The CSV tables of a run (metaanalysis/render/tables.py): laid out from the
RunResult, byte-identical to what the bundled ``meta run`` wrote, and safe to
open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace

import numpy as np
import pytest

from metaanalysis.render import tables

NAMES = ["studies.csv", "effects.csv", "pooled.csv", "heterogeneity.csv", "subgroup_tests.csv",
         "sensitivity.csv", "claims.csv"]


def test_tables_are_the_files_meta_run_wrote(bundled_run, bundled_results):
    _, out = bundled_run
    for pid, run in bundled_results.items():
        got = tables.tables(run)
        assert list(got) == NAMES
        for name, text in got.items():
            assert (out / pid / name).read_text(encoding="utf-8") == text, f"{pid}/{name}"


def test_pooled_rows_hold_full_precision_numbers(bundled_results):
    run = bundled_results["treatment-scorad"]
    rows = list(csv.DictReader(io.StringIO(tables.tables(run)["pooled.csv"])))
    main = next(r for r in rows if r["analysis"] == "main" and r["level"] == "overall")
    fit = run.main.result.overall
    assert float(main["estimate"]) == fit.estimate and main["estimate"] == repr(fit.estimate)
    assert int(main["k"]) == fit.k
    # one row per subgroup level of every stratum analysis
    n_levels = sum(len(a.result.subgroups) for a in run.strata if a.result is not None)
    assert sum(r["kind"] == "stratum" and r["level"] != "overall" for r in rows) == n_levels


@pytest.mark.parametrize("value, written", [
    (None, ""), (float("nan"), ""), (math.inf, ""),      # null in results.json
    (np.float64(0.25), "0.25"), (np.int64(7), 7),        # numpy scalars as Python numbers
    (0.1 + 0.2, "0.30000000000000004"), (True, "True"),
])
def test_csv_cell_numbers(value, written):
    assert tables.csv_cell(value) == written


def test_every_csv_of_a_run_is_escaped(bundled_results):
    run = bundled_results["treatment-scorad"]
    studies = list(run.studies)
    studies[0] = {**studies[0], "reason": "=HYPERLINK(\"http://evil\",\"click\")"}
    claims = list(run.claims)
    claims[0] = replace(claims[0], finding="@SUM(A1)", verdict="+1+1")
    comps = list(run.comparisons)
    comps[0] = replace(comps[0], arm="-arm")
    nasty = replace(run, studies=tuple(studies), claims=tuple(claims), comparisons=tuple(comps),
                    main=replace(run.main, name="\tmain"))
    got = tables.tables(nasty)
    negatives = 0
    for name, text in got.items():
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                if cell.startswith(tables.FORMULA_STARTS):
                    float(cell)  # only a number may start like a formula
                    negatives += cell.startswith("-")
    assert negatives > 0, "no negative number was left to check"
    assert "'=HYPERLINK" in got["studies.csv"] and "'@SUM(A1)" in got["claims.csv"]
    assert "'-arm" in got["effects.csv"] and "'\tmain" in got["pooled.csv"]
