"""Selection: protocol + study files -> the eligible comparisons and every file's fate.

Which studies a protocol analyses (:func:`eligible`), which outcome of each
arm pair (:func:`arm_outcomes`, :func:`choose_outcome`), the stratum each
comparison falls in (:func:`stratum_attrs`: severity from a stated category
or the baseline score, strain group, probiotic mix, ...), one report per
cohort, and the comparisons themselves with their effect sizes
(:func:`select_comparisons`). :mod:`metaanalysis.analysis.pipeline` fits
what is selected here and :mod:`metaanalysis.analysis.protocol` checks a
protocol's targets against the same rules, so both import this module and
this module imports neither (the protocol is duck-typed: ``Protocol`` in a
hint names :class:`metaanalysis.analysis.protocol.Protocol`).
Pure: no files are read or written here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from metaanalysis.stats.effects import escalc
from metaanalysis.studies import strains
from metaanalysis.studies.extract import Extraction, ExtractionError, extract

#: The analysis protocol in hints (:class:`metaanalysis.analysis.protocol.Protocol`),
#: not imported: protocol.py imports this module, and even a type-only import
#: would close the circle again (tests/test_layers.py counts those).
Protocol = Any

SEVERITY_ORDER = {"mild": 0, "moderate": 1, "severe": 2}
#: Levels that say a trial could not be classified: shown, never compared in a
#: test for subgroup differences (they are not a value of the modifier).
UNCLASSIFIED_LEVELS = frozenset({"unclassified", "unknown", strains.UNSPECIFIED})


@dataclass(frozen=True)
class Comparison:
    """One probiotic-versus-control comparison contributing one effect."""

    key: str
    study: str
    arm: str
    control: str
    outcome: str
    timepoint_weeks: float | None
    scale: str
    yi: float
    vi: float
    extraction: Extraction
    attrs: dict
    flags: tuple[str, ...]
    year: int
    rob_overall: str | None
    rob_domains: dict
    baseline_score: float | None
    log10_dose: float | None
    duration_weeks: float | None
    n_total: float | None
    outcome_choice: str
    comparator: str | None = None      # the control arm's comparator type (GRADE domains)
    #: the trial's quoted total (analysed, else randomised; ``trial_total``) where
    #: per-arm n is missing, and the arms it spans: counted once per trial, and
    #: only by an analysis that uses all those arms (claims.py, GRADE imprecision)
    n_trial_total: float | None = None
    trial_arms: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """The comparison as results.json keeps it (strata sorted, full precision)."""
        ex = self.extraction.to_dict()
        return {
            "key": self.key, "study": self.study, "arm": self.arm, "control": self.control,
            "outcome": self.outcome, "timepoint_weeks": self.timepoint_weeks, "scale": self.scale,
            "yi": self.yi, "vi": self.vi, "sei": math.sqrt(self.vi), "year": self.year,
            "strata": dict(sorted(self.attrs.items())), "flags": list(self.flags),
            "rob_overall": self.rob_overall, "baseline_score": self.baseline_score,
            "log10_dose": self.log10_dose, "duration_weeks": self.duration_weeks,
            "n_total": self.n_total, "outcome_choice": self.outcome_choice,
            "comparator": self.comparator,
            "n_trial_total": self.n_trial_total, "trial_arms": list(self.trial_arms),
            "extraction": ex,
        }


# ----------------------------------------------------------------------------
# selection and extraction


def eligible(study: Any, proto: Protocol) -> str | None:
    """Whether a study file is eligible for the protocol.

    Parameters
    ----------
    study : Study
    proto : Protocol

    Returns
    -------
    str or None
        None if eligible, else the reason (status, purpose, design, age
        group or an excluded flag).
    """
    el = proto.eligibility
    if study.status == "excluded":
        return f"excluded in its file: {study.excluded}"
    if study.purpose != el.purpose:
        return f"purpose is {study.purpose}, the protocol analyses {el.purpose}"
    if study.design not in el.designs:
        return f"design '{study.design}' not in the eligible designs ({', '.join(el.designs)})"
    age = study.population.age_group if study.population else None
    if el.age_groups is not None and age not in el.age_groups:
        return f"age group '{age}' not eligible"
    bad = [f for f in study.flags if f in el.exclude_flags]
    if bad:
        return f"flag(s) {', '.join(bad)} excluded by the protocol"
    return None


def arm_outcomes(study: Any, arm_id: str, control_id: str, proto: Protocol) -> list:
    """Outcomes of the protocol's kinds that compare this arm with the control.

    Parameters
    ----------
    study : Study
    arm_id, control_id : str
        The intervention and control arm ids.
    proto : Protocol

    Returns
    -------
    list of Outcome
        On the protocol's kinds and scales, reported for this arm (per arm,
        or as a between-arm contrast naming it; a contrast without an arm
        only for a two-arm trial).
    """
    rule = proto.outcome
    n_int = sum(a.role == "intervention" for a in study.arms)
    out = []
    for o in study.outcomes:
        if o.outcome not in rule.kinds or o.scale not in rule.scales:
            continue
        if o.between is not None and o.between.comparison is not None:
            if o.between.comparison.intervention != arm_id:
                continue
        elif o.per_arm:
            if arm_id not in o.per_arm:
                continue
        elif n_int > 1:
            continue
        out.append(o)
    return out


def choose_outcome(cands: Sequence, proto: Protocol, study_id: str) -> tuple[Any, str]:
    """The outcome used among a comparison's candidates, and why.

    Parameters
    ----------
    cands : sequence of Outcome
        :func:`arm_outcomes` (not empty).
    proto : Protocol
        Its outcome rule: an override for the study, else end of treatment
        (falling back to the latest time point), else the time point
        nearest the target (ties: the first listed).
    study_id : str

    Returns
    -------
    (outcome, why) : tuple[Outcome, str]
    """
    rule = proto.outcome
    override = rule.overrides
    if study_id in override:
        for o in cands:
            if o.id == override[study_id]:
                return o, f"protocol override: outcome '{o.id}'"
    if rule.timepoint == "end_of_treatment":
        eot = [o for o in cands if o.end_of_treatment]
        if eot:
            return eot[0], "end of treatment"
        # fall back to the latest time point reported
        timed = sorted(cands, key=lambda o: -(o.timepoint_weeks or 0))
        return timed[0], "latest time point (no end-of-treatment value)"
    target = rule.target_weeks
    best = min(cands, key=lambda o: (abs((o.timepoint_weeks if o.timepoint_weeks is not None
                                          else 1e9) - target), cands.index(o)))
    return best, f"time point nearest {target:g} weeks (ties: first listed in the file)"


def baseline_score(study: Any, scale: str) -> float | None:
    """The study's mean baseline score on ``scale``, weighted by arm n.

    Parameters
    ----------
    study : Study
    scale : str
        e.g. "SCORAD".

    Returns
    -------
    float or None
        The n-weighted mean of the arms' baseline means (an arm without n
        weighs 1); None when the study reports none on that scale.
    """
    pop = study.population
    if not pop or not pop.baseline:
        return None
    vals, ws = [], []
    for b in pop.baseline:
        if b.scale != scale or b.mean is None:
            continue
        n = b.n.value if b.n is not None else None
        if n is None:
            arm = next((a for a in study.arms if a.id == b.arm), None)
            if arm is not None and arm.n_randomised is not None:
                n = arm.n_randomised.value
        vals.append(b.mean.value)
        ws.append(n if n else 1.0)
    if not vals:
        return None
    return float(np.average(vals, weights=ws))


def severity_group(study: Any, proto: Protocol, baseline: float | None) -> tuple[str, str]:
    """The protocol's severity group of a study, and how it was decided.

    Parameters
    ----------
    study : Study
    proto : Protocol
        Its ``severity`` rule: stated categories, or bands of the baseline score.
    baseline : float or None
        :func:`baseline_score` on the rule's scale.

    Returns
    -------
    (group, how) : tuple[str, str]
        "unclassified" when neither a stated category nor a baseline places it.
    """
    rule = proto.severity
    cats = tuple(study.population.severity_categories) if study.population else ()
    how = "as stated by the authors"
    if rule.source == "baseline" or (rule.source == "stated_then_baseline" and not cats):
        cats = ()
        if baseline is not None:
            for band in rule.bands:
                if band.lower <= baseline < band.upper or (band is rule.bands[-1] and baseline == band.upper):
                    cats = (band.name,)
                    how = f"from baseline {rule.scale} {baseline:.1f} with {rule.bands_source} bands"
                    break
    if not cats:
        return "unclassified", "no stated severity and no baseline score"
    key = "+".join(sorted(set(cats), key=SEVERITY_ORDER.get))
    if key in rule.groups:
        return rule.groups[key], how + f" ({key})"
    return "unclassified", f"category set '{key}' not mapped by the protocol's severity groups"


def mix_type(iv: Any, registry: Any) -> str:
    """Lactobacillus (sensu lato, i.e. before the 2020 split) and/or Bifidobacterium.

    Parameters
    ----------
    iv : Intervention or None
    registry : StrainRegistry

    Returns
    -------
    str
        One of ``protocol.MIX_TYPES``.
    """
    if iv is None:
        return "unknown"
    if all(ref.registry is None for ref in iv.strains):
        # no organism named (e.g. a review's data row only): not evidence of an "other" product
        return strains.UNSPECIFIED
    lacto = bifido = other = False
    for ref in iv.strains:
        entry = registry.strains.get(registry.resolve(ref.registry)) if ref.registry else None
        if entry is None:
            other = True
        elif entry.genus == "Lactobacillus" or entry.former_genus == "Lactobacillus":
            lacto = True
        elif entry.genus == "Bifidobacterium":
            bifido = True
        else:
            other = True
    if lacto and bifido:
        return "Lactobacillus+Bifidobacterium" + (" (+other)" if other else "")
    if lacto and not other:
        return "Lactobacillus only"
    if bifido and not other:
        return "Bifidobacterium only"
    return "other"


def stratum_attrs(study: Any, arm: Any, control: Any, proto: Protocol, registry: Any,
                  baseline: float | None) -> tuple[dict[str, str], dict[str, str]]:
    """The level of every protocol stratum for one arm-versus-control comparison.

    Parameters
    ----------
    study : Study
    arm, control : Arm
    proto : Protocol
    registry : StrainRegistry
    baseline : float or None
        :func:`baseline_score` (for severity from the baseline).

    Returns
    -------
    (levels, notes) : tuple[dict, dict]
        Stratum name -> level, and stratum name -> how it was decided
        (severity only).
    """
    pop = study.population
    iv = arm.intervention
    out = {}
    notes = {}
    for s in proto.strata:
        if s.field == "severity":
            out[s.name], notes[s.name] = severity_group(study, proto, baseline)
        elif s.field == "strain":
            out[s.name] = strains.group_label(iv, registry, s.level) if iv else strains.UNSPECIFIED
        elif s.field == "mix_type":
            out[s.name] = mix_type(iv, registry)
        elif s.field == "age_group":
            out[s.name] = (pop.age_group if pop else None) or "unknown"
        elif s.field == "comparator":
            out[s.name] = control.comparator or "unknown"
        elif s.field == "viability":
            out[s.name] = iv.viability if iv else "unknown"
        elif s.field == "synbiotic":
            out[s.name] = "synbiotic" if (iv and iv.synbiotic) else "probiotic only"
        elif s.field == "timing":
            out[s.name] = (iv.timing if iv else None) or "unknown"
        elif s.field == "family_risk":
            out[s.name] = (pop.family_risk if pop else None) or "unknown"
        elif s.field == "country":
            out[s.name] = study.country or "unknown"
        elif s.field == "design":
            out[s.name] = study.design
    return out, notes


def select_comparisons(proto: Protocol, studies: Iterable, registry: Any, r: float | None = None, *,
                       impute_sd: Mapping | None = None, measure: str | None = None,
                       ratio_arm: int = 0) -> tuple[tuple[Comparison, ...], tuple[dict, ...]]:
    """Eligible comparisons with their effects, and the fate of every study file.

    Parameters
    ----------
    proto : Protocol
    studies : iterable of Study
    registry : StrainRegistry
    r : float, optional
        Correlation for change scores (default: the protocol's).
    impute_sd : dict, optional
        Scale -> (sd, Derivation), for the imputed-SD sensitivity analysis.
    measure : str, optional
        Another measure (e.g. "ROM") for a sensitivity analysis.
    ratio_arm : int
        See below.

    Returns
    -------
    (comparisons, fate) : tuple[tuple[Comparison, ...], tuple[dict, ...]]
        Comparisons sorted by study id; one fate per study file (id,
        purpose, status, reason, awaiting_data).

    ``impute_sd`` (scale -> (sd, Derivation)) and ``measure`` (e.g. ``"ROM"``)
    are for sensitivity analyses; the main analysis uses neither.

    Multi-arm trials whose arms share one control but report only ratios (no
    counts, so the control cannot be split): Cochrane Handbook 23.3.4's first
    option, one pre-specified comparison per trial. ``ratio_arm`` is which
    intervention arm, in the order the file lists them (= the trial report's
    order): 0, the first listed, in the main analysis; 1 in the sensitivity
    analysis "the other arm".
    """
    r = proto.model.change_score_correlation if r is None else r
    measure = measure or proto.model.measure
    fate = []
    comps = []
    for st in sorted(studies, key=lambda s: s.id):
        reason = eligible(st, proto)
        if reason:
            fate.append({"id": st.id, "purpose": st.purpose, "status": "not analysed",
                         "reason": reason, "awaiting_data": st.awaiting_data})
            continue
        controls = [a for a in st.arms if a.role == "control"]
        ints = [a for a in st.arms if a.role == "intervention"]
        if not controls or not ints:
            fate.append({"id": st.id, "purpose": st.purpose, "status": "not analysed",
                         "reason": "no intervention/control arm pair", "awaiting_data": None})
            continue
        control = controls[0]
        el = proto.eligibility
        if el.comparators is not None and (control.comparator not in el.comparators):
            fate.append({"id": st.id, "purpose": st.purpose, "status": "not analysed",
                         "reason": f"comparator '{control.comparator}' not eligible",
                         "awaiting_data": None})
            continue
        used, problems = [], []
        for arm in ints:
            cands = arm_outcomes(st, arm.id, control.id, proto)
            if not cands:
                problems.append(f"{arm.id}: no {'/'.join(proto.outcome.kinds)} outcome on an "
                                f"eligible scale ({'/'.join(proto.outcome.scales)})")
                continue
            out, why = choose_outcome(cands, proto, st.id)
            try:
                ex = extract(st, out.id, measure=measure, r=r, intervention=arm.id,
                             control=control.id, split_control=len(ints), impute_sd=impute_sd)
            except ExtractionError as exc:
                if len(ints) > 1 and "shared control cannot be split" in str(exc):
                    pick = ints[min(ratio_arm, len(ints) - 1)]
                    if arm.id != pick.id:
                        problems.append(f"{arm.id}: not used: the trial reports only ratios for "
                                        f"arms sharing one control, so one comparison is used "
                                        f"(Handbook 23.3.4): '{pick.id}'"
                                        + (" (first listed)" if ratio_arm == 0 else ""))
                        continue
                    try:
                        ex = extract(st, out.id, measure=measure, r=r, intervention=arm.id,
                                     control=control.id, split_control=1, impute_sd=impute_sd)
                    except ExtractionError as exc2:
                        problems.append(f"{arm.id}: {exc2}")
                        continue
                    ex = replace(ex, flags=ex.flags + ("one_arm_of_multi_arm",),
                                 notes=ex.notes + (
                                     f"one of {len(ints)} arms sharing the control: ratios "
                                     "only, so the control cannot be split; this arm is the "
                                     + ("first listed (main analysis rule, Handbook 23.3.4)"
                                        if ratio_arm == 0 else "other arm (sensitivity)"),))
                else:
                    problems.append(f"{arm.id}: {exc}")
                    continue
            m, kw = ex.escalc_args()
            yi, vi = escalc(m, **kw)
            yi, vi = float(yi[0]), float(vi[0])
            if not (math.isfinite(yi) and math.isfinite(vi) and vi > 0):
                problems.append(f"{arm.id}: effect size not computable (yi={yi}, vi={vi})")
                continue
            baseline = baseline_score(st, proto.severity.scale if proto.severity else "SCORAD")
            attrs, sev_notes = stratum_attrs(st, arm, control, proto, registry, baseline)
            iv = arm.intervention
            dose = iv.dose_cfu_per_day.value if iv and iv.dose_cfu_per_day else None
            n_total = None
            if ex.n1i is not None and ex.n2i is not None:
                n_total = float(ex.n1i + ex.n2i)
            tot = listed_total(st) if n_total is None else None
            tot_n = (tot.n_analysed or tot.n_randomised) if tot is not None else None
            key = st.id if len(ints) == 1 else f"{st.id} ({arm.id})"
            flags = tuple(sorted(set(st.flags) | set(ex.flags)))
            rob = st.rob
            comps.append(Comparison(
                key=key, study=st.id, arm=arm.id, control=control.id, outcome=out.id,
                timepoint_weeks=out.timepoint_weeks, scale=out.scale, yi=yi, vi=vi, extraction=ex,
                attrs=attrs, flags=flags, year=st.year,
                rob_overall=rob.overall.judgement if rob and rob.overall else None,
                rob_domains={k: v.judgement for k, v in rob.domains.items()} if rob else {},
                baseline_score=baseline, log10_dose=math.log10(dose) if dose else None,
                duration_weeks=iv.duration_weeks if iv else None, n_total=n_total,
                n_trial_total=float(tot_n.value) if tot_n is not None else None,
                trial_arms=tuple(a.id for a in st.arms) if tot_n is not None else (),
                outcome_choice=why + ("; severity " + "; ".join(f"{k}: {v}" for k, v in sev_notes.items())
                                      if sev_notes else ""),
                comparator=control.comparator))
            used.append(arm.id)
        if used:
            fate.append({"id": st.id, "purpose": st.purpose, "status": "analysed",
                         "reason": "; ".join(problems) if problems else None,
                         "awaiting_data": None, "comparisons": used})
        else:
            fate.append({"id": st.id, "purpose": st.purpose, "status": "not analysed",
                         "reason": "no usable data for this outcome: " + "; ".join(problems),
                         "awaiting_data": st.awaiting_data})
    comps, fate = one_report_per_cohort(comps, fate, studies, proto)
    return tuple(comps), tuple(fate)


def one_report_per_cohort(comps: list, fate: list, studies: Iterable,
                          proto: Protocol) -> tuple[list, list]:
    """Keep one report per cohort (files linked by ``same_cohort_as``).

    Several files can report one cohort (a trial and its follow-ups); pooling
    two of them counts the same patients twice. Among the files of one
    cohort that contribute comparisons to this analysis, one is kept:

    * under ``timepoint: nearest``, the one whose outcome is nearest the
      target time (the protocol's own time-point rule, across reports);
    * otherwise, and to break ties, the main report (the file the others
      point to, ``same_cohort_as: null``), then the file fewest links away
      from it, then the first by id.

    The others are listed as not analysed, naming the report used.

    Returns
    -------
    comps, fate : lists
    """
    parent = {st.id: st.same_cohort_as for st in studies if st.same_cohort_as}
    if not parent:
        return comps, fate

    def root_and_hops(sid):
        hops, seen = 0, {sid}
        while sid in parent and parent[sid] not in seen:  # load.py refuses cycles
            sid = parent[sid]
            seen.add(sid)
            hops += 1
        return sid, hops

    by_study: dict[str, list] = {}
    for c in comps:
        by_study.setdefault(c.study, []).append(c)
    cohorts: dict[str, list[str]] = {}
    for sid in by_study:
        cohorts.setdefault(root_and_hops(sid)[0], []).append(sid)
    dropped: dict[str, str] = {}
    rule = proto.outcome
    for members in cohorts.values():
        if len(members) < 2:
            continue

        def rank(sid):
            dist = 0.0
            if rule.timepoint == "nearest":
                tps = [c.timepoint_weeks for c in by_study[sid]]
                dist = min(abs(t - rule.target_weeks) if t is not None else math.inf
                           for t in tps)
            return (dist, root_and_hops(sid)[1], sid)

        keep = min(members, key=rank)
        for sid in members:
            if sid != keep:
                dropped[sid] = keep
    if not dropped:
        return comps, fate
    comps = [c for c in comps if c.study not in dropped]
    fate = [f if f["id"] not in dropped else
            {"id": f["id"], "purpose": f["purpose"], "status": "not analysed",
             "reason": f"same cohort as {dropped[f['id']]} (same_cohort_as), whose report this "
                       f"analysis uses: one report per cohort",
             "awaiting_data": None}
            for f in fate]
    return comps, fate



def subset(comps: Iterable[Comparison], spec: Mapping[str, Sequence[str]]) -> tuple[Comparison, ...]:
    """Comparisons whose attributes match ``spec``.

    Parameters
    ----------
    comps : iterable of Comparison
    spec : dict
        Stratum name -> allowed levels (a claim's ``target.subset``).

    Returns
    -------
    tuple of Comparison
    """
    out = []
    for c in comps:
        ok = True
        for attr, allowed in spec.items():
            if c.attrs.get(attr) not in allowed:
                ok = False
        if ok:
            out.append(c)
    return tuple(out)


def listed_total(st: Any) -> Any:
    """The study's quoted ``trial_total`` if it spans exactly the listed arms, else None.

    Parameters
    ----------
    st : Study

    Returns
    -------
    TrialTotal or None
    """
    tot = getattr(st, "trial_total", None)
    return tot if tot is not None and tot.spans == "listed_arms" else None


def awaiting_by_stratum(proto: Protocol, studies: Iterable, registry: Any,
                        fate: Iterable[Mapping]) -> dict:
    """For each stratum: which not-analysed trials of this purpose would fall in
    which level, with why they are not analysed (the review's "awaiting data"
    list, so that an insufficient-evidence verdict can name them).

    Parameters
    ----------
    proto : Protocol
    studies : iterable of Study
    registry : StrainRegistry
    fate : iterable of dict
        :func:`select_comparisons`'s fate of every study file.

    Returns
    -------
    dict
        Stratum name -> level -> [(study id, why)], and ``"_studies"`` ->
        [(study id, why, {stratum: level})].
    """
    reasons = {f["id"]: f["reason"] for f in fate if f["status"] != "analysed"}
    out: dict = {}
    for st in studies:
        if st.id not in reasons or st.purpose != proto.eligibility.purpose:
            continue
        ints = [a for a in st.arms if a.role == "intervention"]
        controls = [a for a in st.arms if a.role == "control"]
        if not ints or not controls:
            continue
        baseline = baseline_score(st, proto.severity.scale if proto.severity else "SCORAD")
        attrs, _ = stratum_attrs(st, ints[0], controls[0], proto, registry, baseline)
        for name, level in attrs.items():
            out.setdefault(name, {}).setdefault(level, []).append((st.id, reasons[st.id]))
        out.setdefault("_studies", []).append((st.id, reasons[st.id], attrs))
    return out
