"""Every sentence about a claim, written by render/claims_text.py from the
records analysis/claims.py keeps (issue 16: claims judge, render formats).

Hand-built records with the exact text expected, the verdict lines written
from the judged values, and the round trip results.json -> ClaimVerdict ->
results.json on the shared bundled run.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace as NS

import pytest

from metaanalysis.analysis import claims
from metaanalysis.analysis.claims import (ClaimVerdict, Downgrade, Iceman, IcemanItem, Judgement,
                                          Reason)
from metaanalysis.render import claims_text

MD = claims.Scale("MD", False, -1.0, "points", 0.05)
RR = claims.Scale("RR", True, -1.0, "", 0.05)
R = Reason.of


def _fit(**kw):
    base = dict(k=6, estimate=-4.25, ci_lb=-8.0, ci_ub=-0.5, pi_lb=-12.0, pi_ub=3.0, I2=41.6,
                method="REML", test="adhoc")
    return R("fit", **{**base, **kw})


def _verdict(criterion="met", used="low", basis="basis_grade", verdict=None, **kw):
    """A verdict whose rule used certainty ``used`` (``certainty=`` is its GRADE level)."""
    j = Judgement(claims.RULE_ID, criterion, R("ci_claimed_direction"), used, R(basis))
    return ClaimVerdict("C1", "w", "s", "benefit", "op",
                        verdict or claims.apply_rule(criterion, used), j,
                        (_fit(),), {}, scale=MD, **kw)


# ----------------------------------------------------------------------------
# one record, one sentence


def test_a_fit_on_the_mean_difference_scale():
    assert claims_text.reason_text(_fit(), MD) == (
        "k = 6, MD -4.2 points, 95% CI [-8.0, -0.5] (modified Knapp-Hartung), "
        "95% PI [-12.0, 3.0] crosses no effect (0), I² = 42%")


def test_a_fit_on_a_ratio_scale_is_shown_exponentiated():
    r = _fit(k=1, estimate=math.log(0.5), ci_lb=math.log(0.25), ci_ub=math.log(1.0),
             pi_lb=None, pi_ub=None, I2=None, test="z")
    assert claims_text.reason_text(r, RR) == "k = 1, RR 0.50, 95% CI [0.25, 1.00] (Wald z)"


def test_alpha_names_the_intervals():
    s90 = claims.Scale("MD", False, -1.0, "points", 0.10)
    assert "90% CI" in claims_text.reason_text(_fit(), s90)
    assert claims_text.reason_text(R("ci_includes_null"), s90) == "the 90% CI includes no effect (0)"


def test_imprecision_names_the_side_and_the_people():
    people = R("participants", n=160, unknown=2)
    r = R("imprecise_null", side="benefit", edge=math.log(0.8), people=people)
    assert claims_text.reason_text(r, RR) == (
        "the CI includes no effect and an important benefit (RR 0.80); "
        "at least 160 participants; 2 trials with n not reported")
    r = R("imprecise_null", side=None, edge=None, people=R("participants", n=54, unknown=0))
    assert claims_text.reason_text(r, MD) == "the CI includes no effect; 54 participants"


def test_no_effect_band_on_both_scales():
    assert claims_text.reason_text(R("within_important", important=8.7, threshold=8.7), MD) == (
        "the whole 95% CI lies within ±8.7 points: no important difference")
    assert claims_text.reason_text(R("within_important", important=math.log(1.25), threshold=None),
                                   RR) == "the whole 95% CI lies within RR 0.80 to 1.25: no important difference"


def test_availability_gives_counts_and_directions():
    r = R("unavailable", missing=10, eligible=16, participants=900, at_least=True,
          favour_probiotic=1, favour_control=2, no_direction=7)
    assert claims_text.reason_text(r, MD) == (
        "10 of 16 eligible trials (at least 900 participants) have no usable data for this "
        "outcome (1 favour probiotic, 2 favour control, 7 with no direction recorded or no "
        "difference reported)")
    r = R("unavailable", missing=1, eligible=8, participants=None, at_least=False,
          favour_probiotic=0, favour_control=0, no_direction=0)
    assert claims_text.reason_text(r, MD).endswith("; the direction of their results is not recorded")


def test_strata_not_compared_each_say_why():
    r = R("not_compared", minimum=2, strata=[("unclassified", 1, "unclassified"),
                                             ("moderate-severe", 2, "no_partner"),
                                             ("mild", 1, "below_minimum"), ("other", 3, "not_named")])
    assert claims_text.reason_text(r, MD) == (
        "strata shown but not compared: unclassified (k = 1: unclassified, never compared), "
        "moderate-severe (k = 2: no other stratum with enough trials to compare it with), "
        "mild (k = 1: below the protocol minimum of 2 trials), other (k = 3: not named by the claim)")


def test_iceman_cut_points_with_and_without_a_slope():
    src = R("severity_cut_points", source="Kunz 1997")
    assert claims_text.reason_text(R("iceman_cut_points", source=src, slope_p=0.0004), MD) == (
        "severity bands from Kunz 1997; other sources use other cut points; the meta-regression "
        "on the continuous baseline score avoids cut points (slope p < 0.001)")
    assert claims_text.reason_text(R("iceman_cut_points", source=src, slope_p=None), MD).endswith(
        "; the continuous meta-regression was not estimable")


@pytest.mark.parametrize("level, trivial, direction, text", [
    ("moderate", False, "reduce", "Probiotics probably reduce SCORAD (moderate certainty)."),
    ("low", False, "increase", "Probiotics may increase SCORAD (low certainty)."),
    ("high", True, "reduce", "Probiotics result in little to no difference in SCORAD (high certainty)."),
    ("very low", False, "reduce",
     "The evidence is very uncertain about the effect of probiotics on SCORAD (very low certainty)."),
])
def test_certainty_statements(level, trivial, direction, text):
    r = R("statement", level=level, label="SCORAD", trivial=trivial, direction=direction)
    assert claims_text.reason_text(r, MD) == text


def test_a_stratum_prefix_and_a_read_back_text():
    r = R("in_stratum", stratum="mild", reason=R("inconsistency", I2=62.0, pi_cross=True))
    assert claims_text.reason_text(r, MD) == "mild: I² = 62%; the prediction interval crosses no effect"
    assert claims_text.reason_text(Reason.text("as written"), None) == "as written"
    assert claims_text.reason_text("a label", None) == "a label"


def test_every_kind_claims_records_has_a_sentence():
    """Every ``Reason.of("kind", ...)`` written in analysis/claims.py (read
    with ast) has its writer here, and every indirectness kind its words."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(claims))
    kinds = {n.args[0].value for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "of"
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "Reason"
             and n.args and isinstance(n.args[0], ast.Constant)}
    assert len(kinds) > 60
    assert kinds <= set(claims_text._TEXT), kinds - set(claims_text._TEXT)
    assert set(claims_text.INDIRECT_WORDS) == set(claims.INDIRECT_KINDS)


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="no text for a reason of kind 'nonsense'"):
        claims_text.reason_text(R("nonsense"), MD)


# ----------------------------------------------------------------------------
# the verdict's own lines, from the judged values only


def test_summary_and_rule_lines_follow_the_judgement():
    v = _verdict("met", "low")
    assert claims_text.verdict_summary(v) == (
        "Supported: the 95% CI excludes no effect (0) in the claimed direction; GRADE certainty: low.")
    assert claims_text.rule_lines(v) == (
        "statistical criterion: met (the 95% CI excludes no effect (0) in the claimed direction)",
        "verdict-rule-1: criterion met, certainty for the rule low (GRADE certainty) -> supported")
    demoted = _verdict("met", "very low")
    assert demoted.verdict == "inconclusive"
    assert claims_text.verdict_summary(demoted).startswith(
        "The statistical criterion is met (the 95% CI excludes no effect (0) in the claimed "
        "direction), but the GRADE certainty is very low")
    lines = claims_text.reason_lines(demoted)
    assert lines[0].startswith("k = 6, MD -4.2 points") and lines[-1].endswith("-> inconclusive")


def test_awaiting_lines_close_the_reasons():
    v = _verdict("not evaluable", None, basis="basis_no_comparison",
                 awaiting=(R("stratum_empty", stratum="mild"),))
    assert claims_text.reason_lines(v)[-2:] == (
        "verdict-rule-1: criterion not evaluable -> insufficient evidence",
        "mild: no trial in the evidence base, analysed or not, falls in this stratum")


def test_out_of_scope_reads_its_reason():
    v = ClaimVerdict("C4", "w", "s", "out of scope", "", "out of scope", None,
                     (Reason.text("not about eczema"),), {}, in_scope=False,
                     scope_note="not about eczema")
    assert claims_text.verdict_summary(v) == "not about eczema"
    assert claims_text.reason_lines(v) == ("not about eczema",)
    assert claims_text.verdict_dict(v)["judgement"] is None


@pytest.mark.parametrize("basis, certainty, tail", [
    ("basis_grade", "low", " (low: GRADE)"),
    ("basis_grade_without_inconsistency", "low", " (low: GRADE without inconsistency)"),
    ("basis_iceman", "moderate", " (moderate: ICEMAN credibility)"),
])
def test_run_line_names_the_basis(basis, certainty, tail):
    assert claims_text.run_line(_verdict("met", certainty, basis=basis)) == (
        f"  {'C1':<18} {'SUPPORTED':<22}{tail}")


def test_run_line_of_a_claim_about_certainty():
    v = _verdict("met", None, basis="basis_not_applied", certainty="moderate")
    assert claims_text.run_line(v).endswith(" (GRADE moderate; part of the criterion)")


def test_explain_labels_a_rating_without_inconsistency():
    het = _verdict("met", "low", basis="basis_grade_without_inconsistency", certainty="low")
    assert "Certainty (GRADE without inconsistency): low." in claims_text.explain(het)
    eff = _verdict("met", "low", certainty="low")
    text = claims_text.explain(eff)
    assert "Certainty (GRADE): low." in text and "  - no downgrades" in text


def test_explain_lists_downgrades_and_iceman():
    ice = Iceman("low", (IcemanItem("number_of_trials", "definitely no", R("iceman_trials", k=4)),),
                 R("iceman_at_most_moderate"))
    v = _verdict("met", "low", certainty="low", iceman=ice,
                 downgrades=(Downgrade("inconsistency", 1, R("inconsistency", I2=55.0, pi_cross=False)),))
    text = claims_text.explain(v)
    assert "  - downgraded 1 for inconsistency: I² = 55%" in text
    assert "Credibility of the effect modification (ICEMAN-style): low" in text
    assert "  - number of trials: definitely no (4 trials in the compared strata)" in text


def test_explain_reads_a_translation_from_the_protocol():
    v = _verdict()
    proto = NS(claims=(NS(id="C1", translation="in English", language="Swedish"),), out_of_scope=())
    text = claims_text.explain(v, "p", proto)
    assert 'Claim: "in English" (the project\'s translation from Swedish)' in text
    assert 'Original: "w"' in text and text.startswith("C1: SUPPORTED  [p]")


def test_claims_table_marks_a_grade_without_inconsistency():
    v = _verdict("met", "low", basis="basis_grade_without_inconsistency", certainty="low")
    proto = NS(title="t", id="p", model=NS(measure="MD", method="REML", test="adhoc"),
               claims=(), out_of_scope=())
    md = claims_text.claims_markdown(proto, [v])
    assert "| low (without inconsistency) |" in md
    assert claims_text.RULE_TEXT in md and "## C1" in md


# ----------------------------------------------------------------------------
# results.json keeps the texts; reading it back gives the same texts


def test_results_json_round_trip(bundled_run):
    outputs, out = bundled_run
    n = 0
    for o in outputs:
        data = json.loads((out / o.protocol_id / "results.json").read_text(encoding="utf-8"))
        assert data["verdict_rule"]["text"] == claims_text.RULE_TEXT
        for c in data["claims"]:
            v = ClaimVerdict.from_dict(c)
            assert json.loads(json.dumps(claims_text.verdict_dict(v))) == c, c["id"]
            n += 1
    assert n >= 10
