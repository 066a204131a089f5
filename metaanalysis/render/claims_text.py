"""Every sentence about a claim, written from the judged records of
:mod:`metaanalysis.analysis.claims`.

``claims`` decides and records (a :class:`~metaanalysis.analysis.claims.Reason`
per statement: a kind and its numbers and labels); this module is the only
place those records become text: the reason lines, the verdict summary, the
criterion and rule lines, GRADE downgrade reasons and notes, the certainty
statement, ICEMAN notes, the ``meta run`` summary line, ``meta explain`` and
claims.md. :func:`verdict_dict` gives the entry results.json keeps (texts
included, since readers rely on them); ``ClaimVerdict.from_dict`` reads it back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from metaanalysis.analysis.claims import (RULE_ID, ClaimVerdict, Downgrade, Iceman, Reason,
                                          Scale)
from metaanalysis.render import fmt

#: The verdict rule in words (results.json's ``verdict_rule.text``, claims.md).
RULE_TEXT = (
    f"Verdict rule ({RULE_ID}, protocols/README.md): the claim's statistical criterion "
    "(CI against the claim's threshold, prediction interval, test for subgroup differences "
    "over strata with enough trials) is met, met in the opposite direction, or neither. "
    "Criterion not computable -> insufficient evidence; neither (the interval spans both "
    "answers) -> inconclusive; met -> supported and opposite -> contradicted, unless the "
    "certainty for what the claim is about (GRADE; ICEMAN credibility for effect "
    "modification) is very low, then inconclusive.")

#: GRADE informative statements (Santesso et al. 2020, J Clin Epidemiol 119:126).
VERBS = {"high": "{v}", "moderate": "probably {v}", "low": "may {v}"}
TRIVIAL = {"high": "result in little to no difference in",
           "moderate": "probably result in little to no difference in",
           "low": "may result in little to no difference in"}
#: What each kind of indirectness is called in a reason (the kinds present are named).
INDIRECT_WORDS = {"heat_killed": "heat-killed products", "non_standard_outcome": "a non-standard outcome",
                  "active": "an active-drug comparator"}
#: Why a stratum shown is not in the test for subgroup differences.
NOT_COMPARED_WORDS = {"unclassified": "unclassified, never compared",
                      "not_named": "not named by the claim",
                      "no_partner": "no other stratum with enough trials to compare it with"}

_CRIT_WORDS = {"met": "met", "opposite": "met in the opposite direction",
               "neither": "neither met nor met in the opposite direction",
               "not evaluable": "not evaluable"}

VERDICT_MARK = {"supported": "SUPPORTED", "contradicted": "CONTRADICTED",
                "inconclusive": "INCONCLUSIVE", "insufficient evidence": "INSUFFICIENT EVIDENCE",
                "out of scope": "OUT OF SCOPE"}

#: How the terminal names the basis of the certainty the verdict rule used.
_BASIS_SHORT = {
    "GRADE certainty": "GRADE",
    "GRADE certainty (without inconsistency)": "GRADE without inconsistency",
    "ICEMAN credibility of the effect modification": "ICEMAN credibility",
}


# ----------------------------------------------------------------------------
# numbers on the claim's scale


def _n(x, d=1):
    return fmt.num(x, d)


def _peq(p):
    """'p < 0.001' or 'p = 0.03'."""
    return fmt.p_phrase(p)


def _show(x, scale: Scale) -> str:
    if x is None:
        return "NA"
    return fmt.ratio(math.exp(x)) if scale.ratio else _n(x, 1)


def _unit(scale: Scale) -> str:
    return "" if scale.ratio else f" {scale.unit}"


def _threshold(important, threshold, scale: Scale, joiner: str = "or") -> str | None:
    """'OR 0.80 or 1.25' / '±8.7 points' (the protocol's measure, not always RR)."""
    if scale.ratio:
        return f"{scale.measure} {fmt.ratio(math.exp(-important))} {joiner} {fmt.ratio(math.exp(important))}"
    return f"±{threshold:g}{_unit(scale)}" if threshold is not None else None


# ----------------------------------------------------------------------------
# one sentence per kind of reason


def describe_fit(r: Reason, scale: Scale) -> str:
    """'k = 8, MD -4.2 points, 95% CI [..] (Knapp-Hartung), 95% PI [..] crosses no effect (0), I² = 40%'."""
    est = f"{scale.measure} {_show(r['estimate'], scale)}"
    if scale.unit and not scale.ratio:
        est += f" {scale.unit}"
    test, k = r["test"], r["k"]
    how = ("Wald z" if test == "z" or k < 2 else "modified Knapp-Hartung" if test == "adhoc"
           else "Knapp-Hartung")
    if r["method"] in ("FE", "MH", "PETO"):
        how = r["method"]
    s = (f"k = {k}, {est}, {fmt.ci_label(scale.alpha)} [{_show(r['ci_lb'], scale)}, "
         f"{_show(r['ci_ub'], scale)}] ({how})")
    if r["pi_lb"] is not None:
        crosses = "crosses" if r["pi_lb"] < scale.null < r["pi_ub"] else "excludes"
        s += (f", {fmt.pi_label(scale.alpha)} [{_show(r['pi_lb'], scale)}, {_show(r['pi_ub'], scale)}] "
              f"{crosses} no effect ({fmt.null_value(scale.ratio)})")
    if r["I2"] is not None:
        s += f", I² = {_n(r['I2'], 0)}%"
    return s


def _people(r, scale):
    n, unknown = r["n"], r["unknown"]
    return participants_text(n, unknown)


def participants_text(n: int, unknown: int) -> str:
    """'278 participants' or 'at least 278 participants; 3 trials with n not reported'."""
    if not unknown:
        return f"{n} participants"
    return f"at least {n} participants; {unknown} trial{'s' if unknown > 1 else ''} with n not reported"


def _parts(r, scale):
    return "; ".join(reason_text(p, scale) for p in r["parts"])


def _mcid_reach(r, scale):
    return (("the point estimate reaches" if r["reaches"] else "the point estimate is below")
            + f" the MCID of {r['mcid']:g} {scale.unit}"
            + {"beyond": "; the whole CI lies beyond it", "within": "; the CI lies within ±MCID",
               "includes": "; the CI includes it"}[r["ci"]])


def _imprecise_null(r, scale):
    why = "the CI includes no effect"
    if r["side"] is not None:
        edge = r["edge"]
        edge_txt = (f"{scale.measure} {fmt.ratio(math.exp(edge))}" if scale.ratio
                    else f"{_n(edge, 1)}{_unit(scale)}")
        why += f" and an important {r['side']} ({edge_txt})"
    return f"{why}; {reason_text(r['people'], scale)}"


def _unavailable(r, scale):
    ptxt = (f" ({'at least ' if r['at_least'] else ''}{r['participants']} participants)"
            if r["participants"] else "")
    # the count joins trials whose file records no direction with those
    # reporting no difference: say both, claim neither
    dirs = [(r["favour_probiotic"], "favour probiotic"), (r["favour_control"], "favour control"),
            (r["no_direction"], "with no direction recorded or no difference reported")]
    dtxt = ", ".join(f"{int(n)} {t}" for n, t in dirs if n)
    return (f"{r['missing']} of {r['eligible']} eligible trials{ptxt} have no usable data for this outcome"
            + (f" ({dtxt})" if dtxt else "; the direction of their results is not recorded"))


def _small_study_subset(r, scale):
    return (f"small-study effects not tested on this set of k = {r['k']} trials"
            + (f" (< {r['min_k']}: funnel plot asymmetry tests are not meaningful)" if r["below"]
               else f" (Egger's test was run on the main analysis, k = {r['main_k']})"))


def _statement(r, scale):
    level, label = r["level"], r["label"]
    if level == "very low":
        return f"The evidence is very uncertain about the effect of probiotics on {label} (very low certainty)."
    phrase = TRIVIAL[level] if r["trivial"] else VERBS[level].format(v=r["direction"])
    return f"Probiotics {phrase} {label} ({level} certainty)."


def _not_robust(r, scale):
    return "a robust benefit is not shown: " + "; ".join(reason_text(f, scale) for f in r["fails"])


def _mixed(r, scale):
    return (f"the {fmt.pi_label(scale.alpha)} crosses no effect ({fmt.null_value(scale.ratio)})"
            + (f" with I² = {_n(r['I2'], 0)}%" if r["I2_shown"] else "")
            + (" and trials point both ways" if r["both"] else ""))


def _counts(counts) -> str:
    return ", ".join(f"{l} {k}" for l, k in counts)


def _missing_text(m, scale) -> str:
    return m if isinstance(m, str) else reason_text(m, scale)


def _too_few_in_strata(r, scale):
    return (f"too few trials in the strata the claim needs "
            f"({', '.join(_missing_text(m, scale) for m in r['missing'])}; need "
            f"{r['minimum']} per stratum); trials per {r['by']} stratum: " + _counts(r["counts"]))


def _not_compared(r, scale):
    def why(w):
        if w == "below_minimum":
            return f"below the protocol minimum of {r['minimum']} trials"
        return NOT_COMPARED_WORDS[w]
    return "strata shown but not compared: " + ", ".join(
        f"{lvl} (k = {k}: {why(w)})" for lvl, k, w in r["strata"])


def _strata_differ(r, scale):
    if r["claimed_way"]:
        return (f"the test for subgroup differences gives {_peq(r['p'])} and the difference goes the "
                "claimed way")
    return f"the test for subgroup differences gives {_peq(r['p'])}"


def _iceman_cut_points(r, scale):
    slope_p = r["slope_p"]
    return reason_text(r["source"], scale) + (
        "; the meta-regression on the continuous baseline score avoids cut points"
        f" (slope {_peq(slope_p)})" if slope_p is not None else
        "; the continuous meta-regression was not estimable")


def _ci(scale):
    return fmt.ci_label(scale.alpha)


def _null(scale):
    return fmt.null_value(scale.ratio)


_TEXT: dict[str, Callable[[Reason, Scale], str]] = {
    "text": lambda r, s: r["text"],
    "fit": describe_fit,
    "parts": _parts,
    "participants": _people,
    "in_stratum": lambda r, s: f"{r['stratum']}: {reason_text(r['reason'], s)}",
    "waiting": lambda r, s: f"in the target but not analysed: {r['study']} ({r['why']})",
    "mcid_reach": _mcid_reach,
    # ---- GRADE: risk of bias
    "rob_high": lambda r, s: f"{_n(r['share'], 0)}% of the weight from trials at high risk of bias (RoB 2)",
    "rob_some": lambda r, s: f"{_n(r['share'], 0)}% with some concerns",
    "rob_unassessed": lambda r, s: ("risk of bias not assessed (no RoB 2 judgement extracted) for trials "
                                    f"carrying {_n(r['share'], 0)}% of the weight"),
    "rob_no_placebo": lambda r, s: (f"{_n(r['share'], 0)}% of the weight from comparisons with usual care "
                                    "or no treatment, without placebo (participants not blinded to a "
                                    "partly patient-reported outcome)"),
    "rob_integrity": lambda r, s: (f"{_n(r['share'], 0)}% of the weight rests on numbers from secondary "
                                   "sources, news reports, p-value back-calculations or SDs that may be SEs"),
    "rob_not_downgraded": lambda r, s: ("risk of bias not downgraded (concerns carry at most half the "
                                        "weight): " + _parts(r, s)),
    # ---- inconsistency
    "inconsistency_both_ways": lambda r, s: (f"I² = {_n(r['I2'], 0)}% and trials with CIs excluding no "
                                             "effect point in opposite directions"),
    "inconsistency": lambda r, s: (f"I² = {_n(r['I2'], 0)}%"
                                   + ("; the prediction interval crosses no effect" if r["pi_cross"] else "")),
    "inconsistency_not_downgraded": lambda r, s: (
        f"inconsistency not downgraded: the prediction interval crosses no effect "
        f"but I² = {_n(r['I2'], 0)}% (heterogeneity that may not be important, "
        "Cochrane Handbook 10.10.2)"),
    "inconsistency_not_rated": lambda r, s: ("inconsistency not rated: it is what the claim asserts "
                                             "(not held against it)"),
    "effect_level": lambda r, s: ("GRADE certainty of the pooled effect itself, inconsistency rated: "
                                  f"{r['level']}"),
    # ---- indirectness
    "indirect": lambda r, s: (f"{_n(r['share'], 0)}% of the weight from "
                              + " and ".join(INDIRECT_WORDS[k] for k in r["kinds"])),
    "indirect_not_downgraded": lambda r, s: (f"indirectness not downgraded: {_n(r['share'], 0)}% of the "
                                             "weight from "
                                             + " and ".join(INDIRECT_WORDS[k] for k in r["kinds"])),
    # ---- imprecision
    "imprecise_both": lambda r, s: ("the CI includes both an important benefit and an important harm "
                                    f"({_threshold(r['important'], r['threshold'], s)}); "
                                    + reason_text(r["people"], s)),
    "imprecise_null": _imprecise_null,
    "imprecise_trivial": lambda r, s: ("the CI includes both trivial and important effects (MCID "
                                       f"{_threshold(r['important'], r['threshold'], s)}); "
                                       + reason_text(r["people"], s)),
    "single_trial": lambda r, s: f"a single trial; {reason_text(r['people'], s)}",
    "ois_binary": lambda r, s: (f"the optimal information size of {r['ois']} for a 25% relative risk "
                                f"reduction from a control risk of {_n(100 * r['control_risk'], 0)}%"),
    "ois_continuous": lambda r, s: (f"the optimal information size of about {r['ois']} for a "
                                    "continuous outcome"),
    "below_ois": lambda r, s: f"{reason_text(r['people'], s)}, below {reason_text(r['ois'], s)}",
    "ois_reached": lambda r, s: (f"imprecision not downgraded: {reason_text(r['people'], s)}, reaching "
                                 f"{reason_text(r['ois'], s)}"),
    # ---- publication and availability bias
    "unavailable": _unavailable,
    "unavailable_not_downgraded": lambda r, s: ("availability not downgraded: "
                                                + reason_text(r["unavailable"], s)),
    "egger": lambda r, s: f"Egger's test {_peq(r['p'])} (funnel plot asymmetry)",
    "small_study_not_tested": lambda r, s: "small-study effects not tested: " + r["why"],
    "small_study_not_on_subset": _small_study_subset,
    # ---- certainty statements
    "statement": _statement,
    "statement_mixed": lambda r, s: (f"Certainty of the evidence that the results on {r['label']} vary "
                                     f"between trials: {r['level']} (GRADE without the inconsistency "
                                     "domain, which is what the claim asserts)."),
    # ---- the basis of the certainty the rule used
    "basis_grade": lambda r, s: "GRADE certainty",
    "basis_grade_without_inconsistency": lambda r, s: "GRADE certainty (without inconsistency)",
    "basis_iceman": lambda r, s: "ICEMAN credibility of the effect modification",
    "basis_weakest_stratum": lambda r, s: f"GRADE certainty of the weakest named stratum ({r['stratum']})",
    "basis_no_comparison": lambda r, s: "no comparison",
    "basis_not_applied": lambda r, s: ("certainty not applied twice: the claim is about the certainty, "
                                       "which its criterion includes"),
    # ---- criterion details: effects
    "ci_claimed_direction": lambda r, s: f"the {_ci(s)} excludes no effect ({_null(s)}) in the claimed direction",
    "ci_opposite_direction": lambda r, s: f"the {_ci(s)} excludes no effect ({_null(s)}) in the opposite direction",
    "ci_includes_null": lambda r, s: f"the {_ci(s)} includes no effect ({_null(s)})",
    "within_important": lambda r, s: (f"the whole {_ci(s)} lies within "
                                      f"{_band(r, s)}: no important difference"),
    "beyond_important": lambda r, s: (f"the whole {_ci(s)} lies beyond the important difference "
                                      f"({_band(r, s)})"),
    "excludes_null_spans_important": lambda r, s: (
        f"the {_ci(s)} excludes no effect ({_null(s)}) but spans both trivial "
        f"and important differences ({_band(r, s)})"),
    "includes_null_and_important": lambda r, s: (
        f"the {_ci(s)} includes both no effect ({_null(s)}) and an important difference ({_band(r, s)})"),
    "main_ci_includes_null": lambda r, s: f"the main analysis {_ci(s)} includes no effect ({_null(s)})",
    "sensitivity_ci_includes_null": lambda r, s: f"'{r['analysis']}' {_ci(s)} includes no effect",
    "no_sensitivity_on_target": lambda r, s: ("no sensitivity analysis was run on this target "
                                              f"({r['k']} of the protocol's trials)"),
    "grade_low": lambda r, s: f"GRADE certainty is {r['level']}",
    "not_robust": _not_robust,
    "robust": lambda r, s: ("the benefit survives every sensitivity analysis with at least "
                            "moderate GRADE certainty"),
    # ---- heterogeneity
    "heterogeneity": lambda r, s: (f"τ² = {_n(r['tau2'], 2)}, Q = {_n(r['Q'], 2)} "
                                   f"(df = {r['df']}, {_peq(r['p'])})"),
    "directions": lambda r, s: (f"{r['favour_probiotic']} trial(s) favour probiotic, "
                                f"{r['favour_control']} favour control"),
    "mixed": _mixed,
    "consistent": lambda r, s: (f"I² = {_n(r['I2'], 0)}% and the {fmt.pi_label(s.alpha)} excludes no "
                                "effect: consistent results"),
    "mixed_neither": lambda r, s: (f"I² = {_n(r['I2'], 0)}% and the {fmt.pi_label(s.alpha)} "
                                   f"{'crosses' if r['pi_cross'] else 'excludes'} no effect"),
    "too_few_for_heterogeneity": lambda r, s: (f"k = {r['k']}: heterogeneity cannot be judged with "
                                               "fewer than 3 trials"),
    # ---- effect modification and strata
    "strata": lambda r, s: "; ".join(f"{lvl}: {describe_fit(f, s)}" for lvl, f in r["strata"]),
    "subgroup_test": lambda r, s: (f"test for subgroup differences over {', '.join(r['levels'])}: "
                                   f"Q = {_n(r['Q'], 2)}, df = {r['df']}, {_peq(r['p'])} ({r['method']})"),
    "not_compared": _not_compared,
    "baseline_slope": lambda r, s: (f"meta-regression on baseline severity: slope {_n(r['beta'], 2)} per "
                                    f"point [{_n(r['ci_lb'], 2)}, {_n(r['ci_ub'], 2)}], {_peq(r['p'])} "
                                    f"(k = {r['k']})"),
    "baseline_slope_note": lambda r, s: "meta-regression on baseline severity: " + r["note"],
    "interaction_decides": lambda r, s: ("significance within single strata is not used: only the "
                                         "interaction test decides"),
    "strata_differ": _strata_differ,
    "strata_differ_opposite": lambda r, s: f"the strata differ ({_peq(r['p'])}) in the opposite direction",
    "strata_no_difference": lambda r, s: (f"the test for subgroup differences gives {_peq(r['p'])}: no "
                                          f"difference between {r['by']} strata is shown"),
    "two_strata_needed": lambda r, s: (f"at least two {r['by']} strata with {r['minimum']}+ trials "
                                       f"(have: {_counts(r['counts'])})"),
    "too_few_in_strata": _too_few_in_strata,
    "no_subgroup_test": lambda r, s: "no test for subgroup differences could be computed",
    "too_few_in": lambda r, s: (f"too few trials in {', '.join(r['missing'])} (need {r['minimum']} per "
                                "stratum)"),
    "benefit_every_stratum": lambda r, s: (f"the {_ci(s)} excludes no effect in favour of probiotics in "
                                           "every named stratum"),
    "control_in_a_stratum": lambda r, s: (f"in at least one named stratum the {_ci(s)} excludes no effect "
                                          "in favour of control"),
    "null_in_a_stratum": lambda r, s: f"in at least one named stratum the {_ci(s)} includes no effect",
    "stratum_empty": lambda r, s: (f"{r['stratum']}: no trial in the evidence base, analysed or not, "
                                   "falls in this stratum"),
    "stratum_awaiting": lambda r, s: (f"{r['stratum']}: {r['study']} is in the evidence base but not "
                                      f"analysed ({r['why']})"),
    # ---- adverse events
    "no_adverse_events": lambda r, s: (
        f"adverse events: {r['note'] or 'fewer than 2 trials report adverse events per arm'}; the data "
        "needed are adverse events (any, and serious) per arm"),
    "more_adverse_events": lambda r, s: f"more adverse events with probiotics: the {_ci(s)} of the RR excludes 1",
    "fewer_adverse_events": lambda r, s: f"fewer adverse events with probiotics: the {_ci(s)} of the RR excludes 1",
    "adverse_events_null": lambda r, s: f"the {_ci(s)} of the RR includes 1",
    # ---- not evaluable
    "no_analysis": lambda r, s: f"no analysis possible: {r['note']}",
    "too_few_in_target": lambda r, s: (f"{r['k']} trial(s) in the target ({r['target']}); at least "
                                       f"{r['minimum']} are needed"),
    # ---- ICEMAN
    "iceman_cannot": lambda r, s: ("the between-stratum comparison cannot be made"
                                   + (": " + reason_text(r["why"], s) if r.get("why") is not None else "")),
    "iceman_no_comparison": lambda r, s: "no comparison was made",
    "iceman_at_most_moderate": lambda r, s: "between-trial effect modification can be rated at most moderate",
    "iceman_between_only": lambda r, s: ("a between-trial comparison only (trials differ in many ways "
                                         "besides the modifier)"),
    "iceman_trials": lambda r, s: f"{r['k']} trials in the compared strata",
    "iceman_a_priori": lambda r, s: ("hypothesis and direction taken from the claim and pre-specified "
                                     "in the protocol"),
    "iceman_no_test": lambda r, s: "no test for interaction was possible",
    "iceman_p": lambda r, s: f"interaction {_peq(r['p'])}",
    "iceman_modifiers": lambda r, s: f"{r['n']} candidate modifiers pre-specified",
    "iceman_cut_points": _iceman_cut_points,
    "severity_cut_points": lambda r, s: (f"severity bands from {r['source']}; other sources use other "
                                         "cut points"),
}


def _band(r, scale):
    """The important-difference band of a no-effect claim: 'OR 0.80 to 1.25' / '±8.7 points'."""
    if scale.ratio:
        return _threshold(r["important"], r["threshold"], scale, "to")
    return f"±{r['threshold']:g} {scale.unit}".rstrip()


def reason_text(r: Reason | str, scale: Scale | None) -> str:
    """The sentence for one record.

    Parameters
    ----------
    r : Reason or str
        A judged record (a str passes through: a label such as a stratum name).
    scale : Scale or None
        What the record's numbers are on (the verdict's ``scale``); None only
        for records read back from results.json (kind "text").

    Returns
    -------
    str
    """
    if isinstance(r, str):
        return r
    try:
        write = _TEXT[r.kind]
    except KeyError:
        raise ValueError(f"no text for a reason of kind '{r.kind}'") from None
    return write(r, scale)


# ----------------------------------------------------------------------------
# a verdict's texts


def basis_text(v: ClaimVerdict) -> str | None:
    """The basis of the certainty the rule used ('GRADE certainty', ...)."""
    return reason_text(v.judgement.basis, v.scale) if v.judgement is not None else None


def criterion_detail(v: ClaimVerdict) -> str | None:
    """The criterion's detail ('the 95% CI includes no effect (0)')."""
    return reason_text(v.judgement.detail, v.scale) if v.judgement is not None else None


def verdict_summary(v: ClaimVerdict) -> str:
    """The verdict sentence, written only from the judged values (criterion,
    its detail, the certainty the rule used and its basis), so that it cannot
    disagree with the verdict."""
    j = v.judgement
    if j is None:
        return v.scope_note or ""
    crit, detail = j.criterion, criterion_detail(v)
    cert, basis = j.certainty, basis_text(v)
    if crit == "not evaluable":
        return f"The comparison cannot be made: {detail}."
    if crit == "neither":
        return f"Neither confirmed nor refuted: {detail}."
    if v.verdict == "inconclusive":  # met/opposite demoted by very low certainty
        return (f"The statistical criterion is {_CRIT_WORDS[crit]} ({detail}), but the {basis} is "
                "very low: the evidence is very uncertain, so the claim can be neither confirmed "
                "nor refuted.")
    tail = f"; {basis}: {cert}" if cert is not None else f"; {basis}"
    return f"{v.verdict.capitalize()}: {detail}{tail}."


def rule_lines(v: ClaimVerdict) -> tuple[str, ...]:
    """The criterion line and the rule line that close a claim's reasons (none out of scope)."""
    j = v.judgement
    if j is None:
        return ()
    crit, cert, basis = j.criterion, j.certainty, basis_text(v)
    how = (f", certainty for the rule {cert} ({basis})" if cert is not None
           else f" ({basis})" if crit in ("met", "opposite") else "")
    return (f"statistical criterion: {crit} ({criterion_detail(v)})",
            f"{j.rule}: criterion {crit}{how} -> {v.verdict}")


def reason_lines(v: ClaimVerdict) -> tuple[str, ...]:
    """Every reason line of a verdict: the reasons, the criterion and rule
    lines, then the trials awaiting data in the strata it misses."""
    return (tuple(reason_text(r, v.scale) for r in v.reasons) + rule_lines(v)
            + tuple(reason_text(r, v.scale) for r in v.awaiting))


def downgrade_reason(d: Downgrade, scale: Scale | None) -> str:
    """Why a GRADE domain was downgraded."""
    return reason_text(d.reason, scale)


def statement_text(v: ClaimVerdict) -> str | None:
    """GRADE's informative certainty statement ('Probiotics probably reduce ...')."""
    return reason_text(v.statement, v.scale) if v.statement is not None else None


def grade_note_lines(v: ClaimVerdict) -> tuple[str, ...]:
    """GRADE domains considered and not downgraded, and why."""
    return tuple(reason_text(n, v.scale) for n in v.grade_notes)


def missing_lines(v: ClaimVerdict) -> tuple[str, ...]:
    """The evidence a not-evaluable claim would need."""
    return tuple(_missing_text(m, v.scale) for m in v.missing)


def iceman_dict(ice: Iceman | None, scale: Scale | None) -> dict | None:
    """ICEMAN as results.json keeps it: rating, items {name: {response, note}}, note."""
    if ice is None:
        return None
    return {"rating": ice.rating,
            "items": {it.name: {"response": it.response, "note": reason_text(it.note, scale)}
                      for it in ice.items},
            "note": reason_text(ice.note, scale)}


def judgement_dict(v: ClaimVerdict) -> dict | None:
    """The judged values as results.json keeps them (detail and basis as text)."""
    j = v.judgement
    if j is None:
        return None
    return {"rule": j.rule, "criterion": j.criterion, "criterion_detail": criterion_detail(v),
            "certainty": j.certainty, "certainty_basis": basis_text(v)}


def verdict_dict(v: ClaimVerdict) -> dict:
    """One entry of results.json's ``claims``: the verdict with every text written.

    ``ClaimVerdict.from_dict`` reads it back (its records then hold the texts).
    """
    return {
        "id": v.id, "wording": v.wording, "source": v.source,
        "finding": v.finding, "operational": v.operational, "in_scope": v.in_scope,
        "verdict": v.verdict, "summary": verdict_summary(v), "reasons": list(reason_lines(v)),
        "judgement": judgement_dict(v),
        "figures": v.figures, "certainty": v.certainty,
        "certainty_statement": statement_text(v),
        "downgrades": [{"domain": d.domain, "levels": d.levels,
                        "reason": downgrade_reason(d, v.scale)} for d in v.downgrades],
        "grade_notes": list(grade_note_lines(v)), "iceman": iceman_dict(v.iceman, v.scale),
        "studies": list(v.studies), "missing": list(missing_lines(v)),
    }


# ----------------------------------------------------------------------------
# the terminal, meta explain and claims.md


def run_line(v: ClaimVerdict) -> str:
    """One line of ``meta run``'s summary: the verdict and the certainty the
    verdict rule used, named by its basis (GRADE, GRADE without inconsistency
    for "mixed results" claims, ICEMAN for effect modification), so the line
    never shows a rating the verdict did not depend on."""
    j = v.judgement
    if j is not None and j.certainty:
        basis = basis_text(v)
        basis = _BASIS_SHORT.get(basis, basis or "")
        tail = f" ({j.certainty}: {basis})" if basis else f" ({j.certainty})"
    elif v.certainty:
        tail = f" (GRADE {v.certainty}; part of the criterion)"
    else:
        tail = ""
    return f"  {v.id:<18} {v.verdict.upper():<22}{tail}"


def translation_of(protocol: Any, claim_id: str) -> Any:
    """The protocol entry (Claim or OutOfScope) that carries an English
    translation of ``claim_id``'s wording, if any."""
    if protocol is None:
        return None
    for entry in list(protocol.claims) + list(protocol.out_of_scope):
        if entry.id == claim_id and entry.translation:
            return entry
    return None


def _without_inconsistency(v: ClaimVerdict) -> bool:
    # a claim that results are mixed is rated without the inconsistency
    # domain: its level is not the effect's GRADE rating, so say which it is
    return "without inconsistency" in str(basis_text(v))


def explain(v: ClaimVerdict, protocol_id: str | None = None, protocol: Any = None) -> str:
    """The full reasoning for one claim.

    Parameters
    ----------
    v : ClaimVerdict
    protocol_id : str, optional
        Shown beside the verdict.
    protocol : Protocol, optional
        With it, a claim worded in another language reads in the project's
        English translation, the original beside it.

    Returns
    -------
    str
        Lines ending with a newline.
    """
    lines = [f"{v.id}: {VERDICT_MARK.get(v.verdict, v.verdict)}"
             + (f"  [{protocol_id}]" if protocol_id else ""), ""]
    tr = translation_of(protocol, v.id)
    if tr:
        lines.append(f"Claim: \"{tr.translation}\" (the project's translation from "
                     f"{tr.language or 'the original language'})")
        lines.append(f"Original: \"{v.wording}\"")
    else:
        lines.append(f"Claim: \"{v.wording}\"")
    lines.append(f"Source: {v.source}")
    if v.operational:
        lines.append(f"How it is tested: {v.operational}")
    lines.append("")
    lines.append(f"Verdict: {v.verdict}. {verdict_summary(v)}")
    j = v.judgement
    if j:
        cert = (f"; certainty for the rule: {j.certainty} ({basis_text(v)})"
                if j.certainty else f"; {basis_text(v)}"
                if j.criterion in ("met", "opposite") else "")
        lines.append(f"Judged values ({j.rule}): criterion {j.criterion} "
                     f"({criterion_detail(v)}){cert}")
    if v.certainty:
        what = "GRADE without inconsistency" if _without_inconsistency(v) else "GRADE"
        lines.append(f"Certainty ({what}): {v.certainty}. {statement_text(v) or ''}")
        for d in v.downgrades:
            lines.append(f"  - downgraded {d.levels} for {d.domain}: {downgrade_reason(d, v.scale)}")
        if not v.downgrades:
            lines.append("  - no downgrades")
        for note in grade_note_lines(v):
            lines.append(f"  - {note}")
    if v.iceman:
        ice = iceman_dict(v.iceman, v.scale)
        lines.append(f"Credibility of the effect modification (ICEMAN-style): {ice['rating']}")
        for name, item in ice["items"].items():
            lines.append(f"  - {name.replace('_', ' ')}: {item['response']} ({item['note']})")
    reasons = reason_lines(v)
    if reasons:
        lines.append("Reasons:")
        for r in reasons:
            lines.append(f"  - {r}")
    if v.missing:
        lines.append("Missing evidence: " + "; ".join(missing_lines(v)))
    if v.studies:
        lines.append("Trials used: " + ", ".join(v.studies))
    return "\n".join(lines) + "\n"


def claims_markdown(protocol: Any, verdicts: Sequence[ClaimVerdict]) -> str:
    """claims.md: the verdict table and every claim's :func:`explain`.

    Parameters
    ----------
    protocol : Protocol
    verdicts : sequence of ClaimVerdict
        ``RunResult.claims``.

    Returns
    -------
    str
    """
    m = protocol.model
    out = [f"# Claims: {protocol.title}", "",
           f"Protocol `{protocol.id}`. Model: {m.measure}, {m.method}, test {m.test}. "
           "Verdicts: supported, contradicted, inconclusive, insufficient evidence.", "",
           f"**{RULE_TEXT}**", "",
           "| claim | verdict | criterion | certainty used by the rule | GRADE | summary |",
           "|---|---|---|---|---|---|"]
    for v in verdicts:
        summ = verdict_summary(v).replace("|", "\\|")
        j = v.judgement
        used = (f"{j.certainty} ({basis_text(v)})" if j is not None and j.certainty
                else "not applied" if j is not None and j.criterion in ("met", "opposite") else "–")
        grade_txt = v.certainty or "–"
        if v.certainty and _without_inconsistency(v):
            grade_txt += " (without inconsistency)"  # not the effect's full GRADE rating
        out.append(f"| {v.id} | {v.verdict} | {(j.criterion if j else None) or '–'} | {used} | "
                   f"{grade_txt} | {summ} |")
    out.append("")
    for v in verdicts:
        out.append(f"## {v.id}")
        out.append("")
        out.append("```")
        out.append(explain(v, protocol=protocol).rstrip())
        out.append("```")
        out.append("")
    return "\n".join(out)
