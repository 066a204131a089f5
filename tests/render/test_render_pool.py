"""`meta pool --forest`, `--drop-incomplete` and the missing-column message (issue 15, item 3).

The forest plot is read back from the SVG `meta pool` writes (svg.fonttype
"none" keeps every text a <text> element), so the test sees what a reader sees.
"""

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from metaanalysis import pool
from metaanalysis.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "normand1999.csv"
MINUS = "\u2212"

INCOMPLETE = """study,ai,n1i,ci,n2i,grp
A,10,50,20,50,x
B,5,40,,40,x
C,12,60,18,62,y
D,8,45,15,44,y
E,9,30,11,31,x
"""


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return ["".join(t.itertext()).strip() for t in root.iter("{http://www.w3.org/2000/svg}text")
            if "".join(t.itertext()).strip()]


def test_pool_draws_a_forest_plot_with_subgroups(tmp_path, capsys):
    df = pd.read_csv(EXAMPLE)
    df["severity"] = ["mild", "moderate"] * 4 + ["mild"]
    csv = tmp_path / "t.csv"
    df.to_csv(csv, index=False)
    out_svg = tmp_path / "forest.svg"
    code, out, err = run(["pool", str(csv), "--measure", "MD", "--test", "knha", "--by",
                          "severity", "--forest", str(out_svg)], capsys)
    assert code == 0, err
    texts = svg_texts(out_svg)
    res = pool(df, "MD", "REML", "knha", by="severity")
    # every study, both subgroup headers, the method as fitted
    assert {s.study for s in res.overall.studies} <= set(texts)
    assert {"Severity: mild", "Severity: moderate"} <= set(texts)
    assert "IV, Random (REML, HKSJ), 95% CI" in texts
    # the signed t of the text output
    t = f"{res.overall.stat:.2f}".replace("-", MINUS)
    assert f"Test for overall effect: t = {t}, df = 8 (P = 0.14)" in texts
    assert any(s.startswith("Test for subgroup differences: Chi\u00b2 = ") for s in texts)
    # totals of the arm columns
    assert str(df.n1i.sum()) in texts and str(df.n2i.sum()) in texts


@pytest.mark.parametrize("suffix", ["png", "pdf"])
def test_pool_forest_other_formats(tmp_path, capsys, suffix):
    target = tmp_path / f"f.{suffix}"
    code, _out, err = run(["pool", str(EXAMPLE), "--forest", str(target)], capsys)
    assert code == 0, err
    head = target.read_bytes()[:8]
    assert head.startswith(b"\x89PNG" if suffix == "png" else b"%PDF")


def test_pool_forest_refuses_other_suffixes(tmp_path, capsys):
    code, _out, err = run(["pool", str(EXAMPLE), "--forest", str(tmp_path / "f.jpg")], capsys)
    assert code == 1 and ".svg, .png or .pdf" in err and "Traceback" not in err


def test_incomplete_row_is_refused_by_default_and_dropped_on_request(tmp_path, capsys):
    csv = tmp_path / "inc.csv"
    csv.write_text(INCOMPLETE)
    code, _out, err = run(["pool", str(csv), "--measure", "RR"], capsys)
    assert code == 1 and "row 2 (line 3)" in err and "column 'ci'" in err
    code, out, err = run(["pool", str(csv), "--measure", "RR", "--drop-incomplete", "--json"],
                         capsys)
    assert code == 0, err
    assert "1 incomplete row(s) left out: row 2 (line 3, B)" in err
    import json

    got = json.loads(out)
    want = pool(pd.read_csv(csv).drop(index=1), "RR", "REML").to_dict()
    assert got["k"] == 4 and got["estimate"] == pytest.approx(want["estimate"], rel=1e-12)


def test_complete_table_gives_no_warning(capsys):
    code, _out, err = run(["pool", str(EXAMPLE), "--drop-incomplete"], capsys)
    assert code == 0 and "warning" not in err


def test_missing_column_lists_what_the_measure_needs(capsys):
    code, _out, err = run(["pool", str(EXAMPLE), "--measure", "RR"], capsys)
    assert code == 1
    assert re.search(r"missing columns 'ai', 'ci': measure RR needs columns ai, n1i, ci, n2i", err)
    code, _out, err = run(["pool", str(EXAMPLE), "--measure", "GEN"], capsys)
    assert code == 1 and "measure GEN needs columns yi and vi" in err
