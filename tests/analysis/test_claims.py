"""The verdict rule and GRADE, one hand-built case per branch and domain, plus
known-truth scenarios through `meta run` and a consistency check of every
claim of a bundled run (on a tmp copy of studies/ and protocols/).

``claims`` records reasons as data (:class:`claims.Reason`); the checks
below read the records and, where the sentence is the point, the text
render/claims_text.py writes from them (its own tests: tests/render/test_claims_text.py).

The synthetic trials are FICTIONAL (see tests/analysis/test_pipeline.py, whose helpers
are reused).
"""

from __future__ import annotations

import json
import math
import shutil
from types import SimpleNamespace as NS

import numpy as np
import pytest

from metaanalysis.stats import pool
from metaanalysis.analysis import claims
from metaanalysis.analysis.claims import apply_rule, grade
from metaanalysis.analysis.pipeline import between_strata_test
from metaanalysis.render import claims_text
from metaanalysis.runner import run_all
from test_pipeline import (MILD, MODSEV, ONE_STRATUM_ONLY, PROTOCOL, ROOT, TRUE_INTERACTION,
                           _setup)

# ----------------------------------------------------------------------------
# the rule itself


@pytest.mark.parametrize("criterion, certainty, verdict", [
    ("met", "high", "supported"),
    ("met", "moderate", "supported"),
    ("met", "low", "supported"),
    ("met", "very low", "inconclusive"),
    ("opposite", "low", "contradicted"),
    ("opposite", "very low", "inconclusive"),
    ("neither", "high", "inconclusive"),
    ("neither", None, "inconclusive"),
    ("not evaluable", "high", "insufficient evidence"),
    ("not evaluable", None, "insufficient evidence"),
    ("met", None, "supported"),          # certainty not applied (claims about certainty)
])
def test_rule_branches(criterion, certainty, verdict):
    assert apply_rule(criterion, certainty) == verdict


def test_rule_rejects_unknown_criterion():
    with pytest.raises(ValueError):
        apply_rule("maybe", "low")


# ----------------------------------------------------------------------------
# GRADE, one domain at a time, on real fits of synthetic effects

PROTO_MD = NS(model=NS(measure="MD", alpha=0.05), outcome=NS(lower_is_better=True, unit="points",
                                                             label="SCORAD"), mcid=8.7)
PROTO_RR = NS(model=NS(measure="RR", alpha=0.05), outcome=NS(lower_is_better=True, unit="",
                                                             label="eczema"), mcid=None)


def _comp(key, *, rob="low", comparator="placebo", flags=(), n=240.0, ci=None, n2=None):
    return NS(key=key, flags=tuple(flags), rob_overall=rob, comparator=comparator, n_total=n,
              extraction=NS(ci=ci, n2i=n2))


def _fit(yi, vi, test="adhoc", measure="MD"):
    keys = [f"T{i}" for i in range(len(yi))]
    return pool.pool_effects(np.array(yi, float), np.array(vi, float), keys, measure=measure,
                            method="REML", test=test).overall, keys


def _grade(yi, vi, comps=None, proto=PROTO_MD, **kw):
    fit, keys = _fit(yi, vi, measure=proto.model.measure)
    comps = comps or [_comp(k) for k in keys]
    scale = claims.Scale.of(proto)
    thr = kw.pop("threshold", proto.mcid)
    return grade(fit, comps, proto, scale, kw.pop("small", {}), thr, **kw)


def _why(d, proto=PROTO_MD):
    """A downgrade's reason as render writes it."""
    return claims_text.downgrade_reason(d, claims.Scale.of(proto))


def _txt(r, proto=PROTO_MD):
    """A note or statement record as render writes it."""
    return claims_text.reason_text(r, claims.Scale.of(proto))


# six consistent, precise trials with a large benefit: nothing to downgrade
GOOD = ([-12.0, -11.0, -13.0, -12.5, -11.5, -12.0], [4.0] * 6)


def test_grade_high_when_nothing_is_wrong():
    level, downs = _grade(*GOOD)
    assert (level, downs) == ("high", ())


@pytest.mark.parametrize("rob, comparator, reason", [
    (None, "placebo", "not assessed"),
    ("some_concerns", "placebo", "some concerns"),
    ("low", "usual_care", "without placebo"),
])
def test_grade_risk_of_bias(rob, comparator, reason):
    comps = [_comp(f"T{i}", rob=rob, comparator=comparator) for i in range(6)]
    level, downs = _grade(*GOOD, comps=comps)
    assert level == "moderate"
    assert [d.domain for d in downs] == ["risk of bias"] and reason in _why(downs[0])


def test_mostly_high_risk_of_bias_is_two_levels():
    all_high = [_comp(f"T{i}", rob="high") for i in range(6)]
    assert _grade(*GOOD, comps=all_high)[1][0].levels == 2


def test_high_risk_majority_is_one_level():
    comps = [_comp(f"T{i}", rob="high" if i < 4 else "low") for i in range(6)]
    level, downs = _grade(*GOOD, comps=comps)
    assert level == "moderate" and "high risk of bias" in _why(downs[0])
    assert [r.kind for r in downs[0].reason["parts"]] == ["rob_high"]


def test_unassessed_minority_is_noted_not_downgraded():
    comps = [_comp(f"T{i}", rob=None if i == 0 else "low") for i in range(6)]
    notes = []
    level, downs = _grade(*GOOD, comps=comps, notes=notes)
    assert level == "high" and any("not assessed" in _txt(n) for n in notes)
    assert [n.kind for n in notes] == ["rob_not_downgraded", "ois_reached"]


def test_indirectness_only_for_real_indirectness():
    heat = [_comp(f"T{i}", flags=("heat_killed",)) for i in range(6)]
    level, downs = _grade(*GOOD, comps=heat)
    assert [d.domain for d in downs] == ["indirectness"] and level == "moderate"
    assert downs[0].reason["kinds"] == ("heat_killed",)  # only the kind present
    assert _why(downs[0]) == "100% of the weight from heat-killed products"
    # synbiotic vs prebiotic isolates the probiotic: no indirectness
    pre = [_comp(f"T{i}", flags=("active_comparator",), comparator="prebiotic") for i in range(6)]
    assert _grade(*GOOD, comps=pre) == ("high", ())
    drug = [_comp(f"T{i}", comparator="active") for i in range(6)]
    assert [d.domain for d in _grade(*GOOD, comps=drug)[1]] == ["indirectness"]


def test_inconsistency_one_and_two_levels():
    level, downs = _grade([-20.0, -4.0, -14.0, -2.0, -18.0, -9.0], [4.0] * 6)
    assert [d.domain for d in downs] == ["inconsistency"] and downs[0].levels == 1
    # I2 >= 75% and trials that exclude no effect on both sides
    level, downs = _grade([-20.0, 12.0, -18.0, 14.0, -16.0, 10.0], [4.0] * 6)
    inc = [d for d in downs if d.domain == "inconsistency"]
    assert inc and inc[0].levels == 2


def test_imprecision_levels_and_participant_count():
    # CI includes no effect (but not an important harm): one level
    level, downs = _grade([-6.0, -1.0, -4.0, 1.0, -3.0, -2.0], [9.0] * 6)
    imp = [d for d in downs if d.domain == "imprecision"]
    assert imp and imp[0].levels == 1 and "includes no effect" in _why(imp[0])
    # CI spans both an important benefit and an important harm: two levels
    level, downs = _grade([-14.0, 12.0], [30.0, 30.0])
    imp = [d for d in downs if d.domain == "imprecision"]
    assert imp and imp[0].levels == 2
    # precise but below the optimal information size, with n unknown for two trials
    comps = [_comp(f"T{i}", n=40.0 if i < 4 else None) for i in range(6)]
    level, downs = _grade(*GOOD, comps=comps)
    imp = [d for d in downs if d.domain == "imprecision"]
    assert imp and imp[0].levels == 1
    assert imp[0].reason["people"]["n"] == 160 and imp[0].reason["people"]["unknown"] == 2
    assert "at least 160 participants; 2 trials with n not reported" in _why(imp[0])


def test_imprecision_against_the_mcid_for_no_difference_claims():
    # CI [-15, -5]-ish: excludes 0 but spans the 8.7-point MCID
    yi, vi = [-12.0, -8.0, -10.0, -9.0, -11.0, -10.0], [6.0] * 6
    assert not [d for d in _grade(yi, vi)[1] if d.domain == "imprecision"]
    downs = _grade(yi, vi, against="mcid")[1]
    assert [d.domain for d in downs] == ["imprecision"] and "trivial and important" in _why(downs[0])


def test_ratio_ci_from_002_to_35_is_two_levels():
    comps = [_comp("T0", n=200.0, ci=20, n2=100), _comp("T1", n=200.0, ci=20, n2=100)]
    level, downs = _grade([math.log(0.3), math.log(2.5)], [0.05, 0.05], comps=comps,
                          proto=PROTO_RR)
    imp = [d for d in downs if d.domain == "imprecision"]
    assert imp and imp[0].levels == 2


def test_publication_and_availability_bias():
    av = {"trials_eligible": 16, "trials_missing": 10, "participants_missing": 900,
          "missing_favour_probiotic": 1, "missing_favour_control": 2, "missing_no_direction": 7}
    level, downs = _grade(*GOOD, availability=av)
    assert [d.domain for d in downs] == ["publication bias"] and level == "moderate"
    assert "10 of 16 eligible trials" in _why(downs[0]) and "7 with no direction recorded or no difference reported" in _why(downs[0])
    few = {**av, "trials_missing": 1, "participants_missing": 20}
    assert _grade(*GOOD, availability=few) == ("high", ())
    egger = {"assessed": True, "egger": NS(pval=0.03)}
    assert [d.domain for d in _grade(*GOOD, small=egger)[1]] == ["publication bias"]


@pytest.mark.parametrize("n_down, level", [(0, "high"), (1, "moderate"), (2, "low"), (3, "very low"),
                                           (4, "very low")])
def test_grade_levels_from_downgrades(n_down, level):
    comps = [_comp(f"T{i}", rob=None if n_down >= 1 else "low",
                   flags=("heat_killed",) if n_down >= 2 else (),
                   n=40.0 if n_down >= 3 else 240.0) for i in range(6)]
    av = {"trials_eligible": 12, "trials_missing": 6 if n_down >= 4 else 0}
    assert _grade(*GOOD, comps=comps, availability=av)[0] == level


def test_certainty_statements_are_direction_aware():
    fit, _ = _fit(*GOOD)
    S = claims.Scale.of(PROTO_MD)
    st = lambda *a: _txt(claims.certainty_statement(*a))  # noqa: E731
    assert claims.certainty_statement("moderate", fit, S, "SCORAD", 8.7)["direction"] == "reduce"
    assert st("moderate", fit, S, "SCORAD", 8.7).startswith("Probiotics probably reduce SCORAD")
    assert st("low", fit, S, "SCORAD", 8.7).startswith("Probiotics may reduce")
    assert "very uncertain" in st("very low", fit, S, "SCORAD", 8.7)
    small, _ = _fit([1.0, 2.0, 1.5], [2.0] * 3)
    assert claims.certainty_statement("high", small, S, "SCORAD", 8.7)["trivial"]
    assert "little to no difference" in st("high", small, S, "SCORAD", 8.7)
    assert "increase" in st("low", _fit([12.0, 11.0, 13.0], [4.0] * 3)[0], S, "SCORAD", None)
    assert claims.certainty_statement(None, fit, S, "SCORAD") is None


# ----------------------------------------------------------------------------
# small-k honesty


def test_adhoc_interval_is_never_narrower_than_wald():
    # two trials with equal effects: knha's scale factor is 0 ("[0.0, 0.0] excludes 0")
    kn, _ = _fit([-5.0, -5.0], [4.0, 4.0], test="knha")
    ad, _ = _fit([-5.0, -5.0], [4.0, 4.0], test="adhoc")
    wz, _ = _fit([-5.0, -5.0], [4.0, 4.0], test="z")
    assert kn.ci_ub - kn.ci_lb == pytest.approx(0.0, abs=1e-12)
    assert ad.ci_ub - ad.ci_lb >= wz.ci_ub - wz.ci_lb
    assert ad.ci_lb < 0 < ad.ci_ub


def test_two_plus_two_subgroup_test_uses_the_shown_intervals():
    yi = np.array([-10.0, -10.1, -2.0, -2.1])
    vi = np.array([4.0] * 4)
    res = pool.pool_effects(yi, vi, ["a", "b", "c", "d"], measure="MD", method="REML",
                           test="knha", by="g", groups=["x", "x", "y", "y"])
    assert res.Q_between_p < 1e-6          # shrunken HKSJ SEs in a chi-square test
    adhoc = pool.pool_effects(yi, vi, ["a", "b", "c", "d"], measure="MD", method="REML",
                             test="adhoc", by="g", groups=["x", "x", "y", "y"])
    bt = between_strata_test(adhoc.subgroups, ["x", "y"], 0.05)
    assert bt["p"] > 0.05                   # t(1) intervals overlap widely
    assert bt["levels"] == ("x", "y") and bt["excluded"] == {}


def test_strata_below_minimum_never_enter_the_test():
    yi = np.array([-10.0, -9.0, -8.0, 5.0])
    vi = np.array([4.0] * 4)
    res = pool.pool_effects(yi, vi, list("abcd"), measure="MD", method="REML", test="adhoc",
                           by="g", groups=["x", "x", "x", "u"])
    assert between_strata_test(res.subgroups, ["x"], 0.05) is None


def test_iceman_not_applicable_when_no_comparison():
    why = claims.Reason.of("iceman_cannot", why=claims.Reason.of("no_subgroup_test"))
    ice = claims.iceman(None, "severity", None, 0, 3, applicable=False, why_not=why)
    assert ice.rating == "not applicable" and ice.note == why
    assert {i.response for i in ice.items} == {"not applicable"}


def test_iceman_rating_steps():
    assert claims.iceman(None, "s", 0.001, 12, 3).rating == "moderate"
    assert claims.iceman(None, "s", 0.001, 4, 3).rating == "low"
    assert claims.iceman(None, "s", 0.03, 4, 3).rating == "very low"
    assert claims.iceman(None, "s", 0.30, 40, 3).rating == "very low"
    ice = claims.iceman(None, "s", 0.03, 4, 3)
    assert ice.item("chance_unlikely").response == "probably no"
    assert ice.item("chance_unlikely").note == claims.Reason.of("iceman_p", p=0.03)


# ----------------------------------------------------------------------------
# every claim of a run agrees with the rule and with its own reasons


def check_claim(c):
    """The verdict is the rule applied to the recorded judged values, and the
    lines that state a criterion or a demotion agree with it."""
    if c["verdict"] == "out of scope":
        return
    j = c["judgement"]
    assert j["rule"] == claims.RULE_ID
    assert c["verdict"] == apply_rule(j["criterion"], j["certainty"]), c["id"]
    assert c["summary"] == claims_text.verdict_summary(claims.ClaimVerdict.from_dict(c))
    text = " ".join([c["summary"], *c["reasons"]])
    assert f"criterion {j['criterion']}" in text and f"-> {c['verdict']}" in text
    assert "alone would say" not in text
    if c["verdict"] == "inconclusive" and j["criterion"] in ("met", "opposite"):
        assert j["certainty"] == "very low" and "very low" in c["summary"]
    if j["criterion"] == "not evaluable":
        ice = c.get("iceman")
        assert ice is None or {i["response"] for i in ice["items"].values()} == {"not applicable"}
    f = c["figures"]
    if c["finding"] == "no_effect" and j["criterion"] == "opposite":
        thr = 8.7
        assert f["ci_ub"] <= -thr or f["ci_lb"] >= thr, "contradicted needs the whole CI beyond the MCID"
    if c["finding"] in ("benefit", "harm") and "ci_lb" in f:
        excl = f["ci_ub"] < 0 or f["ci_lb"] > 0
        assert (j["criterion"] in ("met", "opposite")) == excl, c["id"]
    if c["finding"] == "effect_modification" and j["criterion"] != "not evaluable":
        assert len(f["tested_strata"]) >= 2
        for lvl in f["tested_strata"]:
            assert f["trials_per_stratum"][lvl] >= 2


def test_bundled_run_every_claim_follows_the_rule(tmp_path):
    shutil.copytree(ROOT / "studies", tmp_path / "studies")
    shutil.copytree(ROOT / "protocols", tmp_path / "protocols")
    out = run_all([tmp_path / "protocols"], tmp_path / "studies", tmp_path / "out")
    assert out
    for o in out:
        data = json.loads((tmp_path / "out" / o.protocol_id / "results.json").read_text())
        assert data["verdict_rule"]["id"] == claims.RULE_ID
        assert claims.RULE_ID in (tmp_path / "out" / o.protocol_id / "claims.md").read_text()
        for c in data["claims"]:
            check_claim(c)


# ----------------------------------------------------------------------------
# known-truth scenarios through `meta run`

STRAIN_PROTOCOL = PROTOCOL.replace(
    "  - {name: severity, field: severity}\n",
    "  - {name: severity, field: severity}\n  - {name: species, field: strain, level: species}\n"
) + """  - id: STRAIN
    wording: "effects are strain-specific"
    source: test
    finding: effect_modification
    modifier: species
    operational: "subgroup test across species"
"""


def _run(tmp_path, trials, protocol=PROTOCOL):
    studies, protos = _setup(tmp_path, trials)
    (protos / "synthetic.yaml").write_text(protocol, encoding="utf-8")
    out = run_all([protos], studies, tmp_path / "out")
    got = {c["id"]: c for c in out[0].claims}
    for c in got.values():
        check_claim(c)
    return got


def test_true_interaction_supported_and_consistent(tmp_path):
    v = _run(tmp_path, TRUE_INTERACTION)
    assert v["SEV"]["verdict"] == "supported"
    assert v["SEV"]["judgement"]["certainty"] == "moderate"


def test_one_stratum_significant_is_not_an_interaction(tmp_path):
    v = _run(tmp_path, ONE_STRATUM_ONLY)
    assert v["SEV"]["judgement"]["criterion"] == "neither"
    assert v["SEV"]["verdict"] == "inconclusive"


def test_too_few_trials_is_insufficient_with_iceman_not_applicable(tmp_path):
    trials = [("Mild0", 30.0, 10.0, 50, 30.0, 10.0, 50, MILD)]
    trials += [(f"Sev{i}", 25.0, 10.0, 50, 35.0, 10.0, 50, MODSEV) for i in range(3)]
    v = _run(tmp_path, trials)
    assert v["SEV"]["verdict"] == "insufficient evidence"
    assert v["SEV"]["iceman"]["rating"] == "not applicable"
    assert v["SEV"]["figures"]["Q_between_p"] is None


def test_unclassified_stratum_is_never_compared(tmp_path):
    # no mild trial; two trials whose severity set is not mapped -> "unclassified"
    trials = [(f"Sev{i}", 25.0, 10.0, 50, 35.0, 10.0, 50, MODSEV) for i in range(3)]
    trials += [(f"Unc{i}", 30.0, 10.0, 50, 30.0, 10.0, 50, ["mild", "moderate"]) for i in range(2)]
    v = _run(tmp_path, trials)
    sev = v["SEV"]
    assert sev["figures"]["trials_per_stratum"] == {"moderate-severe": 3, "unclassified": 2}
    assert sev["verdict"] == "insufficient evidence" and sev["figures"]["Q_between_p"] is None
    assert not any("interaction p" in r for r in sev["reasons"])


def test_harm_is_contradicted_benefit(tmp_path):
    trials = [(f"T{i}", 40.0 + d, 10.0, 120, 30.0, 10.0, 120, MODSEV)
              for i, d in enumerate([-1, 1, 0, 0.5, -0.5, 0])]
    v = _run(tmp_path, trials)
    assert v["HARM"]["verdict"] == "supported"
    assert v["BEN"]["verdict"] == "contradicted"
    assert "increase" in v["BEN"]["certainty_statement"]


def _strain_trials(effect_lgg, effect_other):
    out = []
    for i, d in enumerate([-1, 1, 0, -0.5, 0.5, 0]):
        out.append((f"Lgg{i}", 30.0 + effect_lgg + d, 10.0, 100, 30.0, 10.0, 100, MODSEV,
                    "children", "L_rhamnosus"))
        out.append((f"Sal{i}", 30.0 + effect_other + d, 10.0, 100, 30.0, 10.0, 100, MODSEV,
                    "children", "L_salivarius"))
    return out


def test_strain_effect_is_supported(tmp_path):
    v = _run(tmp_path, _strain_trials(0.0, -12.0), STRAIN_PROTOCOL)
    assert v["STRAIN"]["judgement"]["criterion"] == "met"
    assert v["STRAIN"]["verdict"] == "supported"


def test_strain_null_is_inconclusive(tmp_path):
    v = _run(tmp_path, _strain_trials(-6.0, -6.0), STRAIN_PROTOCOL)
    assert v["STRAIN"]["judgement"]["criterion"] == "neither"
    assert v["STRAIN"]["verdict"] == "inconclusive"


def test_egger_only_for_the_set_it_was_run_on():
    # the main analysis's Egger (k = 23) is not evidence about a 6-trial subset
    egger = {"assessed": True, "k": 23, "egger": NS(pval=0.03)}
    notes = []
    level, downs = _grade(*GOOD, small=egger, notes=notes)
    assert (level, downs) == ("high", ())
    assert any("not tested on this set of k = 6" in _txt(n) for n in notes)
    # the same test on its own set downgrades
    own = {**egger, "k": 6}
    assert [d.domain for d in _grade(*GOOD, small=own)[1]] == ["publication bias"]


def test_imprecision_names_the_measure_and_the_side_reached():
    # responders (OR, higher is better): a CI from about 0.9 to 2 reaches an
    # important benefit (OR 1.25) but not an important harm (OR 0.80)
    proto_or = NS(model=NS(measure="OR", alpha=0.05),
                  outcome=NS(lower_is_better=False, unit="", label="responders"), mcid=None)
    comps = [_comp(f"T{i}", n=200.0, ci=40, n2=100) for i in range(4)]
    level, downs = _grade([math.log(1.3), math.log(1.4), math.log(1.2), math.log(1.5)], [0.09] * 4,
                          comps=comps, proto=proto_or)
    imp = [d for d in downs if d.domain == "imprecision"]
    assert imp and imp[0].levels == 1
    assert imp[0].reason["side"] == "benefit"
    assert "an important benefit (OR 1.25)" in _why(imp[0], proto_or) and "RR" not in _why(imp[0], proto_or)
    # eczema (RR, lower is better): the important benefit is RR 0.80
    comps = [_comp(f"T{i}", n=200.0, ci=40, n2=100) for i in range(4)]
    level, downs = _grade([math.log(0.8), math.log(0.7), math.log(0.85), math.log(0.75)], [0.09] * 4,
                          comps=comps, proto=PROTO_RR)
    imp = [d for d in downs if d.domain == "imprecision"]
    assert imp and "an important benefit (RR 0.80)" in _why(imp[0], PROTO_RR)


def test_review_table_rows_with_rob2_are_not_an_integrity_concern():
    # Cochrane data-table rows: secondary source, RoB 2 low from the same review
    table = [_comp(f"T{i}", rob="low", flags=("secondary_source",)) for i in range(6)]
    notes = []
    assert _grade(*GOOD, comps=table, notes=notes) == ("high", ())
    assert not any("secondary sources" in _txt(n) for n in notes)
    # a secondary source without any risk-of-bias assessment, or a news report, still counts
    bare = [_comp(f"T{i}", rob=None, flags=("secondary_source",)) for i in range(6)]
    assert "secondary sources" in _why(_grade(*GOOD, comps=bare)[1][0])
    news = [_comp(f"T{i}", rob="low", flags=("secondary_source", "news_report")) for i in range(6)]
    downs = _grade(*GOOD, comps=news)[1]
    assert [d.domain for d in downs] == ["risk of bias"] and "news reports" in _why(downs[0])


def test_mixed_results_statement_is_about_what_was_rated():
    # I2 high: full GRADE loses a level for inconsistency that the claim's rating skips
    yi, vi = [-20.0, -4.0, -14.0, -2.0, -18.0, -9.0], [4.0] * 6
    fit, keys = _fit(yi, vi)
    proto = NS(**{**PROTO_MD.__dict__, "min_k_per_stratum": 2})
    claim = NS(id="H", wording="mixed", source="t", finding="heterogeneity", operational="",
               threshold=None)
    inp = claims.ClaimInput(comps=tuple(_comp(k) for k in keys),
                            target=NS(overall=fit))
    v = claims._judge_heterogeneity(claim, inp, proto, claims.Scale.of(proto), {})
    assert v.certainty == "high"  # rated without inconsistency
    assert v.statement == claims.Reason.of("statement_mixed", level="high", label="SCORAD")
    assert claims.Reason.of("effect_level", level="moderate") in v.grade_notes
    stmt = claims_text.statement_text(v)
    assert "vary between trials: high" in stmt and "SCORAD" in stmt and "reduce" not in stmt
    assert ("GRADE certainty of the pooled effect itself, inconsistency rated: moderate"
            in claims_text.grade_note_lines(v))


def test_pi_crossing_with_low_i2_is_noted_not_downgraded():
    # small heterogeneity (I2 about 15-35%) around a CI that excludes 0: the
    # PI crosses 0 but GRADE would not rate down for inconsistency
    yi, vi = [-10.0, -3.0, -14.0, -6.0, -1.0, -9.0], [16.0] * 6   # I2 = 30%
    fit, _ = _fit(yi, vi)
    assert 0 < fit.I2 <= claims.I2_MAY_NOT_MATTER and fit.pi_lb < 0 < fit.pi_ub and fit.ci_ub < 0
    notes = []
    downs = _grade(yi, vi, notes=notes)[1]
    assert "inconsistency" not in [d.domain for d in downs]
    assert any(_txt(n).startswith("inconsistency not downgraded") for n in notes)


def test_not_robust_on_a_subset_never_calls_robustness_shown_unchecked():
    # a precise, consistent benefit at high certainty: robust if the sensitivity
    # analyses agree, but on a subset they were not run, so robustness is not shown
    fit, keys = _fit(*GOOD)
    proto = NS(**{**PROTO_MD.__dict__, "min_k_per_stratum": 2})
    claim = NS(id="R", wording="not robust", source="t", finding="not_robust", operational="",
               threshold=None)
    inp = claims.ClaimInput(comps=tuple(_comp(k) for k in keys), target=NS(overall=fit))
    scale = claims.Scale.of(proto)
    whole = claims._judge_effect(claim, inp, proto, scale, {}, ())
    assert whole.judgement.criterion == "opposite" and whole.judgement.detail.kind == "robust"
    sub = claims._judge_effect(claim, inp, proto, scale, {}, (), sens_skipped=True)
    assert sub.judgement.criterion == "met"
    assert claims.Reason.of("no_sensitivity_on_target", k=6) in sub.judgement.detail["fails"]
    assert "no sensitivity analysis was run on this target" in claims_text.criterion_detail(sub)


def test_each_stratum_not_compared_says_why():
    counts = {"unclassified": 1, "moderate-severe": 2, "mild": 1, "other": 3}
    got = claims._not_compared(counts, [], 2, ["mild", "moderate-severe"])
    assert got == [("unclassified", 1, "unclassified"), ("moderate-severe", 2, "no_partner"),
                   ("mild", 1, "below_minimum"), ("other", 3, "not_named")]
    assert claims._not_compared(counts, ["other", "moderate-severe"], 2, []) == [
        ("unclassified", 1, "unclassified"), ("mild", 1, "below_minimum")]


def test_claims_never_format():
    """claims.py decides and records: no render import, no number written as text."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(claims))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m and m.startswith("metaanalysis.render")]
    # the only f-strings are the two error messages (a claim id, a criterion name)
    fstrings = [n for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)]
    assert len(fstrings) == 2
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FormattedValue) and n.format_spec]


def test_verdict_objects_follow_the_rule_and_are_what_results_json_says(tmp_path):
    """On the verdict objects themselves: the rule applied to the recorded
    judgement, every record written as text, and the results.json entry is
    exactly what render writes from the object."""
    from metaanalysis.analysis.pipeline import run_protocol
    from metaanalysis.runner import load_inputs

    trials = TRUE_INTERACTION + [(f"Harm{i}", 30.0, 10.0, 40, 30.0, 10.0, 40, MILD) for i in range(2)]
    studies, protos = _setup(tmp_path, trials)
    out = run_all([protos], studies, tmp_path / "out")
    written = {c["id"]: c for c in json.loads(
        (tmp_path / "out" / out[0].protocol_id / "results.json").read_text(encoding="utf-8"))["claims"]}
    st, reg, loaded, _ = load_inputs([protos / "synthetic.yaml"], studies)
    run = run_protocol(loaded[0][1], st, reg)
    assert {v.id for v in run.claims} == set(written)
    for v in run.claims:
        assert isinstance(v, claims.ClaimVerdict) and v.scale is not None
        if v.judgement is not None:
            assert v.verdict == apply_rule(v.judgement.criterion, v.judgement.certainty), v.id
            assert all(isinstance(r, claims.Reason) for r in v.reasons + v.grade_notes)
            lines = claims_text.reason_lines(v)
            assert lines[-1].endswith(f"-> {v.verdict}") or v.awaiting
        entry = json.loads(json.dumps(claims_text.verdict_dict(v), default=float))
        assert entry == written[v.id], v.id
