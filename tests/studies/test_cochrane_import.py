"""tools/cochrane_import.py: a RevMan data row becomes a quote, an outcome and a RoB 2 block,
read through the library behind `meta revman import` (one reader of exports and of RoB 2)."""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from metaanalysis.studies.provenance import number_in_text

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("cochrane_import", REPO / "tools" / "cochrane_import.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(tool, tmp_path):
    cols = ["Analysis group", "Analysis number", "Analysis name", "Subgroup", "Study", "Experimental cases",
            "Experimental N", "Control cases", "Control N", "Weight", "Mean", "CI start", "CI end"]
    rob = [f"{c} ({k})" for _, c in tool.ROB_COLUMNS + (("overall", "Overall bias"),)
           for k in ("judgement", "support")]
    base = dict.fromkeys(cols + rob, "")
    data = {**base, "Analysis group": "1", "Analysis number": "2", "Analysis name": "Eczema by 2 years of age",
            "Study": "Allen 2014", "Experimental cases": "119", "Experimental N": "214", "Control cases": "132",
            "Control N": "226", "Weight": "21.806151", "Mean": "0.952067", "CI start": "0.809202",
            "CI end": "1.120156"}
    for _, c in tool.ROB_COLUMNS:
        data[f"{c} (judgement)"] = "Low risk"
        data[f"{c} (support)"] = "<p>Placebo used.</p><ul><li>a</li><li>b&nbsp;c</li></ul>"
    data["Bias in selection of the reported result (judgement)"] = "Some concerns"
    data["Overall bias (judgement)"] = "Some concerns"
    sub = {**base, "Analysis group": "1", "Analysis number": "8", "Study": "Allen 2014",
           "Analysis name": "Subgroup analysis: eczema by 2 years by risk of allergy",
           "Subgroup": "Infant not selected for risk of allergy or food hypersensitivity"}
    path = tmp_path / "review.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols + rob)
        w.writeheader()
        w.writerows([data, sub])
    return tool.load(path)


def test_data_row_is_the_quote(tool, tmp_path):
    b = tool.blocks(_rows(tool, tmp_path), "Allen 2014")
    text = b["quotes"]["qc1"]["text"]
    assert text.startswith('Analysis 1.2 "Eczema by 2 years of age" | Study: Allen 2014 | Experimental cases: 119')
    out = tool.outcome(b)
    for arm in ("probiotic", "control"):
        for key in ("events", "n"):
            assert number_in_text(out["per_arm"][arm][key]["value"], text)
    assert out["per_arm"]["control"]["events"]["value"] == 132
    assert number_in_text(out["between"]["estimate"]["value"], text)


def test_rob_judgements_and_support_text(tool, tmp_path):
    b = tool.blocks(_rows(tool, tmp_path), "Allen 2014")
    rob = b["rob"]
    assert rob["tool"] == "RoB2"
    assert rob["domains"]["randomisation"]["judgement"] == "low"
    assert rob["domains"]["selection"]["judgement"] == "some_concerns"
    assert rob["overall"]["judgement"] == "some_concerns"
    # HTML removed; list items and paragraphs stay separate words; entities decoded
    assert 'Support: "Placebo used. a b c"' in rob["domains"]["deviations"]["note"]


def test_subgroup_heading_sets_family_risk(tool, tmp_path):
    b = tool.blocks(_rows(tool, tmp_path), "Allen 2014")
    assert tool.family_risk(b) == "unselected"
    assert tool.timing(b) is None


def test_rob_agrees_with_meta_revman_import(tool, tmp_path):
    """One RoB 2 reader: the tool and `meta revman import` give the same judgements and support text."""
    from ruamel.yaml import YAML

    from metaanalysis.analysis import revman

    rows = _rows(tool, tmp_path)
    b = tool.blocks(rows, "Allen 2014")
    written = revman.import_analysis(tmp_path / "review.csv", "1.2", tmp_path / "out",
                                     purpose="prevention", comparator="placebo")
    lib = YAML(typ="safe", pure=True).load(written[0].read_text(encoding="utf-8"))["rob"]
    assert {k: d["judgement"] for k, d in lib["domains"].items()} == {
        k: d["judgement"] for k, d in b["rob"]["domains"].items()}
    assert lib["overall"]["judgement"] == b["rob"]["overall"]["judgement"]
    for key, d in lib["domains"].items():
        assert f'Support: "{d["note"]}"' in b["rob"]["domains"][key]["note"]


def test_a_bad_export_is_one_line_naming_the_file(tool, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("Study,Mean\nA,1\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"bad\.csv: missing column"):
        tool.load(bad)
