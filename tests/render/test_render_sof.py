"""The GRADE Summary of Findings table (metaanalysis/render/sof.py) from hand-built results."""

from __future__ import annotations

import copy
import csv
import io
import math

from metaanalysis.render import sof

ROB = {"domain": "risk of bias", "levels": 1, "reason": "no RoB 2 judgement was extracted"}
IMPRECISION = {"domain": "imprecision", "levels": 2, "reason": "the CI spans benefit and harm widely"}
INCONSISTENCY = {"domain": "inconsistency", "levels": 1, "reason": "I² = 75%"}


def _comparison(key, ci, n2i, n_total, strata, weeks=104.0, m2i=None, scale="events"):
    return {"key": key, "study": key, "timepoint_weeks": weeks, "n_total": n_total, "strata": strata,
            "scale": scale,
            "extraction": {"ci": ci, "n2i": n2i, "m2i": m2i}}


def binary_results() -> dict:
    """Three trials, RR. Control arms: 30/100, 10/100 and one without counts."""
    comps = [_comparison("A2001", 30, 100, 200, {"mix": "multi"}),
             _comparison("B2002", 10, 100, 210, {"mix": "multi"}, weeks=52.0),
             _comparison("C2003", None, None, None, {"mix": "single"})]
    main = {"k": 3, "measure": "RR", "estimate": math.log(0.5), "ci_lb": math.log(0.25),
            "ci_ub": math.log(1.0)}
    subset_fig = {"k": 2, "measure": "RR", "estimate": math.log(0.8), "ci_lb": math.log(0.02),
                  "ci_ub": math.log(35.0)}
    return {
        "protocol": {
            "question": {"population": "Infants", "intervention": "Probiotics",
                         "comparator": "Placebo", "outcome": "Eczema at 2 years"},
            "outcome": {"label": "eczema incidence", "unit": ""},
            "model": {"measure": "RR", "alpha": 0.05},
            "claims": [{"id": "C1", "target": {"subset": {}}},
                       {"id": "C2", "target": {"subset": {"mix": ["multi"]}}},
                       {"id": "C3", "target": {"subset": {}}}],
        },
        "comparisons": comps,
        "main": {"comparisons": [c["key"] for c in comps], "result": main},
        "claims": [
            {"id": "C1", "finding": "benefit", "verdict": "inconclusive", "in_scope": True,
             "figures": dict(main), "certainty": "very low",
             "certainty_statement": "The evidence is very uncertain.",
             "downgrades": [ROB, IMPRECISION], "studies": ["A2001", "B2002", "C2003"]},
            {"id": "C2", "finding": "benefit", "verdict": "inconclusive", "in_scope": True,
             "figures": subset_fig, "certainty": "very low", "certainty_statement": "",
             "downgrades": [ROB, INCONSISTENCY, IMPRECISION], "studies": ["A2001", "B2002"]},
            {"id": "C3", "finding": "effect_modification", "verdict": "insufficient evidence",
             "in_scope": True, "figures": {}, "certainty": None, "downgrades": [], "studies": []},
        ],
    }


def test_binary_rows_absolute_effects_and_footnotes():
    t = sof.summary_of_findings(binary_results())
    assert [r["claims"] for r in t["rows"]] == ["C1", "C2"]  # main first, then the subset
    main, sub = t["rows"]
    # control risk = (30 + 10) / (100 + 100) = 200 per 1,000, from 2 of 3 trials
    assert main["risk_control"] == "200 per 1,000 (from 2 of 3 trials)"
    # x RR 0.5 [0.25, 1.0] -> 100 (50 to 200)
    assert main["risk_probiotic"] == "100 per 1,000 (50 to 200)"
    assert main["risk_difference"] == "100 fewer per 1,000 (from 150 fewer to 0 fewer)"
    assert main["relative_effect"] == "RR 0.50 (0.25 to 1.00)"
    assert main["participants"] == "at least 410 (3 RCTs)"
    assert "Participant numbers not reported for 1 trial: C2003." in main["comments"]
    assert main["outcome"] == "Eczema incidence, all trials"
    assert main["follow_up"] == "range 52 to 104 weeks"
    # 1 + 2 levels down from high
    assert main["certainty_symbols"] == "\u2295\u25ef\u25ef\u25ef" and main["certainty"] == "Very low"
    assert main["marks"] == [1, 2]
    # the subset row reuses footnote 1 (same text) and adds 3
    assert sub["marks"] == [1, 2, 3]
    assert t["footnotes"][0] == "Risk of bias (downgraded one level): No RoB 2 judgement was extracted."
    assert t["footnotes"][1] == "Imprecision (downgraded two levels): The CI spans benefit and harm widely."
    assert t["footnotes"][2].startswith("Inconsistency (downgraded one level)")
    # never "0.00" as a ratio bound; a risk beyond 1,000 per 1,000 is capped and said so
    assert sub["relative_effect"] == "RR 0.80 (0.020 to 35.00)"
    assert sub["risk_control"] == "200 per 1,000"
    assert sub["risk_probiotic"] == "160 per 1,000 (4 to 1,000)"
    assert "shown at that limit" in sub["comments"]
    assert sub["participants"] == "410 (2 RCTs)"
    assert sub["outcome"] == "Eczema incidence, mix: multi"


def test_markdown_and_csv():
    t = sof.summary_of_findings(binary_results())
    md = sof.sof_markdown(t)
    assert "| Outcome | Risk with control | Risk with probiotic (95% CI) | Relative effect (95% CI) |" in md
    assert "\u2295\u25ef\u25ef\u25ef Very low\u00b9,\u00b2 |" in md
    assert "\n1. Risk of bias (downgraded one level)" in md and "\n3. Inconsistency" in md
    rows = list(csv.DictReader(io.StringIO(sof.sof_csv(t))))
    assert [r["claims"] for r in rows] == ["C1", "C2"]
    assert rows[0]["risk_probiotic"] == "100 per 1,000 (50 to 200)"
    assert rows[1]["footnotes"].startswith("1. Risk of bias")
    assert sof.sof_csv(t) == sof.sof_csv(sof.summary_of_findings(binary_results()))  # byte-stable


def test_odds_ratio_goes_through_the_odds():
    data = binary_results()
    data["protocol"]["model"]["measure"] = "OR"
    for f in (data["main"]["result"], data["claims"][0]["figures"], data["claims"][1]["figures"]):
        f["measure"] = "OR"
    main = sof.summary_of_findings(data)["rows"][0]
    # cr 0.2, OR 0.5: 0.2*0.5 / (1 - 0.2 + 0.1) = 0.1111 -> 111 per 1,000
    assert main["risk_probiotic"].startswith("111 per 1,000")
    assert main["relative_effect"].startswith("OR 0.50")


def test_continuous_row_gives_the_mean_difference_and_control_mean():
    data = binary_results()
    data["protocol"]["model"]["measure"] = "MD"
    data["protocol"]["outcome"] = {"label": "SCORAD", "unit": "points"}
    data["comparisons"] = [
        _comparison("A2001", None, 40, 80, {"mix": "multi"}, weeks=8.0, m2i=-2.0, scale="change"),
        _comparison("B2002", None, 60, 120, {"mix": "multi"}, weeks=8.0, m2i=-7.0, scale="change"),
        _comparison("C2003", None, 30, 60, {"mix": "single"}, weeks=8.0, m2i=40.0, scale="final")]
    fig = {"k": 3, "measure": "MD", "estimate": -5.0, "ci_lb": -8.25, "ci_ub": 0.004}
    data["main"]["result"] = fig
    data["claims"] = [dict(data["claims"][0], figures=dict(fig), certainty="low",
                           downgrades=[ROB, {"domain": "inconsistency", "levels": 1, "reason": "x"}])]
    t = sof.summary_of_findings(data)
    assert t["continuous"] and not t["binary"]
    (row,) = t["rows"]
    # a bound that rounds to zero prints "0.00", never "-0.00 lower"
    assert row["mean_difference"] == "MD 5.00 points lower (8.25 lower to 0.00)"
    # change scores weighted by control n: (40*-2 + 60*-7) / 100 = -5.0
    assert row["control_mean"] == ("mean final score 40.0 points (1 trial); "
                                   "mean change from baseline -5.0 points (2 trials)")
    assert row["certainty_symbols"] == "\u2295\u2295\u25ef\u25ef" and row["certainty"] == "Low"
    assert row["participants"] == "260 (3 RCTs)"
    md = sof.sof_markdown(t)
    assert "| Outcome | Control groups | Difference with probiotic (95% CI) |" in md


def test_alpha_sets_the_interval_label_and_unrated_rows_say_so():
    data = binary_results()
    data["protocol"]["model"]["alpha"] = 0.10
    data["claims"] = [c for c in data["claims"] if c["id"] == "C2"]
    t = sof.summary_of_findings(data)
    assert t["ci_label"] == "90% CI"
    assert "Risk with probiotic (90% CI)" in sof.sof_markdown(t)
    main = t["rows"][0]
    assert main["certainty"] == "Not rated" and main["marks"] == []
    assert "No claim is judged on this estimate" in main["comments"]


def test_effect_modification_certainty_only_as_a_last_resort():
    data = binary_results()
    em = copy.deepcopy(data["claims"][0])
    em.update(id="C0", finding="effect_modification", certainty="low", downgrades=[ROB])
    em["figures"]["Q_between_p"] = 0.3766
    data["claims"].insert(0, em)
    data["protocol"]["claims"].append({"id": "C0", "modifier": "mix_type", "target": {"subset": {}}})
    main = sof.summary_of_findings(data)["rows"][0]
    assert main["claims"] == "C0, C1"
    assert "C0 inconclusive (subgroup differences by mix type: p = 0.38); C1 inconclusive." in main["comments"]
    assert main["certainty"] == "Very low"  # C1's rating, not the modifier claim's
    assert "Certainty as rated for C1." in main["comments"]
    assert "Other claims on this estimate rated: C0 low." in main["comments"]


def test_a_mixed_results_claim_never_rates_the_effect():
    # a heterogeneity claim is rated without inconsistency (low); listed first,
    # it must not give the row its certainty, and the comment says what it rated
    data = binary_results()
    het = copy.deepcopy(data["claims"][0])
    het.update(id="C0", finding="heterogeneity", verdict="supported", certainty="low",
               downgrades=[ROB], judgement={"certainty": "low", "certainty_basis":
                                            "GRADE certainty (without inconsistency)"})
    data["claims"].insert(0, het)
    data["protocol"]["claims"].append({"id": "C0", "target": {"subset": {}}})
    main = sof.summary_of_findings(data)["rows"][0]
    assert main["claims"] == "C0, C1"
    assert main["certainty"] == "Very low" and "Certainty as rated for C1." in main["comments"]
    assert ("Other claims on this estimate rated: C0 low, GRADE certainty without "
            "inconsistency.") in main["comments"]
    # alone on its estimate, it still does not rate the effect
    data["claims"] = [het]
    assert sof.summary_of_findings(data)["rows"][0]["certainty"] == "Not rated"


def test_a_harms_claim_gets_its_own_adverse_event_row_in_a_mixed_table():
    data = binary_results()
    data["protocol"]["model"]["measure"] = "MD"
    for f in (data["main"]["result"], data["claims"][0]["figures"]):
        f.update(measure="MD", estimate=-5.0, ci_lb=-8.0, ci_ub=-2.0)
    data["claims"][1].update(finding="harms", figures={"k": 2, "measure": "RR", "estimate": math.log(1.2),
                                                       "ci_lb": math.log(0.9), "ci_ub": math.log(1.6)})
    data["adverse_events"] = {"result": {"studies": [{"study": "X"}, {"study": "Y"}]}}
    t = sof.summary_of_findings(data)
    assert t["binary"] and t["continuous"]
    assert (t["control_head"], t["probiotic_head"]) == ("With control", "With probiotic (95% CI)")
    main, ae = t["rows"]
    assert main["relative"] == "not applicable" and main["abs_probiotic"].startswith("MD 5.00 lower")
    assert ae["outcome"] == "Adverse events (any)" and ae["relative"] == "RR 1.20 (0.90 to 1.60)"
    assert ae["participants"] == "not available (2 RCTs)"
    assert ae["abs_control"] == "not available (no per-arm counts)"
    md = sof.sof_markdown(t)
    assert "| Outcome | With control | With probiotic (95% CI) | Relative effect (95% CI) |" in md
    assert "| not applicable |" in md


def test_a_multi_arm_trial_counts_once():
    data = binary_results()
    a1, a2 = copy.deepcopy(data["comparisons"][0]), copy.deepcopy(data["comparisons"][0])
    a1.update(key="A2001 (low dose)")
    a2.update(key="A2001 (high dose)")
    for a in (a1, a2):  # the shared control arm split between the two comparisons
        a["extraction"].update(ci=15, n2i=50)
        a["n_total"] = 150
    data["comparisons"] = [a1, a2, data["comparisons"][2]]
    data["main"]["comparisons"] = [c["key"] for c in data["comparisons"]]
    data["claims"] = data["claims"][:1]
    (row,) = sof.summary_of_findings(data)["rows"]
    assert row["risk_control"] == "300 per 1,000 (from 1 of 2 trials)"
    assert row["participants"] == "at least 300 (2 RCTs)"
