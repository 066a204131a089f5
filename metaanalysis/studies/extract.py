"""From a study file to the inputs of the effect-size stage.

:func:`extract` turns one outcome of one :class:`~metaanalysis.studies.schema.Study`
into an :class:`Extraction`: either per-arm summaries for
``metaanalysis.stats.effects.escalc`` (``m1i, sd1i, n1i, m2i, sd2i, n2i`` or
``ai, n1i, ci, n2i``) or a generic ``(yi, vi)``, with the chain of
:class:`~metaanalysis.studies.conversions.Derivation` steps that produced them and
flags for sensitivity analyses.

Rules
-----
* Group 1 is always the probiotic arm: effects are probiotic minus control
  (or probiotic over control). A between-group result printed the other way
  round (``direction: control_minus_probiotic``) is flipped.
* Per-arm data are preferred. Per arm, the SD comes from (in order) the SD,
  the SE, the CI of the mean, the median with IQR and/or range (Wan 2014;
  mean by Luo 2018), or, for change scores, the baseline and final SDs with an
  assumed correlation ``r`` (Handbook 6.5.2.8; flag ``imputed_correlation``).
* With per-arm means but no usable SDs, the SE of the difference is taken from
  the between-group SE, CI, or exact p-value (flag ``derived_from_p``), and a
  common SD ``se / sqrt(1/n1 + 1/n2)`` is imputed for both arms when the arm
  sizes are known (Handbook 6.5.2.3); otherwise a generic MD is returned.
* Without per-arm data, a between-group MD/SMD/RR/OR/RD with its CI, SE or
  exact p-value gives a generic ``(yi, vi)`` (ratios on the log scale). An MD
  can feed an SMD analysis only when both arm sizes are known.
* Change scores and final values may be mixed for MD, never for SMD:
  :func:`check_scales` (called by :func:`extract_many`) refuses.
* Per-arm means with the CI of each mean but no n give a generic MD whose SE
  is ``sqrt(se1^2 + se2^2)``, ``se_j = CI width / 3.92`` (Handbook 6.5.2.2).
* ``measure="ROM"`` (log ratio of means, metafor): from a reported ratio with
  its CI, from per-arm mean/SD/n of final values, or from per-arm means with
  CIs (delta method). Never from change scores.
* ``impute_sd={"final": (sd, derivation), ...}`` fills a missing per-arm SD
  with an SD borrowed from the other trials (Furukawa 2006), flag
  ``imputed_sd``: for sensitivity analyses only.
* Per-arm percentages are turned into events only when ``round(pct n / 100)``
  reproduces the printed percentage (otherwise n is not its denominator).
  Percentages without usable counts and an exact p-value give a generic
  RR/OR/RD from the two proportions with its SE from the p-value (Handbook
  6.3.2; Altman & Bland 2011), flags ``derived_from_p`` and
  ``effect_from_percent``.
* ``split_control=k`` divides the control group's n (and events) by ``k`` for
  a control arm shared by k separately analysed comparisons.

This module is pure: it reads models, never files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from metaanalysis.studies import conversions as cv
from metaanalysis.studies.conversions import Derivation
from metaanalysis.errors import MetaError
from metaanalysis.stats.measures import STUDY_MEASURES
from metaanalysis.studies.schema import (
    BINARY_MEASURES, CONTINUOUS_MEASURES, RATIO_MEASURES, ArmOutcome, Number, Outcome, Study,
)

__all__ = ["ExtractionError", "Extraction", "extract", "extract_many", "check_scales",
           "MEASURES"]

MEASURES = STUDY_MEASURES


class ExtractionError(MetaError, ValueError):
    """The study's data cannot give the requested effect; the message says why."""


@dataclass(frozen=True)
class Extraction:
    """What one study contributes to one analysis.

    ``kind == "arms"``: per-arm inputs for ``escalc(measure, ...)``.
    ``kind == "generic"``: ``yi`` and ``vi`` on the analysis scale (log for
    RR/OR), for ``escalc("GEN", yi=..., vi=...)``.
    """

    study: str
    outcome: str
    measure: str
    kind: Literal["arms", "generic"]
    scale: Literal["final", "change", "events"]
    intervention_arm: str
    control_arm: str
    m1i: float | None = None
    sd1i: float | None = None
    n1i: float | None = None
    m2i: float | None = None
    sd2i: float | None = None
    n2i: float | None = None
    ai: float | None = None
    ci: float | None = None
    yi: float | None = None
    vi: float | None = None
    derivations: tuple[Derivation, ...] = ()
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def escalc_args(self) -> tuple[str, dict]:
        """``(measure, kwargs)`` for ``metaanalysis.stats.effects.escalc``, one study.

        Examples
        --------
        >>> measure, kw = ex.escalc_args()            # doctest: +SKIP
        >>> yi, vi = escalc(measure, **kw)            # doctest: +SKIP
        """
        if self.kind == "generic":
            return "GEN", {"yi": [self.yi], "vi": [self.vi]}
        if self.measure in CONTINUOUS_MEASURES:  # MD, SMD, ROM
            return self.measure, {k: [getattr(self, k)] for k in
                                  ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")}
        return self.measure, {"ai": [self.ai], "n1i": [self.n1i], "ci": [self.ci],
                              "n2i": [self.n2i]}

    def to_dict(self) -> dict:
        """The effect, its arm-level inputs and its derivations as plain values."""
        out = {k: getattr(self, k) for k in (
            "study", "outcome", "measure", "kind", "scale", "intervention_arm", "control_arm",
            "m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i", "ai", "ci", "yi", "vi")}
        out["derivations"] = [d.to_dict() for d in self.derivations]
        out["flags"] = list(self.flags)
        out["notes"] = list(self.notes)
        return out


# ---------------------------------------------------------------------------
# helpers


class _Chain:
    """Accumulates derivations, flags and notes while extracting."""

    def __init__(self, study: Study):
        self.steps: list[Derivation] = []
        self.flags: list[str] = list(study.flags)
        self.notes: list[str] = []
        self.study = study

    def add(self, d: Derivation) -> None:
        self.steps.append(d)

    def flag(self, f: str) -> None:
        if f not in self.flags:
            self.flags.append(f)

    def num(self, num: Number, name: str) -> float:
        """The value of a file number, recording its file-level derivation."""
        if num.from_figure:
            self.flag("from_figure")
        if num.quote is not None:
            q = self.study.quotes.get(num.quote)
            src = self.study.sources.get(q.source) if q is not None else None
            if src is not None and src.secondary:
                self.flag("secondary_source")
        if num.derived is not None:
            d = num.derived
            self.add(Derivation(
                method=d.method, inputs=tuple((k, float(v.value)) for k, v in d.inputs.items()),
                formula=d.formula, reference=d.reference or "study file",
                result=((name, float(num.value)),), note="recorded in the study file"))
        return float(num.value)


def _find_outcome(study: Study, outcome_id: str) -> Outcome:
    for out in study.outcomes:
        if out.id == outcome_id:
            return out
    known = ", ".join(o.id for o in study.outcomes) or "none"
    raise ExtractionError(f"{study.id}: no outcome '{outcome_id}' (outcomes: {known})")


def _pick_arms(study: Study, out: Outcome, intervention: str | None, control: str | None
               ) -> tuple[str, str]:
    roles = {a.id: a.role for a in study.arms}
    comp = out.between.comparison if out.between is not None else None
    picked = []
    for role, given, from_comp in (("intervention", intervention, comp and comp.intervention),
                                   ("control", control, comp and comp.control)):
        if given is not None:
            if roles.get(given) != role:
                arms = ", ".join(f"{k} ({v})" for k, v in roles.items())
                raise ExtractionError(f"{study.id}: '{given}' is not an arm with role '{role}' "
                                      f"(arms: {arms})")
            picked.append(given)
            continue
        if from_comp:
            picked.append(from_comp)
            continue
        cands = [k for k, v in roles.items() if v == role]
        with_data = [k for k in cands if out.per_arm and k in out.per_arm]
        if len(cands) == 1:
            picked.append(cands[0])
        elif len(with_data) == 1:
            picked.append(with_data[0])
        else:
            raise ExtractionError(f"{study.id}: several {role} arms ({', '.join(cands)}); "
                                  f"say which one with {role}=...")
    return picked[0], picked[1]


def _arm_n(ch: _Chain, study: Study, arm_id: str, d: ArmOutcome | None) -> float | None:
    if d is not None and d.n is not None:
        return ch.num(d.n, "n")
    arm = next(a for a in study.arms if a.id == arm_id)
    if arm.n_analysed is not None:
        n = ch.num(arm.n_analysed, "n")
        ch.notes.append(f"n for arm '{arm_id}' taken from the arm's n_analysed ({n:g})")
        return n
    if arm.n_randomised is not None:
        n = ch.num(arm.n_randomised, "n")
        ch.flag("n_from_randomised")
        ch.notes.append(f"n for arm '{arm_id}' taken from n_randomised ({n:g}); "
                        "n analysed not reported")
        return n
    return None


def _baseline_sd(study: Study, out: Outcome, arm_id: str) -> Number | None:
    if study.population is None:
        return None
    for b in study.population.baseline or ():
        if b.scale == out.outcome and b.arm in (arm_id, "all") and b.sd is not None:
            return b.sd
    return None


def _final_sd(study: Study, out: Outcome, arm_id: str) -> Number | None:
    for o in study.outcomes:
        if (o is not out and o.outcome == out.outcome and o.scale == "final"
                and o.timepoint_weeks == out.timepoint_weeks and o.per_arm
                and arm_id in o.per_arm and o.per_arm[arm_id].sd is not None):
            return o.per_arm[arm_id].sd
    return None


def _mean_sd(ch: _Chain, study: Study, out: Outcome, arm_id: str, d: ArmOutcome,
             n: float | None, r: float, median_mean: str
             ) -> tuple[float | None, float | None]:
    """Mean and SD of one arm, by the first route the data allow."""
    if d.median is not None and d.mean is None:
        if n is None:
            raise ExtractionError(f"{study.id}: arm '{arm_id}' reports a median; its n is "
                                  "needed to estimate mean and SD")
        med = ch.num(d.median, "median")
        if d.q1 is not None and d.min is not None:
            m, s, der = cv.mean_sd_from_five_numbers(
                ch.num(d.min, "min"), ch.num(d.q1, "q1"), med, ch.num(d.q3, "q3"),
                ch.num(d.max, "max"), n, mean_method=median_mean)
        elif d.q1 is not None:
            m, s, der = cv.mean_sd_from_median_iqr(ch.num(d.q1, "q1"), med, ch.num(d.q3, "q3"),
                                                   n, mean_method=median_mean)
        elif d.min is not None:
            m, s, der = cv.mean_sd_from_median_range(ch.num(d.min, "min"), med,
                                                     ch.num(d.max, "max"), n,
                                                     mean_method=median_mean)
        else:
            raise ExtractionError(f"{study.id}: arm '{arm_id}' gives a median without an "
                                  "IQR or range")
        ch.add(der)
        ch.flag("median_converted")
        if "skewed" in der.note:
            ch.flag("skewed")
        return m, s
    mean = ch.num(d.mean, "mean") if d.mean is not None else None
    if d.sd is not None:
        return mean, ch.num(d.sd, "sd")
    if d.se is not None and n is not None:
        sd, der = cv.sd_from_se(ch.num(d.se, "se"), n)
        ch.add(der)
        return mean, sd
    if d.ci_lb is not None and n is not None:
        sd, der = cv.sd_from_ci(ch.num(d.ci_lb, "ci_lb"), ch.num(d.ci_ub, "ci_ub"), n,
                                d.ci_level)
        ch.add(der)
        return mean, sd
    if out.scale == "change":
        sd_b, sd_f = _baseline_sd(study, out, arm_id), _final_sd(study, out, arm_id)
        if sd_b is not None and sd_f is not None:
            sd, der = cv.sd_change(ch.num(sd_b, "sd_baseline"), ch.num(sd_f, "sd_final"), r)
            ch.add(der)
            ch.flag("imputed_correlation")
            return mean, sd
    return mean, None


def _flip(direction: str | None) -> bool:
    return direction == "control_minus_probiotic"


def _between_se(ch: _Chain, study: Study, out: Outcome, estimate: float | None,
                n1: float | None, n2: float | None, log: bool) -> float:
    """SE of the between-group estimate (analysis scale) from SE, CI or exact p."""
    b = out.between
    if b.se is not None:
        if log:
            raise ExtractionError(f"{study.id}: an SE for a {b.measure} is ambiguous (ratio or "
                                  "log scale); record the CI instead")
        return ch.num(b.se, "se")
    if b.ci_lb is not None:
        df = None
        if (not log and b.measure in CONTINUOUS_MEASURES and n1 is not None and n2 is not None
                and min(n1, n2) < cv.SMALL_SAMPLE):
            df = n1 + n2 - 2
        se, der = cv.se_from_ci(ch.num(b.ci_lb, "ci_lb"), ch.num(b.ci_ub, "ci_ub"),
                                b.ci_level, df=df, log=log)
        ch.add(der)
        if estimate is not None:
            lb, ub = float(b.ci_lb.value), float(b.ci_ub.value)
            if log:
                lb, ub = math.log(lb), math.log(ub)
            if abs((lb + ub) / 2 - estimate) > 0.1 * (ub - lb):
                ch.flag("ci_asymmetric")
                ch.notes.append("the estimate is not halfway between its CI bounds "
                                "(metafor conv.wald check)")
        return se
    if b.p is not None and b.p_qualifier == "=":
        if estimate is None:
            raise ExtractionError(f"{study.id}: an exact p-value needs an estimate")
        df = None
        if (not log and b.measure in CONTINUOUS_MEASURES and n1 is not None and n2 is not None
                and min(n1, n2) < cv.SMALL_SAMPLE):
            df = n1 + n2 - 2
        se, der = cv.se_from_p(estimate, ch.num(b.p, "p"), df=df)
        ch.add(der)
        ch.flag("derived_from_p")
        return se
    what = (f"p {b.p_qualifier} {b.p.value:g}" if b.p is not None
            else "p not significant" if b.p_qualifier == "NS" else "no CI, SE or p-value")
    raise ExtractionError(f"{study.id}/{out.id}: the between-group result gives {what}; an "
                          "SE needs a CI, an SE or an exact p-value")


# ---------------------------------------------------------------------------
# the public functions


def extract(study: Study, outcome_id: str, *, measure: str, r: float = 0.5,
            intervention: str | None = None, control: str | None = None,
            split_control: int = 1, median_mean: Literal["luo", "wan"] = "luo",
            impute_sd: dict | None = None,
            ) -> Extraction:
    """Turn one outcome of one study into effect-size inputs.

    Parameters
    ----------
    study : Study
    outcome_id : str
        ``outcomes[].id`` in the study file.
    measure : {"MD", "SMD", "RR", "OR", "RD"}
    r : float
        Assumed correlation between baseline and final values, used only to
        impute the SD of change scores (default 0.5; vary it in sensitivity
        analyses).
    intervention, control : str, optional
        Arm ids; needed when the study has several arms of a role and the
        outcome does not say which it compares.
    split_control : int
        Number of separately analysed comparisons sharing this control arm;
        its n (and events) are divided by it.
    median_mean : {"luo", "wan"}
        Mean estimator for medians.
    impute_sd : dict, optional
        Scale (``"final"``/``"change"``) -> ``(sd, Derivation)``: an SD
        borrowed from other trials for arms with a mean and n but no SD (flag
        ``imputed_sd``; sensitivity analyses only).

    Returns
    -------
    Extraction

    Raises
    ------
    ExtractionError
        When the data cannot give this effect (the message says what is
        missing), the study is excluded, or the measure does not fit the
        outcome.
    """
    measure = str(measure).upper()
    if measure not in MEASURES:
        raise ExtractionError(f"unknown measure '{measure}'; expected one of {', '.join(MEASURES)}")
    if not -1 <= r <= 1:
        raise ExtractionError(f"r must be in [-1, 1], got {r}")
    if study.status == "excluded":
        raise ExtractionError(f"{study.id} is excluded: {study.excluded}")
    out = _find_outcome(study, outcome_id)
    if (out.scale == "events") != (measure in BINARY_MEASURES):
        raise ExtractionError(f"{study.id}/{out.id}: a '{out.scale}' outcome cannot give "
                              f"{measure}")
    i_arm, c_arm = _pick_arms(study, out, intervention, control)
    ch = _Chain(study)
    try:
        if measure in BINARY_MEASURES:
            ex = _binary(ch, study, out, measure, i_arm, c_arm, split_control)
        elif measure == "ROM":
            ex = _rom(ch, study, out, i_arm, c_arm, split_control)
        else:
            ex = _continuous(ch, study, out, measure, i_arm, c_arm, r, split_control, median_mean,
                             impute_sd)
    except ValueError as exc:
        if isinstance(exc, ExtractionError):
            raise
        raise ExtractionError(f"{study.id}/{out.id}: {exc}") from exc
    return ex


def _split(ch: _Chain, n: float, k: int, events: float | None = None):
    if k == 1:
        return n, events
    n2, ev2, der = cv.split_shared_control(n, k, events)
    ch.add(der)
    ch.flag("shared_control_split")
    return n2, ev2


def _continuous(ch, study, out, measure, i_arm, c_arm, r, k, median_mean, impute_sd=None
                ) -> Extraction:
    base = dict(study=study.id, outcome=out.id, measure=measure, scale=out.scale,
                intervention_arm=i_arm, control_arm=c_arm)
    pa = out.per_arm or {}
    d1, d2 = pa.get(i_arm), pa.get(c_arm)
    n1 = _arm_n(ch, study, i_arm, d1) if d1 is not None or out.between is not None else None
    n2 = _arm_n(ch, study, c_arm, d2) if d2 is not None or out.between is not None else None
    m1 = s1 = m2 = s2 = None
    if d1 is not None and d2 is not None:
        m1, s1 = _mean_sd(ch, study, out, i_arm, d1, n1, r, median_mean)
        m2, s2 = _mean_sd(ch, study, out, c_arm, d2, n2, r, median_mean)

    # --- 1. complete per-arm data -----------------------------------------
    if None not in (m1, s1, m2, s2, n1, n2):
        n2s, _ = _split(ch, n2, k)
        return Extraction(kind="arms", m1i=m1, sd1i=s1, n1i=n1, m2i=m2, sd2i=s2, n2i=n2s,
                          derivations=tuple(ch.steps), flags=tuple(ch.flags),
                          notes=tuple(ch.notes), **base)

    b = out.between
    if b is not None and b.measure != measure and not (b.measure == "MD" and measure == "SMD"):
        raise ExtractionError(f"{study.id}/{out.id}: the paper reports {b.measure}; it cannot "
                              f"give {measure}")

    # --- 2. per-arm means, SE of the difference from the between result ---
    imputable = (impute_sd is not None and out.scale in impute_sd and None not in (m1, m2, n1, n2))
    if m1 is not None and m2 is not None and b is not None and b.measure == "MD":
        md = m1 - m2
        if b.estimate is not None:
            printed = float(b.estimate.value) * (-1 if _flip(b.direction) else 1)
            if not math.isclose(printed, md, rel_tol=0.05, abs_tol=0.05):
                ch.notes.append(f"the printed difference ({printed:g}) differs from the "
                                f"difference of the arm means ({md:g})")
        try:
            se = _between_se(ch, study, out, md, n1, n2, log=False)
        except ExtractionError:
            if not imputable:
                raise
        else:
            return _from_md(ch, base, md, se, n1, n2, k, measure, study, out, means=(m1, m2))

    # --- 2b. per-arm means with the CI of each mean, group sizes unknown ----
    if (measure == "MD" and m1 is not None and m2 is not None and (n1 is None or n2 is None)
            and all(d is not None and d.ci_lb is not None and d.ci_ub is not None
                    for d in (d1, d2))):
        if d1.ci_level != d2.ci_level:
            raise ExtractionError(f"{study.id}/{out.id}: the arms' CIs have different levels")
        ci1 = (ch.num(d1.ci_lb, "ci_lb"), ch.num(d1.ci_ub, "ci_ub"))
        ci2 = (ch.num(d2.ci_lb, "ci_lb"), ch.num(d2.ci_ub, "ci_ub"))
        md, se, der = cv.md_from_arm_cis(m1, ci1, m2, ci2, d1.ci_level, k_control=k)
        ch.add(der)
        ch.flag("se_from_arm_ci")
        if k > 1:
            ch.flag("shared_control_split")
        for arm_id, m, (lb, ub) in ((i_arm, m1, ci1), (c_arm, m2, ci2)):
            if abs((lb + ub) / 2 - m) > 0.05 * (ub - lb):
                ch.flag("ci_asymmetric")
                ch.notes.append(f"arm '{arm_id}': the mean {m:g} is not halfway between its "
                                f"CI bounds [{lb:g}, {ub:g}]; the SE uses the CI width")
        ch.notes.append("group sizes unknown: SE of each arm mean = CI width / (2 z), "
                        "MD as a generic effect")
        return Extraction(kind="generic", yi=md, vi=se * se, n1i=n1, n2i=n2,
                          derivations=tuple(ch.steps), flags=tuple(ch.flags),
                          notes=tuple(ch.notes), **base)

    # --- 2c. means without SDs: an SD borrowed from other trials ----------
    if imputable and (s1 is None or s2 is None):
        sd_imp, der = impute_sd[out.scale]
        ch.add(der)
        ch.flag("imputed_sd")
        s1 = sd_imp if s1 is None else s1
        s2 = sd_imp if s2 is None else s2
        ch.notes.append(f"missing SD imputed as {sd_imp:.4g} (pooled SD of the other trials' "
                        f"{out.scale} values): sensitivity analysis only")
        n2s, _ = _split(ch, n2, k)
        return Extraction(kind="arms", m1i=m1, sd1i=s1, n1i=n1, m2i=m2, sd2i=s2, n2i=n2s,
                          derivations=tuple(ch.steps), flags=tuple(ch.flags),
                          notes=tuple(ch.notes), **base)

    # --- 3. between-group result only -------------------------------------
    if b is None:
        missing = "per-arm SDs (or SE/CI/median spread)" if d1 is not None and d2 is not None \
            else "per-arm data for both arms"
        raise ExtractionError(f"{study.id}/{out.id}: no between-group result and no {missing}")
    if b.estimate is not None:
        est = ch.num(b.estimate, "estimate")
    elif b.ci_lb is not None:
        lb, ub = ch.num(b.ci_lb, "ci_lb"), ch.num(b.ci_ub, "ci_ub")
        est = (lb + ub) / 2
        ch.add(cv.derivation("other", {"ci_lb": lb, "ci_ub": ub}, "estimate = (ci_lb + ci_ub) / 2",
                     "Wald CI midpoint", {"estimate": est}))
    else:
        raise ExtractionError(f"{study.id}/{out.id}: the between-group result has no estimate")
    se = _between_se(ch, study, out, est, n1, n2, log=False)
    if _flip(b.direction):
        est = -est
        ch.notes.append("the printed estimate was control minus probiotic; sign flipped")
    if b.measure == measure:
        return Extraction(kind="generic", yi=est, vi=se * se, n1i=n1, n2i=n2,
                          derivations=tuple(ch.steps), flags=tuple(ch.flags),
                          notes=tuple(ch.notes), **_no_split(k, study, out, base))
    return _from_md(ch, base, est, se, n1, n2, k, measure, study, out)


def _rom(ch, study, out, i_arm, c_arm, k) -> Extraction:
    """Log ratio of means: a reported ratio, per-arm mean/SD/n, or per-arm CIs."""
    base = dict(study=study.id, outcome=out.id, measure="ROM", scale=out.scale,
                intervention_arm=i_arm, control_arm=c_arm)
    b = out.between
    if b is not None and b.measure == "ROM":
        if b.estimate is None or b.ci_lb is None:
            raise ExtractionError(f"{study.id}/{out.id}: a reported ratio of means needs its "
                                  "estimate and CI")
        yi, se, der = cv.log_ratio_from_ci(ch.num(b.estimate, "estimate"),
                                           ch.num(b.ci_lb, "ci_lb"), ch.num(b.ci_ub, "ci_ub"),
                                           b.ci_level)
        ch.add(der)
        if _flip(b.direction):
            yi = -yi
            ch.notes.append("the printed ratio was control over probiotic; inverted")
        return Extraction(kind="generic", yi=yi, vi=se * se, derivations=tuple(ch.steps),
                          flags=tuple(ch.flags), notes=tuple(ch.notes),
                          **_no_split(k, study, out, base))
    if out.scale != "final":
        raise ExtractionError(f"{study.id}/{out.id}: a ratio of means needs final values, "
                              f"not '{out.scale}' scores")
    pa = out.per_arm or {}
    d1, d2 = pa.get(i_arm), pa.get(c_arm)
    if d1 is None or d2 is None or d1.mean is None or d2.mean is None:
        raise ExtractionError(f"{study.id}/{out.id}: a ratio of means needs both arms' means "
                              "or a reported ratio")
    m1, m2 = ch.num(d1.mean, "mean"), ch.num(d2.mean, "mean")
    n1, n2 = _arm_n(ch, study, i_arm, d1), _arm_n(ch, study, c_arm, d2)
    if d1.sd is not None and d2.sd is not None and n1 is not None and n2 is not None:
        n2s, _ = _split(ch, n2, k)
        return Extraction(kind="arms", m1i=m1, sd1i=ch.num(d1.sd, "sd"), n1i=n1, m2i=m2,
                          sd2i=ch.num(d2.sd, "sd"), n2i=n2s, derivations=tuple(ch.steps),
                          flags=tuple(ch.flags), notes=tuple(ch.notes), **base)
    if all(d.ci_lb is not None and d.ci_ub is not None for d in (d1, d2)):
        yi, se, der = cv.log_rom_from_arm_cis(
            m1, (ch.num(d1.ci_lb, "ci_lb"), ch.num(d1.ci_ub, "ci_ub")),
            m2, (ch.num(d2.ci_lb, "ci_lb"), ch.num(d2.ci_ub, "ci_ub")), d1.ci_level,
            k_control=k)
        ch.add(der)
        ch.flag("se_from_arm_ci")
        if k > 1:
            ch.flag("shared_control_split")
        return Extraction(kind="generic", yi=yi, vi=se * se, n1i=n1, n2i=n2,
                          derivations=tuple(ch.steps), flags=tuple(ch.flags),
                          notes=tuple(ch.notes), **base)
    raise ExtractionError(f"{study.id}/{out.id}: a ratio of means needs per-arm SDs and n, "
                          "per-arm CIs, or a reported ratio with its CI")


def _no_split(k: int, study, out, base):
    if k != 1:
        raise ExtractionError(f"{study.id}/{out.id}: a shared control cannot be split in a "
                              "between-group estimate (no per-arm counts)")
    return base


def _from_md(ch, base, md, se, n1, n2, k, measure, study, out, means=None) -> Extraction:
    """Arms with a common imputed SD (when n1, n2 are known), else generic MD.

    ``means``: the reported arm means, kept when known so that tables and
    forest plots show what the paper printed; otherwise m1i = MD and m2i = 0.
    """
    if n1 is not None and n2 is not None:
        sd, der = cv.sd_pooled_from_se_diff(se, n1, n2)
        ch.add(der)
        n2s, _ = _split(ch, n2, k)
        m1, m2 = means if means is not None else (md, 0.0)
        note = ("both arms carry the common SD imputed from the SE of the difference"
                if means is not None else
                "m1i is the mean difference and m2i = 0; both arms carry the imputed common SD")
        return Extraction(kind="arms", m1i=m1, sd1i=sd, n1i=n1, m2i=m2, sd2i=sd, n2i=n2s,
                          derivations=tuple(ch.steps), flags=tuple(ch.flags),
                          notes=tuple(ch.notes) + (note,), **base)
    if measure == "SMD":
        raise ExtractionError(f"{study.id}/{out.id}: an SMD from a mean difference needs both "
                              "arm sizes")
    return Extraction(kind="generic", yi=md, vi=se * se, derivations=tuple(ch.steps),
                      flags=tuple(ch.flags), notes=tuple(ch.notes),
                      **_no_split(k, study, out, base))


def _binary(ch, study, out, measure, i_arm, c_arm, k) -> Extraction:
    base = dict(study=study.id, outcome=out.id, measure=measure, scale=out.scale,
                intervention_arm=i_arm, control_arm=c_arm)
    pa = out.per_arm or {}
    d1, d2 = pa.get(i_arm), pa.get(c_arm)

    def events(arm_id, d):
        n = _arm_n(ch, study, arm_id, d)
        if n is None:
            return None, None
        if d.events is not None:
            return ch.num(d.events, "events"), n
        if d.percent is not None:
            pct = ch.num(d.percent, "percent")
            ev = round(pct * n / 100)
            if not _reproduces_percent(ev, n, pct):
                # n is not the percentage's denominator (e.g. randomised, not analysed):
                # events from it would be invented, so none are derived.
                ch.notes.append(f"arm '{arm_id}': {pct:g}% of n = {n:g} is not a whole number "
                                "of participants at the printed precision; events not derived")
                return None, n
            ch.add(cv.derivation("percent_of_n", {"percent": pct, "n": n},
                         "events = round(percent / 100 * n)", "arithmetic", {"events": ev}))
            ch.flag("events_from_percent")
            return float(ev), n
        return None, n

    if d1 is not None and d2 is not None:
        saved = (list(ch.steps), list(ch.flags), list(ch.notes))
        a, n1 = events(i_arm, d1)
        c, n2 = events(c_arm, d2)
        if None not in (a, n1, c, n2):
            n2s, cs = _split(ch, n2, k, c)
            return Extraction(kind="arms", ai=a, n1i=n1, ci=cs, n2i=n2s,
                              derivations=tuple(ch.steps), flags=tuple(ch.flags),
                              notes=tuple(ch.notes), **base)
        # no counts for both arms: forget the steps of one arm's counts (they are not
        # used), keep only the reason why the percentages gave no events
        why = [x for x in ch.notes[len(saved[2]):] if "events not derived" in x]
        ch.steps, ch.flags, ch.notes = saved[0], saved[1], saved[2] + why
    b = out.between
    if b is None:
        raise ExtractionError(f"{study.id}/{out.id}: needs events and n for both arms, or a "
                              "between-group ratio with its CI")
    if (b.estimate is None and b.ci_lb is None and b.p is not None and b.p_qualifier == "="
            and d1 is not None and d2 is not None
            and d1.percent is not None and d2.percent is not None):
        return _from_percents_p(ch, base, study, out, measure, d1, d2, k)
    if b.measure != measure:
        raise ExtractionError(f"{study.id}/{out.id}: the paper reports {b.measure}; it cannot "
                              f"give {measure} without per-arm counts")
    log = measure in RATIO_MEASURES
    if b.estimate is not None:
        est = ch.num(b.estimate, "estimate")
    elif b.ci_lb is not None:
        lb, ub = ch.num(b.ci_lb, "ci_lb"), ch.num(b.ci_ub, "ci_ub")
        est = math.sqrt(lb * ub) if log else (lb + ub) / 2
        ch.add(cv.derivation("other", {"ci_lb": lb, "ci_ub": ub},
                     "estimate = sqrt(ci_lb * ci_ub)" if log else "estimate = (ci_lb + ci_ub)/2",
                     "Wald CI midpoint", {"estimate": est}))
    else:
        raise ExtractionError(f"{study.id}/{out.id}: the between-group result has no estimate")
    yi = math.log(est) if log else est
    if log:
        ch.add(cv.derivation("unit_conversion", {measure: est}, f"yi = ln({measure})", "log scale",
                     {"yi": yi}))
    se = _between_se(ch, study, out, yi, None, None, log=log)
    if _flip(b.direction):
        yi = -yi
        ch.notes.append("the printed estimate compared control with probiotic; inverted")
    return Extraction(kind="generic", yi=yi, vi=se * se, derivations=tuple(ch.steps),
                      flags=tuple(ch.flags), notes=tuple(ch.notes),
                      **_no_split(k, study, out, base))


def _reproduces_percent(events: int, n: float, pct: float) -> bool:
    """Whether ``events / n`` rounds to ``pct`` at the precision it was printed to.

    For the true denominator this always holds (|100 events / n - pct| is at
    most half a unit of the last printed digit), so a failure means that n is
    not the denominator the percentage was computed from.
    """
    text = repr(float(pct))
    decimals = len(text.split(".")[1].rstrip("0")) if "." in text else 0
    half_unit = 0.5 * 10.0 ** -decimals
    return abs(100 * events / n - pct) <= half_unit + 1e-9


def _from_percents_p(ch, base, study, out, measure, d1, d2, k) -> Extraction:
    """Percentages per arm (no usable counts) and an exact p: a generic effect.

    The ratio (or difference) of the two proportions needs no denominators;
    its SE comes from the p-value (Handbook 6.3.2; Altman & Bland 2011),
    flag ``derived_from_p``.
    """
    pct1, pct2 = ch.num(d1.percent, "percent"), ch.num(d2.percent, "percent")
    p = ch.num(out.between.p, "p")
    try:
        yi, se, steps = cv.effect_from_percents_p(pct1, pct2, p, measure=measure)
    except ValueError as exc:
        raise ExtractionError(f"{study.id}/{out.id}: {exc}") from exc
    for step in steps:
        ch.add(step)
    ch.flag("derived_from_p")
    ch.flag("effect_from_percent")
    ch.notes.append(f"{measure} from the arms' percentages ({pct1:g}% vs {pct2:g}%), SE from "
                    f"the exact p = {p:g} (z test assumed); generic inverse-variance row")
    return Extraction(kind="generic", yi=yi, vi=se * se, derivations=tuple(ch.steps),
                      flags=tuple(ch.flags), notes=tuple(ch.notes),
                      **_no_split(k, study, out, base))


def check_scales(extractions: Sequence[Extraction]) -> None:
    """Refuse to mix change scores and final values in an SMD analysis.

    Mixing is fine for MD (Handbook 10.5.2): both estimate the same
    difference in means. For the SMD the two have different SDs, so the
    standardised effects are not comparable.

    Parameters
    ----------
    extractions : sequence of Extraction
        The k effects of one analysis.

    Raises
    ------
    ExtractionError
    """
    smd = [e for e in extractions if e.measure == "SMD"]
    scales = {e.scale for e in smd}
    if len(scales) > 1:
        by = {s: sorted(e.study for e in smd if e.scale == s) for s in sorted(scales)}
        detail = "; ".join(f"{s}: {', '.join(v)}" for s, v in by.items())
        raise ExtractionError("an SMD analysis cannot mix change-from-baseline and final "
                              f"values ({detail}); analyse them separately or use MD")


def extract_many(items: Iterable[tuple[Study, str] | tuple[Study, str, dict]], *,
                 measure: str, **kwargs: Any) -> tuple[Extraction, ...]:
    """:func:`extract` for several (study, outcome id[, per-study kwargs]) items,
    then :func:`check_scales`.

    Parameters
    ----------
    items : iterable of (Study, str) or (Study, str, dict)
        A study, the id of its outcome, and options for that study alone.
    measure : {"MD", "SMD", "RR", "OR", "RD", "ROM"}
    **kwargs
        Options of :func:`extract` for every study.

    Returns
    -------
    tuple of Extraction
        One per item, in order.

    Raises
    ------
    ExtractionError
    """
    out = []
    for item in items:
        study, oid, *rest = item
        kw = {**kwargs, **(rest[0] if rest else {})}
        out.append(extract(study, oid, measure=measure, **kw))
    check_scales(out)
    return tuple(out)
