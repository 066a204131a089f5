"""The one place where the stages are sequenced: protocol + studies -> RunResult.

load (done by the caller) -> select and extract
(:mod:`metaanalysis.analysis.selection`) -> effect sizes -> fits per
stratum, meta-regression, sensitivity analyses, small-study effects ->
the fits each claim needs -> claim verdicts (:mod:`metaanalysis.analysis.claims`,
which judges only and imports nothing from here). Pure: no files are read
or written here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from metaanalysis.stats import pool
from metaanalysis.analysis import claims as claims_mod
# selection (eligibility, outcomes, strata, comparisons) is its own stage, shared with protocol.py
from metaanalysis.analysis import selection
from metaanalysis.analysis.selection import UNCLASSIFIED_LEVELS, Comparison
from metaanalysis.stats import diagnostics, distributions
from metaanalysis.stats.effects import escalc
from metaanalysis.errors import MetaError
from metaanalysis.analysis.protocol import Protocol
from metaanalysis.stats.results import FitResult, PoolResult, RegressionResult


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
    claims: tuple[claims_mod.ClaimVerdict, ...]
    warnings: tuple[str, ...] = field(default=())
    swim: dict | None = None           # synthesis without meta-analysis + availability


# ----------------------------------------------------------------------------
# fitting


def between_strata_test(subgroups: Sequence[tuple[str, FitResult]], levels: Sequence[str],
                        alpha: float) -> dict | None:
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

    Parameters
    ----------
    subgroups : sequence of (str, FitResult)
        Every stratum's fit.
    levels : sequence of str
        The strata that enter the test.
    alpha : float
        1 - the nominal coverage of the intervals the strata are shown with.

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
            rc, _ = selection.select_comparisons(proto, studies, registry, r=r)
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


def pooled_sds(comps: Sequence[Comparison]) -> dict:
    """Pooled SDs per scale, for imputing SDs in a sensitivity analysis.

    Parameters
    ----------
    comps : sequence of Comparison
        The analysed comparisons; SDs that are themselves imputed
        (correlation, imputed_sd) are not used.

    Returns
    -------
    dict
        Scale -> (pooled SD, Derivation), from the arm-level SDs (Furukawa 2006).
    """
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
        ic, _ = selection.select_comparisons(proto, studies, registry, impute_sd=imp)
        added = sorted({c.study for c in ic if "imputed_sd" in c.flags})
        a = _fit(ic, proto, name="impute missing SDs (imputed_sd)",
                 description="trials with means but no SD added, the SD borrowed from "
                             "the other trials (Furukawa 2006; Handbook 6.5.2.8): "
                             + (", ".join(added) if added else "none"))
        out.append(replace(a, added=tuple(c for c in ic if "imputed_sd" in c.flags)))
    if s.ratio_of_means and m.measure == "MD":
        rom = proto.model_copy(update={"model": m.model_copy(update={"measure": "ROM"})})
        rc, _ = selection.select_comparisons(rom, studies, registry, measure="ROM")
        a = _fit(rc, rom, name="ratio of means (ROM)",
                 description="final values as ratios of means (metafor ROM, pooled on the log "
                             "scale), with trials reporting only a ratio of geometric means; "
                             "below 1 favours the probiotic; never pooled with MDs")
        out.append(replace(a, added=tuple(rc)))
    if any("one_arm_of_multi_arm" in c.flags for c in comps):
        oc, _ = selection.select_comparisons(proto, studies, registry, ratio_arm=1)
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
        ac, _ = selection.select_comparisons(p2, studies, registry)
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


def _trial_n_source(st) -> tuple[float | None, str | None]:
    """Participants randomised (else analysed) over all arms, and where the number came from.

    The sum over the arms first; where an arm lacks n, the trial's quoted total
    (``trial_total``, only if it spans exactly the listed arms). A total is
    only ever counted, never split by arm or used for a variance.
    """
    tot = selection.listed_total(st)
    for attr in ("n_randomised", "n_analysed"):
        vals = [getattr(a, attr) for a in st.arms]
        if vals and all(v is not None for v in vals):
            return float(sum(v.value for v in vals)), f"sum of the arms' {attr}"
        if tot is not None and getattr(tot, attr) is not None:
            return float(getattr(tot, attr).value), f"trial_total.{attr} (not split by arm)"
    return None, None


def call_directly(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``: the default :data:`Memo` (nothing is kept)."""
    return fn(*args)


#: ``memo(fn, *args)`` returns ``fn(*args)`` for a pure function ``fn``.
#: ``meta run`` passes one that keeps such results by content in
#: ``<out>/.cache`` (``write.CallCache``): the SWiM Stouffer test imports
#: pymare, which costs more than a whole rerun otherwise (~1-2 s), and its
#: inputs (z-scores and weights) rarely change between runs.
Memo = Callable[..., Any]


def swim_block(proto: Protocol, studies: Sequence, comps: Sequence[Comparison],
               alpha: float | None = None, memo: Memo = call_directly) -> dict:
    """Vote counting, combined p-values and the availability of evidence.

    Every eligible trial (``_swim_eligible``) counts: the analysed ones with
    the direction and p-value of their effect (several arms: the direction
    they share, else neither; the inverse-variance combination of their
    arms), the others with a direction only where their file records one
    (``direction_of_effect``, quoted) and a p-value only where printed exactly
    for the same outcome and the direction favours one side.

    Parameters
    ----------
    proto : Protocol
        With a ``swim`` block.
    studies : sequence of Study
    comps : sequence of Comparison
        The analysed comparisons.
    alpha : float, optional
        Default: the protocol's.
    memo : Memo, optional
        How the combination tests are called (default: directly).

    Returns
    -------
    dict
        The SWiM block of results.json (per-trial rows, vote count, combined
        p-values, ``availability``).
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
    sw = memo(swim.stouffer, [r["z"] for r in weighted], [math.sqrt(r["n"]) for r in weighted])
    sw_d = sw.to_dict() | {"weights": "sqrt(n randomised, else n analysed; a quoted trial "
                                      "total where n per arm is missing)",
                           "trials": [r["id"] for r in weighted],
                           "left_out_n_unknown": [r["id"] for r in withp if not r["n"]]}
    su = memo(swim.stouffer, [r["z"] for r in withp]).to_dict() | {
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


def availability(proto: Protocol, studies: Sequence, awaiting: dict, spec: dict,
                 analysed: Sequence[Comparison]) -> dict:
    """Eligible trials in a claim's target that have no usable data.

    Eligible: the protocol's purpose (already filtered in ``awaiting``),
    design, comparator and age group, and the claim's target attributes.
    Returns the dict :func:`metaanalysis.analysis.claims.grade` takes. Participants
    as in the SWiM block (:func:`_trial_n`: the arms' n, else a quoted
    ``trial_total``); directions only where a file records one
    (``direction_of_effect`` on the protocol's outcome or SWiM kinds).

    Parameters
    ----------
    proto : Protocol
    studies : sequence of Study
    awaiting : dict
        :func:`metaanalysis.analysis.selection.awaiting_by_stratum`.
    spec : dict
        The claim's target subset (stratum -> levels; empty: every trial).
    analysed : sequence of Comparison
        The target's analysed comparisons.

    Returns
    -------
    dict
        trials_eligible, trials_missing, participants_missing,
        missing_n_unknown, missing_trials, missing_favour_probiotic,
        missing_favour_control, missing_no_direction.
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


def claim_inputs(proto: Protocol, comps: Sequence[Comparison], studies: Sequence, awaiting: dict, *,
                 protocol_availability: dict | None = None) -> dict[str, claims_mod.ClaimInput]:
    """Every fit a claim needs, made before judging (claims only judges):
    the target subset, the target by the claim's modifier with the test for
    subgroup differences over the strata it compares, and availability.

    ``protocol_availability``: a richer availability summary for the whole
    protocol (with the direction of the missing trials' results, e.g. from a
    synthesis without meta-analysis); used for claims whose target is every
    eligible trial, instead of :func:`availability`.

    Parameters
    ----------
    proto : Protocol
    comps : sequence of Comparison
        The protocol's eligible comparisons.
    studies : sequence of Study
    awaiting : dict
        :func:`metaanalysis.analysis.selection.awaiting_by_stratum`.
    protocol_availability : dict, optional

    Returns
    -------
    dict
        Claim id -> :class:`metaanalysis.analysis.claims.ClaimInput` (harms
        claims have none: they are judged on the adverse-event analysis).
    """
    out = {}
    fits: dict = {}  # comparison keys -> fit: claims on one target (C1, C3, C8, C10) fit it once
    for claim in proto.claims:
        if claim.finding == "harms":
            continue
        spec = dict(claim.target.subset)
        sub = selection.subset(comps, spec)
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


def run_protocol(proto: Protocol, studies: Sequence, registry: Any, *,
                 only: str | None = None, memo: Memo = call_directly) -> RunResult:
    """Run every analysis of ``proto`` on ``studies``.

    Parameters
    ----------
    proto : Protocol
    studies : sequence of Study
        Validated study models (see :func:`metaanalysis.studies.load.load_studies`).
    registry : StrainRegistry
    only : str, optional
        A claim id: judge only this claim (the analyses it needs still run).
    memo : Memo, optional
        How pure, costly functions are called (:data:`Memo`; default: directly).

    Returns
    -------
    RunResult
        Every fit, the fate of every study file and the claim verdicts.
    """
    comps, fate = selection.select_comparisons(proto, studies, registry)
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
    awaiting = selection.awaiting_by_stratum(proto, studies, registry, fate)
    swim_res = swim_block(proto, studies, comps, memo=memo) if proto.swim is not None else None
    inputs = claim_inputs(proto, comps, studies, awaiting,
                          protocol_availability=swim_res["availability"] if swim_res else None)
    verdicts = claims_mod.judge_all(proto, comps, inputs=inputs, main=main, awaiting=awaiting,
                                    strata=strata, regressions=regs, sensitivity=sens, loo=loo,
                                    small_study=small, adverse_events=ae, only=only)
    return RunResult(protocol=proto, studies=fate, comparisons=comps, main=main, strata=strata,
                     regressions=regs, sensitivity=sens, leave_one_out=loo, cumulative=cum,
                     small_study=small,
                     adverse_events=ae, claims=verdicts, swim=swim_res)
