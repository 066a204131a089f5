"""Stage 4: judge each protocol claim from the fitted results.

A verdict is one of ``supported``, ``contradicted``, ``inconclusive`` or
``insufficient evidence``, always with the figures behind it and plain
reasons. The rules:

* **benefit / harm**: the CI of the pooled effect in the target subset must
  exclude no effect in the claimed direction (supported) or in the opposite
  direction (contradicted); otherwise inconclusive. The MCID is reported
  beside it: a "benefit" that cannot reach the MCID is said to be so.
* **no_effect** ("little or no difference"): supported when the CI lies
  within +/- the threshold (the MCID); contradicted when the CI excludes 0
  and the point estimate reaches the threshold; otherwise inconclusive.
* **not_robust**: a benefit is robust when the CI excludes 0, every
  sensitivity analysis keeps it so, and GRADE certainty is at least
  moderate. The claim is supported when that fails, contradicted when it
  holds.
* **heterogeneity** ("the evidence is mixed"): supported when the 95%
  prediction interval crosses 0 and either I^2 >= 50% or trials point in
  both directions; contradicted when I^2 < 25% and the PI excludes 0.
* **effect_modification**: judged by the test for subgroup differences (and,
  for severity, the meta-regression slope on baseline severity), never by
  comparing p-values across strata. Every stratum the claim names needs at
  least ``min_k_per_stratum`` trials, otherwise insufficient evidence naming
  the missing strata. Supported when the interaction p < alpha with the
  claimed direction; contradicted when p < alpha the other way; otherwise
  inconclusive. An ICEMAN-style credibility rating comes with it.
* **benefit_in_strata**: a benefit in each named stratum.
* **harms**: adverse events pooled as RR; supported when the CI excludes 1
  towards more events on probiotics.

GRADE certainty starts at high (randomised trials) and is downgraded for
risk of bias, inconsistency, indirectness, imprecision and publication bias,
each with its reason; the plain-language verb follows GRADE guidance 26
(Santesso et al. 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

VERBS = {
    "high": "results in",
    "moderate": "probably results in",
    "low": "may result in",
    "very low": "the evidence is very uncertain about",
}
LEVELS = ("very low", "low", "moderate", "high")


@dataclass(frozen=True)
class Downgrade:
    domain: str
    levels: int
    reason: str

    def to_dict(self):
        return {"domain": self.domain, "levels": self.levels, "reason": self.reason}


@dataclass(frozen=True)
class ClaimVerdict:
    id: str
    wording: str
    source: str
    finding: str
    operational: str
    verdict: str
    summary: str
    reasons: tuple[str, ...]
    figures: dict
    certainty: str | None = None
    certainty_statement: str | None = None
    downgrades: tuple[Downgrade, ...] = ()
    iceman: dict | None = None
    studies: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    in_scope: bool = True

    def to_dict(self) -> dict:
        return {
            "id": self.id, "wording": self.wording, "source": self.source,
            "finding": self.finding, "operational": self.operational, "in_scope": self.in_scope,
            "verdict": self.verdict, "summary": self.summary, "reasons": list(self.reasons),
            "figures": self.figures, "certainty": self.certainty,
            "certainty_statement": self.certainty_statement,
            "downgrades": [d.to_dict() for d in self.downgrades], "iceman": self.iceman,
            "studies": list(self.studies), "missing": list(self.missing),
        }


# ----------------------------------------------------------------------------
# formatting helpers (plain reasons need a few numbers)


def _n(x, d=1):
    return "NA" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"


def _p(p):
    if p is None:
        return "NA"
    return "< 0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def _peq(p):
    """'p < 0.001' or 'p = 0.03'."""
    txt = _p(p)
    return f"p {txt}" if txt.startswith("<") else f"p = {txt}"


class _Scale:
    """Effects expressed so that positive means benefit of the probiotic."""

    def __init__(self, proto):
        self.measure = proto.model.measure
        self.ratio = self.measure in ("RR", "OR")
        self.sign = -1.0 if proto.outcome.lower_is_better else 1.0
        self.unit = proto.outcome.unit

    def show(self, x):
        if x is None:
            return "NA"
        return _n(math.exp(x), 2) if self.ratio else _n(x, 1)

    def describe(self, f, test):
        est = f"{self.measure} {self.show(f.estimate)}"
        if self.unit and not self.ratio:
            est += f" {self.unit}"
        s = f"k = {f.k}, {est} [{self.show(f.ci_lb)}, {self.show(f.ci_ub)}] ({'HKSJ' if test in ('knha', 'adhoc') else 'Wald z' if f.method not in ('FE', 'MH', 'PETO') else f.method})"
        if f.pi_lb is not None:
            crosses = "crosses" if f.pi_lb < self.null < f.pi_ub else "excludes"
            s += f", 95% PI [{self.show(f.pi_lb)}, {self.show(f.pi_ub)}] {crosses} {'1' if self.ratio else '0'}"
        if f.I2 is not None:
            s += f", I² = {_n(f.I2, 0)}%"
        return s

    null = 0.0

    def benefit_ci(self, f):
        a, b = self.sign * f.ci_lb, self.sign * f.ci_ub
        return min(a, b), max(a, b)

    def benefit(self, x):
        return self.sign * x


def _fig(f, scale):
    if f is None:
        return {}
    d = {"k": f.k, "estimate": f.estimate, "ci_lb": f.ci_lb, "ci_ub": f.ci_ub, "pval": f.pval,
         "pi_lb": f.pi_lb, "pi_ub": f.pi_ub, "tau2": f.tau2, "I2": f.I2, "method": f.method,
         "test": f.test, "measure": f.measure}
    if scale.ratio:
        d.update({k + "_exp": (math.exp(v) if v is not None else None)
                  for k, v in (("estimate", f.estimate), ("ci_lb", f.ci_lb), ("ci_ub", f.ci_ub),
                               ("pi_lb", f.pi_lb), ("pi_ub", f.pi_ub))})
    return d


# ----------------------------------------------------------------------------
# GRADE


def participants(comps) -> float:
    """Participants in an analysis, for GRADE's optimal information size.

    The per-comparison n (``n_total``, the arms' analysed n) where known; for a
    trial without per-arm n, its quoted total (``n_trial_total``) once, and
    only when the analysis uses every arm that total spans (a total cannot be
    split by arm, so a stratum holding one arm of a three-arm trial leaves it
    out rather than guess its share).
    """
    n = sum(c.n_total or 0 for c in comps)
    used: dict[str, set] = {}
    for c in comps:
        if c.n_total is None and getattr(c, "n_trial_total", None) is not None:
            used.setdefault(c.study, set()).update((c.arm, c.control))
    for c in comps:
        arms = used.pop(c.study, None)
        if arms is not None and arms >= set(c.trial_arms):
            n += c.n_trial_total
    return n


def grade(fit, comps, proto, scale, small_study, threshold=None):
    """GRADE-style certainty for one pooled estimate, with reasons per domain."""
    downs = []
    weights = {s.study: s.weight for s in fit.studies}
    total = sum(weights.values()) or 1.0
    w = lambda pred: sum(weights.get(c.key, 0) for c in comps if pred(c)) / total * 100

    # risk of bias
    unassessed = w(lambda c: c.rob_overall is None)
    high = w(lambda c: c.rob_overall == "high")
    integrity = w(lambda c: set(c.flags) & {"secondary_source", "news_report", "sd_may_be_se",
                                            "derived_from_p", "from_figure"})
    if high > 50:
        downs.append(Downgrade("risk of bias", 1, f"{_n(high, 0)}% of the weight from trials at high risk of bias"))
    elif unassessed > 50 or integrity > 50:
        why = []
        if unassessed > 50:
            why.append(f"no risk-of-bias judgement was extracted for trials carrying {_n(unassessed, 0)}% of the weight")
        if integrity > 50:
            why.append(f"{_n(integrity, 0)}% of the weight rests on numbers from secondary sources, news reports, "
                       f"p-value back-calculations or SDs that may be SEs")
        downs.append(Downgrade("risk of bias", 1, "; ".join(why)))

    # inconsistency
    if fit.k >= 2 and fit.I2 is not None:
        pi_cross = fit.pi_lb is not None and fit.pi_lb < scale.null < fit.pi_ub
        ci_cross = fit.ci_lb < scale.null < fit.ci_ub
        signs = {np.sign(scale.benefit(s.yi)) for s in fit.studies
                 if (s.ci_lb > scale.null or s.ci_ub < scale.null)}
        if fit.I2 >= 75 and len(signs) > 1:
            downs.append(Downgrade("inconsistency", 2, f"I² = {_n(fit.I2, 0)}% and trials with CIs "
                                   "excluding no effect point in opposite directions"))
        elif fit.I2 >= 50 or (pi_cross and not ci_cross):
            downs.append(Downgrade("inconsistency", 1, f"I² = {_n(fit.I2, 0)}%"
                                   + ("; the prediction interval crosses no effect" if pi_cross else "")))

    # indirectness
    indirect = w(lambda c: set(c.flags) & {"active_comparator", "non_placebo_control", "heat_killed",
                                           "non_standard_outcome"})
    if indirect > 25:
        downs.append(Downgrade("indirectness", 1, f"{_n(indirect, 0)}% of the weight from comparisons "
                               "against an active or non-placebo control, heat-killed products or a "
                               "non-standard outcome"))

    # imprecision
    lo, hi = scale.benefit_ci(fit)
    n_total = participants([c for c in comps if c.key in weights])
    if not scale.ratio and threshold is not None and lo < -threshold and hi > threshold:
        downs.append(Downgrade("imprecision", 2, f"the CI includes both an important benefit and an "
                               f"important harm (±{threshold:g} {scale.unit})"))
    elif lo < 0 < hi:
        why = "the CI includes no effect"
        if threshold is not None and not scale.ratio and hi > threshold:
            why += f" and an important benefit (MCID {threshold:g} {scale.unit})"
        downs.append(Downgrade("imprecision", 1, why))
    elif fit.k < 2:
        downs.append(Downgrade("imprecision", 1, "a single trial"))
    elif not scale.ratio and n_total and n_total < 400:
        downs.append(Downgrade("imprecision", 1, f"about {int(n_total)} participants, below the "
                               "optimal information size of about 400 for a continuous outcome"))

    # publication bias
    if small_study.get("assessed"):
        eg = small_study["egger"]
        if eg.pval < 0.10:
            downs.append(Downgrade("publication bias", 1, f"Egger's test {_peq(eg.pval)}"))
    total_down = sum(d.levels for d in downs)
    level = LEVELS[max(0, 3 - total_down)]
    return level, tuple(downs)


# ----------------------------------------------------------------------------
# ICEMAN


def iceman(proto, modifier, p_interaction, k, n_modifiers, slope_p=None, cut_points=None):
    """An ICEMAN-style credibility rating for a between-trial effect modifier
    (Schandelmaier et al. 2020, CMAJ 192:E901). Each item gets a response and
    the overall rating follows from them."""
    items = {
        "within_vs_between_trial": ("definitely no", "a between-trial comparison only (trials differ in many ways besides the modifier)"),
        "number_of_trials": ("probably yes" if k >= 10 else "definitely no",
                             f"{k} trials in the comparison"),
        "a_priori_direction": ("probably yes", "hypothesis and direction taken from the claim and pre-specified in the protocol"),
    }
    if p_interaction is None:
        chance = ("definitely no", "no test for interaction was possible")
    elif p_interaction < 0.005:
        chance = ("definitely yes", f"interaction {_peq(p_interaction)}")
    elif p_interaction < 0.01:
        chance = ("probably yes", f"interaction {_peq(p_interaction)}")
    elif p_interaction < 0.05:
        chance = ("probably no", f"interaction {_peq(p_interaction)}")
    else:
        chance = ("definitely no", f"interaction {_peq(p_interaction)}")
    items["chance_unlikely"] = chance
    items["few_modifiers_tested"] = ("probably yes" if n_modifiers <= 5 else "probably no",
                                     f"{n_modifiers} candidate modifiers pre-specified")
    if cut_points:
        items["arbitrary_cut_points_avoided"] = (
            "probably yes" if slope_p is not None else "probably no",
            cut_points + ("; the meta-regression on the continuous baseline score avoids cut points"
                          f" (slope {_peq(slope_p)})" if slope_p is not None else
                          "; the continuous meta-regression was not estimable"))
    if chance[0] == "definitely no":
        rating = "very low" if k < 10 else "low"
    elif chance[0] == "probably no":
        rating = "low"
    else:
        rating = "moderate" if k >= 10 else "low"
    return {"rating": rating,
            "items": {name: {"response": r, "note": note} for name, (r, note) in items.items()},
            "note": "between-trial effect modification can be rated at most moderate"}


# ----------------------------------------------------------------------------
# claim types


def _insufficient(claim, reason, scale, fit=None, missing=(), studies=()):
    return ClaimVerdict(claim.id, claim.wording, claim.source, claim.finding, claim.operational,
                        "insufficient evidence", reason, (reason,), _fig(fit, scale),
                        studies=tuple(studies), missing=tuple(missing))


def _with_certainty(claim, verdict, summary, reasons, fit, comps, proto, scale, small, extra=None,
                    certainty=None):
    """``certainty``: an already computed ``grade()`` result, if the caller has one."""
    if certainty is None:
        threshold = claim.threshold if claim.threshold is not None else proto.mcid
        certainty = grade(fit, comps, proto, scale, small, threshold)
    level, downs = certainty
    what = proto.outcome.label
    stmt = (f"Probiotics {VERBS[level]} " if level != "very low" else "The evidence is very uncertain about ") \
        + (f"the effect on {what}" if level == "very low" else f"{'a change' if verdict == 'supported' else 'the estimated change'} in {what}") \
        + f" ({level} certainty)."
    return ClaimVerdict(claim.id, claim.wording, claim.source, claim.finding, claim.operational,
                        verdict, summary, tuple(reasons), {**_fig(fit, scale), **(extra or {})},
                        certainty=level, certainty_statement=stmt, downgrades=downs,
                        studies=tuple(s.study for s in fit.studies))


def _judge_effect(claim, fit, comps, proto, scale, small, sens):
    f = fit
    lo, hi = scale.benefit_ci(f)
    b = scale.benefit(f.estimate)
    thr = claim.threshold if claim.threshold is not None else proto.mcid
    certainty = grade(f, comps, proto, scale, small, thr)  # once: the verdict and GRADE both use it
    level = certainty[0]
    desc = scale.describe(f, f.test)
    reasons = [desc]
    if thr is not None and not scale.ratio:
        reach = ("the point estimate reaches" if b >= thr else "the point estimate is below") + \
            f" the MCID of {thr:g} {scale.unit}" + (
                "; the whole CI lies beyond it" if lo >= thr else
                "; the CI excludes it" if hi < thr else "; the CI includes it")
        reasons.append(reach)
    if claim.finding in ("benefit", "harm"):
        want = 1 if claim.finding == "benefit" else -1
        if (want == 1 and lo > 0) or (want == -1 and hi < 0):
            verdict = "supported"
            summary = f"The CI excludes no effect in the claimed direction: {desc}."
        elif (want == 1 and hi < 0) or (want == -1 and lo > 0):
            verdict = "contradicted"
            summary = f"The CI excludes no effect in the opposite direction: {desc}."
        else:
            verdict = "inconclusive"
            summary = f"The CI includes no effect: {desc}."
    elif claim.finding == "no_effect":
        if thr is None:
            raise ValueError(f"claim {claim.id}: 'no_effect' needs a threshold or the protocol mcid")
        if scale.ratio:
            lim = math.log(thr)
            inside = -lim < lo and hi < lim
        else:
            inside = -thr < lo and hi < thr
        if inside:
            verdict = "supported"
            summary = f"The whole CI lies within ±{thr:g}: no important difference. {desc}."
        elif (lo > 0 and b >= thr) or (hi < 0 and -b >= thr):
            verdict = "contradicted"
            summary = f"An important difference is estimated and the CI excludes no effect: {desc}."
        else:
            verdict = "inconclusive"
            summary = f"The CI is compatible with both little or no difference and an important one: {desc}."
    else:  # not_robust
        fails = []
        if not lo > 0:
            fails.append("the main analysis CI includes no effect")
        for a in sens:
            if a.result is None:
                continue
            sl, sh = scale.benefit_ci(a.result.overall)
            if not sl > 0:
                fails.append(f"'{a.name}' CI includes no effect")
        if level in ("low", "very low"):
            fails.append(f"GRADE certainty is {level}")
        if fails:
            verdict = "supported"
            summary = "The benefit is not robust: " + "; ".join(fails) + "."
        else:
            verdict = "contradicted"
            summary = "The benefit survives every sensitivity analysis with at least moderate certainty."
        reasons.extend(fails)
    if claim.finding != "not_robust" and verdict in ("supported", "contradicted"):
        if level == "very low":
            reasons.append(f"the statistical criterion points to '{verdict}', but GRADE certainty is "
                           "very low, so the claim can be neither confirmed nor refuted")
            summary = summary + f" The statistical criterion alone would say {verdict}, but certainty is very low."
            verdict = "inconclusive"
    return _with_certainty(claim, verdict, summary, reasons, f, comps, proto, scale, small,
                           certainty=certainty)


def _judge_heterogeneity(claim, fit, comps, proto, scale, small):
    f = fit
    if f.k < 3:
        return _insufficient(claim, f"k = {f.k}: heterogeneity cannot be judged with fewer than 3 trials",
                             scale, f, studies=[s.study for s in f.studies])
    pi_cross = f.pi_lb is not None and f.pi_lb < scale.null < f.pi_ub
    pos = sum(scale.benefit(s.yi) > 0 for s in f.studies)
    neg = sum(scale.benefit(s.yi) < 0 for s in f.studies)
    both = pos > 0 and neg > 0
    reasons = [scale.describe(f, f.test), f"τ² = {_n(f.tau2, 2)}, Q = {_n(f.Q, 2)} (df = {f.Q_df}, {_peq(f.Q_p)})",
               f"{pos} trial(s) favour probiotic, {neg} favour control"]
    if pi_cross and (f.I2 >= 50 or both):
        verdict, summary = "supported", "Mixed: the prediction interval crosses no effect" + (
            f" with I² = {_n(f.I2, 0)}%" if f.I2 >= 50 else "") + (" and trials point both ways" if both else "") + "."
    elif f.I2 < 25 and not pi_cross:
        verdict, summary = "contradicted", f"Consistent: I² = {_n(f.I2, 0)}% and the prediction interval excludes no effect."
    else:
        verdict, summary = "inconclusive", f"I² = {_n(f.I2, 0)}%; prediction interval {'crosses' if pi_cross else 'excludes'} no effect."
    return _with_certainty(claim, verdict, summary, reasons, f, comps, proto, scale, small,
                           extra={"Q": f.Q, "Q_p": f.Q_p, "trials_favouring_probiotic": pos,
                                  "trials_favouring_control": neg})


def _judge_modification(claim, comps, proto, scale, small, fit_subset, regressions, n_modifiers):
    by = claim.modifier
    an = fit_subset(comps, by)
    if an.result is None:
        return _insufficient(claim, f"no analysis possible: {an.note}", scale)
    res = an.result
    counts = {lvl: f.k for lvl, f in res.subgroups}
    named = list(claim.expected_benefit_in) + list(claim.expected_no_effect_in)
    minimum = proto.min_k_per_stratum
    if named:
        missing = [s for s in named if counts.get(s, 0) < minimum]
    else:
        big = [lvl for lvl, k in counts.items() if k >= minimum]
        missing = [] if len(big) >= 2 else [f"at least two {by} strata with {minimum}+ trials (have: "
                                            + ", ".join(f"{l} {k}" for l, k in counts.items()) + ")"]
    strata_txt = "; ".join(f"{lvl}: {scale.describe(f, f.test)}" for lvl, f in res.subgroups)
    figures = {"subgroups": {lvl: _fig(f, scale) for lvl, f in res.subgroups},
               "Q_between": res.Q_between, "Q_between_df": res.Q_between_df,
               "Q_between_p": res.Q_between_p, "trials_per_stratum": counts}
    slope_p = None
    cut = None
    if proto.severity is not None and any(s.name == by and s.field == "severity" for s in proto.strata):
        cut = f"severity bands from {proto.severity.bands_source}; other sources use other cut points"
        for name, reg, note, keys in regressions:
            if name == "baseline_score":
                if reg is not None:
                    slope_p = reg.pval[1]
                    figures["slope_baseline"] = {"beta": reg.beta[1], "ci_lb": reg.ci_lb[1],
                                                 "ci_ub": reg.ci_ub[1], "pval": reg.pval[1], "k": reg.k}
                else:
                    figures["slope_baseline"] = {"note": note}
    ice = iceman(proto, by, res.Q_between_p, res.overall.k, n_modifiers, slope_p, cut)
    if missing:
        v = _insufficient(claim, f"Too few trials in the strata the claim needs ({', '.join(missing)}); "
                                 f"trials per {by} stratum: " + ", ".join(f"{l} {k}" for l, k in counts.items())
                          + ". A between-stratum comparison cannot be made.",
                          scale, missing=missing, studies=[s.study for s in res.overall.studies])
        return ClaimVerdict(**{**v.__dict__, "figures": figures, "iceman": ice,
                               "reasons": v.reasons + (strata_txt,)})
    p = res.Q_between_p
    reasons = [strata_txt, f"test for subgroup differences: Q = {_n(res.Q_between, 2)}, "
                           f"df = {res.Q_between_df}, {_peq(p)}"]
    if "slope_baseline" in figures and "beta" in figures["slope_baseline"]:
        sb = figures["slope_baseline"]
        reasons.append(f"meta-regression on baseline severity: slope {_n(sb['beta'], 2)} per point "
                       f"[{_n(sb['ci_lb'], 2)}, {_n(sb['ci_ub'], 2)}], {_peq(sb['pval'])} (k = {sb['k']})")
    elif "slope_baseline" in figures:
        reasons.append("meta-regression on baseline severity: " + figures["slope_baseline"]["note"])
    reasons.append("significance within single strata is not used: only the interaction test decides")
    direction_ok = True
    if claim.expected_benefit_in and claim.expected_no_effect_in:
        fits = dict(res.subgroups)
        b_in = np.mean([scale.benefit(fits[s].estimate) for s in claim.expected_benefit_in])
        b_out = np.mean([scale.benefit(fits[s].estimate) for s in claim.expected_no_effect_in])
        direction_ok = b_in > b_out
    alpha = proto.model.alpha
    named_dir = bool(claim.expected_benefit_in and claim.expected_no_effect_in)
    way = "goes the claimed way" if named_dir else "the strata differ"
    if p is not None and p < alpha and direction_ok and ice["rating"] in ("low", "very low"):
        verdict = "inconclusive"
        summary = (f"The test for subgroup differences is nominally significant ({_peq(p)}; {way}), "
                   f"but the credibility of this between-trial effect modification is {ice['rating']} "
                   "(ICEMAN): it may reflect chance or other differences between the trials.")
        reasons.append("a nominally significant interaction with low credibility is not enough to support the claim")
    elif p is not None and p < alpha and direction_ok:
        verdict, summary = "supported", f"The subgroup difference is unlikely to be chance ({_peq(p)}) and {way}; credibility {ice['rating']} (ICEMAN)."
    elif p is not None and p < alpha:
        verdict, summary = "contradicted", f"The subgroups differ ({_peq(p)}) but in the opposite direction."
    else:
        verdict, summary = "inconclusive", f"No credible difference between {by} strata (interaction {_peq(p)}); credibility {ice['rating']} (ICEMAN)."
    v = _with_certainty(claim, verdict, summary, reasons, res.overall, comps, proto, scale, small)
    return ClaimVerdict(**{**v.__dict__, "figures": {**v.figures, **figures}, "iceman": ice})


def _judge_in_strata(claim, comps, proto, scale, small, fit_subset):
    by = claim.modifier
    an = fit_subset(comps, by)
    if an.result is None:
        return _insufficient(claim, f"no analysis possible: {an.note}", scale)
    fits = dict(an.result.subgroups)
    missing = [s for s in claim.expected_benefit_in if fits.get(s) is None or fits[s].k < proto.min_k_per_stratum]
    figures = {"subgroups": {lvl: _fig(f, scale) for lvl, f in an.result.subgroups},
               "Q_between_p": an.result.Q_between_p}
    txt = "; ".join(f"{lvl}: {scale.describe(f, f.test)}" for lvl, f in an.result.subgroups)
    if missing:
        v = _insufficient(claim, f"Too few trials in {', '.join(missing)} (need {proto.min_k_per_stratum} per stratum).",
                          scale, missing=missing, studies=[s.study for s in an.result.overall.studies])
        return ClaimVerdict(**{**v.__dict__, "figures": figures, "reasons": v.reasons + (txt,)})
    cis = {s: scale.benefit_ci(fits[s]) for s in claim.expected_benefit_in}
    if all(lo > 0 for lo, _ in cis.values()):
        verdict, summary = "supported", "Every named stratum shows a benefit whose CI excludes no effect."
    elif any(hi < 0 for _, hi in cis.values()):
        verdict, summary = "contradicted", "At least one named stratum shows harm with a CI excluding no effect."
    else:
        verdict, summary = "inconclusive", "At least one named stratum's CI includes no effect."
    v = _with_certainty(claim, verdict, summary, [txt], an.result.overall, comps, proto, scale, small)
    return ClaimVerdict(**{**v.__dict__, "figures": {**v.figures, **figures}})


def _judge_harms(claim, ae, proto, small):
    scale = _Scale(proto)
    scale.ratio, scale.measure, scale.sign, scale.unit = True, "RR", 1.0, ""
    if ae is None or ae.result is None or ae.result.overall.k < 2:
        reason = ae.note if ae is not None and ae.note else "fewer than 2 trials report adverse events per arm"
        return _insufficient(claim, f"Adverse events: {reason}. The claim cannot be checked from the "
                                    "extracted trials; the data needed are adverse events (any, and serious) per arm.",
                             scale, missing=("adverse events per arm",))
    f = ae.result.overall
    desc = scale.describe(f, f.test)
    if f.ci_lb > 0:
        verdict, summary = "supported", f"More adverse events with probiotics: {desc}."
    else:
        verdict, summary = "inconclusive", f"No clear difference in adverse events: {desc}."
    return ClaimVerdict(claim.id, claim.wording, claim.source, claim.finding, claim.operational,
                        verdict, summary, (desc,), _fig(f, scale),
                        studies=tuple(s.study for s in f.studies))


def _name_awaiting(v, claim, awaiting):
    """Add to an insufficient-evidence verdict the trials that fall in the
    missing strata but have no usable data (and why)."""
    if v.verdict != "insufficient evidence" or not claim.modifier:
        return v
    levels = awaiting.get(claim.modifier, {})
    named = [m for m in v.missing if m in levels]
    extra = [f"{m}: no trial in the evidence base, analysed or not, falls in this stratum"
             for m in v.missing if m not in levels and m in (claim.expected_benefit_in
                                                              + claim.expected_no_effect_in)]
    for m in named:
        for sid, why in levels[m]:
            extra.append(f"{m}: {sid} is in the evidence base but not analysed ({why})")
    if not extra:
        return v
    return ClaimVerdict(**{**v.__dict__, "reasons": v.reasons + tuple(extra),
                           "figures": {**v.figures, "awaiting": {m: [s for s, _ in levels[m]] for m in named}}})


def judge_all(proto, comps, *, main, strata, regressions, sensitivity, loo, small_study,
              adverse_events, fit_subset, only=None, awaiting=None):
    """Judge every claim of the protocol; out-of-scope claims are listed with their reason."""
    from metaanalysis.pipeline import subset

    scale = _Scale(proto)
    n_modifiers = len(proto.strata) + len(proto.meta_regression)
    out = []
    for claim in proto.claims:
        if only and claim.id != only:
            continue
        sub = subset(comps, dict(claim.target.subset))
        if claim.finding == "harms":
            out.append(_judge_harms(claim, adverse_events, proto, small_study))
            continue
        if claim.finding == "effect_modification":
            v = _judge_modification(claim, sub, proto, scale, small_study, fit_subset,
                                    regressions, n_modifiers)
            out.append(_name_awaiting(v, claim, awaiting or {}))
            continue
        if claim.finding == "benefit_in_strata":
            out.append(_name_awaiting(_judge_in_strata(claim, sub, proto, scale, small_study,
                                                       fit_subset), claim, awaiting or {}))
            continue
        target_txt = (", ".join(f"{k} in {'/'.join(v)}" for k, v in claim.target.subset.items())
                      or "all eligible trials")
        if len(sub) < proto.min_k_per_stratum:
            out.append(_insufficient(claim, f"{len(sub)} trial(s) in the target ({target_txt}); "
                                            f"at least {proto.min_k_per_stratum} are needed.", scale,
                                     missing=(target_txt,), studies=[c.key for c in sub]))
            continue
        an = fit_subset(sub)
        if an.result is None:
            out.append(_insufficient(claim, f"no analysis possible: {an.note}", scale))
            continue
        waiting = [(sid, why) for sid, why, attrs in (awaiting or {}).get("_studies", [])
                   if claim.target.subset and all(attrs.get(k) in v for k, v in claim.target.subset.items())]
        f = an.result.overall
        if claim.finding == "heterogeneity":
            v = _judge_heterogeneity(claim, f, sub, proto, scale, small_study)
        else:
            sens = sensitivity if len(sub) == len(comps) else ()
            v = _judge_effect(claim, f, sub, proto, scale, small_study, sens)
        if waiting:
            v = ClaimVerdict(**{**v.__dict__, "reasons": v.reasons + tuple(
                f"in the target but not analysed: {sid} ({why})" for sid, why in waiting)})
        out.append(v)
    for oos in proto.out_of_scope:
        if only and oos.id != only:
            continue
        out.append(ClaimVerdict(oos.id, oos.wording, oos.source, "out of scope", "",
                                "out of scope", oos.reason, (oos.reason,), {}, in_scope=False))
    return tuple(out)
