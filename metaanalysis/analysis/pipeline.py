"""The one place where the stages are sequenced: protocol + studies -> RunResult.

load (done by the caller) -> select and extract -> effect sizes -> fits per
stratum, meta-regression, sensitivity analyses, small-study effects ->
claim verdicts. Pure: no files are read or written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from metaanalysis.stats import pool
from metaanalysis.analysis import claims as claims_mod
from metaanalysis.stats import diagnostics, distributions
from metaanalysis.studies import strains
from metaanalysis.stats.effects import escalc
from metaanalysis.errors import MetaError
from metaanalysis.studies.extract import ExtractionError, Extraction, extract
from metaanalysis.analysis.protocol import Protocol
from metaanalysis.stats.results import FitResult, PoolResult, RegressionResult

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


@dataclass(frozen=True)
class Analysis:
    """A named analysis over a set of comparisons (a stratum set, a sensitivity run)."""

    name: str
    description: str
    keys: tuple[str, ...]
    result: PoolResult | None
    note: str | None = None
    added: tuple = ()                  # comparisons not in the main analysis (sensitivity only)


@dataclass(frozen=True)
class RunResult:
    protocol: Protocol
    studies: tuple[dict, ...]          # every study file: id, status, reason
    comparisons: tuple[Comparison, ...]
    main: Analysis
    strata: tuple[Analysis, ...]
    regressions: tuple[tuple[str, RegressionResult | None, str | None, tuple], ...]
    sensitivity: tuple[Analysis, ...]
    leave_one_out: object | None
    cumulative: object | None
    small_study: dict
    adverse_events: Analysis | None
    claims: tuple
    warnings: tuple[str, ...] = field(default=())
    swim: dict | None = None           # synthesis without meta-analysis + availability


# ----------------------------------------------------------------------------
# selection and extraction


def _eligible(study, proto: Protocol) -> str | None:
    """None if eligible, else the reason."""
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


def _arm_outcomes(study, arm_id, control_id, proto: Protocol):
    """Outcomes of the protocol's kinds that compare this arm with the control."""
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


def _choose_outcome(cands, proto: Protocol, study_id: str):
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


def _baseline(study, scale):
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


def _severity(study, proto: Protocol, baseline) -> tuple[str, str]:
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


def _mix_type(iv, registry) -> str:
    """Lactobacillus (sensu lato, i.e. before the 2020 split) and/or Bifidobacterium."""
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


def _attrs(study, arm, control, proto, registry, baseline):
    pop = study.population
    iv = arm.intervention
    out = {}
    notes = {}
    for s in proto.strata:
        if s.field == "severity":
            out[s.name], notes[s.name] = _severity(study, proto, baseline)
        elif s.field == "strain":
            out[s.name] = strains.group_label(iv, registry, s.level) if iv else strains.UNSPECIFIED
        elif s.field == "mix_type":
            out[s.name] = _mix_type(iv, registry)
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


def select_comparisons(proto: Protocol, studies, registry, r=None, *, impute_sd=None,
                       measure=None, ratio_arm: int = 0):
    """Eligible comparisons with their effects, and the fate of every study file.

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
        reason = _eligible(st, proto)
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
            cands = _arm_outcomes(st, arm.id, control.id, proto)
            if not cands:
                problems.append(f"{arm.id}: no {'/'.join(proto.outcome.kinds)} outcome on an "
                                f"eligible scale ({'/'.join(proto.outcome.scales)})")
                continue
            out, why = _choose_outcome(cands, proto, st.id)
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
            baseline = _baseline(st, proto.severity.scale if proto.severity else "SCORAD")
            attrs, sev_notes = _attrs(st, arm, control, proto, registry, baseline)
            iv = arm.intervention
            dose = iv.dose_cfu_per_day.value if iv and iv.dose_cfu_per_day else None
            n_total = None
            if ex.n1i is not None and ex.n2i is not None:
                n_total = float(ex.n1i + ex.n2i)
            tot = _listed_total(st) if n_total is None else None
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


def one_report_per_cohort(comps, fate, studies, proto: Protocol):
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


# ----------------------------------------------------------------------------
# fitting


def between_strata_test(subgroups, levels, alpha: float):
    """Test for subgroup differences over ``levels`` only (a tuple of
    ``(level, FitResult)`` pairs in ``subgroups``).

    Each stratum enters with the SE implied by the interval it is shown with,
    ``(ci_ub - ci_lb) / (2 z_{1-alpha/2})``: the Wald SE under ``test="z"``
    (RevMan, R meta), and under ``knha``/``adhoc`` the (modified)
    Knapp-Hartung SE times ``t_{k_j-1} / z``, so that a two-trial stratum
    weighs in the chi-square test what its t(1) interval says and never more
    (issue 11: shrunken HKSJ SEs in a chi-square test gave p = 9e-10 for a
    2 + 2 trial comparison). Strata not in ``levels`` (below the protocol's
    ``min_k_per_stratum``, or not named by a claim) are shown but not tested.

    Returns
    -------
    dict (Q, df, p, levels, excluded, method) or None with fewer than two levels.
    """
    fits = dict(subgroups)
    use = [lvl for lvl in levels if lvl in fits]
    if len(use) < 2:
        return None
    z = distributions.norm.isf(alpha / 2)
    est = [fits[l].estimate for l in use]
    ses = [(fits[l].ci_ub - fits[l].ci_lb) / (2 * z) for l in use]
    Q, df, p = pool.subgroup_difference(est, ses)
    if Q is None:
        return None
    tests = {fits[l].test for l in use}
    how = ("chi-square on the strata's SEs as implied by their shown intervals "
           + ("(Wald)" if tests == {"z"} else "(Knapp-Hartung SE x t(k-1)/z)"))
    return {"Q": Q, "df": df, "p": p, "levels": tuple(use),
            "excluded": {l: f.k for l, f in subgroups if l not in use}, "method": how}


def _fit(comps, proto: Protocol, *, method=None, test=None, by=None, name="", description="",
         test_levels=None):
    m = proto.model
    method = method or m.method
    test = test or m.test
    if method == "FE":
        test = "z"
    keys = tuple(c.key for c in comps)
    if not comps:
        return Analysis(name, description, keys, None, "no trials")
    yi = np.array([c.yi for c in comps])
    vi = np.array([c.vi for c in comps])
    groups = [c.attrs[by] for c in comps] if by else None
    try:
        res = pool.pool_effects(yi, vi, list(keys), measure=m.measure, method=method, test=test,
                               by=by, groups=groups, alpha=m.alpha, pi_df=m.pi_df)
    except MetaError as exc:
        return Analysis(name, description, keys, None, str(exc))
    if by is not None:
        # the subgroup test only over strata with enough trials (issue 11), with
        # SEs consistent with the strata's intervals; fewer than two -> no test
        levels = test_levels if test_levels is not None else [
            lvl for lvl, f in res.subgroups
            if f.k >= proto.min_k_per_stratum and lvl not in UNCLASSIFIED_LEVELS]
        bt = between_strata_test(res.subgroups, levels, m.alpha)
        label = ((bt["method"] + f"; strata compared: {', '.join(bt['levels'])}"
                  + (f"; shown but not compared (k < {proto.min_k_per_stratum} or unclassified): "
                     + ", ".join(f"{l} (k = {k})" for l, k in bt["excluded"].items())
                     if bt["excluded"] else "")) if bt else
                 f"no test: fewer than two classified strata with at least {proto.min_k_per_stratum} trials")
        res = replace(res, Q_between=bt["Q"] if bt else None, Q_between_df=bt["df"] if bt else None,
                      Q_between_p=bt["p"] if bt else None, subgroup_test=label)
    return Analysis(name, description, keys, res, None)


def subset(comps, spec: dict):
    """Comparisons whose attributes match ``spec`` (attribute -> allowed values)."""
    out = []
    for c in comps:
        ok = True
        for attr, allowed in spec.items():
            if c.attrs.get(attr) not in allowed:
                ok = False
        if ok:
            out.append(c)
    return tuple(out)


def _regressions(comps, proto: Protocol):
    out = []
    for mr in proto.meta_regression:
        use = [c for c in comps if getattr(c, mr.moderator) is not None]
        keys = tuple(c.key for c in use)
        if len(use) < 4:
            out.append((mr.moderator, None,
                        f"not estimable: {len(use)} trial(s) report {mr.label} (need at least 4)", keys))
            continue
        x = np.array([getattr(c, mr.moderator) for c in use], dtype=float)
        if np.ptp(x) == 0:
            out.append((mr.moderator, None, f"not estimable: every trial has the same {mr.label}", keys))
            continue
        X = np.column_stack([np.ones(len(use)), x])
        try:
            reg = pool.regress_effects([c.yi for c in use], [c.vi for c in use], X,
                                      ("intrcpt", mr.moderator), method=proto.model.method
                                      if proto.model.method not in ("MH", "PETO") else "REML",
                                      test=proto.model.test, alpha=proto.model.alpha)
            out.append((mr.moderator, reg, None, keys))
        except MetaError as exc:
            out.append((mr.moderator, None, str(exc), keys))
    return tuple(out)


def _sensitivity(comps, proto: Protocol, studies, registry):
    s = proto.sensitivity
    m = proto.model
    out = []
    if s.exclude_high_rob:
        judged = [c for c in comps if c.rob_overall is not None]
        if not judged:
            out.append(Analysis("exclude high risk of bias", "trials judged at high overall risk "
                                "of bias left out", (), None,
                                "not possible: no risk-of-bias judgements were extracted"))
        else:
            keep = [c for c in comps if c.rob_overall != "high"]
            out.append(_fit(keep, proto, name="exclude high risk of bias",
                            description="trials judged at high overall risk of bias left out"))
    for meth in s.methods:
        if meth != m.method:
            out.append(_fit(comps, proto, method=meth, name=f"tau2 estimator {meth}",
                            description=f"{meth} instead of {m.method}"))
    for t in s.tests:
        if t != m.test:
            out.append(_fit(comps, proto, test=t, name=f"test {t}",
                            description=f"{'Wald z' if t == 'z' else t} instead of {m.test}"))
    if s.fixed_effect and m.method != "FE":
        out.append(_fit(comps, proto, method="FE", name="common effect (FE)",
                        description="inverse-variance common-effect model"))
    if m.measure in ("MD", "SMD"):
        for r in s.correlations:
            if r == m.change_score_correlation:
                continue
            rc, _ = select_comparisons(proto, studies, registry, r=r)
            out.append(_fit(rc, proto, name=f"change-score correlation {r:g}",
                            description=f"SDs of change imputed with r = {r:g} "
                                        f"(main analysis r = {m.change_score_correlation:g})"))
    for label, flags in s.exclude_flags.items():
        keep = [c for c in comps if not set(c.flags) & set(flags)]
        out.append(_fit(keep, proto, name=f"exclude {label}",
                        description=f"trials flagged {', '.join(flags)} left out"))
    out.extend(_evidence_sensitivity(comps, proto, studies, registry))
    return tuple(out)


# ----------------------------------------------------------------------------
# sensitivity analyses that bring in trials the main analysis cannot use


def pooled_sds(comps) -> dict:
    """Scale -> (pooled SD, Derivation) from the arm-level SDs of the analysed
    comparisons (Furukawa 2006), for imputing SDs in a sensitivity analysis.
    SDs that are themselves imputed (correlation, imputed_sd) are not used."""
    from metaanalysis.studies import conversions as cv

    out = {}
    for scale in ("final", "change"):
        sds, ns, used = [], [], []
        for c in comps:
            ex = c.extraction
            if (ex.kind != "arms" or ex.scale != scale or ex.sd1i is None
                    or {"imputed_sd", "imputed_correlation"} & set(ex.flags)):
                continue
            sds += [ex.sd1i, ex.sd2i]
            ns += [ex.n1i, ex.n2i]  # a split control's n is its share: the right weight
            used.append(c.key)
        if sds:
            sd, der = cv.pooled_sd(sds, ns)
            der = cv.Derivation(der.method, der.inputs, der.formula, der.reference, der.result,
                                der.note + f"; {scale} SDs of: {', '.join(used)}")
            out[scale] = (sd, der)
    return out


def _evidence_sensitivity(comps, proto: Protocol, studies, registry):
    s, m = proto.sensitivity, proto.model
    out = []
    if s.impute_missing_sd and m.measure == "MD":
        imp = pooled_sds(comps)
        ic, _ = select_comparisons(proto, studies, registry, impute_sd=imp)
        added = sorted({c.study for c in ic if "imputed_sd" in c.flags})
        a = _fit(ic, proto, name="impute missing SDs (imputed_sd)",
                 description="trials with means but no SD added, the SD borrowed from "
                             "the other trials (Furukawa 2006; Handbook 6.5.2.8): "
                             + (", ".join(added) if added else "none"))
        out.append(replace(a, added=tuple(c for c in ic if "imputed_sd" in c.flags)))
    if s.ratio_of_means and m.measure == "MD":
        rom = proto.model_copy(update={"model": m.model_copy(update={"measure": "ROM"})})
        rc, _ = select_comparisons(rom, studies, registry, measure="ROM")
        a = _fit(rc, rom, name="ratio of means (ROM)",
                 description="final values as ratios of means (metafor ROM, pooled on the log "
                             "scale), with trials reporting only a ratio of geometric means; "
                             "below 1 favours the probiotic; never pooled with MDs")
        out.append(replace(a, added=tuple(rc)))
    if any("one_arm_of_multi_arm" in c.flags for c in comps):
        oc, _ = select_comparisons(proto, studies, registry, ratio_arm=1)
        a = _fit(oc, proto, name="multi-arm trials reporting only ratios: the other arm",
                 description="the second listed arm instead of the first (Handbook 23.3.4: "
                             "one comparison per trial; the control cannot be split without "
                             "counts)")
        out.append(replace(a, added=tuple(c for c in oc if "one_arm_of_multi_arm" in c.flags)))
    for label, spec in s.add_trials.items():
        el = proto.eligibility
        wider = el.model_copy(update={
            "designs": tuple(dict.fromkeys(el.designs + spec.designs)),
            "exclude_flags": tuple(f for f in el.exclude_flags if f not in spec.flags)})
        p2 = proto.model_copy(update={"eligibility": wider})
        ac, _ = select_comparisons(p2, studies, registry)
        added = sorted({c.study for c in ac} - {c.study for c in comps})
        a = _fit(ac, p2, name=f"add {label}",
                 description=f"designs {', '.join(spec.designs) or '-'} and flags "
                             f"{', '.join(spec.flags) or '-'} let in: "
                             + (", ".join(added) if added else "none"))
        out.append(replace(a, added=tuple(c for c in ac if c.study in added)))
    return out


# ----------------------------------------------------------------------------
# synthesis without meta-analysis (SWiM) and the availability of evidence

FAVOURS = {"probiotic": 1, "control": -1, "neither": 0}


def _swim_eligible(st, proto: Protocol) -> bool:
    """Eligible for the review question (not for the data the analysis needs)."""
    el = proto.eligibility
    if st.purpose != el.purpose or st.design not in el.designs or st.same_cohort_as:
        return False
    if "doubtful_randomisation" in st.flags:
        return False
    age = st.population.age_group if st.population else None
    if el.age_groups is not None and age not in el.age_groups:
        return False
    controls = [a for a in st.arms if a.role == "control"]
    if el.comparators is not None and controls and controls[0].comparator not in el.comparators:
        return False
    return bool(controls) and any(a.role == "intervention" for a in st.arms)


def _trial_n(st) -> float | None:
    """Participants randomised (else analysed) over all arms; None if unknown."""
    return _trial_n_source(st)[0]


def _listed_total(st):
    """The study's quoted ``trial_total`` if it spans exactly the listed arms, else None."""
    tot = getattr(st, "trial_total", None)
    return tot if tot is not None and tot.spans == "listed_arms" else None


def _trial_n_source(st) -> tuple[float | None, str | None]:
    """Participants randomised (else analysed) over all arms, and where the number came from.

    The sum over the arms first; where an arm lacks n, the trial's quoted total
    (``trial_total``, only if it spans exactly the listed arms). A total is
    only ever counted, never split by arm or used for a variance.
    """
    tot = _listed_total(st)
    for attr in ("n_randomised", "n_analysed"):
        vals = [getattr(a, attr) for a in st.arms]
        if vals and all(v is not None for v in vals):
            return float(sum(v.value for v in vals)), f"sum of the arms' {attr}"
        if tot is not None and getattr(tot, attr) is not None:
            return float(getattr(tot, attr).value), f"trial_total.{attr} (not split by arm)"
    return None, None


def swim_block(proto: Protocol, studies, comps, alpha: float | None = None) -> dict:
    """Vote counting, combined p-values and the availability of evidence.

    Every eligible trial (``_swim_eligible``) counts: the analysed ones with
    the direction and p-value of their effect (several arms: the direction
    they share, else neither; the inverse-variance combination of their
    arms), the others with a direction only where their file records one
    (``direction_of_effect``, quoted) and a p-value only where printed exactly
    for the same outcome and the direction favours one side.
    """
    from metaanalysis.stats import swim

    alpha = proto.model.alpha if alpha is None else alpha
    kinds = set(proto.outcome.kinds) | set(proto.swim.direction_kinds if proto.swim else ())
    better = -1.0 if proto.outcome.lower_is_better else 1.0
    by_study: dict = {}
    for c in comps:
        by_study.setdefault(c.study, []).append(c)
    rows = []
    for st in sorted(studies, key=lambda x: x.id):
        if not _swim_eligible(st, proto):
            continue
        n, n_source = _trial_n_source(st)
        row = {"id": st.id, "in_analysis": st.id in by_study, "n": n, "n_source": n_source,
               "direction": None, "direction_source": None, "p": None, "p_source": None,
               "z": None}
        if st.id in by_study:
            cs = by_study[st.id]
            zs = [better * c.yi / math.sqrt(c.vi) for c in cs]
            signs = {int(np.sign(z)) for z in zs}
            d = signs.pop() if len(signs) == 1 else 0
            # several arms: their inverse-variance combination, independent as
            # the main analysis treats them after splitting the shared control
            # (a mean of z-scores would not be N(0, 1) under the null)
            w = [1.0 / c.vi for c in cs]
            z = float(better * sum(wi * c.yi for wi, c in zip(w, cs)) / math.sqrt(sum(w)))
            row.update(direction=d, direction_source="effect in the analysis",
                       z=z, p=float(2 * _norm_sf(abs(z))),
                       p_source="from yi/vi" + (" (inverse-variance combination of its arms)"
                                                if len(cs) > 1 else ""))
        else:
            rec = [x for x in st.direction_of_effect if x.outcome in kinds]
            # a p-value is signed by the quoted direction, so only a trial with
            # a direction enters the combined test, and only with a p of the
            # same outcome as that direction; "no difference" with a p would
            # enter as z = 0 and pull the combination to the null
            if rec:
                row.update(direction=FAVOURS[rec[0].favours],
                           direction_source=f"quoted ({rec[0].quote}): {rec[0].basis}")
            if rec and row["direction"] in (1, -1):
                for o in st.outcomes:
                    b = o.between
                    if (o.outcome == rec[0].outcome and b is not None and b.p is not None
                            and b.p_qualifier == "=" and 0 < b.p.value < 1):
                        p = float(b.p.value)
                        row.update(p=p, p_source=f"printed exact p ({o.id})",
                                   z=float(swim.z_from_p([p], [row["direction"]])[0]))
                        break
        rows.append(row)

    def votes(rs):
        return swim.vote_count([r["direction"] for r in rs if r["direction"] is not None],
                               alpha).to_dict()

    withp = [r for r in rows if r["z"] is not None]
    weighted = [r for r in withp if r["n"]]
    sw = swim.stouffer([r["z"] for r in weighted], [math.sqrt(r["n"]) for r in weighted])
    sw_d = sw.to_dict() | {"weights": "sqrt(n randomised, else n analysed; a quoted trial "
                                      "total where n per arm is missing)",
                           "trials": [r["id"] for r in weighted],
                           "left_out_n_unknown": [r["id"] for r in withp if not r["n"]]}
    su = swim.stouffer([r["z"] for r in withp]).to_dict() | {
        "trials": [r["id"] for r in withp]}
    missing = [r for r in rows if not r["in_analysis"]]
    availability = {
        "trials_eligible": len(rows),
        "trials_analysed": len(rows) - len(missing),
        "participants_analysed": sum(r["n"] for r in rows if r["in_analysis"] and r["n"]),
        "trials_missing": len(missing),
        "participants_missing": sum(r["n"] for r in missing if r["n"]),
        "missing_n_unknown": sum(1 for r in missing if not r["n"]),
        "missing_favour_probiotic": sum(1 for r in missing if r["direction"] == 1),
        "missing_favour_control": sum(1 for r in missing if r["direction"] == -1),
        "missing_no_direction": sum(1 for r in missing if r["direction"] in (None, 0)),
        "n_from_trial_total": [r["id"] for r in rows
                               if r["n_source"] and r["n_source"].startswith("trial_total")],
    }
    return {"outcome_kinds": sorted(kinds), "trials": rows,
            "vote_count": {"all": votes(rows), "missing": votes(missing)},
            "stouffer": {"weighted": sw_d, "unweighted": su},
            "availability": availability}


def _norm_sf(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def _small_study(comps, proto: Protocol):
    k = len(comps)
    if k < proto.small_study_min_k:
        return {"assessed": False, "k": k,
                "reason": f"k = {k} < {proto.small_study_min_k}: funnel plot asymmetry tests "
                          f"are not meaningful (Cochrane Handbook 13.3.5.4)"}
    yi = np.array([c.yi for c in comps])
    vi = np.array([c.vi for c in comps])
    meth = proto.model.method if proto.model.method not in ("MH", "PETO") else "REML"
    from metaanalysis.stats import bias  # scipy.stats (Kendall's tau): only when k is large enough

    try:
        eg = bias.regtest(yi, vi, model="lm", method=meth)
        tf = bias.trimfill(yi, vi, method=meth)
    except (ValueError, MetaError, np.linalg.LinAlgError) as exc:
        return {"assessed": False, "k": k, "reason": f"not assessable: {exc}"}
    return {"assessed": True, "k": k, "egger": eg, "trimfill": tf}


def _adverse_events(comps, studies, proto):
    rows = []
    by_id = {s.id: s for s in studies}
    for c in comps:
        st = by_id[c.study]
        for ae in st.adverse_events or ():
            pa = ae.per_arm or {}
            if c.arm in pa and c.control in pa and pa[c.arm].n and pa[c.control].n:
                rows.append((c.key, pa[c.arm].events.value, pa[c.arm].n.value,
                             pa[c.control].events.value, pa[c.control].n.value))
                break
    if not rows:
        return Analysis("adverse events", "any adverse event, RR", (), None,
                        "no trial in this analysis has adverse events per arm in its extraction file")
    a = np.array([r[1] for r in rows], float)
    n1 = np.array([r[2] for r in rows], float)
    c_ = np.array([r[3] for r in rows], float)
    n2 = np.array([r[4] for r in rows], float)
    yi, vi = escalc("RR", ai=a, n1i=n1, ci=c_, n2i=n2)
    res = pool.pool_effects(yi, vi, [r[0] for r in rows], measure="RR", method="REML",
                           test=proto.model.test)
    return Analysis("adverse events", "any adverse event, RR", tuple(r[0] for r in rows), res)


def _awaiting(proto: Protocol, studies, registry, fate) -> dict:
    """For each stratum: which not-analysed trials of this purpose would fall in
    which level, with why they are not analysed (the review's "awaiting data"
    list, so that an insufficient-evidence verdict can name them)."""
    reasons = {f["id"]: f["reason"] for f in fate if f["status"] != "analysed"}
    out: dict = {}
    for st in studies:
        if st.id not in reasons or st.purpose != proto.eligibility.purpose:
            continue
        ints = [a for a in st.arms if a.role == "intervention"]
        controls = [a for a in st.arms if a.role == "control"]
        if not ints or not controls:
            continue
        baseline = _baseline(st, proto.severity.scale if proto.severity else "SCORAD")
        attrs, _ = _attrs(st, ints[0], controls[0], proto, registry, baseline)
        for name, level in attrs.items():
            out.setdefault(name, {}).setdefault(level, []).append((st.id, reasons[st.id]))
        out.setdefault("_studies", []).append((st.id, reasons[st.id], attrs))
    return out


def availability(proto: Protocol, studies, awaiting: dict, spec: dict, analysed) -> dict:
    """Eligible trials in a claim's target that have no usable data.

    Eligible: the protocol's purpose (already filtered in ``awaiting``),
    design, comparator and age group, and the claim's target attributes.
    Returns the dict :func:`metaanalysis.analysis.claims.grade` takes. Participants
    as in the SWiM block (:func:`_trial_n`: the arms' n, else a quoted
    ``trial_total``); directions only where a file records one
    (``direction_of_effect`` on the protocol's outcome or SWiM kinds).
    """
    el = proto.eligibility
    by_id = {st.id: st for st in studies}
    kinds = set(proto.outcome.kinds) | set(proto.swim.direction_kinds if proto.swim else ())
    missing, people, unknown, dirs = [], 0.0, 0, []
    for sid, _why, attrs in awaiting.get("_studies", []):
        st = by_id[sid]
        if st.design not in el.designs:
            continue
        controls = [a for a in st.arms if a.role == "control"]
        if el.comparators is not None and (not controls or controls[0].comparator not in el.comparators):
            continue
        age = st.population.age_group if st.population else None
        if el.age_groups is not None and age not in el.age_groups:
            continue
        if spec and not all(attrs.get(k) in v for k, v in spec.items()):
            continue
        missing.append(sid)
        n = _trial_n(st)
        if n is None:
            unknown += 1
        else:
            people += n
        rec = [x for x in st.direction_of_effect if x.outcome in kinds]
        dirs.append(FAVOURS[rec[0].favours] if rec else None)
    n_analysed = len({c.study for c in analysed})
    return {"trials_eligible": n_analysed + len(missing), "trials_missing": len(missing),
            "participants_missing": people, "missing_n_unknown": unknown,
            "missing_trials": tuple(missing), "missing_favour_probiotic": dirs.count(1),
            "missing_favour_control": dirs.count(-1),
            "missing_no_direction": sum(1 for d in dirs if d in (None, 0))}


def claim_inputs(proto: Protocol, comps, studies, awaiting: dict, *,
                 protocol_availability: dict | None = None) -> dict:
    """Every fit a claim needs, made before judging (claims only judges):
    the target subset, the target by the claim's modifier with the test for
    subgroup differences over the strata it compares, and availability.

    ``protocol_availability``: a richer availability summary for the whole
    protocol (with the direction of the missing trials' results, e.g. from a
    synthesis without meta-analysis); used for claims whose target is every
    eligible trial, instead of :func:`availability`.
    """
    out = {}
    fits: dict = {}  # comparison keys -> fit: claims on one target (C1, C3, C8, C10) fit it once
    for claim in proto.claims:
        if claim.finding == "harms":
            continue
        spec = dict(claim.target.subset)
        sub = subset(comps, spec)
        text = (", ".join(f"{k} in {'/'.join(v)}" for k, v in spec.items()) or "all eligible trials")
        waiting = tuple((sid, why) for sid, why, attrs in awaiting.get("_studies", [])
                        if spec and all(attrs.get(k) in v for k, v in spec.items()))
        av = (protocol_availability if protocol_availability is not None and not spec
              else availability(proto, studies, awaiting, spec, sub))
        kw = {"comps": sub, "target_text": text, "waiting": waiting, "availability": av}
        if claim.modifier and claim.finding in ("effect_modification", "benefit_in_strata"):
            named = list(claim.expected_benefit_in) + list(claim.expected_no_effect_in)
            counts = {}
            for c in sub:
                counts[c.attrs[claim.modifier]] = counts.get(c.attrs[claim.modifier], 0) + 1
            big = [l for l, k in counts.items()
                   if k >= proto.min_k_per_stratum and l not in UNCLASSIFIED_LEVELS]
            levels = [l for l in named if l in big] if named else big
            an = _fit(sub, proto, by=claim.modifier, name="claim target", test_levels=levels)
            kw.update(by=an.result, by_note=an.note,
                      between=between_strata_test(an.result.subgroups, levels, proto.model.alpha)
                      if an.result is not None else None,
                      strata_comps={l: tuple(c for c in sub if c.attrs[claim.modifier] == l)
                                    for l in counts})
        elif len(sub) >= proto.min_k_per_stratum:
            keys = tuple(c.key for c in sub)
            if keys not in fits:
                fits[keys] = _fit(sub, proto, name="claim target")
            an = fits[keys]
            kw.update(target=an.result, target_note=an.note)
        out[claim.id] = claims_mod.ClaimInput(**kw)
    return out


def run_protocol(proto: Protocol, studies, registry, *, only=None) -> RunResult:
    """Run every analysis of ``proto`` on ``studies``.

    Parameters
    ----------
    proto : Protocol
    studies : sequence of Study
        Validated study models (see :func:`metaanalysis.studies.load.load_studies`).
    registry : StrainRegistry
    only : str, optional
        A claim id: judge only this claim (the analyses it needs still run).
    """
    comps, fate = select_comparisons(proto, studies, registry)
    main = _fit(comps, proto, name="main", description="all eligible comparisons")
    strata = tuple(_fit(comps, proto, by=s.name, name=s.name,
                        description=f"by {s.name}" + (f" ({s.level} level)" if s.level else ""))
                   for s in proto.strata)
    regs = _regressions(comps, proto)
    sens = _sensitivity(comps, proto, studies, registry)
    loo = None
    if len(comps) >= 3 and proto.sensitivity.leave_one_out and proto.model.method not in ("MH", "PETO"):
        loo = diagnostics.leave_one_out(np.array([c.yi for c in comps]),
                                        np.array([c.vi for c in comps]),
                                        method=proto.model.method, test=proto.model.test,
                                        alpha=proto.model.alpha)
    cum = None
    if len(comps) >= 2 and proto.model.method not in ("MH", "PETO"):
        # by year of publication; ties keep the (alphabetical) comparison order
        cum = diagnostics.cumulative(np.array([c.yi for c in comps]), np.array([c.vi for c in comps]),
                                     order=np.array([c.year for c in comps], dtype=float),
                                     method=proto.model.method, test=proto.model.test,
                                     alpha=proto.model.alpha)
    small = _small_study(comps, proto)
    ae = _adverse_events(comps, studies, proto)
    awaiting = _awaiting(proto, studies, registry, fate)
    swim_res = swim_block(proto, studies, comps) if proto.swim is not None else None
    inputs = claim_inputs(proto, comps, studies, awaiting,
                          protocol_availability=swim_res["availability"] if swim_res else None)
    verdicts = claims_mod.judge_all(proto, comps, inputs=inputs, main=main, awaiting=awaiting,
                                    strata=strata, regressions=regs, sensitivity=sens, loo=loo,
                                    small_study=small, adverse_events=ae, only=only)
    return RunResult(protocol=proto, studies=fate, comparisons=comps, main=main, strata=strata,
                     regressions=regs, sensitivity=sens, leave_one_out=loo, cumulative=cum,
                     small_study=small,
                     adverse_events=ae, claims=verdicts, swim=swim_res)
