"""The GRADE Summary of Findings table (metaanalysis/render/sof.py) from hand-built results.

The run is built from the real result types (Comparison, Extraction, FitResult,
PoolResult, Analysis, ClaimVerdict); the protocol is a namespace with the few
fields the table reads, its claims real protocol Claims.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import replace
from types import SimpleNamespace as NS

from metaanalysis.analysis.claims import ClaimVerdict, Downgrade, Judgement, Reason
from metaanalysis.analysis.pipeline import Analysis, Comparison, RunResult
from metaanalysis.analysis.protocol import Claim
from metaanalysis.render import sof
from metaanalysis.stats.results import FitResult, PoolResult, StudyRow
from metaanalysis.studies.extract import Extraction

ROB = Downgrade("risk of bias", 1, Reason.text("no RoB 2 judgement was extracted"))
IMPRECISION = Downgrade("imprecision", 2, Reason.text("the CI spans benefit and harm widely"))
INCONSISTENCY = Downgrade("inconsistency", 1, Reason.text("I² = 75%"))
NAN = float("nan")


def _comparison(key, ci, n2i, n_total, strata, weeks=104.0, m2i=None, scale="events"):
    ex = Extraction(study=key, outcome="o", measure="RR", kind="arms", scale=scale,
                    intervention_arm="probiotic", control_arm="placebo", ci=ci, n2i=n2i, m2i=m2i)
    return Comparison(key=key, study=key, arm="probiotic", control="placebo", outcome="o",
                      timepoint_weeks=weeks, scale=scale, yi=0.0, vi=1.0, extraction=ex,
                      attrs=dict(strata), flags=(), year=2000, rob_overall=None, rob_domains={},
                      baseline_score=None, log10_dose=None, duration_weeks=None, n_total=n_total,
                      outcome_choice="")


def _fit(k, measure, estimate, ci_lb, ci_ub, studies=()) -> FitResult:
    """A fit with only what the table reads: k, the measure, the estimate and its CI."""
    return FitResult(k=k, measure=measure, method="REML", test="z", estimate=estimate, se=NAN,
                     stat=NAN, df=None, ci_lb=ci_lb, ci_ub=ci_ub, pval=NAN, tau2=0.0,
                     tau2_ci=(None, None), tau=0.0, I2=None, H2=None, Q=None, Q_df=k - 1,
                     Q_p=None, pi_lb=None, pi_ub=None, alpha=0.05, studies=tuple(studies))


def _figures(f: FitResult) -> dict:
    """A claim's ``figures``: the fit it was judged on."""
    return {"k": f.k, "measure": f.measure, "estimate": f.estimate, "ci_lb": f.ci_lb,
            "ci_ub": f.ci_ub}


def _claim(cid, finding, verdict, figures, certainty, downgrades=(), studies=(),
           statement="", judgement=None) -> ClaimVerdict:
    return ClaimVerdict(id=cid, wording="w", source="s", finding=finding, operational="o",
                        verdict=verdict, judgement=judgement, reasons=(), figures=figures,
                        certainty=certainty,
                        statement=Reason.text(statement) if statement else None,
                        downgrades=tuple(downgrades), studies=tuple(studies))


def _proto_claim(cid, subset=None, modifier=None) -> Claim:
    return Claim(id=cid, wording="w", source="s", finding="benefit", operational="o",
                 target={"subset": subset or {}}, modifier=modifier)


def _protocol(measure="RR", alpha=0.05, label="eczema incidence", unit="", claims=()):
    return NS(question=NS(population="Infants", intervention="Probiotics", comparator="Placebo",
                          outcome="Eczema at 2 years"),
              outcome=NS(label=label, unit=unit), model=NS(measure=measure, alpha=alpha),
              claims=tuple(claims))


def _run(protocol, comps, main: FitResult | None, claims, adverse_events=None) -> RunResult:
    main_an = Analysis("main", "all eligible comparisons", tuple(c.key for c in comps),
                       PoolResult(main) if main is not None else None)
    return RunResult(protocol=protocol, studies=(), comparisons=tuple(comps), main=main_an,
                     strata=(), regressions=(), sensitivity=(), leave_one_out=None,
                     cumulative=None, small_study={}, adverse_events=adverse_events,
                     claims=tuple(claims))


def binary_results(measure: str = "RR") -> RunResult:
    """Three trials, RR (or OR). Control arms: 30/100, 10/100 and one without counts."""
    comps = [_comparison("A2001", 30, 100, 200, {"mix": "multi"}),
             _comparison("B2002", 10, 100, 210, {"mix": "multi"}, weeks=52.0),
             _comparison("C2003", None, None, None, {"mix": "single"})]
    main = _fit(3, measure, math.log(0.5), math.log(0.25), math.log(1.0))
    subset_fit = _fit(2, measure, math.log(0.8), math.log(0.02), math.log(35.0))
    proto = _protocol(measure, claims=[_proto_claim("C1"), _proto_claim("C2", {"mix": ["multi"]}),
                                       _proto_claim("C3")])
    claims = [
        _claim("C1", "benefit", "inconclusive", _figures(main), "very low", [ROB, IMPRECISION],
               ["A2001", "B2002", "C2003"], statement="The evidence is very uncertain."),
        _claim("C2", "benefit", "inconclusive", _figures(subset_fit), "very low",
               [ROB, INCONSISTENCY, IMPRECISION], ["A2001", "B2002"]),
        _claim("C3", "effect_modification", "insufficient evidence", {}, None),
    ]
    return _run(proto, comps, main, claims)


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
    main = sof.summary_of_findings(binary_results("OR"))["rows"][0]
    # cr 0.2, OR 0.5: 0.2*0.5 / (1 - 0.2 + 0.1) = 0.1111 -> 111 per 1,000
    assert main["risk_probiotic"].startswith("111 per 1,000")
    assert main["relative_effect"].startswith("OR 0.50")


def test_continuous_row_gives_the_mean_difference_and_control_mean():
    run = binary_results()
    comps = [
        _comparison("A2001", None, 40, 80, {"mix": "multi"}, weeks=8.0, m2i=-2.0, scale="change"),
        _comparison("B2002", None, 60, 120, {"mix": "multi"}, weeks=8.0, m2i=-7.0, scale="change"),
        _comparison("C2003", None, 30, 60, {"mix": "single"}, weeks=8.0, m2i=40.0, scale="final")]
    fit = _fit(3, "MD", -5.0, -8.25, 0.004)
    c1 = replace(run.claims[0], figures=_figures(fit), certainty="low",
                 downgrades=(ROB, Downgrade("inconsistency", 1, Reason.text("x"))))
    run = _run(_protocol("MD", label="SCORAD", unit="points", claims=run.protocol.claims),
               comps, fit, [c1])
    t = sof.summary_of_findings(run)
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
    run = binary_results()
    proto = run.protocol
    run = replace(run, protocol=NS(**{**vars(proto), "model": NS(measure="RR", alpha=0.10)}),
                  claims=tuple(c for c in run.claims if c.id == "C2"))
    t = sof.summary_of_findings(run)
    assert t["ci_label"] == "90% CI"
    assert "Risk with probiotic (90% CI)" in sof.sof_markdown(t)
    main = t["rows"][0]
    assert main["certainty"] == "Not rated" and main["marks"] == []
    assert "No claim is judged on this estimate" in main["comments"]


def _with_claim_first(run, claim, proto_claim):
    """``run`` with ``claim`` judged first and its protocol entry added."""
    proto = run.protocol
    return replace(run, claims=(claim,) + run.claims,
                   protocol=NS(**{**vars(proto), "claims": proto.claims + (proto_claim,)}))


def test_effect_modification_certainty_only_as_a_last_resort():
    run = binary_results()
    c1 = run.claims[0]
    em = replace(c1, id="C0", finding="effect_modification", certainty="low", downgrades=(ROB,),
                 figures={**c1.figures, "Q_between_p": 0.3766})
    run = _with_claim_first(run, em, _proto_claim("C0", modifier="mix_type"))
    main = sof.summary_of_findings(run)["rows"][0]
    assert main["claims"] == "C0, C1"
    assert "C0 inconclusive (subgroup differences by mix type: p = 0.38); C1 inconclusive." in main["comments"]
    assert main["certainty"] == "Very low"  # C1's rating, not the modifier claim's
    assert "Certainty as rated for C1." in main["comments"]
    assert "Other claims on this estimate rated: C0 low." in main["comments"]


def test_a_mixed_results_claim_never_rates_the_effect():
    # a heterogeneity claim is rated without inconsistency (low); listed first,
    # it must not give the row its certainty, and the comment says what it rated
    run = binary_results()
    het = replace(run.claims[0], id="C0", finding="heterogeneity", verdict="supported",
                  certainty="low", downgrades=(ROB,),
                  judgement=Judgement.from_dict({
                      "certainty": "low",
                      "certainty_basis": "GRADE certainty (without inconsistency)"}))
    run = _with_claim_first(run, het, _proto_claim("C0"))
    main = sof.summary_of_findings(run)["rows"][0]
    assert main["claims"] == "C0, C1"
    assert main["certainty"] == "Very low" and "Certainty as rated for C1." in main["comments"]
    assert ("Other claims on this estimate rated: C0 low, GRADE certainty without "
            "inconsistency.") in main["comments"]
    # alone on its estimate, it still does not rate the effect
    run = replace(run, claims=(het,))
    assert sof.summary_of_findings(run)["rows"][0]["certainty"] == "Not rated"


def test_a_harms_claim_gets_its_own_adverse_event_row_in_a_mixed_table():
    run = binary_results()
    main_fit = _fit(3, "MD", -5.0, -8.0, -2.0)
    c1 = replace(run.claims[0], figures=_figures(main_fit))
    c2 = replace(run.claims[1], finding="harms",
                 figures=_figures(_fit(2, "RR", math.log(1.2), math.log(0.9), math.log(1.6))))
    ae_fit = _fit(2, "RR", math.log(1.2), math.log(0.9), math.log(1.6),
                  studies=[StudyRow(s, 0.0, 1.0, 1.0, -2.0, 2.0, 50.0) for s in ("X", "Y")])
    ae = Analysis("adverse events", "any adverse event, RR", ("X", "Y"), PoolResult(ae_fit))
    run = _run(_protocol("MD", claims=run.protocol.claims), run.comparisons, main_fit,
               [c1, c2, run.claims[2]], adverse_events=ae)
    t = sof.summary_of_findings(run)
    assert t["binary"] and t["continuous"]
    assert (t["control_head"], t["probiotic_head"]) == ("With control", "With probiotic (95% CI)")
    main, ae_row = t["rows"]
    assert main["relative"] == "not applicable" and main["abs_probiotic"].startswith("MD 5.00 lower")
    assert ae_row["outcome"] == "Adverse events (any)" and ae_row["relative"] == "RR 1.20 (0.90 to 1.60)"
    assert ae_row["participants"] == "not available (2 RCTs)"
    assert ae_row["abs_control"] == "not available (no per-arm counts)"
    md = sof.sof_markdown(t)
    assert "| Outcome | With control | With probiotic (95% CI) | Relative effect (95% CI) |" in md
    assert "| not applicable |" in md


def test_a_multi_arm_trial_counts_once():
    run = binary_results()
    a = run.comparisons[0]
    # the shared control arm split between the two comparisons
    split = dict(extraction=replace(a.extraction, ci=15, n2i=50), n_total=150)
    a1 = replace(a, key="A2001 (low dose)", **split)
    a2 = replace(a, key="A2001 (high dose)", **split)
    main_fit = run.main.result.overall
    run = _run(run.protocol, [a1, a2, run.comparisons[2]], main_fit, run.claims[:1])
    (row,) = sof.summary_of_findings(run)["rows"]
    assert row["risk_control"] == "300 per 1,000 (from 1 of 2 trials)"
    assert row["participants"] == "at least 300 (2 RCTs)"


def test_the_table_reads_a_nan_as_missing():
    # a claim fitted on nothing finite (NaN, null in results.json) gives no row of its own
    run = binary_results()
    nan_claim = replace(run.claims[1], figures={**run.claims[1].figures, "estimate": NAN})
    run = replace(run, claims=(run.claims[0], nan_claim))
    assert [r["claims"] for r in sof.summary_of_findings(run)["rows"]] == ["C1"]
