"""Stage 4: judge each protocol claim from fits the pipeline has already made.

``claims`` only judges: every fit a claim needs (its target subset, the
target split by the claim's modifier, the between-stratum test over strata
with enough trials, the availability of eligible trials) is computed by
:mod:`metaanalysis.analysis.pipeline` and handed over as a :class:`ClaimInput`.
Nothing here fits a model or imports the pipeline.

One verdict rule (``protocols/README.md``, :data:`RULE_ID`) is applied to
every claim:

1. The claim's **statistical criterion** is evaluated to one of ``met``,
   ``opposite`` (met in the other direction), ``neither`` (the interval
   spans both answers: imprecise) or ``not evaluable`` (the comparison
   cannot be made: too few trials in the target or in a stratum the claim
   names, no data).
2. ``not evaluable`` -> insufficient evidence; ``neither`` -> inconclusive.
3. ``met`` -> supported and ``opposite`` -> contradicted, unless the
   certainty of the evidence for what the claim is about is **very low**,
   then inconclusive ("the evidence is very uncertain"). That certainty is
   GRADE for claims about a pooled effect; GRADE without the inconsistency
   domain for claims that the results are mixed (the property claimed is
   not held against itself); ICEMAN credibility for effect modification;
   not applied to ``not_robust`` claims, whose criterion is itself "GRADE
   certainty at least moderate and every sensitivity analysis agrees".

Each verdict records the judged values (``judgement``: criterion, its
detail, the certainty used and its basis) so that the verdict can be
recomputed with :func:`apply_rule` and checked against its reasons.

GRADE certainty starts at high (randomised trials) and is downgraded for
risk of bias, inconsistency, indirectness, imprecision and publication /
availability bias, each with its reason; the certainty statement uses
GRADE's informative wording (Santesso et al. 2020, GRADE guidance 26).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from metaanalysis.studies import strains
# the one number formatter, and the sentences written from judged values (render/)
from metaanalysis.render import claims_text, fmt

#: Identifier of the verdict rule; results.json, claims.md and the report carry it.
RULE_ID = "verdict-rule-1"
RULE_TEXT = (
    "Verdict rule (verdict-rule-1, protocols/README.md): the claim's statistical criterion "
    "(CI against the claim's threshold, prediction interval, test for subgroup differences "
    "over strata with enough trials) is met, met in the opposite direction, or neither. "
    "Criterion not computable -> insufficient evidence; neither (the interval spans both "
    "answers) -> inconclusive; met -> supported and opposite -> contradicted, unless the "
    "certainty for what the claim is about (GRADE; ICEMAN credibility for effect "
    "modification) is very low, then inconclusive.")
CRITERIA = ("met", "opposite", "neither", "not evaluable")

LEVELS = ("very low", "low", "moderate", "high")
#: GRADE informative statements (Santesso et al. 2020, J Clin Epidemiol 119:126).
VERBS = {"high": "{v}", "moderate": "probably {v}", "low": "may {v}"}
TRIVIAL = {"high": "result in little to no difference in",
           "moderate": "probably result in little to no difference in",
           "low": "may result in little to no difference in"}

#: Share of the weight above which a concern "dominates" a GRADE domain: GRADE
#: rates the body of evidence by where most of the information comes from.
MAJORITY = 50.0
#: I² up to this "might not be important" (Cochrane Handbook 10.10.2, 0-40%):
#: a prediction interval that crosses no effect around a CI that does not is
#: not by itself problematic inconsistency there (Core GRADE 3 looks for point
#: estimates on both sides of the threshold with little CI overlap); with a
#: few trials the PI's t(k-2) quantile alone makes it cross.
I2_MAY_NOT_MATTER = 40.0
#: Indirectness is charged when more than this share of the weight is indirect.
INDIRECT_SHARE = 25.0
#: Optimal information size for a continuous outcome: GRADE's rule of thumb of
#: about 400 participants (Guyatt et al. 2011, GRADE guidelines 6, J Clin Epidemiol 64:1283).
OIS_CONTINUOUS = 400
#: For ratio measures without a stated MCID: a relative risk reduction or
#: increase of 25% is "important" (GRADE guidelines 6 default), and the OIS is
#: computed for it with two-sided alpha 0.05 and power 0.80.
RATIO_IMPORTANT = 1.25
OIS_Z = 1.959964 + 0.841621
#: A share of eligible trials (or participants) without usable data above
#: which missing results could plausibly move the pooled estimate (a stated
#: convention of this engine, after ROB-ME's "risk of bias due to missing evidence").
AVAILABILITY_SHARE = 0.25
#: Egger's test: asymmetry at p < 0.10 (Egger 1997), only from k = small_study_min_k.
EGGER_P = 0.10
#: Between-trial effect modification can be rated at most moderate (ICEMAN);
#: fewer trials than this in the compared strata lowers credibility one level.
ICEMAN_MIN_TRIALS = 10


def apply_rule(criterion: str, certainty: str | None) -> str:
    """The verdict rule (:data:`RULE_ID`) as a function of the judged values.

    Parameters
    ----------
    criterion : {"met", "opposite", "neither", "not evaluable"}
    certainty : {"very low", "low", "moderate", "high"} or None
        The certainty for what the claim is about; None when the rule does
        not apply a certainty (claims about the certainty itself).

    Examples
    --------
    >>> apply_rule("met", "low"), apply_rule("met", "very low"), apply_rule("neither", "high")
    ('supported', 'inconclusive', 'inconclusive')
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion outcome '{criterion}'")
    if criterion == "not evaluable":
        return "insufficient evidence"
    if criterion == "neither" or certainty == "very low":
        return "inconclusive"
    return "supported" if criterion == "met" else "contradicted"


@dataclass(frozen=True)
class Downgrade:
    domain: str
    levels: int
    reason: str

    def to_dict(self):
        return {"domain": self.domain, "levels": self.levels, "reason": self.reason}


@dataclass(frozen=True)
class ClaimInput:
    """What the pipeline computed for one claim before it is judged.

    ``target``/``by`` are PoolResults (or None with a ``note``); ``between``
    is the test for subgroup differences over the strata with at least
    ``min_k_per_stratum`` trials: dict(Q, df, p, levels, excluded, method),
    or None when fewer than two strata qualify.
    """

    comps: tuple = ()
    target_text: str = "all eligible trials"
    target: object | None = None
    target_note: str | None = None
    by: object | None = None
    by_note: str | None = None
    between: dict | None = None
    strata_comps: dict = field(default_factory=dict)   # stratum level -> comparisons
    availability: dict | None = None
    waiting: tuple = ()


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
    judgement: dict | None = None
    grade_notes: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "id": self.id, "wording": self.wording, "source": self.source,
            "finding": self.finding, "operational": self.operational, "in_scope": self.in_scope,
            "verdict": self.verdict, "summary": self.summary, "reasons": list(self.reasons),
            "judgement": self.judgement,
            "figures": self.figures, "certainty": self.certainty,
            "certainty_statement": self.certainty_statement,
            "downgrades": [d.to_dict() for d in self.downgrades],
            "grade_notes": list(self.grade_notes), "iceman": self.iceman,
            "studies": list(self.studies), "missing": list(self.missing),
        }


# ----------------------------------------------------------------------------
# numbers in reason lines (one formatter: render/fmt.py)


def _n(x, d=1):
    return fmt.num(x, d)


def _peq(p):
    """'p < 0.001' or 'p = 0.03'."""
    return fmt.p_phrase(p)


class _Scale:
    """Effects expressed so that positive means benefit of the probiotic."""

    def __init__(self, proto):
        self.measure = proto.model.measure
        # log-scale measures (ROM too, should a protocol judge claims on it)
        self.ratio = self.measure in fmt.RATIO_MEASURES
        self.sign = -1.0 if proto.outcome.lower_is_better else 1.0
        self.unit = proto.outcome.unit
        self.alpha = proto.model.alpha

    null = 0.0

    def show(self, x):
        if x is None:
            return "NA"
        return fmt.ratio(math.exp(x)) if self.ratio else _n(x, 1)

    def null_txt(self):
        return fmt.null_value(self.ratio)

    def describe(self, f, test=None):
        test = f.test if test is None else test
        est = f"{self.measure} {self.show(f.estimate)}"
        if self.unit and not self.ratio:
            est += f" {self.unit}"
        how = ("Wald z" if test == "z" or f.k < 2 else "modified Knapp-Hartung" if test == "adhoc"
               else "Knapp-Hartung")
        if f.method in ("FE", "MH", "PETO"):
            how = f.method
        s = (f"k = {f.k}, {est}, {fmt.ci_label(self.alpha)} [{self.show(f.ci_lb)}, "
             f"{self.show(f.ci_ub)}] ({how})")
        if f.pi_lb is not None:
            crosses = "crosses" if f.pi_lb < self.null < f.pi_ub else "excludes"
            s += (f", {fmt.pi_label(self.alpha)} [{self.show(f.pi_lb)}, {self.show(f.pi_ub)}] "
                  f"{crosses} no effect ({self.null_txt()})")
        if f.I2 is not None:
            s += f", I² = {_n(f.I2, 0)}%"
        return s

    def benefit_ci(self, f):
        a, b = self.sign * f.ci_lb, self.sign * f.ci_ub
        return min(a, b), max(a, b)

    def benefit(self, x):
        return self.sign * x

    def important(self, threshold):
        """The important-effect threshold on the analysis scale (log for ratios)."""
        if self.ratio:
            if threshold is None or threshold <= 0 or threshold == 1:
                return math.log(RATIO_IMPORTANT)
            return abs(math.log(threshold))  # 0.8 and 1.25 name the same threshold
        return threshold


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

INTEGRITY_FLAGS = {"secondary_source", "news_report", "sd_may_be_se", "derived_from_p",
                   "from_figure"}
#: Real indirectness (GRADE guidelines 8): an intervention that is not a live
#: probiotic, an outcome that is not the one asked about. An active drug as
#: comparator is handled through the comparator field. Synbiotic-versus-prebiotic
#: comparisons are not indirect (the difference isolates the probiotic), and
#: usual care without placebo is a risk-of-bias issue (no blinding).
INDIRECT_FLAGS = {"heat_killed", "non_standard_outcome"}
#: What each kind of indirectness is called in a reason (the kinds present are named).
INDIRECT_WORDS = {"heat_killed": "heat-killed products", "non_standard_outcome": "a non-standard outcome",
                  "active": "an active-drug comparator"}
NO_PLACEBO = ("usual_care", "none")


def _integrity_concern(c) -> bool:
    """Whether a comparison's numbers carry an integrity concern for GRADE's
    risk-of-bias domain.

    A number read from a secondary source is a concern only when nothing shows
    that source to be a systematic review that assessed the trial: a row of a
    review's data table that also carries the review's RoB 2 judgement (the
    Cochrane CD006475 prevention rows) is the review's own checked extraction,
    and its limitations are the RoB 2 judgement already rated here. News
    reports, p-value back-calculations, figure reads and SDs that may be SEs
    stay concerns whatever the source.
    """
    flags = set(c.flags) & INTEGRITY_FLAGS
    if flags == {"secondary_source"} and c.rob_overall is not None:
        return False
    return bool(flags)


def _participants(comps, keys):
    """Participants in the analysis ``keys`` and the trials whose n is not known.

    The per-comparison n (``n_total``, the arms' analysed n) where known; a
    trial without per-arm n adds its quoted total (``n_trial_total``,
    studies/README.md ``trial_total``) once, and only when the analysis uses
    every arm that total spans: a total cannot be split by arm, so a stratum
    holding one arm of a three-arm trial counts that trial as unknown rather
    than guess its share.
    """
    sel = [c for c in comps if c.key in keys]
    trial = lambda c: getattr(c, "study", c.key)  # noqa: E731 (comps are duck-typed)
    known = sum(c.n_total for c in sel if c.n_total)
    arms: dict[str, set] = {}
    for c in sel:
        if not c.n_total and getattr(c, "n_trial_total", None):
            arms.setdefault(trial(c), set()).update((c.arm, c.control))
    counted: set[str] = set()
    unknown: set[str] = set()
    for c in sel:
        sid = trial(c)
        if c.n_total or sid in counted or sid in unknown:
            continue
        if sid in arms and arms[sid] >= set(c.trial_arms):
            known += c.n_trial_total
            counted.add(sid)
        else:
            unknown.add(sid)
    return int(known), len(unknown)


def participants_text(n, unknown):
    """'278 participants' or 'at least 278 participants; 3 trials with n not reported'."""
    if not unknown:
        return f"{n} participants"
    return f"at least {n} participants; {unknown} trial{'s' if unknown > 1 else ''} with n not reported"


def _ois_binary(comps, keys):
    """OIS (total) for a 25% relative risk reduction from the pooled control risk."""
    ev = [(c.extraction.ci, c.extraction.n2i) for c in comps if c.key in keys
          and getattr(c.extraction, "ci", None) is not None and getattr(c.extraction, "n2i", None)]
    if not ev:
        return None, None
    pc = sum(e for e, _ in ev) / sum(n for _, n in ev)
    pt = pc / RATIO_IMPORTANT
    if not 0 < pc < 1:
        return None, pc
    per_arm = OIS_Z**2 * (pc * (1 - pc) + pt * (1 - pt)) / (pc - pt) ** 2
    return int(math.ceil(2 * per_arm)), pc


def grade(fit, comps, proto, scale, small_study, threshold=None, *, availability=None,
          against="null", skip=(), notes=None):
    """GRADE certainty for one pooled estimate, with the reason for each downgrade.

    Parameters
    ----------
    fit : FitResult
    comps : sequence of Comparison (duck-typed: key, flags, rob_overall,
        comparator, n_total, extraction)
    proto : Protocol
    scale : _Scale
    small_study : dict
        The pipeline's small-study assessment (Egger from ``small_study_min_k``).
    threshold : float, optional
        The MCID (continuous) or important ratio (binary).
    availability : dict, optional
        trials_eligible, trials_missing, participants_missing,
        missing_favour_probiotic, missing_favour_control, missing_no_direction
        (None where unknown): eligible trials without usable data.
    against : {"null", "mcid"}
        The threshold that certainty is rated against (GRADE's minimally
        contextualised approach): no effect for claims of a benefit or harm,
        the MCID for claims of little or no difference.
    skip : tuple of str
        Domains not rated (e.g. "inconsistency" for a claim that results are mixed).
    notes : list, optional
        Receives "considered, not downgraded" remarks (e.g. partly unassessed RoB).

    Returns
    -------
    (level, downgrades) : tuple[str, tuple[Downgrade, ...]]
    """
    notes = [] if notes is None else notes
    downs = []
    weights = {s.study: s.weight for s in fit.studies}
    total = sum(weights.values()) or 1.0
    w = lambda pred: sum(weights.get(c.key, 0) for c in comps if pred(c)) / total * 100

    # risk of bias: RoB 2 judgements where extracted; "not assessed" stated.
    # GRADE rates limitations of the body of evidence; without a judgement for
    # most of the weight, serious limitations cannot be ruled out, so an
    # unassessed majority downgrades one level (and says so).
    if "risk of bias" not in skip:
        unassessed = w(lambda c: c.rob_overall is None)
        high = w(lambda c: c.rob_overall == "high")
        some = w(lambda c: c.rob_overall == "some_concerns")
        no_placebo = w(lambda c: getattr(c, "comparator", None) in NO_PLACEBO)
        integrity = w(lambda c: _integrity_concern(c))
        concern = w(lambda c: c.rob_overall in ("high", "some_concerns") or c.rob_overall is None
                    or getattr(c, "comparator", None) in NO_PLACEBO)
        why = []
        if high > 0:
            why.append(f"{_n(high, 0)}% of the weight from trials at high risk of bias (RoB 2)")
        if some > 0:
            why.append(f"{_n(some, 0)}% with some concerns")
        if unassessed > 0:
            why.append(f"risk of bias not assessed (no RoB 2 judgement extracted) for trials "
                       f"carrying {_n(unassessed, 0)}% of the weight")
        if no_placebo > 0:
            why.append(f"{_n(no_placebo, 0)}% of the weight from comparisons with usual care or no "
                       "treatment, without placebo (participants not blinded to a partly "
                       "patient-reported outcome)")
        if integrity > MAJORITY:
            why.append(f"{_n(integrity, 0)}% of the weight rests on numbers from secondary sources, "
                       "news reports, p-value back-calculations or SDs that may be SEs")
        if high > MAJORITY:
            downs.append(Downgrade("risk of bias", 2 if high + some >= 100 - 1e-9 and high > 75 else 1,
                                   "; ".join(why)))
        elif concern > MAJORITY or integrity > MAJORITY:
            downs.append(Downgrade("risk of bias", 1, "; ".join(why)))
        elif why:
            notes.append("risk of bias not downgraded (concerns carry at most half the weight): "
                         + "; ".join(why))

    # inconsistency
    if "inconsistency" not in skip and fit.k >= 2 and fit.I2 is not None:
        pi_cross = fit.pi_lb is not None and fit.pi_lb < scale.null < fit.pi_ub
        ci_cross = fit.ci_lb < scale.null < fit.ci_ub
        signs = {np.sign(scale.benefit(s.yi)) for s in fit.studies
                 if (s.ci_lb > scale.null or s.ci_ub < scale.null)}
        if fit.I2 >= 75 and len(signs) > 1:
            downs.append(Downgrade("inconsistency", 2, f"I² = {_n(fit.I2, 0)}% and trials with CIs "
                                   "excluding no effect point in opposite directions"))
        elif fit.I2 >= 50 or (pi_cross and not ci_cross and fit.I2 > I2_MAY_NOT_MATTER):
            downs.append(Downgrade("inconsistency", 1, f"I² = {_n(fit.I2, 0)}%"
                                   + ("; the prediction interval crosses no effect" if pi_cross else "")))
        elif pi_cross and not ci_cross:
            notes.append(f"inconsistency not downgraded: the prediction interval crosses no effect "
                         f"but I² = {_n(fit.I2, 0)}% (heterogeneity that may not be important, "
                         "Cochrane Handbook 10.10.2)")

    # indirectness: only real indirectness
    if "indirectness" not in skip:
        kinds = lambda c: (set(c.flags) & INDIRECT_FLAGS) | (  # noqa: E731
            {"active"} if getattr(c, "comparator", None) == "active" else set())
        indirect = w(lambda c: bool(kinds(c)))
        # name the kinds present, not every kind there could be
        present = set().union(*[kinds(c) for c in comps if weights.get(c.key, 0) > 0] or [set()])
        what = " and ".join(INDIRECT_WORDS[k] for k in sorted(present))
        if indirect > INDIRECT_SHARE:
            downs.append(Downgrade("indirectness", 1, f"{_n(indirect, 0)}% of the weight from {what}"))
        elif indirect > 0:
            notes.append(f"indirectness not downgraded: {_n(indirect, 0)}% of the weight from {what}")

    # imprecision: against the MCID / important ratio and the OIS
    if "imprecision" not in skip:
        lo, hi = scale.benefit_ci(fit)
        imp = scale.important(threshold)
        n_known, n_unknown = _participants(comps, weights)
        people = participants_text(n_known, n_unknown)
        unit = "" if scale.ratio else f" {scale.unit}"
        # the protocol's measure (OR for responders), not always "RR"
        thr_txt = (f"{scale.measure} {fmt.ratio(math.exp(-imp))} or {fmt.ratio(math.exp(imp))}"
                   if scale.ratio else f"±{threshold:g}{unit}" if threshold is not None else None)
        if imp is not None and lo <= -imp and hi >= imp:
            downs.append(Downgrade("imprecision", 2, f"the CI includes both an important benefit and "
                                   f"an important harm ({thr_txt}); {people}"))
        elif lo < 0 < hi:
            why = "the CI includes no effect"
            if imp is not None and (hi >= imp or lo <= -imp):
                # name the side the CI reaches: benefit is sign * effect >= imp
                side, edge = ("benefit", scale.sign * imp) if hi >= imp else ("harm", -scale.sign * imp)
                edge_txt = (f"{scale.measure} {fmt.ratio(math.exp(edge))}" if scale.ratio
                            else f"{_n(edge, 1)}{unit}")
                why += f" and an important {side} ({edge_txt})"
            downs.append(Downgrade("imprecision", 1, f"{why}; {people}"))
        elif against == "mcid" and imp is not None and (lo < imp < hi or lo < -imp < hi):
            downs.append(Downgrade("imprecision", 1, f"the CI includes both trivial and important "
                                   f"effects (MCID {thr_txt}); {people}"))
        elif fit.k < 2:
            downs.append(Downgrade("imprecision", 1, f"a single trial; {people}"))
        else:
            if scale.ratio:
                ois, pc = _ois_binary(comps, weights)
                ois_txt = (f"the optimal information size of {ois} for a 25% relative risk reduction "
                           f"from a control risk of {_n(100 * pc, 0)}%") if ois else None
            else:
                ois, ois_txt = OIS_CONTINUOUS, f"the optimal information size of about {OIS_CONTINUOUS} for a continuous outcome"
            if ois and n_known < ois:
                downs.append(Downgrade("imprecision", 1, f"{people}, below {ois_txt}"))
            elif ois:
                notes.append(f"imprecision not downgraded: {people}, reaching {ois_txt}")

    # publication and availability bias
    if "publication bias" not in skip:
        why = []
        av = availability or {}
        te, tm = av.get("trials_eligible"), av.get("trials_missing")
        if te and tm:
            share = tm / te
            pm = av.get("participants_missing")
            n_known, _ = _participants(comps, weights)
            ptxt = ""
            pshare = None
            if pm:
                pshare = pm / (pm + n_known) if pm + n_known else None
                ptxt = (f" ({'at least ' if av.get('missing_n_unknown', 1) else ''}"
                        f"{int(pm)} participants)")
            dirs = [(av.get("missing_favour_probiotic"), "favour probiotic"),
                    (av.get("missing_favour_control"), "favour control"),
                    # the count joins trials whose file records no direction
                    # with those reporting no difference: say both, claim neither
                    (av.get("missing_no_direction"),
                     "with no direction recorded or no difference reported")]
            dtxt = ", ".join(f"{int(n)} {t}" for n, t in dirs if n)
            txt = (f"{tm} of {te} eligible trials{ptxt} have no usable data for this outcome"
                   + (f" ({dtxt})" if dtxt else "; the direction of their results is not recorded"))
            if share > AVAILABILITY_SHARE or (pshare is not None and pshare > AVAILABILITY_SHARE):
                why.append(txt)
            else:
                notes.append("availability not downgraded: " + txt)
        # Egger's test belongs to the set it was run on (the main analysis): a
        # claim on a subset (k = 6 of 23) or on another outcome (adverse events)
        # must not inherit it, and a subset below the minimum k is not testable.
        own = small_study.get("k", fit.k) == fit.k
        if small_study.get("assessed") and own:
            eg = small_study["egger"]
            if eg.pval < EGGER_P:
                why.append(f"Egger's test {_peq(eg.pval)} (funnel plot asymmetry)")
        elif small_study.get("reason") and own:
            notes.append("small-study effects not tested: " + small_study["reason"])
        elif small_study:
            min_k = getattr(proto, "small_study_min_k", None)
            notes.append(f"small-study effects not tested on this set of k = {fit.k} trials"
                         + (f" (< {min_k}: funnel plot asymmetry tests are not meaningful)"
                            if min_k is not None and fit.k < min_k else
                            f" (Egger's test was run on the main analysis, k = {small_study['k']})"))
        if why:
            downs.append(Downgrade("publication bias", 1, "; ".join(why)))

    total_down = sum(d.levels for d in downs)
    level = LEVELS[max(0, 3 - total_down)]
    return level, tuple(downs)


def certainty_statement(level, fit, scale, label, threshold=None):
    """GRADE's informative statement, direction-aware ("probably reduces")."""
    if level is None:
        return None
    if level == "very low":
        return f"The evidence is very uncertain about the effect of probiotics on {label} (very low certainty)."
    imp = scale.important(threshold) if not scale.ratio else None
    if imp is not None and abs(fit.estimate) < imp:
        phrase = TRIVIAL[level]
    else:
        phrase = VERBS[level].format(v="reduce" if fit.estimate < 0 else "increase")
    return f"Probiotics {phrase} {label} ({level} certainty)."


# ----------------------------------------------------------------------------
# ICEMAN


def iceman(proto, modifier, p_interaction, k, n_modifiers, slope_p=None, cut_points=None,
           *, applicable=True, why_not=None):
    """ICEMAN credibility of a between-trial effect modifier (Schandelmaier et
    al. 2020, CMAJ 192:E901).

    ``k`` counts the trials in the strata that enter the test. The rating
    starts at moderate (between-trial comparisons only), is very low when
    chance is a likely explanation (p >= 0.05), one level lower when chance
    is only "probably" excluded (0.01 <= p < 0.05) and one level lower with
    fewer than :data:`ICEMAN_MIN_TRIALS` trials. When the comparison cannot be
    made every item is "not applicable".
    """
    if not applicable:
        note = why_not or "the between-stratum comparison cannot be made"
        names = ["within_vs_between_trial", "number_of_trials", "a_priori_direction",
                 "chance_unlikely", "few_modifiers_tested"] + (["arbitrary_cut_points_avoided"]
                                                               if cut_points else [])
        return {"rating": "not applicable",
                "items": {nm: {"response": "not applicable", "note": "no comparison was made"}
                          for nm in names},
                "note": note}
    items = {
        "within_vs_between_trial": ("definitely no", "a between-trial comparison only (trials differ in many ways besides the modifier)"),
        "number_of_trials": ("probably yes" if k >= ICEMAN_MIN_TRIALS else "definitely no",
                             f"{k} trials in the compared strata"),
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
    steps = 2  # index in LEVELS: moderate
    if chance[0] == "definitely no":
        steps = 0
    else:
        if chance[0] == "probably no":
            steps -= 1
        if k < ICEMAN_MIN_TRIALS:
            steps -= 1
    rating = LEVELS[max(0, steps)]
    return {"rating": rating,
            "items": {name: {"response": r, "note": note} for name, (r, note) in items.items()},
            "note": "between-trial effect modification can be rated at most moderate"}


# ----------------------------------------------------------------------------
# the rule, applied once for every claim

def _decide(claim, criterion, detail, certainty_used, basis, *, reasons, figures,
            certainty=None, downgrades=(), statement=None, grade_notes=(), iceman_=None,
            studies=(), missing=()):
    """Apply :func:`apply_rule` and write the summary and rule lines from the
    judged values, so that every sentence agrees with the verdict."""
    verdict = apply_rule(criterion, certainty_used)
    judgement = {"rule": RULE_ID, "criterion": criterion, "criterion_detail": detail,
                 "certainty": certainty_used, "certainty_basis": basis}
    summary = claims_text.verdict_summary(verdict, judgement)
    return ClaimVerdict(claim.id, claim.wording, claim.source, claim.finding, claim.operational,
                        verdict, summary, tuple(reasons) + claims_text.rule_lines(verdict, judgement),
                        figures, certainty=certainty, certainty_statement=statement,
                        downgrades=tuple(downgrades), iceman=iceman_, studies=tuple(studies),
                        missing=tuple(missing), judgement=judgement, grade_notes=tuple(grade_notes))


def _not_evaluable(claim, detail, scale, *, fit=None, figures=None, reasons=(), missing=(),
                   studies=(), iceman_=None):
    figs = dict(figures) if figures is not None else _fig(fit, scale)
    return _decide(claim, "not evaluable", detail, None, "no comparison", reasons=reasons,
                   figures=figs, iceman_=iceman_, studies=studies, missing=missing)


# ----------------------------------------------------------------------------
# claim types


def _judge_effect(claim, inp, proto, scale, small, sens, sens_skipped=False):
    f = inp.target.overall
    lo, hi = scale.benefit_ci(f)
    b = scale.benefit(f.estimate)
    thr = claim.threshold if claim.threshold is not None else proto.mcid
    ci = fmt.ci_label(proto.model.alpha)
    null = scale.null_txt()
    desc = scale.describe(f)
    reasons = [desc]
    if thr is not None and not scale.ratio:
        reach = ("the point estimate reaches" if abs(b) >= thr else "the point estimate is below") + \
            f" the MCID of {thr:g} {scale.unit}" + (
                "; the whole CI lies beyond it" if (lo >= thr or hi <= -thr) else
                "; the CI lies within ±MCID" if (-thr < lo and hi < thr) else "; the CI includes it")
        reasons.append(reach)
    against = "mcid" if claim.finding == "no_effect" else "null"
    notes: list = []
    level, downs = grade(f, inp.comps, proto, scale, small, thr, availability=inp.availability,
                         against=against, notes=notes)
    basis, used = "GRADE certainty", level
    if claim.finding in ("benefit", "harm"):
        want = 1 if claim.finding == "benefit" else -1
        if (want == 1 and lo > 0) or (want == -1 and hi < 0):
            crit, detail = "met", f"the {ci} excludes no effect ({null}) in the claimed direction"
        elif (want == 1 and hi < 0) or (want == -1 and lo > 0):
            crit, detail = "opposite", f"the {ci} excludes no effect ({null}) in the opposite direction"
        else:
            crit, detail = "neither", f"the {ci} includes no effect ({null})"
    elif claim.finding == "no_effect":
        if thr is None:
            raise ValueError(f"claim {claim.id}: 'no_effect' needs a threshold or the protocol mcid")
        imp = scale.important(thr)
        ttxt = (f"{scale.measure} {fmt.ratio(math.exp(-imp))} to {fmt.ratio(math.exp(imp))}"
                if scale.ratio
                else f"±{thr:g} {scale.unit}".rstrip())
        if -imp < lo and hi < imp:
            crit, detail = "met", f"the whole {ci} lies within {ttxt}: no important difference"
        elif lo >= imp or hi <= -imp:
            crit, detail = "opposite", f"the whole {ci} lies beyond the important difference ({ttxt})"
        elif lo > 0 or hi < 0:
            crit, detail = "neither", (f"the {ci} excludes no effect ({null}) but spans both trivial "
                                       f"and important differences ({ttxt})")
        else:
            crit, detail = "neither", (f"the {ci} includes both no effect ({null}) and an important "
                                       f"difference ({ttxt})")
    else:  # not_robust: the claim is about certainty, which is part of its criterion
        fails = []
        if not lo > 0:
            fails.append(f"the main analysis {ci} includes no effect ({null})")
        for a in sens:
            if a.result is None:
                continue
            sl, _ = scale.benefit_ci(a.result.overall)
            if not sl > 0:
                fails.append(f"'{a.name}' {ci} includes no effect")
        if sens_skipped:
            # the sensitivity analyses are fitted on the whole protocol set:
            # robustness of this subset was not checked, so it is not shown
            fails.append("no sensitivity analysis was run on this target "
                         f"({len(inp.comps)} of the protocol's trials)")
        if level in ("low", "very low"):
            fails.append(f"GRADE certainty is {level}")
        if fails:
            crit, detail = "met", "a robust benefit is not shown: " + "; ".join(fails)
        else:
            crit, detail = "opposite", ("the benefit survives every sensitivity analysis with at least "
                                        "moderate GRADE certainty")
        basis, used = ("certainty not applied twice: the claim is about the certainty, which its "
                       "criterion includes"), None
    reasons += [f"in the target but not analysed: {sid} ({why})" for sid, why in inp.waiting]
    stmt = certainty_statement(level, f, scale, proto.outcome.label, thr)
    return _decide(claim, crit, detail, used, basis, reasons=reasons, figures=_fig(f, scale),
                   certainty=level, downgrades=downs, statement=stmt, grade_notes=notes,
                   studies=[s.study for s in f.studies])


def _judge_heterogeneity(claim, inp, proto, scale, small):
    f = inp.target.overall
    if f.k < 3:
        return _not_evaluable(claim, f"k = {f.k}: heterogeneity cannot be judged with fewer than 3 trials",
                              scale, fit=f, studies=[s.study for s in f.studies])
    pi_cross = f.pi_lb is not None and f.pi_lb < scale.null < f.pi_ub
    pos = sum(scale.benefit(s.yi) > 0 for s in f.studies)
    neg = sum(scale.benefit(s.yi) < 0 for s in f.studies)
    both = pos > 0 and neg > 0
    pi = fmt.pi_label(proto.model.alpha)
    reasons = [scale.describe(f), f"τ² = {_n(f.tau2, 2)}, Q = {_n(f.Q, 2)} (df = {f.Q_df}, {_peq(f.Q_p)})",
               f"{pos} trial(s) favour probiotic, {neg} favour control"]
    if pi_cross and (f.I2 >= 50 or both):
        crit = "met"
        detail = (f"the {pi} crosses no effect ({scale.null_txt()})"
                  + (f" with I² = {_n(f.I2, 0)}%" if f.I2 >= 50 else "")
                  + (" and trials point both ways" if both else ""))
    elif f.I2 < 25 and not pi_cross:
        crit, detail = "opposite", f"I² = {_n(f.I2, 0)}% and the {pi} excludes no effect: consistent results"
    else:
        crit, detail = "neither", (f"I² = {_n(f.I2, 0)}% and the {pi} "
                                   f"{'crosses' if pi_cross else 'excludes'} no effect")
    notes = ["inconsistency not rated: it is what the claim asserts (not held against it)"]
    level, downs = grade(f, inp.comps, proto, scale, small, proto.mcid, availability=inp.availability,
                         skip=("inconsistency",), notes=notes)
    # The level without inconsistency rates the claim that results are mixed,
    # not the pooled effect: GRADE's statement about the effect ("may result in
    # little to no difference", low) would contradict the effect's own rating
    # (very low with inconsistency) that the other claims and the Summary of
    # Findings give for the same estimate. Say what was rated, and give both.
    effect_level, _ = grade(f, inp.comps, proto, scale, small, proto.mcid,
                            availability=inp.availability)
    notes.append(f"GRADE certainty of the pooled effect itself, inconsistency rated: {effect_level}")
    statement = (f"Certainty of the evidence that the results on {proto.outcome.label} vary between "
                 f"trials: {level} (GRADE without the inconsistency domain, which is what the "
                 "claim asserts).")
    reasons += [f"in the target but not analysed: {sid} ({why})" for sid, why in inp.waiting]
    fig = {**_fig(f, scale), "Q": f.Q, "Q_p": f.Q_p, "trials_favouring_probiotic": pos,
           "trials_favouring_control": neg}
    return _decide(claim, crit, detail, level, "GRADE certainty (without inconsistency)",
                   reasons=reasons, figures=fig, certainty=level, downgrades=downs,
                   statement=statement, grade_notes=notes, studies=[s.study for s in f.studies])


def _strata_line(res, scale):
    return "; ".join(f"{lvl}: {scale.describe(f)}" for lvl, f in res.subgroups)


#: Levels that say a trial could not be classified (the pipeline's
#: UNCLASSIFIED_LEVELS; claims does not import the pipeline).
_UNCLASSIFIED = frozenset({"unclassified", "unknown", strains.UNSPECIFIED})


def _not_compared(counts, tested, minimum, named):
    """'level (k = n: why)' for each stratum shown but not in the test, with
    the reason that applies to it, not a list of possible reasons."""
    out = []
    for lvl, k in counts.items():
        if lvl in tested:
            continue
        if lvl in _UNCLASSIFIED:
            why = "unclassified, never compared"
        elif k < minimum:
            why = f"below the protocol minimum of {minimum} trials"
        elif named and lvl not in named:
            why = "not named by the claim"
        else:
            why = "no other stratum with enough trials to compare it with"
        out.append(f"{lvl} (k = {k}: {why})")
    return out


def _judge_modification(claim, inp, proto, scale, small, regressions, n_modifiers):
    by = claim.modifier
    res = inp.by
    if res is None:
        return _not_evaluable(claim, f"no analysis possible: {inp.by_note}", scale)
    counts = {lvl: f.k for lvl, f in res.subgroups}
    named = list(claim.expected_benefit_in) + list(claim.expected_no_effect_in)
    minimum = proto.min_k_per_stratum
    between = inp.between
    tested = list(between["levels"]) if between else []
    shown_only = _not_compared(counts, tested, minimum, named)
    if named:
        missing = [s for s in named if counts.get(s, 0) < minimum]
    else:
        big = [lvl for lvl, k in counts.items() if k >= minimum and lvl in tested]
        missing = [] if len(big) >= 2 else [f"at least two {by} strata with {minimum}+ trials (have: "
                                            + ", ".join(f"{l} {k}" for l, k in counts.items()) + ")"]
    strata_txt = _strata_line(res, scale)
    figures = {"subgroups": {lvl: _fig(f, scale) for lvl, f in res.subgroups},
               "Q_between": between["Q"] if between else None,
               "Q_between_df": between["df"] if between else None,
               "Q_between_p": between["p"] if between else None,
               "tested_strata": tested, "trials_per_stratum": counts,
               "between_test": between["method"] if between else None}
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
    if missing or between is None:
        why = (f"too few trials in the strata the claim needs ({', '.join(missing)}; need "
               f"{minimum} per stratum); trials per {by} stratum: "
               + ", ".join(f"{l} {k}" for l, k in counts.items())) if missing else \
            "no test for subgroup differences could be computed"
        ice = iceman(proto, by, None, 0, n_modifiers, None, cut, applicable=False,
                     why_not="the between-stratum comparison cannot be made: " + why)
        reasons = [strata_txt]
        if shown_only:
            reasons.append("strata shown but not compared: " + ", ".join(shown_only))
        return _not_evaluable(claim, why, scale, figures=figures, reasons=reasons, missing=missing,
                              studies=[s.study for s in res.overall.studies], iceman_=ice)
    p = between["p"]
    k_tested = sum(counts[l] for l in tested)
    ice = iceman(proto, by, p, k_tested, n_modifiers, slope_p, cut)
    reasons = [strata_txt, f"test for subgroup differences over {', '.join(tested)}: "
                           f"Q = {_n(between['Q'], 2)}, df = {between['df']}, {_peq(p)} "
                           f"({between['method']})"]
    if shown_only:
        reasons.append("strata shown but not compared: " + ", ".join(shown_only))
    if "slope_baseline" in figures and "beta" in figures["slope_baseline"]:
        sb = figures["slope_baseline"]
        reasons.append(f"meta-regression on baseline severity: slope {_n(sb['beta'], 2)} per point "
                       f"[{_n(sb['ci_lb'], 2)}, {_n(sb['ci_ub'], 2)}], {_peq(sb['pval'])} (k = {sb['k']})")
    elif "slope_baseline" in figures:
        reasons.append("meta-regression on baseline severity: " + figures["slope_baseline"]["note"])
    reasons.append("significance within single strata is not used: only the interaction test decides")
    named_dir = bool(claim.expected_benefit_in and claim.expected_no_effect_in)
    direction_ok = True
    if named_dir:
        fits = dict(res.subgroups)
        b_in = np.mean([scale.benefit(fits[s].estimate) for s in claim.expected_benefit_in])
        b_out = np.mean([scale.benefit(fits[s].estimate) for s in claim.expected_no_effect_in])
        direction_ok = b_in > b_out
    alpha = proto.model.alpha
    if p is not None and p < alpha and direction_ok:
        crit = "met"
        detail = (f"the test for subgroup differences gives {_peq(p)} and the difference goes the "
                  "claimed way" if named_dir else f"the test for subgroup differences gives {_peq(p)}")
    elif p is not None and p < alpha:
        crit, detail = "opposite", f"the strata differ ({_peq(p)}) in the opposite direction"
    else:
        crit, detail = "neither", (f"the test for subgroup differences gives {_peq(p)}: no "
                                   f"difference between {by} strata is shown")
    notes: list = []
    level, downs = grade(res.overall, inp.comps, proto, scale, small, proto.mcid,
                         availability=inp.availability, notes=notes)
    return _decide(claim, crit, detail, ice["rating"], "ICEMAN credibility of the effect modification",
                   reasons=reasons, figures={**_fig(res.overall, scale), **figures},
                   certainty=level, downgrades=downs, grade_notes=notes, iceman_=ice,
                   statement=certainty_statement(level, res.overall, scale, proto.outcome.label, proto.mcid),
                   studies=[s.study for s in res.overall.studies])


def _judge_in_strata(claim, inp, proto, scale, small):
    res = inp.by
    if res is None:
        return _not_evaluable(claim, f"no analysis possible: {inp.by_note}", scale)
    fits = dict(res.subgroups)
    minimum = proto.min_k_per_stratum
    missing = [s for s in claim.expected_benefit_in if fits.get(s) is None or fits[s].k < minimum]
    figures = {"subgroups": {lvl: _fig(f, scale) for lvl, f in res.subgroups},
               "Q_between_p": inp.between["p"] if inp.between else None}
    txt = _strata_line(res, scale)
    if missing:
        return _not_evaluable(claim, f"too few trials in {', '.join(missing)} (need {minimum} per "
                                     "stratum)", scale, figures=figures, reasons=[txt],
                              missing=missing, studies=[s.study for s in res.overall.studies])
    ci = fmt.ci_label(proto.model.alpha)
    cis = {s: scale.benefit_ci(fits[s]) for s in claim.expected_benefit_in}
    if all(lo > 0 for lo, _ in cis.values()):
        crit, detail = "met", f"the {ci} excludes no effect in favour of probiotics in every named stratum"
    elif any(hi < 0 for _, hi in cis.values()):
        crit, detail = "opposite", f"in at least one named stratum the {ci} excludes no effect in favour of control"
    else:
        crit, detail = "neither", f"in at least one named stratum the {ci} includes no effect"
    # the certainty of the weakest named stratum bounds the claim
    grades = []
    for s in claim.expected_benefit_in:
        notes: list = []
        lv, dn = grade(fits[s], inp.strata_comps.get(s, ()), proto, scale, small, proto.mcid,
                       notes=notes)
        grades.append((LEVELS.index(lv), s, lv, dn, notes))
    _, s_low, level, downs, notes = min(grades)
    downs = tuple(Downgrade(d.domain, d.levels, f"{s_low}: {d.reason}") for d in downs)
    return _decide(claim, crit, detail, level, f"GRADE certainty of the weakest named stratum ({s_low})",
                   reasons=[txt], figures={**_fig(res.overall, scale), **figures},
                   certainty=level, downgrades=downs, grade_notes=[f"{s_low}: {n}" for n in notes],
                   statement=certainty_statement(level, fits[s_low], scale, proto.outcome.label, proto.mcid),
                   studies=[s.study for s in res.overall.studies])


class _HarmScale(_Scale):
    """Adverse events: RR, positive = more events with the probiotic."""

    def __init__(self, proto):
        super().__init__(proto)
        self.ratio, self.measure, self.sign, self.unit = True, "RR", 1.0, ""


def _judge_harms(claim, ae, comps, proto, small):
    scale = _HarmScale(proto)
    if ae is None or ae.result is None or ae.result.overall.k < 2:
        reason = ae.note if ae is not None and ae.note else "fewer than 2 trials report adverse events per arm"
        return _not_evaluable(claim, f"adverse events: {reason}; the data needed are adverse events "
                                     "(any, and serious) per arm", scale,
                              missing=("adverse events per arm",))
    f = ae.result.overall
    ci = fmt.ci_label(proto.model.alpha)
    if f.ci_lb > 0:
        crit, detail = "met", f"more adverse events with probiotics: the {ci} of the RR excludes 1"
    elif f.ci_ub < 0:
        crit, detail = "opposite", f"fewer adverse events with probiotics: the {ci} of the RR excludes 1"
    else:
        crit, detail = "neither", f"the {ci} of the RR includes 1"
    keys = set(ae.keys)
    notes: list = []
    # the small-study assessment is of the main outcome, not of adverse events
    level, downs = grade(f, [c for c in comps if c.key in keys], proto, scale, {}, None, notes=notes)
    return _decide(claim, crit, detail, level, "GRADE certainty", reasons=[scale.describe(f)],
                   figures=_fig(f, scale), certainty=level, downgrades=downs, grade_notes=notes,
                   statement=certainty_statement(level, f, scale, "adverse events"),
                   studies=[s.study for s in f.studies])


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


def judge_all(proto, comps, *, inputs, main=None, strata=(), regressions=(), sensitivity=(),
              loo=None, small_study=None, adverse_events=None, only=None, awaiting=None):
    """Judge every claim of the protocol from the pipeline's precomputed
    :class:`ClaimInput` per claim id; out-of-scope claims are listed with their reason."""
    scale = _Scale(proto)
    small = small_study or {}
    n_modifiers = len(proto.strata) + len(proto.meta_regression)
    out = []
    for claim in proto.claims:
        if only and claim.id != only:
            continue
        inp = inputs.get(claim.id) or ClaimInput()
        if claim.finding == "harms":
            out.append(_judge_harms(claim, adverse_events, comps, proto, small))
            continue
        if claim.finding == "effect_modification":
            v = _judge_modification(claim, inp, proto, scale, small, regressions, n_modifiers)
            out.append(_name_awaiting(v, claim, awaiting or {}))
            continue
        if claim.finding == "benefit_in_strata":
            out.append(_name_awaiting(_judge_in_strata(claim, inp, proto, scale, small), claim,
                                      awaiting or {}))
            continue
        if len(inp.comps) < proto.min_k_per_stratum:
            out.append(_not_evaluable(claim, f"{len(inp.comps)} trial(s) in the target "
                                             f"({inp.target_text}); at least "
                                             f"{proto.min_k_per_stratum} are needed", scale,
                                      missing=(inp.target_text,), studies=[c.key for c in inp.comps]))
            continue
        if inp.target is None:
            out.append(_not_evaluable(claim, f"no analysis possible: {inp.target_note}", scale))
            continue
        if claim.finding == "heterogeneity":
            v = _judge_heterogeneity(claim, inp, proto, scale, small)
        else:
            whole = len(inp.comps) == len(comps)
            v = _judge_effect(claim, inp, proto, scale, small, sensitivity if whole else (),
                              sens_skipped=bool(sensitivity) and not whole)
        out.append(v)
    for oos in proto.out_of_scope:
        if only and oos.id != only:
            continue
        out.append(ClaimVerdict(oos.id, oos.wording, oos.source, "out of scope", "",
                                "out of scope", oos.reason, (oos.reason,), {}, in_scope=False))
    return tuple(out)
