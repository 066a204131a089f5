"""Stage 4: judge each protocol claim from fits the pipeline has already made.

``claims`` only judges: every fit a claim needs (its target subset, the
target split by the claim's modifier, the between-stratum test over strata
with enough trials, the availability of eligible trials) is computed by
:mod:`metaanalysis.analysis.pipeline` and handed over as a :class:`ClaimInput`.
Nothing here fits a model, imports the pipeline or writes a sentence: every
reason, criterion detail, GRADE downgrade, ICEMAN item and certainty
statement is recorded as a :class:`Reason` (a kind and the numbers and
labels behind it), and :mod:`metaanalysis.render.claims_text` writes the
text from it (issue 16: claims judge, render formats).

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

Each verdict records the judged values (:class:`Judgement`: criterion, its
detail, the certainty used and its basis) so that the verdict can be
recomputed with :func:`apply_rule` and checked against its reasons.

GRADE certainty starts at high (randomised trials) and is downgraded for
risk of bias, inconsistency, indirectness, imprecision and publication /
availability bias, each with its reason; the certainty statement uses
GRADE's informative wording (Santesso et al. 2020, GRADE guidance 26).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from metaanalysis.stats.results import RATIO_MEASURES
from metaanalysis.studies import strains

#: Identifier of the verdict rule; results.json, claims.md and the report carry
#: it (its wording is ``render.claims_text.RULE_TEXT``).
RULE_ID = "verdict-rule-1"
CRITERIA = ("met", "opposite", "neither", "not evaluable")

LEVELS = ("very low", "low", "moderate", "high")

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
#: Few candidate modifiers (ICEMAN item "a small number of effect modifiers
#: tested"): up to this many pre-specified, the answer is "probably yes".
ICEMAN_FEW_MODIFIERS = 5
#: ICEMAN's chance item: p below the first bound "definitely", below the second
#: "probably" excludes chance; below alpha 0.05 chance is "probably not" excluded.
ICEMAN_P_DEFINITELY = 0.005
ICEMAN_P_PROBABLY = 0.01
ICEMAN_P_CHANCE = 0.05


# ----------------------------------------------------------------------------
# records: what was judged, with the numbers behind it (render/ writes the text)


@dataclass(frozen=True)
class Reason:
    """One judged statement as data: a ``kind`` and the values it rests on.

    ``values`` holds numbers, labels (str), None, nested :class:`Reason`
    objects and tuples of those; never preformatted text with a number in
    it. :func:`metaanalysis.render.claims_text.reason_text` writes the
    sentence for each kind. The kind ``"text"`` holds a sentence read back
    from results.json (:meth:`ClaimVerdict.from_dict`).

    Examples
    --------
    >>> r = Reason.of("egger", p=0.03)
    >>> r.kind, r["p"]
    ('egger', 0.03)
    """

    kind: str
    values: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, kind: str, **values: Any) -> Reason:
        """A reason of ``kind``; lists and dicts among the values become tuples."""
        return cls(kind, tuple((k, _frozen(v)) for k, v in values.items()))

    @classmethod
    def text(cls, sentence: str) -> Reason:
        """A sentence already written (read back from results.json)."""
        return cls("text", (("text", sentence),))

    def __getitem__(self, name: str) -> Any:
        for k, v in self.values:
            if k == name:
                return v
        raise KeyError(name)

    def get(self, name: str, default: Any = None) -> Any:
        """The value called ``name``, or ``default``."""
        try:
            return self[name]
        except KeyError:
            return default


def _frozen(v: Any) -> Any:
    if isinstance(v, Mapping):
        return tuple((k, _frozen(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return tuple(_frozen(x) for x in v)
    return v


@dataclass(frozen=True)
class Downgrade:
    """One GRADE downgrade: the domain, by how many levels, and why."""

    domain: str
    levels: int
    reason: Reason

    @classmethod
    def from_dict(cls, d: Mapping) -> Downgrade:
        """From results.json's ``{"domain", "levels", "reason"}`` (reason as text)."""
        return cls(d["domain"], d["levels"], Reason.text(d["reason"]))


@dataclass(frozen=True)
class IcemanItem:
    """One ICEMAN item: its name, the response and the note behind it."""

    name: str
    response: str
    note: Reason


@dataclass(frozen=True)
class Iceman:
    """ICEMAN credibility of an effect modification (Schandelmaier et al. 2020)."""

    rating: str
    items: tuple[IcemanItem, ...]
    note: Reason

    def item(self, name: str) -> IcemanItem:
        """The item called ``name``."""
        return next(it for it in self.items if it.name == name)

    @classmethod
    def from_dict(cls, d: Mapping) -> Iceman:
        """From results.json's ``{"rating", "items": {name: {response, note}}, "note"}``."""
        return cls(d["rating"],
                   tuple(IcemanItem(name, it["response"], Reason.text(it["note"]))
                         for name, it in d["items"].items()),
                   Reason.text(d["note"]))


@dataclass(frozen=True)
class Judgement:
    """The judged values the verdict rule was applied to."""

    rule: str
    criterion: str
    detail: Reason
    certainty: str | None
    basis: Reason

    @classmethod
    def from_dict(cls, d: Mapping) -> Judgement:
        """From results.json's ``judgement`` (detail and basis as text)."""
        return cls(d.get("rule") or RULE_ID, d.get("criterion") or "not evaluable",
                   Reason.text(d.get("criterion_detail") or ""), d.get("certainty"),
                   Reason.text(d.get("certainty_basis") or ""))


@dataclass(frozen=True)
class Scale:
    """Effects expressed so that positive means benefit of the probiotic.

    ``ratio``: the measure is analysed on the log scale; ``sign``: -1 when a
    lower outcome is better; ``alpha``: 1 - the nominal coverage of the CIs.
    """

    measure: str
    ratio: bool
    sign: float
    unit: str
    alpha: float

    null = 0.0

    @classmethod
    def of(cls, proto: Any) -> Scale:
        """The scale of a protocol's outcome and model."""
        measure = proto.model.measure
        # log-scale measures (ROM too, should a protocol judge claims on it)
        return cls(measure, measure in RATIO_MEASURES,
                   -1.0 if proto.outcome.lower_is_better else 1.0, proto.outcome.unit,
                   proto.model.alpha)

    @classmethod
    def harms(cls, proto: Any) -> Scale:
        """Adverse events: RR, positive = more events with the probiotic."""
        return cls("RR", True, 1.0, "", proto.model.alpha)

    def benefit_ci(self, f: Any) -> tuple[float, float]:
        """The CI of fit ``f`` as benefit (low, high)."""
        a, b = self.sign * f.ci_lb, self.sign * f.ci_ub
        return min(a, b), max(a, b)

    def benefit(self, x: float) -> float:
        """An effect as benefit of the probiotic."""
        return self.sign * x

    def important(self, threshold: float | None) -> float | None:
        """The important-effect threshold on the analysis scale (log for ratios)."""
        if self.ratio:
            if threshold is None or threshold <= 0 or threshold == 1:
                return math.log(RATIO_IMPORTANT)
            return abs(math.log(threshold))  # 0.8 and 1.25 name the same threshold
        return threshold


def apply_rule(criterion: str, certainty: str | None) -> str:
    """The verdict rule (:data:`RULE_ID`) as a function of the judged values.

    Parameters
    ----------
    criterion : {"met", "opposite", "neither", "not evaluable"}
    certainty : {"very low", "low", "moderate", "high"} or None
        The certainty for what the claim is about; None when the rule does
        not apply a certainty (claims about the certainty itself).

    Returns
    -------
    str
        One of "supported", "contradicted", "inconclusive", "insufficient evidence".

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
    """One claim judged: the verdict, the judged values and every record behind them.

    ``reasons`` are followed by the criterion and rule lines only once
    rendered (:func:`metaanalysis.render.claims_text.reason_lines`), then by
    ``awaiting``: the trials in a missing stratum without usable data (for
    an insufficient-evidence verdict, after the rule that decided it); ``scale`` is
    what the numbers in the records are on (None when read back from
    results.json, whose records are text). ``scope_note`` is an
    out-of-scope claim's reason (then ``judgement`` is None).
    """

    id: str
    wording: str
    source: str
    finding: str
    operational: str
    verdict: str
    judgement: Judgement | None
    reasons: tuple[Reason, ...]
    figures: dict
    certainty: str | None = None
    statement: Reason | None = None
    downgrades: tuple[Downgrade, ...] = ()
    iceman: Iceman | None = None
    studies: tuple[str, ...] = ()
    missing: tuple[str | Reason, ...] = ()
    in_scope: bool = True
    grade_notes: tuple[Reason, ...] = ()
    scale: Scale | None = None
    scope_note: str | None = None
    awaiting: tuple[Reason, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping) -> ClaimVerdict:
        """Rebuild a verdict from one entry of results.json's ``claims``.

        The texts results.json holds become ``Reason.text`` records; the
        criterion and rule lines among ``reasons`` are dropped (they are
        written again from the judgement); the lines after them are ``awaiting``.
        """
        j = Judgement.from_dict(d["judgement"]) if d.get("judgement") else None
        reasons = list(d.get("reasons") or [])
        after: list[str] = []
        rule = None
        if j is not None:
            rule = next((i for i in range(len(reasons) - 1, 0, -1)
                         if reasons[i].startswith(j.rule + ": criterion ")
                         and reasons[i - 1].startswith("statistical criterion: ")), None)
        if rule is not None:
            reasons, after = reasons[:rule - 1], reasons[rule + 1:]
        stmt = d.get("certainty_statement")
        return cls(
            d["id"], d.get("wording") or "", d.get("source") or "", d.get("finding") or "",
            d.get("operational") or "", d["verdict"], j, tuple(Reason.text(r) for r in reasons),
            dict(d.get("figures") or {}),
            certainty=d.get("certainty"),
            statement=Reason.text(stmt) if stmt is not None else None,
            downgrades=tuple(Downgrade.from_dict(x) for x in d.get("downgrades") or ()),
            iceman=Iceman.from_dict(d["iceman"]) if d.get("iceman") else None,
            studies=tuple(d.get("studies") or ()),
            missing=tuple(d.get("missing") or ()), in_scope=d.get("in_scope", True),
            grade_notes=tuple(Reason.text(n) for n in d.get("grade_notes") or ()),
            scope_note=d.get("summary") if j is None else None,
            awaiting=tuple(Reason.text(r) for r in after))


def _fit_reason(f: Any, test: str | None = None) -> Reason:
    """A pooled fit as a reason: k, estimate, CI, PI, I² and how it was tested."""
    return Reason.of("fit", k=f.k, estimate=f.estimate, ci_lb=f.ci_lb, ci_ub=f.ci_ub,
                     pi_lb=f.pi_lb, pi_ub=f.pi_ub, I2=f.I2, method=f.method,
                     test=f.test if test is None else test)


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
#: The kinds of indirectness a reason names (render/claims_text words them).
INDIRECT_KINDS = ("active", "heat_killed", "non_standard_outcome")
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


def _get(c: Any, name: str) -> Any:
    """An attribute of a comparison, or a key of its results.json dict."""
    return c.get(name) if isinstance(c, Mapping) else getattr(c, name, None)


def participants(comps: Iterable, keys: Iterable[str] | None = None) -> tuple[int, tuple[str, ...]]:
    """Participants in an analysis and the trials whose n is not known.

    The one counting rule for GRADE's imprecision and the Summary of Findings
    (render/sof.py shows it). The per-comparison n (``n_total``, the arms'
    analysed n) where known; a trial without per-arm n adds its quoted total
    (``n_trial_total``, studies/README.md ``trial_total``) once, and only
    when the analysis uses every arm that total spans: a total cannot be
    split by arm, so a stratum holding one arm of a three-arm trial counts
    that trial as unknown rather than guess its share.

    Parameters
    ----------
    comps : iterable of Comparison (or their results.json dicts)
        Duck-typed: key, study, n_total, n_trial_total, arm, control, trial_arms.
    keys : iterable of str, optional
        The comparison keys in the analysis (default: every comparison).

    Returns
    -------
    (n, unknown) : tuple[int, tuple[str, ...]]
        The participants counted and the trials (sorted ids) whose n is not known.
    """
    keys = None if keys is None else set(keys)
    sel = [c for c in comps if keys is None or _get(c, "key") in keys]
    trial = lambda c: _get(c, "study") or _get(c, "key")  # noqa: E731 (comps are duck-typed)
    known = sum(_get(c, "n_total") for c in sel if _get(c, "n_total"))
    arms: dict[str, set] = {}
    for c in sel:
        if not _get(c, "n_total") and _get(c, "n_trial_total"):
            arms.setdefault(trial(c), set()).update((_get(c, "arm"), _get(c, "control")))
    counted: set[str] = set()
    unknown: set[str] = set()
    for c in sel:
        sid = trial(c)
        if _get(c, "n_total") or sid in counted or sid in unknown:
            continue
        if sid in arms and arms[sid] >= set(_get(c, "trial_arms") or ()):
            known += _get(c, "n_trial_total")
            counted.add(sid)
        else:
            unknown.add(sid)
    return int(known), tuple(sorted(unknown))


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


def grade(fit: Any, comps: Sequence, proto: Any, scale: Scale, small_study: Mapping,
          threshold: float | None = None, *, availability: Mapping | None = None,
          against: str = "null", skip: Sequence[str] = (),
          notes: list | None = None) -> tuple[str, tuple[Downgrade, ...]]:
    """GRADE certainty for one pooled estimate, with the reason for each downgrade.

    Parameters
    ----------
    fit : FitResult
    comps : sequence of Comparison
        Duck-typed: key, flags, rob_overall, comparator, n_total, extraction.
    proto : Protocol
    scale : Scale
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
        Receives "considered, not downgraded" remarks as :class:`Reason`
        (e.g. partly unassessed RoB).

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
            why.append(Reason.of("rob_high", share=high))
        if some > 0:
            why.append(Reason.of("rob_some", share=some))
        if unassessed > 0:
            why.append(Reason.of("rob_unassessed", share=unassessed))
        if no_placebo > 0:
            why.append(Reason.of("rob_no_placebo", share=no_placebo))
        if integrity > MAJORITY:
            why.append(Reason.of("rob_integrity", share=integrity))
        if high > MAJORITY:
            downs.append(Downgrade("risk of bias", 2 if high + some >= 100 - 1e-9 and high > 75 else 1,
                                   Reason.of("parts", parts=why)))
        elif concern > MAJORITY or integrity > MAJORITY:
            downs.append(Downgrade("risk of bias", 1, Reason.of("parts", parts=why)))
        elif why:
            notes.append(Reason.of("rob_not_downgraded", parts=why))

    # inconsistency
    if "inconsistency" not in skip and fit.k >= 2 and fit.I2 is not None:
        pi_cross = fit.pi_lb is not None and fit.pi_lb < scale.null < fit.pi_ub
        ci_cross = fit.ci_lb < scale.null < fit.ci_ub
        signs = {np.sign(scale.benefit(s.yi)) for s in fit.studies
                 if (s.ci_lb > scale.null or s.ci_ub < scale.null)}
        if fit.I2 >= 75 and len(signs) > 1:
            downs.append(Downgrade("inconsistency", 2, Reason.of("inconsistency_both_ways", I2=fit.I2)))
        elif fit.I2 >= 50 or (pi_cross and not ci_cross and fit.I2 > I2_MAY_NOT_MATTER):
            downs.append(Downgrade("inconsistency", 1,
                                   Reason.of("inconsistency", I2=fit.I2, pi_cross=pi_cross)))
        elif pi_cross and not ci_cross:
            notes.append(Reason.of("inconsistency_not_downgraded", I2=fit.I2))

    # indirectness: only real indirectness
    if "indirectness" not in skip:
        kinds = lambda c: (set(c.flags) & INDIRECT_FLAGS) | (  # noqa: E731
            {"active"} if getattr(c, "comparator", None) == "active" else set())
        indirect = w(lambda c: bool(kinds(c)))
        # name the kinds present, not every kind there could be
        present = set().union(*[kinds(c) for c in comps if weights.get(c.key, 0) > 0] or [set()])
        what = tuple(sorted(present))
        if indirect > INDIRECT_SHARE:
            downs.append(Downgrade("indirectness", 1, Reason.of("indirect", share=indirect, kinds=what)))
        elif indirect > 0:
            notes.append(Reason.of("indirect_not_downgraded", share=indirect, kinds=what))

    # imprecision: against the MCID / important ratio and the OIS
    if "imprecision" not in skip:
        lo, hi = scale.benefit_ci(fit)
        imp = scale.important(threshold)
        n_known, n_unknown = participants(comps, weights)
        people = Reason.of("participants", n=n_known, unknown=len(n_unknown))
        if imp is not None and lo <= -imp and hi >= imp:
            downs.append(Downgrade("imprecision", 2, Reason.of(
                "imprecise_both", important=imp, threshold=threshold, people=people)))
        elif lo < 0 < hi:
            side = edge = None
            if imp is not None and (hi >= imp or lo <= -imp):
                # name the side the CI reaches: benefit is sign * effect >= imp
                side, edge = ("benefit", scale.sign * imp) if hi >= imp else ("harm", -scale.sign * imp)
            downs.append(Downgrade("imprecision", 1, Reason.of(
                "imprecise_null", side=side, edge=edge, people=people)))
        elif against == "mcid" and imp is not None and (lo < imp < hi or lo < -imp < hi):
            downs.append(Downgrade("imprecision", 1, Reason.of(
                "imprecise_trivial", important=imp, threshold=threshold, people=people)))
        elif fit.k < 2:
            downs.append(Downgrade("imprecision", 1, Reason.of("single_trial", people=people)))
        else:
            if scale.ratio:
                ois, pc = _ois_binary(comps, weights)
                ois_r = Reason.of("ois_binary", ois=ois, control_risk=pc) if ois else None
            else:
                ois = OIS_CONTINUOUS
                ois_r = Reason.of("ois_continuous", ois=ois)
            if ois and n_known < ois:
                downs.append(Downgrade("imprecision", 1, Reason.of("below_ois", people=people, ois=ois_r)))
            elif ois:
                notes.append(Reason.of("ois_reached", people=people, ois=ois_r))

    # publication and availability bias
    if "publication bias" not in skip:
        why = []
        av = availability or {}
        te, tm = av.get("trials_eligible"), av.get("trials_missing")
        if te and tm:
            share = tm / te
            pm = av.get("participants_missing")
            n_known, _ = participants(comps, weights)
            pshare = None
            if pm:
                pshare = pm / (pm + n_known) if pm + n_known else None
            r = Reason.of("unavailable", missing=tm, eligible=te, participants=int(pm) if pm else None,
                          at_least=bool(av.get("missing_n_unknown", 1)),
                          favour_probiotic=av.get("missing_favour_probiotic"),
                          favour_control=av.get("missing_favour_control"),
                          no_direction=av.get("missing_no_direction"))
            if share > AVAILABILITY_SHARE or (pshare is not None and pshare > AVAILABILITY_SHARE):
                why.append(r)
            else:
                notes.append(Reason.of("unavailable_not_downgraded", unavailable=r))
        # Egger's test belongs to the set it was run on (the main analysis): a
        # claim on a subset (k = 6 of 23) or on another outcome (adverse events)
        # must not inherit it, and a subset below the minimum k is not testable.
        own = small_study.get("k", fit.k) == fit.k
        if small_study.get("assessed") and own:
            eg = small_study["egger"]
            if eg.pval < EGGER_P:
                why.append(Reason.of("egger", p=eg.pval))
        elif small_study.get("reason") and own:
            notes.append(Reason.of("small_study_not_tested", why=small_study["reason"]))
        elif small_study:
            min_k = getattr(proto, "small_study_min_k", None)
            notes.append(Reason.of("small_study_not_on_subset", k=fit.k, min_k=min_k,
                                   below=min_k is not None and fit.k < min_k,
                                   main_k=small_study.get("k")))
        if why:
            downs.append(Downgrade("publication bias", 1, Reason.of("parts", parts=why)))

    total_down = sum(d.levels for d in downs)
    level = LEVELS[max(0, 3 - total_down)]
    return level, tuple(downs)


def certainty_statement(level: str | None, fit: Any, scale: Scale, label: str,
                        threshold: float | None = None) -> Reason | None:
    """GRADE's informative statement as a record, direction-aware ("probably reduces").

    Parameters
    ----------
    level : {"very low", "low", "moderate", "high"} or None
    fit : FitResult
        The estimate the statement is about.
    scale : Scale
    label : str
        The outcome's name.
    threshold : float, optional
        The MCID: an estimate within it is "little to no difference" (continuous only).

    Returns
    -------
    Reason or None
        Kind "statement" (level, label, trivial, direction); None without a level.
    """
    if level is None:
        return None
    imp = scale.important(threshold) if not scale.ratio else None
    trivial = level != "very low" and imp is not None and abs(fit.estimate) < imp
    return Reason.of("statement", level=level, label=label, trivial=trivial,
                     direction="reduce" if fit.estimate < 0 else "increase")


# ----------------------------------------------------------------------------
# ICEMAN

ICEMAN_ITEMS = ("within_vs_between_trial", "number_of_trials", "a_priori_direction",
                "chance_unlikely", "few_modifiers_tested")


def iceman(proto: Any, modifier: str, p_interaction: float | None, k: int, n_modifiers: int,
           slope_p: float | None = None, cut_points: Reason | None = None, *,
           applicable: bool = True, why_not: Reason | None = None) -> Iceman:
    """ICEMAN credibility of a between-trial effect modifier (Schandelmaier et
    al. 2020, CMAJ 192:E901).

    Parameters
    ----------
    proto : Protocol
    modifier : str
        The stratum name.
    p_interaction : float or None
        The test for subgroup differences (None: no test possible).
    k : int
        The trials in the strata that enter the test.
    n_modifiers : int
        Candidate modifiers the protocol pre-specifies.
    slope_p : float, optional
        p of the meta-regression on the continuous score, when cut points are rated.
    cut_points : Reason, optional
        Where the strata's cut points come from (adds the cut-point item).
    applicable : bool
        False when the comparison cannot be made: every item "not applicable".
    why_not : Reason, optional
        Why not applicable.

    Returns
    -------
    Iceman
        The rating starts at moderate (between-trial comparisons only), is
        very low when chance is a likely explanation (p >= 0.05), one level
        lower when chance is only "probably" excluded (0.01 <= p < 0.05) and
        one level lower with fewer than :data:`ICEMAN_MIN_TRIALS` trials.
    """
    names = ICEMAN_ITEMS + (("arbitrary_cut_points_avoided",) if cut_points else ())
    if not applicable:
        note = why_not or Reason.of("iceman_cannot")
        return Iceman("not applicable",
                      tuple(IcemanItem(nm, "not applicable", Reason.of("iceman_no_comparison"))
                            for nm in names), note)
    items = [
        ("definitely no", Reason.of("iceman_between_only")),
        ("probably yes" if k >= ICEMAN_MIN_TRIALS else "definitely no",
         Reason.of("iceman_trials", k=k)),
        ("probably yes", Reason.of("iceman_a_priori")),
    ]
    if p_interaction is None:
        chance = ("definitely no", Reason.of("iceman_no_test"))
    elif p_interaction < ICEMAN_P_DEFINITELY:
        chance = ("definitely yes", Reason.of("iceman_p", p=p_interaction))
    elif p_interaction < ICEMAN_P_PROBABLY:
        chance = ("probably yes", Reason.of("iceman_p", p=p_interaction))
    elif p_interaction < ICEMAN_P_CHANCE:
        chance = ("probably no", Reason.of("iceman_p", p=p_interaction))
    else:
        chance = ("definitely no", Reason.of("iceman_p", p=p_interaction))
    items.append(chance)
    items.append(("probably yes" if n_modifiers <= ICEMAN_FEW_MODIFIERS else "probably no",
                  Reason.of("iceman_modifiers", n=n_modifiers)))
    if cut_points:
        items.append(("probably yes" if slope_p is not None else "probably no",
                      Reason.of("iceman_cut_points", source=cut_points, slope_p=slope_p)))
    steps = 2  # index in LEVELS: moderate
    if chance[0] == "definitely no":
        steps = 0
    else:
        if chance[0] == "probably no":
            steps -= 1
        if k < ICEMAN_MIN_TRIALS:
            steps -= 1
    return Iceman(LEVELS[max(0, steps)],
                  tuple(IcemanItem(nm, r, note) for nm, (r, note) in zip(names, items)),
                  Reason.of("iceman_at_most_moderate"))


# ----------------------------------------------------------------------------
# the rule, applied once for every claim

def _decide(claim, criterion, detail, certainty_used, basis, *, scale, reasons, figures,
            certainty=None, downgrades=(), statement=None, grade_notes=(), iceman_=None,
            studies=(), missing=()):
    """Apply :func:`apply_rule` and record the judged values, from which
    render/ writes the summary and the rule lines, so that every sentence
    agrees with the verdict."""
    verdict = apply_rule(criterion, certainty_used)
    judgement = Judgement(RULE_ID, criterion, detail, certainty_used, basis)
    return ClaimVerdict(claim.id, claim.wording, claim.source, claim.finding, claim.operational,
                        verdict, judgement, tuple(reasons), figures, certainty=certainty,
                        statement=statement, downgrades=tuple(downgrades), iceman=iceman_,
                        studies=tuple(studies), missing=tuple(missing),
                        grade_notes=tuple(grade_notes), scale=scale)


def _not_evaluable(claim, detail, scale, *, fit=None, figures=None, reasons=(), missing=(),
                   studies=(), iceman_=None):
    figs = dict(figures) if figures is not None else _fig(fit, scale)
    return _decide(claim, "not evaluable", detail, None, Reason.of("basis_no_comparison"),
                   scale=scale, reasons=reasons, figures=figs, iceman_=iceman_, studies=studies,
                   missing=missing)


def _waiting(inp):
    return [Reason.of("waiting", study=sid, why=why) for sid, why in inp.waiting]


# ----------------------------------------------------------------------------
# claim types


def _judge_effect(claim, inp, proto, scale, small, sens, sens_skipped=False):
    f = inp.target.overall
    lo, hi = scale.benefit_ci(f)
    b = scale.benefit(f.estimate)
    thr = claim.threshold if claim.threshold is not None else proto.mcid
    reasons = [_fit_reason(f)]
    if thr is not None and not scale.ratio:
        where = ("beyond" if (lo >= thr or hi <= -thr) else
                 "within" if (-thr < lo and hi < thr) else "includes")
        reasons.append(Reason.of("mcid_reach", reaches=abs(b) >= thr, mcid=thr, ci=where))
    against = "mcid" if claim.finding == "no_effect" else "null"
    notes: list = []
    level, downs = grade(f, inp.comps, proto, scale, small, thr, availability=inp.availability,
                         against=against, notes=notes)
    basis, used = Reason.of("basis_grade"), level
    if claim.finding in ("benefit", "harm"):
        want = 1 if claim.finding == "benefit" else -1
        if (want == 1 and lo > 0) or (want == -1 and hi < 0):
            crit, detail = "met", Reason.of("ci_claimed_direction")
        elif (want == 1 and hi < 0) or (want == -1 and lo > 0):
            crit, detail = "opposite", Reason.of("ci_opposite_direction")
        else:
            crit, detail = "neither", Reason.of("ci_includes_null")
    elif claim.finding == "no_effect":
        if thr is None:
            raise ValueError(f"claim {claim.id}: 'no_effect' needs a threshold or the protocol mcid")
        imp = scale.important(thr)
        band = dict(important=imp, threshold=thr)
        if -imp < lo and hi < imp:
            crit, detail = "met", Reason.of("within_important", **band)
        elif lo >= imp or hi <= -imp:
            crit, detail = "opposite", Reason.of("beyond_important", **band)
        elif lo > 0 or hi < 0:
            crit, detail = "neither", Reason.of("excludes_null_spans_important", **band)
        else:
            crit, detail = "neither", Reason.of("includes_null_and_important", **band)
    else:  # not_robust: the claim is about certainty, which is part of its criterion
        fails = []
        if not lo > 0:
            fails.append(Reason.of("main_ci_includes_null"))
        for a in sens:
            if a.result is None:
                continue
            sl, _ = scale.benefit_ci(a.result.overall)
            if not sl > 0:
                fails.append(Reason.of("sensitivity_ci_includes_null", analysis=a.name))
        if sens_skipped:
            # the sensitivity analyses are fitted on the whole protocol set:
            # robustness of this subset was not checked, so it is not shown
            fails.append(Reason.of("no_sensitivity_on_target", k=len(inp.comps)))
        if level in ("low", "very low"):
            fails.append(Reason.of("grade_low", level=level))
        if fails:
            crit, detail = "met", Reason.of("not_robust", fails=fails)
        else:
            crit, detail = "opposite", Reason.of("robust")
        basis, used = Reason.of("basis_not_applied"), None
    reasons += _waiting(inp)
    stmt = certainty_statement(level, f, scale, proto.outcome.label, thr)
    return _decide(claim, crit, detail, used, basis, scale=scale, reasons=reasons,
                   figures=_fig(f, scale), certainty=level, downgrades=downs, statement=stmt,
                   grade_notes=notes, studies=[s.study for s in f.studies])


def _judge_heterogeneity(claim, inp, proto, scale, small):
    f = inp.target.overall
    if f.k < 3:
        return _not_evaluable(claim, Reason.of("too_few_for_heterogeneity", k=f.k), scale, fit=f,
                              studies=[s.study for s in f.studies])
    pi_cross = f.pi_lb is not None and f.pi_lb < scale.null < f.pi_ub
    pos = sum(scale.benefit(s.yi) > 0 for s in f.studies)
    neg = sum(scale.benefit(s.yi) < 0 for s in f.studies)
    both = pos > 0 and neg > 0
    reasons = [_fit_reason(f), Reason.of("heterogeneity", tau2=f.tau2, Q=f.Q, df=f.Q_df, p=f.Q_p),
               Reason.of("directions", favour_probiotic=pos, favour_control=neg)]
    if pi_cross and (f.I2 >= 50 or both):
        crit, detail = "met", Reason.of("mixed", I2=f.I2, I2_shown=f.I2 >= 50, both=both)
    elif f.I2 < 25 and not pi_cross:
        crit, detail = "opposite", Reason.of("consistent", I2=f.I2)
    else:
        crit, detail = "neither", Reason.of("mixed_neither", I2=f.I2, pi_cross=pi_cross)
    notes = [Reason.of("inconsistency_not_rated")]
    level, downs = grade(f, inp.comps, proto, scale, small, proto.mcid, availability=inp.availability,
                         skip=("inconsistency",), notes=notes)
    # The level without inconsistency rates the claim that results are mixed,
    # not the pooled effect: GRADE's statement about the effect ("may result in
    # little to no difference", low) would contradict the effect's own rating
    # (very low with inconsistency) that the other claims and the Summary of
    # Findings give for the same estimate. Say what was rated, and give both.
    effect_level, _ = grade(f, inp.comps, proto, scale, small, proto.mcid,
                            availability=inp.availability)
    notes.append(Reason.of("effect_level", level=effect_level))
    statement = Reason.of("statement_mixed", level=level, label=proto.outcome.label)
    reasons += _waiting(inp)
    fig = {**_fig(f, scale), "Q": f.Q, "Q_p": f.Q_p, "trials_favouring_probiotic": pos,
           "trials_favouring_control": neg}
    return _decide(claim, crit, detail, level, Reason.of("basis_grade_without_inconsistency"),
                   scale=scale, reasons=reasons, figures=fig, certainty=level, downgrades=downs,
                   statement=statement, grade_notes=notes, studies=[s.study for s in f.studies])


def _strata_reason(res):
    return Reason.of("strata", strata=tuple((lvl, _fit_reason(f)) for lvl, f in res.subgroups))


#: Levels that say a trial could not be classified (selection.UNCLASSIFIED_LEVELS;
#: importing it here instead reorders tests/test_layers.py's walk, which then names
#: the known schema/strains circle from its other end).
_UNCLASSIFIED = frozenset({"unclassified", "unknown", strains.UNSPECIFIED})


def _not_compared(counts, tested, minimum, named):
    """(level, k, why) for each stratum shown but not in the test, with the
    reason that applies to it, not a list of possible reasons; ``why`` is
    one of "unclassified", "below_minimum", "not_named", "no_partner"."""
    out = []
    for lvl, k in counts.items():
        if lvl in tested:
            continue
        if lvl in _UNCLASSIFIED:
            why = "unclassified"
        elif k < minimum:
            why = "below_minimum"
        elif named and lvl not in named:
            why = "not_named"
        else:
            why = "no_partner"
        out.append((lvl, k, why))
    return out


def _judge_modification(claim, inp, proto, scale, small, regressions, n_modifiers):
    by = claim.modifier
    res = inp.by
    if res is None:
        return _not_evaluable(claim, Reason.of("no_analysis", note=inp.by_note), scale)
    counts = {lvl: f.k for lvl, f in res.subgroups}
    named = list(claim.expected_benefit_in) + list(claim.expected_no_effect_in)
    minimum = proto.min_k_per_stratum
    between = inp.between
    tested = list(between["levels"]) if between else []
    shown_only = _not_compared(counts, tested, minimum, named)
    shown_r = Reason.of("not_compared", strata=shown_only, minimum=minimum)
    if named:
        missing = [s for s in named if counts.get(s, 0) < minimum]
    else:
        big = [lvl for lvl, k in counts.items() if k >= minimum and lvl in tested]
        missing = [] if len(big) >= 2 else [Reason.of("two_strata_needed", by=by, minimum=minimum,
                                                      counts=counts)]
    strata_r = _strata_reason(res)
    figures = {"subgroups": {lvl: _fig(f, scale) for lvl, f in res.subgroups},
               "Q_between": between["Q"] if between else None,
               "Q_between_df": between["df"] if between else None,
               "Q_between_p": between["p"] if between else None,
               "tested_strata": tested, "trials_per_stratum": counts,
               "between_test": between["method"] if between else None}
    slope_p = None
    cut = None
    if proto.severity is not None and any(s.name == by and s.field == "severity" for s in proto.strata):
        cut = Reason.of("severity_cut_points", source=proto.severity.bands_source)
        for name, reg, note, keys in regressions:
            if name == "baseline_score":
                if reg is not None:
                    slope_p = reg.pval[1]
                    figures["slope_baseline"] = {"beta": reg.beta[1], "ci_lb": reg.ci_lb[1],
                                                 "ci_ub": reg.ci_ub[1], "pval": reg.pval[1], "k": reg.k}
                else:
                    figures["slope_baseline"] = {"note": note}
    if missing or between is None:
        why = (Reason.of("too_few_in_strata", missing=missing, minimum=minimum, by=by, counts=counts)
               if missing else Reason.of("no_subgroup_test"))
        ice = iceman(proto, by, None, 0, n_modifiers, None, cut, applicable=False,
                     why_not=Reason.of("iceman_cannot", why=why))
        reasons = [strata_r]
        if shown_only:
            reasons.append(shown_r)
        return _not_evaluable(claim, why, scale, figures=figures, reasons=reasons, missing=missing,
                              studies=[s.study for s in res.overall.studies], iceman_=ice)
    p = between["p"]
    k_tested = sum(counts[l] for l in tested)
    ice = iceman(proto, by, p, k_tested, n_modifiers, slope_p, cut)
    reasons = [strata_r, Reason.of("subgroup_test", levels=tested, Q=between["Q"], df=between["df"],
                                   p=p, method=between["method"])]
    if shown_only:
        reasons.append(shown_r)
    if "slope_baseline" in figures and "beta" in figures["slope_baseline"]:
        sb = figures["slope_baseline"]
        reasons.append(Reason.of("baseline_slope", beta=sb["beta"], ci_lb=sb["ci_lb"],
                                 ci_ub=sb["ci_ub"], p=sb["pval"], k=sb["k"]))
    elif "slope_baseline" in figures:
        reasons.append(Reason.of("baseline_slope_note", note=figures["slope_baseline"]["note"]))
    reasons.append(Reason.of("interaction_decides"))
    named_dir = bool(claim.expected_benefit_in and claim.expected_no_effect_in)
    direction_ok = True
    if named_dir:
        fits = dict(res.subgroups)
        b_in = np.mean([scale.benefit(fits[s].estimate) for s in claim.expected_benefit_in])
        b_out = np.mean([scale.benefit(fits[s].estimate) for s in claim.expected_no_effect_in])
        direction_ok = b_in > b_out
    alpha = proto.model.alpha
    if p is not None and p < alpha and direction_ok:
        crit, detail = "met", Reason.of("strata_differ", p=p, claimed_way=named_dir)
    elif p is not None and p < alpha:
        crit, detail = "opposite", Reason.of("strata_differ_opposite", p=p)
    else:
        crit, detail = "neither", Reason.of("strata_no_difference", p=p, by=by)
    notes: list = []
    level, downs = grade(res.overall, inp.comps, proto, scale, small, proto.mcid,
                         availability=inp.availability, notes=notes)
    return _decide(claim, crit, detail, ice.rating, Reason.of("basis_iceman"), scale=scale,
                   reasons=reasons, figures={**_fig(res.overall, scale), **figures},
                   certainty=level, downgrades=downs, grade_notes=notes, iceman_=ice,
                   statement=certainty_statement(level, res.overall, scale, proto.outcome.label,
                                                 proto.mcid),
                   studies=[s.study for s in res.overall.studies])


def _judge_in_strata(claim, inp, proto, scale, small):
    res = inp.by
    if res is None:
        return _not_evaluable(claim, Reason.of("no_analysis", note=inp.by_note), scale)
    fits = dict(res.subgroups)
    minimum = proto.min_k_per_stratum
    missing = [s for s in claim.expected_benefit_in if fits.get(s) is None or fits[s].k < minimum]
    figures = {"subgroups": {lvl: _fig(f, scale) for lvl, f in res.subgroups},
               "Q_between_p": inp.between["p"] if inp.between else None}
    strata_r = _strata_reason(res)
    if missing:
        return _not_evaluable(claim, Reason.of("too_few_in", missing=missing, minimum=minimum),
                              scale, figures=figures, reasons=[strata_r], missing=missing,
                              studies=[s.study for s in res.overall.studies])
    cis = {s: scale.benefit_ci(fits[s]) for s in claim.expected_benefit_in}
    if all(lo > 0 for lo, _ in cis.values()):
        crit, detail = "met", Reason.of("benefit_every_stratum")
    elif any(hi < 0 for _, hi in cis.values()):
        crit, detail = "opposite", Reason.of("control_in_a_stratum")
    else:
        crit, detail = "neither", Reason.of("null_in_a_stratum")
    # the certainty of the weakest named stratum bounds the claim
    grades = []
    for s in claim.expected_benefit_in:
        notes: list = []
        lv, dn = grade(fits[s], inp.strata_comps.get(s, ()), proto, scale, small, proto.mcid,
                       notes=notes)
        grades.append((LEVELS.index(lv), s, lv, dn, notes))
    _, s_low, level, downs, notes = min(grades, key=lambda g: (g[0], g[1]))
    in_low = lambda r: Reason.of("in_stratum", stratum=s_low, reason=r)  # noqa: E731
    downs = tuple(replace(d, reason=in_low(d.reason)) for d in downs)
    return _decide(claim, crit, detail, level, Reason.of("basis_weakest_stratum", stratum=s_low),
                   scale=scale, reasons=[strata_r], figures={**_fig(res.overall, scale), **figures},
                   certainty=level, downgrades=downs, grade_notes=[in_low(n) for n in notes],
                   statement=certainty_statement(level, fits[s_low], scale, proto.outcome.label,
                                                 proto.mcid),
                   studies=[s.study for s in res.overall.studies])


def _judge_harms(claim, ae, comps, proto, small):
    scale = Scale.harms(proto)
    if ae is None or ae.result is None or ae.result.overall.k < 2:
        note = ae.note if ae is not None and ae.note else None
        return _not_evaluable(claim, Reason.of("no_adverse_events", note=note), scale,
                              missing=("adverse events per arm",))
    f = ae.result.overall
    if f.ci_lb > 0:
        crit, detail = "met", Reason.of("more_adverse_events")
    elif f.ci_ub < 0:
        crit, detail = "opposite", Reason.of("fewer_adverse_events")
    else:
        crit, detail = "neither", Reason.of("adverse_events_null")
    keys = set(ae.keys)
    notes: list = []
    # the small-study assessment is of the main outcome, not of adverse events
    level, downs = grade(f, [c for c in comps if c.key in keys], proto, scale, {}, None, notes=notes)
    return _decide(claim, crit, detail, level, Reason.of("basis_grade"), scale=scale,
                   reasons=[_fit_reason(f)], figures=_fig(f, scale), certainty=level,
                   downgrades=downs, grade_notes=notes,
                   statement=certainty_statement(level, f, scale, "adverse events"),
                   studies=[s.study for s in f.studies])


def _name_awaiting(v, claim, awaiting):
    """Add to an insufficient-evidence verdict the trials that fall in the
    missing strata but have no usable data (and why)."""
    if v.verdict != "insufficient evidence" or not claim.modifier:
        return v
    levels = awaiting.get(claim.modifier, {})
    named = [m for m in v.missing if isinstance(m, str) and m in levels]
    extra = [Reason.of("stratum_empty", stratum=m)
             for m in v.missing if isinstance(m, str) and m not in levels
             and m in (claim.expected_benefit_in + claim.expected_no_effect_in)]
    for m in named:
        for sid, why in levels[m]:
            extra.append(Reason.of("stratum_awaiting", stratum=m, study=sid, why=why))
    if not extra:
        return v
    return replace(v, awaiting=v.awaiting + tuple(extra),
                   figures={**v.figures, "awaiting": {m: [s for s, _ in levels[m]] for m in named}})


def judge_all(proto: Any, comps: Sequence, *, inputs: Mapping[str, ClaimInput], main: Any = None,
              strata: Sequence = (), regressions: Sequence = (), sensitivity: Sequence = (),
              loo: Any = None, small_study: Mapping | None = None, adverse_events: Any = None,
              only: str | None = None, awaiting: Mapping | None = None) -> tuple[ClaimVerdict, ...]:
    """Judge every claim of the protocol from the pipeline's precomputed inputs.

    Parameters
    ----------
    proto : Protocol
    comps : sequence of Comparison
        The protocol's eligible comparisons (the main analysis).
    inputs : dict
        Claim id -> :class:`ClaimInput` (:func:`metaanalysis.analysis.pipeline.claim_inputs`).
    main, strata, loo : optional
        The main analysis, the protocol's strata and leave-one-out (not used
        by the rule; accepted so the pipeline hands over one set of results).
    regressions : sequence of (name, MetaRegression or None, note, keys)
    sensitivity : sequence of Analysis
        Sensitivity analyses on the whole protocol set (``not_robust`` claims).
    small_study : dict, optional
        The small-study assessment of the main analysis.
    adverse_events : Analysis, optional
    only : str, optional
        Judge only this claim id.
    awaiting : dict, optional
        Stratum -> level -> [(study, why)] of eligible trials without usable data.

    Returns
    -------
    tuple of ClaimVerdict
        One per claim, in protocol order; out-of-scope claims last, with their reason.
    """
    scale = Scale.of(proto)
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
            out.append(_not_evaluable(claim, Reason.of("too_few_in_target", k=len(inp.comps),
                                                       target=inp.target_text,
                                                       minimum=proto.min_k_per_stratum), scale,
                                      missing=(inp.target_text,), studies=[c.key for c in inp.comps]))
            continue
        if inp.target is None:
            out.append(_not_evaluable(claim, Reason.of("no_analysis", note=inp.target_note), scale))
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
                                "out of scope", None, (Reason.text(oos.reason),), {},
                                in_scope=False, scope_note=oos.reason))
    return tuple(out)
