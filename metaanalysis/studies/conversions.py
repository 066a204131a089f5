"""Conversions from what trials report to what meta-analysis needs.

Pure functions (numpy/scipy only). Each returns its result(s) together with a
:class:`Derivation` record (method, inputs, formula, reference, result), so
that every derived number in an analysis can show how it was obtained.

===============================  ==============================================
function                         source
===============================  ==============================================
:func:`sd_from_se`               Cochrane Handbook 6.5.2.2
:func:`sd_from_ci`               Cochrane Handbook 6.5.2.2 (t with n-1 df, n < 60)
:func:`se_from_ci`               Cochrane Handbook 6.5.2.3 (t with n1+n2-2 df)
:func:`se_from_p`                Cochrane Handbook 6.3.2 / 6.5.2.3
:func:`sd_pooled_from_se_diff`   Cochrane Handbook 6.5.2.3
:func:`sd_change`                Cochrane Handbook 6.5.2.8
:func:`correlation_from_sds`     Cochrane Handbook 6.5.2.8
:func:`mean_sd_from_median_iqr`  Wan et al. 2014 (SD); Luo et al. 2018 / Wan (mean)
:func:`mean_sd_from_median_range`  Wan et al. 2014 (SD); Luo et al. 2018 / Wan (mean)
:func:`mean_sd_from_five_numbers`  Wan 2014 or Shi et al. 2020 (SD); Luo 2018 (mean)
:func:`combine_arms`             Cochrane Handbook 6.5.2.10, Table 6.5.a
:func:`split_shared_control`     Cochrane Handbook 23.3.4
:func:`se_mean_from_ci`          Cochrane Handbook 6.5.2.2 (SE of a group mean)
:func:`md_from_arm_cis`          Cochrane Handbook 6.5.2.2 (n unknown)
:func:`log_rom`                  metafor ``escalc(measure="ROM")``
:func:`log_rom_from_arm_cis`     ROM from per-arm CIs (delta method)
:func:`log_ratio_from_ci`        a reported ratio with its CI, log scale
:func:`effect_from_percents_p`   Cochrane Handbook 6.3.2; Altman & Bland 2011
:func:`pooled_sd`                Furukawa et al. 2006; Handbook 6.5.2.8
===============================  ==============================================

The median-based formulas match metafor's ``conv.fivenum()`` (which uses
the same approximations for xi(n) and eta(n)); ``quantities="exact"`` uses
the exact expected order statistics of Wan et al.'s Tables 1 and 2 instead.

References
----------
Higgins JPT, Li T, Deeks JJ (eds). Chapter 6: Choosing effect measures and
computing estimates of effect. Cochrane Handbook for Systematic Reviews of
Interventions, version 6.4 (2023).
Wan X, Wang W, Liu J, Tong T (2014). Estimating the sample mean and standard
deviation from the sample size, median, range and/or interquartile range.
BMC Med Res Methodol 14:135.
Luo D, Wan X, Liu J, Tong T (2018). Optimally estimating the sample mean from
the sample size, median, mid-range, and/or mid-quartile range. Stat Methods
Med Res 27(6):1785-1805.
Shi J, Luo D, Weng H, et al. (2020). Optimally estimating the sample standard
deviation from the five-number summary. Res Synth Methods 11(5):641-654.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from metaanalysis.stats import distributions

__all__ = [
    "Derivation", "derivation", "critical_value", "sd_from_se", "sd_from_ci", "se_from_ci",
    "se_from_p",
    "sd_pooled_from_se_diff", "sd_change", "correlation_from_sds", "xi", "eta",
    "mean_sd_from_median_iqr", "mean_sd_from_median_range", "mean_sd_from_five_numbers",
    "skewness_test", "combine_arms", "combine_arms_binary", "split_shared_control",
    "SMALL_SAMPLE", "se_mean_from_ci", "md_from_arm_cis", "log_rom", "log_rom_from_arm_cis",
    "log_ratio_from_ci", "pooled_sd", "effect_from_percents_p",
]

#: Below this many participants (per group) a reported CI is taken to have
#: been computed from a t distribution (Cochrane Handbook 6.5.2.2-6.5.2.3:
#: "if the sample size is small (say less than 60 participants in each group)").
SMALL_SAMPLE = 60

HANDBOOK = "Cochrane Handbook v6.4 (2023)"
REF_SD_SE = f"{HANDBOOK}, section 6.5.2.2"
REF_SE_DIFF = f"{HANDBOOK}, section 6.5.2.3"
REF_P = f"{HANDBOOK}, sections 6.3.2 and 6.5.2.3"
REF_CHANGE = f"{HANDBOOK}, section 6.5.2.8"
REF_COMBINE = f"{HANDBOOK}, section 6.5.2.10 (Table 6.5.a)"
REF_SPLIT = f"{HANDBOOK}, section 23.3.4"
REF_WAN = "Wan X, Wang W, Liu J, Tong T (2014). BMC Med Res Methodol 14:135"
REF_LUO = "Luo D, Wan X, Liu J, Tong T (2018). Stat Methods Med Res 27(6):1785-1805"
REF_ROM = ("Hedges LV, Gurevitch J, Curtis PS (1999). Ecology 80(4):1150-1156; metafor "
           "escalc(measure='ROM')")
REF_FURUKAWA = ("Furukawa TA, Barbui C, Cipriani A, Brambilla P, Watanabe N (2006). J Clin "
                f"Epidemiol 59(1):7-10; {HANDBOOK}, section 6.5.2.8 (imputing missing SDs)")
REF_ALTMAN_BLAND = ("Altman DG, Bland JM (2011). How to obtain the confidence interval from a "
                    "P value. BMJ 343:d2090")
REF_SHI = "Shi J, Luo D, Weng H, et al. (2020). Res Synth Methods 11(5):641-654"


@dataclass(frozen=True)
class Derivation:
    """One step of a derivation chain.

    Attributes
    ----------
    method : str
        A short code (the ``derived.method`` vocabulary of studies/README.md).
    inputs : tuple of (name, value)
    formula : str
        The formula in words/symbols, e.g. ``"sd = se * sqrt(n)"``.
    reference : str
    result : tuple of (name, value)
    note : str
        Anything a reader should know (which distribution, an assumption).
    """

    method: str
    inputs: tuple[tuple[str, float], ...]
    formula: str
    reference: str
    result: tuple[tuple[str, float], ...]
    note: str = ""

    @property
    def value(self) -> float:
        """The single result (raises if the step has several)."""
        if len(self.result) != 1:
            raise ValueError(f"derivation '{self.method}' has {len(self.result)} results")
        return self.result[0][1]

    def to_dict(self) -> dict:
        """The step as plain values for results.json."""
        return {"method": self.method, "inputs": dict(self.inputs), "formula": self.formula,
                "reference": self.reference, "result": dict(self.result), "note": self.note}

    def __str__(self) -> str:
        ins = ", ".join(f"{k}={v:.6g}" for k, v in self.inputs)
        outs = ", ".join(f"{k}={v:.6g}" for k, v in self.result)
        tail = f"; {self.note}" if self.note else ""
        return f"{self.method}: {self.formula} with {ins} -> {outs} [{self.reference}]{tail}"


def derivation(method: str, inputs: dict, formula: str, reference: str, result: dict,
               note: str = "") -> Derivation:
    """Build a :class:`Derivation` from plain dicts of named numbers.

    Parameters
    ----------
    method : str
        The method's name (``"sd_from_se"``, ...).
    inputs, result : dict of str to float
        Named inputs and outputs of the step.
    formula, reference : str
        The formula as text and where it comes from.
    note : str
        Anything a reader of the derivation should know.

    Returns
    -------
    Derivation
    """
    return Derivation(method, tuple((k, float(v)) for k, v in inputs.items()), formula,
                      reference, tuple((k, float(v)) for k, v in result.items()), note)


_d = derivation


def _pos(name: str, x: float) -> float:
    x = float(x)
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {x!r}")
    return x


def _finite(name: str, x: float) -> float:
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}")
    return x


def _level(level: float) -> float:
    level = float(level)
    if not 0 < level < 1:
        raise ValueError(f"level is a proportion in (0, 1), e.g. 0.95; got {level!r}")
    return level


# ---------------------------------------------------------------------------
# standard errors, SDs and CIs


def critical_value(level: float = 0.95, df: float | None = None) -> float:
    """Two-sided critical value: ``z_{1-alpha/2}``, or ``t_{1-alpha/2, df}``.

    Parameters
    ----------
    level : float
        Confidence level as a proportion, ``alpha = 1 - level``.
    df : float, optional
        Degrees of freedom of a t quantile; the normal quantile without.

    Returns
    -------
    float

    Examples
    --------
    >>> round(2 * critical_value(0.95), 2)        # the Handbook's 3.92
    3.92
    >>> round(critical_value(0.95, df=24), 4)     # Handbook 6.5.2.2: n = 25
    2.0639
    """
    a = 1 - _level(level)
    if df is None:
        return float(distributions.norm.isf(a / 2))
    return float(distributions.t.isf(a / 2, _pos("df", df)))


def sd_from_se(se: float, n: float) -> tuple[float, Derivation]:
    """SD of a group from the standard error of its mean: ``sd = se * sqrt(n)``.

    Parameters
    ----------
    se : float
        SE of the group's mean (> 0).
    n : float
        Group size (> 0).

    Returns
    -------
    sd : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    se, n = _pos("se", se), _pos("n", n)
    sd = se * math.sqrt(n)
    return sd, _d("sd_from_se", {"se": se, "n": n}, "sd = se * sqrt(n)", REF_SD_SE, {"sd": sd})


def sd_from_ci(ci_lb: float, ci_ub: float, n: float, level: float = 0.95,
               dist: Literal["auto", "z", "t"] = "auto") -> tuple[float, Derivation]:
    """SD of a group from the CI of its mean.

    ``sd = sqrt(n) * (ci_ub - ci_lb) / (2 * crit)``, where ``crit`` is the
    normal quantile (1.96 for 95%, i.e. the Handbook's 3.92 = 2 * 1.96) or,
    for small groups, the t quantile with ``n - 1`` df.

    Parameters
    ----------
    ci_lb, ci_ub : float
    n : float
        Group size.
    level : float
        Confidence level as a proportion.
    dist : {"auto", "z", "t"}
        ``auto`` uses t when ``n < 60`` (:data:`SMALL_SAMPLE`).

    Returns
    -------
    sd : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    lb, ub, n = _finite("ci_lb", ci_lb), _finite("ci_ub", ci_ub), _pos("n", n)
    if not ub > lb:
        raise ValueError(f"ci_ub ({ub}) must be above ci_lb ({lb})")
    use_t = dist == "t" or (dist == "auto" and n < SMALL_SAMPLE)
    if dist not in ("auto", "z", "t"):
        raise ValueError("dist must be 'auto', 'z' or 't'")
    df = n - 1 if use_t else None
    if use_t and df <= 0:
        raise ValueError("a t-based CI needs n >= 2")
    crit = critical_value(level, df)
    sd = math.sqrt(n) * (ub - lb) / (2 * crit)
    note = (f"t quantile with {df:g} df (n < {SMALL_SAMPLE})" if use_t
            else "normal quantile")
    return sd, _d("sd_from_ci", {"ci_lb": lb, "ci_ub": ub, "n": n, "level": level, "crit": crit},
                  "sd = sqrt(n) * (ci_ub - ci_lb) / (2 * crit)", REF_SD_SE, {"sd": sd}, note)


def se_from_ci(ci_lb: float, ci_ub: float, level: float = 0.95, df: float | None = None,
               log: bool = False) -> tuple[float, Derivation]:
    """SE of an estimate (e.g. a mean difference) from its CI.

    ``se = (ci_ub - ci_lb) / (2 * crit)``; on the log scale for ratio
    measures (``log=True``: ``(ln ci_ub - ln ci_lb) / (2 * crit)``). ``crit``
    is the normal quantile, or the t quantile with ``df`` degrees of freedom
    (``n1 + n2 - 2`` for a small two-group trial, Handbook 6.5.2.3).
    This is metafor's ``conv.wald()`` (which is normal-only).

    Parameters
    ----------
    ci_lb, ci_ub : float
        The CI as printed (ratios on their own scale when ``log``).
    level : float
        Confidence level as a proportion.
    df : float, optional
        t degrees of freedom; normal quantile without.
    log : bool
        The CI is of a ratio: work on the log scale.

    Returns
    -------
    se : float
        On the analysis scale (log scale when ``log``).
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    lb, ub = _finite("ci_lb", ci_lb), _finite("ci_ub", ci_ub)
    if log:
        lb, ub = math.log(_pos("ci_lb", lb)), math.log(_pos("ci_ub", ub))
    if not ub > lb:
        raise ValueError(f"ci_ub must be above ci_lb, got [{ci_lb}, {ci_ub}]")
    crit = critical_value(level, df)
    se = (ub - lb) / (2 * crit)
    formula = ("se = (ln ci_ub - ln ci_lb) / (2 * crit)" if log
               else "se = (ci_ub - ci_lb) / (2 * crit)")
    note = f"t quantile with {df:g} df" if df is not None else "normal quantile"
    return se, _d("se_from_ci", {"ci_lb": ci_lb, "ci_ub": ci_ub, "level": level, "crit": crit},
                  formula, REF_SE_DIFF, {"se": se}, note)


def se_from_p(estimate: float, p: float, df: float | None = None) -> tuple[float, Derivation]:
    """SE of an estimate from its exact two-sided p-value.

    ``se = |estimate| / q`` with ``q = Phi^-1(1 - p/2)`` (a z test), or the t
    quantile with ``df`` degrees of freedom (a t test, Handbook 6.5.2.3).
    Pass the estimate on the analysis scale (log RR for ratios).

    Parameters
    ----------
    estimate : float
        On the analysis scale; must not be 0.
    p : float
        Exact two-sided p-value in (0, 1).
    df : float, optional
        t degrees of freedom; a z test without.

    Returns
    -------
    se : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).

    Examples
    --------
    Handbook 6.5.2.3: MD 3.8, p = 0.008 from a t test with 25 + 22 - 2 = 45 df
    gives t = 2.78 and SE = 1.37.

    >>> se, d = se_from_p(3.8, 0.008, df=45)
    >>> round(se, 2)
    1.37
    """
    est = _finite("estimate", estimate)
    p = float(p)
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1) to give a standard error, got {p!r}")
    if est == 0:
        raise ValueError("an estimate of 0 gives no standard error from a p-value")
    q = float(distributions.norm.isf(p / 2)) if df is None else float(distributions.t.isf(p / 2, _pos("df", df)))
    se = abs(est) / q
    stat = "z" if df is None else "t"
    note = "normal (z) test" if df is None else f"t test with {df:g} df"
    return se, _d("se_from_p", {"estimate": est, "p": p, stat: q},
                  f"{stat} = quantile(1 - p/2); se = |estimate| / {stat}", REF_P, {"se": se}, note)


def sd_pooled_from_se_diff(se: float, n1: float, n2: float) -> tuple[float, Derivation]:
    """Within-group SD from the SE of a difference in means.

    ``sd = se / sqrt(1/n1 + 1/n2)`` (Handbook 6.5.2.3); the same SD is then
    used for both groups.

    Parameters
    ----------
    se : float
        SE of the difference in means.
    n1, n2 : float
        Group sizes.

    Returns
    -------
    sd : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    se, n1, n2 = _pos("se", se), _pos("n1", n1), _pos("n2", n2)
    sd = se / math.sqrt(1 / n1 + 1 / n2)
    return sd, _d("sd_from_se", {"se_diff": se, "n1": n1, "n2": n2},
                  "sd = se_diff / sqrt(1/n1 + 1/n2)", REF_SE_DIFF, {"sd": sd},
                  "the same SD is used for both groups")


def sd_change(sd_baseline: float, sd_final: float, r: float) -> tuple[float, Derivation]:
    """SD of change from baseline, imputed from baseline and final SDs.

    ``sd_change = sqrt(sd_b^2 + sd_f^2 - 2 r sd_b sd_f)`` (Handbook 6.5.2.8),
    where ``r`` is the (assumed) baseline-final correlation.

    Parameters
    ----------
    sd_baseline, sd_final : float
    r : float
        In [-1, 1].

    Returns
    -------
    sd : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    b, f = _pos("sd_baseline", sd_baseline), _pos("sd_final", sd_final)
    r = _finite("r", r)
    if not -1 <= r <= 1:
        raise ValueError(f"the correlation r must be in [-1, 1], got {r}")
    sd = math.sqrt(max(b * b + f * f - 2 * r * b * f, 0.0))
    if sd == 0:
        raise ValueError("r = 1 with equal SDs gives a change SD of 0")
    return sd, _d("sd_change_from_correlation", {"sd_baseline": b, "sd_final": f, "r": r},
                  "sd_change = sqrt(sd_b^2 + sd_f^2 - 2 r sd_b sd_f)", REF_CHANGE,
                  {"sd_change": sd}, "r is an assumed correlation unless computed")


def correlation_from_sds(sd_baseline: float, sd_final: float, sd_change: float
                         ) -> tuple[float, Derivation]:
    """The baseline-final correlation implied by three SDs (Handbook 6.5.2.8).

    ``r = (sd_b^2 + sd_f^2 - sd_change^2) / (2 sd_b sd_f)``.

    Parameters
    ----------
    sd_baseline, sd_final, sd_change : float

    Returns
    -------
    r : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).

    Raises
    ------
    ValueError
        If the three SDs are inconsistent (``|r| > 1``).
    """
    b, f = _pos("sd_baseline", sd_baseline), _pos("sd_final", sd_final)
    c = _pos("sd_change", sd_change)
    r = (b * b + f * f - c * c) / (2 * b * f)
    if not -1 <= r <= 1:
        raise ValueError(f"the SDs imply a correlation of {r:.3f}, outside [-1, 1]")
    return r, _d("correlation_from_sds", {"sd_baseline": b, "sd_final": f, "sd_change": c},
                 "r = (sd_b^2 + sd_f^2 - sd_change^2) / (2 sd_b sd_f)", REF_CHANGE, {"r": r})


# ---------------------------------------------------------------------------
# median-based estimates


def _expected_order_stat(r: int, n: int) -> float:
    """E[Z_(r:n)] for a standard normal sample, by numerical integration."""
    # log of the order-statistic density constant n! / ((r-1)! (n-r)!)
    logc = -special.betaln(r, n - r + 1)

    def f(z):
        lp = distributions.norm.logcdf(z)
        lq = distributions.norm.logsf(z)
        return z * np.exp(logc + distributions.norm.logpdf(z) + (r - 1) * lp + (n - r) * lq)

    from scipy import integrate  # only Wan's exact order statistics need it

    val, _ = integrate.quad(f, -np.inf, np.inf, epsabs=1e-12, epsrel=1e-12, limit=200)
    return float(val)


def xi(n: float, quantities: Literal["approx", "exact"] = "approx") -> float:
    """Wan et al.'s xi(n): the expected range of n standard normal draws.

    ``approx``: ``2 Phi^-1((n - 0.375)/(n + 0.25))`` (Wan et al. 2014, eq. 9;
    what metafor uses). ``exact``: ``2 E[Z_(n:n)]`` by numerical integration
    (Wan et al. 2014, Table 1: xi(2) = 1.128, xi(10) = 3.078, xi(50) = 4.498).

    Parameters
    ----------
    n : float
        Sample size.
    quantities : {"approx", "exact"}

    Returns
    -------
    float
    """
    n = _pos("n", n)
    if quantities == "exact":
        if not float(n).is_integer() or n < 2:
            raise ValueError("the exact xi(n) needs a whole n >= 2")
        return 2 * _expected_order_stat(int(n), int(n))
    if quantities != "approx":
        raise ValueError("quantities must be 'approx' or 'exact'")
    return float(2 * distributions.norm.ppf((n - 0.375) / (n + 0.25)))


def eta(n: float, quantities: Literal["approx", "exact"] = "approx") -> float:
    """Wan et al.'s eta(n): the expected interquartile range of n standard
    normal draws.

    ``approx``: ``2 Phi^-1((0.75 n - 0.125)/(n + 0.25))`` (Wan et al. 2014,
    eq. 16; what metafor uses). ``exact``: ``2 E[Z_(3Q+1:n)]`` for
    ``n = 4Q + 1`` (Wan et al. 2014, Table 2); other n raise ``ValueError``.

    Parameters
    ----------
    n : float
        Sample size.
    quantities : {"approx", "exact"}

    Returns
    -------
    float
    """
    n = _pos("n", n)
    if quantities == "exact":
        if not float(n).is_integer() or (int(n) - 1) % 4 != 0 or n < 5:
            raise ValueError("the exact eta(n) is defined for n = 4Q + 1 (5, 9, 13, ...)")
        q = (int(n) - 1) // 4
        return 2 * _expected_order_stat(3 * q + 1, int(n))
    if quantities != "approx":
        raise ValueError("quantities must be 'approx' or 'exact'")
    return float(2 * distributions.norm.ppf((0.75 * n - 0.125) / (n + 0.25)))


def skewness_test(n: float, median: float, q1: float | None = None, q3: float | None = None,
                  minimum: float | None = None, maximum: float | None = None
                  ) -> tuple[float, float, bool]:
    """Shi et al.'s test for skewness of a median-reported sample.

    A significant result means the normal approximations behind the
    mean/SD estimates are doubtful.

    Parameters
    ----------
    n : float
        Sample size.
    median : float
    q1, q3 : float, optional
        Quartiles (scenarios C2, C3).
    minimum, maximum : float, optional
        Range (scenarios C1, C2).

    Returns
    -------
    statistic, critical : float
        As metafor's ``conv.fivenum()`` computes them.
    significant : bool
    """
    n = _pos("n", n)
    has_iqr = q1 is not None and q3 is not None
    has_range = minimum is not None and maximum is not None
    if has_iqr and has_range:
        t_range = abs((minimum + maximum - 2 * median) / (maximum - minimum))
        t_iqr = abs((q1 + q3 - 2 * median) / (q3 - q1))
        tval = max(2.65 * math.log(0.6 * n) / math.sqrt(n) * t_range, t_iqr)
        crit = 3 / math.sqrt(n) - 40 / n ** 3
    elif has_iqr:
        tval = abs((q1 + q3 - 2 * median) / (q3 - q1))
        crit = 2.65 / math.sqrt(n) - 6 / n ** 2
    elif has_range:
        tval = abs((minimum + maximum - 2 * median) / (maximum - minimum))
        crit = 1 / math.log(n + 9) + 2.5 / (n + 1)
    else:
        raise ValueError("give q1 and q3 and/or minimum and maximum")
    return tval, crit, bool(tval >= crit)


def _skew_note(n, median, **kw) -> str:
    try:
        tval, crit, sig = skewness_test(n, median, **kw)
    except (ValueError, ZeroDivisionError):
        return ""
    return (f"; skewness test (Shi et al.): T = {tval:.3f} >= {crit:.3f}, the data look "
            "skewed and the estimates are doubtful") if sig else ""


def _check_order(**vals):
    seq = [(k, float(v)) for k, v in vals.items() if v is not None]
    for k, v in seq:
        _finite(k, v)
    for (ka, a), (kb, b) in zip(seq, seq[1:]):
        if a > b:
            raise ValueError(f"expected {ka} <= {kb}, got {a} > {b}")


def mean_sd_from_median_iqr(q1: float, median: float, q3: float, n: float, *,
                            mean_method: Literal["luo", "wan"] = "luo",
                            quantities: Literal["approx", "exact"] = "approx",
                            ) -> tuple[float, float, Derivation]:
    """Mean and SD from the median and interquartile range (scenario C3).

    Mean: Luo et al. (2018) ``w (q1 + q3)/2 + (1 - w) m`` with
    ``w = 0.7 + 0.39/n`` (default, as metafor), or Wan et al. (2014)
    ``(q1 + m + q3)/3``. SD: Wan et al. (2014) ``(q3 - q1) / eta(n)``.

    Parameters
    ----------
    q1, median, q3 : float
    n : float
        Sample size.
    mean_method : {"luo", "wan"}
    quantities : {"approx", "exact"}
        Of :func:`eta`.

    Returns
    -------
    mean, sd : float
    derivation : Derivation
    """
    _check_order(q1=q1, median=median, q3=q3)
    n = _pos("n", n)
    if q3 == q1:
        raise ValueError("q1 equals q3: the IQR is zero, so no SD can be estimated")
    if mean_method == "luo":
        w = 0.7 + 0.39 / n
        mean = w * (q1 + q3) / 2 + (1 - w) * median
        fmean, ref_mean = "mean = w (q1 + q3)/2 + (1 - w) median, w = 0.7 + 0.39/n", REF_LUO
    elif mean_method == "wan":
        mean = (q1 + median + q3) / 3
        fmean, ref_mean = "mean = (q1 + median + q3)/3", REF_WAN
    else:
        raise ValueError("mean_method must be 'luo' or 'wan'")
    e = eta(n, quantities)
    sd = (q3 - q1) / e
    formula = f"{fmean}; sd = (q3 - q1) / eta(n), eta(n) = " + (
        "2 Phi^-1((0.75 n - 0.125)/(n + 0.25))" if quantities == "approx"
        else "2 E[Z_(3Q+1:n)]")
    note = "assumes approximately normal data" + _skew_note(n, median, q1=q1, q3=q3)
    return mean, sd, _d("mean_sd_from_median_iqr",
                        {"q1": q1, "median": median, "q3": q3, "n": n, "eta": e}, formula,
                        f"{ref_mean}; {REF_WAN}", {"mean": mean, "sd": sd}, note)


def mean_sd_from_median_range(minimum: float, median: float, maximum: float, n: float, *,
                              mean_method: Literal["luo", "wan"] = "luo",
                              quantities: Literal["approx", "exact"] = "approx",
                              ) -> tuple[float, float, Derivation]:
    """Mean and SD from the median and range (scenario C1).

    Mean: Luo et al. (2018) ``w (a + b)/2 + (1 - w) m`` with
    ``w = 4 / (4 + n^0.75)`` (default, as metafor), or Wan et al. (2014)
    ``(a + 2m + b)/4``. SD: Wan et al. (2014) ``(b - a) / xi(n)``.

    Parameters
    ----------
    minimum, median, maximum : float
    n : float
        Sample size.
    mean_method : {"luo", "wan"}
    quantities : {"approx", "exact"}
        Of :func:`xi`.

    Returns
    -------
    mean, sd : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    _check_order(minimum=minimum, median=median, maximum=maximum)
    n = _pos("n", n)
    if maximum == minimum:
        raise ValueError("the range is zero, so no SD can be estimated")
    if mean_method == "luo":
        w = 4 / (4 + n ** 0.75)
        mean = w * (minimum + maximum) / 2 + (1 - w) * median
        fmean, ref_mean = "mean = w (min + max)/2 + (1 - w) median, w = 4/(4 + n^0.75)", REF_LUO
    elif mean_method == "wan":
        mean = (minimum + 2 * median + maximum) / 4
        fmean, ref_mean = "mean = (min + 2 median + max)/4", REF_WAN
    else:
        raise ValueError("mean_method must be 'luo' or 'wan'")
    x = xi(n, quantities)
    sd = (maximum - minimum) / x
    formula = f"{fmean}; sd = (max - min) / xi(n), xi(n) = " + (
        "2 Phi^-1((n - 0.375)/(n + 0.25))" if quantities == "approx" else "2 E[Z_(n:n)]")
    note = "assumes approximately normal data" + _skew_note(n, median, minimum=minimum,
                                                            maximum=maximum)
    return mean, sd, _d("mean_sd_from_median_range",
                        {"min": minimum, "median": median, "max": maximum, "n": n, "xi": x},
                        formula, f"{ref_mean}; {REF_WAN}", {"mean": mean, "sd": sd}, note)


def mean_sd_from_five_numbers(minimum: float, q1: float, median: float, q3: float,
                              maximum: float, n: float, *,
                              mean_method: Literal["luo", "wan"] = "luo",
                              sd_method: Literal["wan", "shi"] = "wan",
                              ) -> tuple[float, float, Derivation]:
    """Mean and SD from the five-number summary (scenario C2).

    Mean: Luo et al. (2018) ``w1 (a + b)/2 + w2 (q1 + q3)/2 + (1 - w1 - w2) m``
    with ``w1 = 2.2/(2.2 + n^0.75)``, ``w2 = 0.7 - 0.72/n^0.55``; or Wan
    ``(a + 2 q1 + 2 m + 2 q3 + b)/8``. SD: Wan (2014)
    ``((b - a)/xi + (q3 - q1)/eta) / 2``, or Shi et al. (2020) with weight
    ``1/(1 + 0.07 n^0.6)`` (metafor's default).

    Parameters
    ----------
    minimum, q1, median, q3, maximum : float
    n : float
        Sample size.
    mean_method : {"luo", "wan"}
    sd_method : {"wan", "shi"}

    Returns
    -------
    mean, sd : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    _check_order(minimum=minimum, q1=q1, median=median, q3=q3, maximum=maximum)
    n = _pos("n", n)
    if maximum == minimum or q3 == q1:
        raise ValueError("a zero range or IQR gives no SD")
    if mean_method == "luo":
        w1 = 2.2 / (2.2 + n ** 0.75)
        w2 = 0.7 - 0.72 / n ** 0.55
        mean = w1 * (minimum + maximum) / 2 + w2 * (q1 + q3) / 2 + (1 - w1 - w2) * median
        fmean, ref_mean = ("mean = w1 (min + max)/2 + w2 (q1 + q3)/2 + (1 - w1 - w2) median, "
                           "w1 = 2.2/(2.2 + n^0.75), w2 = 0.7 - 0.72/n^0.55"), REF_LUO
    elif mean_method == "wan":
        mean = (minimum + 2 * q1 + 2 * median + 2 * q3 + maximum) / 8
        fmean, ref_mean = "mean = (min + 2 q1 + 2 median + 2 q3 + max)/8", REF_WAN
    else:
        raise ValueError("mean_method must be 'luo' or 'wan'")
    x, e = xi(n), eta(n)
    if sd_method == "wan":
        sd = ((maximum - minimum) / x + (q3 - q1) / e) / 2
        fsd, ref_sd = "sd = ((max - min)/xi(n) + (q3 - q1)/eta(n)) / 2", REF_WAN
    elif sd_method == "shi":
        w = 1 / (1 + 0.07 * n ** 0.6)
        sd = w * (maximum - minimum) / x + (1 - w) * (q3 - q1) / e
        fsd, ref_sd = ("sd = w (max - min)/xi(n) + (1 - w)(q3 - q1)/eta(n), "
                       "w = 1/(1 + 0.07 n^0.6)"), REF_SHI
    else:
        raise ValueError("sd_method must be 'wan' or 'shi'")
    note = "assumes approximately normal data" + _skew_note(
        n, median, q1=q1, q3=q3, minimum=minimum, maximum=maximum)
    return mean, sd, _d("mean_sd_from_median_range",
                        {"min": minimum, "q1": q1, "median": median, "q3": q3, "max": maximum,
                         "n": n, "xi": x, "eta": e}, f"{fmean}; {fsd}",
                        f"{ref_mean}; {ref_sd}", {"mean": mean, "sd": sd}, note)


# ---------------------------------------------------------------------------
# arms


def combine_arms(n1: float, m1: float, sd1: float, n2: float, m2: float, sd2: float
                 ) -> tuple[float, float, float, Derivation]:
    """Combine two groups into one (Handbook Table 6.5.a).

    ``N = n1 + n2``; ``M = (n1 m1 + n2 m2)/N``;
    ``SD = sqrt(((n1-1) sd1^2 + (n2-1) sd2^2 + n1 n2/N (m1 - m2)^2) / (N - 1))``.

    Parameters
    ----------
    n1, m1, sd1, n2, m2, sd2 : float
        Size, mean and SD of each group.

    Returns
    -------
    n, mean, sd : float
    derivation : Derivation
    """
    n1, n2 = _pos("n1", n1), _pos("n2", n2)
    m1, m2 = _finite("m1", m1), _finite("m2", m2)
    sd1, sd2 = _pos("sd1", sd1), _pos("sd2", sd2)
    n = n1 + n2
    if n <= 1:
        raise ValueError("combined group needs n > 1")
    m = (n1 * m1 + n2 * m2) / n
    sd = math.sqrt(((n1 - 1) * sd1 ** 2 + (n2 - 1) * sd2 ** 2
                    + n1 * n2 / n * (m1 - m2) ** 2) / (n - 1))
    return n, m, sd, _d("combine_arms", {"n1": n1, "m1": m1, "sd1": sd1, "n2": n2, "m2": m2,
                                         "sd2": sd2},
                        "N = n1 + n2; M = (n1 m1 + n2 m2)/N; SD = sqrt(((n1-1) sd1^2 + "
                        "(n2-1) sd2^2 + n1 n2/N (m1 - m2)^2)/(N - 1))", REF_COMBINE,
                        {"n": n, "mean": m, "sd": sd})


def combine_arms_binary(events1: float, n1: float, events2: float, n2: float
                        ) -> tuple[float, float, Derivation]:
    """Combine two groups of a binary outcome: events and totals add.

    Parameters
    ----------
    events1, n1, events2, n2 : float
        Events and size of each group.

    Returns
    -------
    events, n : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    n1, n2 = _pos("n1", n1), _pos("n2", n2)
    e1, e2 = _finite("events1", events1), _finite("events2", events2)
    if not (0 <= e1 <= n1 and 0 <= e2 <= n2):
        raise ValueError("events must lie between 0 and n")
    return e1 + e2, n1 + n2, _d("combine_arms", {"events1": e1, "n1": n1, "events2": e2,
                                                 "n2": n2},
                                "events = events1 + events2; n = n1 + n2", REF_COMBINE,
                                {"events": e1 + e2, "n": n1 + n2})


def split_shared_control(n: float, k: int, events: float | None = None
                         ) -> tuple[float, float | None, Derivation]:
    """Split a control group shared by ``k`` comparisons (Handbook 23.3.4).

    The control's n (and events) are divided by ``k`` so the control
    participants are not counted ``k`` times; means and SDs are unchanged.
    The result is not rounded (a fractional n is fine for the variance).

    Parameters
    ----------
    n : float
        The shared control's size.
    k : int
        Number of comparisons sharing it (>= 1).
    events : float, optional
        Its events, for a binary outcome.

    Returns
    -------
    n, events : float (events None when not given)
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).
    """
    n = _pos("n", n)
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a whole number >= 1, got {k!r}")
    inputs = {"n": n, "k": k}
    result = {"n": n / k}
    ev = None
    if events is not None:
        ev = _finite("events", events) / k
        inputs["events"] = float(events)
        result["events"] = ev
    return n / k, ev, _d("split_control", inputs,
                         "n_split = n / k" + ("; events_split = events / k" if ev is not None
                                              else ""), REF_SPLIT, result,
                         f"control shared by {k} comparisons")


# ---------------------------------------------------------------------------
# per-arm CIs without n, ratios of means, imputed SDs


def se_mean_from_ci(ci_lb: float, ci_ub: float, level: float = 0.95
                    ) -> tuple[float, Derivation]:
    """SE of one group's mean from the CI of that mean, n not needed.

    ``se = (ci_ub - ci_lb) / (2 * z_{1-alpha/2})`` (Cochrane Handbook
    6.5.2.2: the width of a 95% CI divided by 3.92 is the SE of the mean;
    multiplying by sqrt(n) would give the SD, which is the step that needs
    n). The normal quantile is used because without n the t quantile cannot
    be chosen; for small groups this slightly understates the SE.

    Parameters
    ----------
    ci_lb, ci_ub : float
        CI of the group's mean.
    level : float
        Confidence level as a proportion.

    Returns
    -------
    se : float
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).

    Examples
    --------
    >>> round(se_mean_from_ci(3.0, 5.0)[0], 4)     # width 2 / 3.92
    0.5102
    """
    lb, ub = _finite("ci_lb", ci_lb), _finite("ci_ub", ci_ub)
    if not ub > lb:
        raise ValueError(f"ci_ub ({ub}) must be above ci_lb ({lb})")
    crit = critical_value(level)
    se = (ub - lb) / (2 * crit)
    return se, _d("se_from_ci", {"ci_lb": lb, "ci_ub": ub, "level": level, "crit": crit},
                  "se_mean = (ci_ub - ci_lb) / (2 * crit)", REF_SD_SE, {"se": se},
                  "normal quantile (group size unknown)")


def md_from_arm_cis(m1: float, ci1: tuple[float, float], m2: float, ci2: tuple[float, float],
                    level: float = 0.95, k_control: int = 1
                    ) -> tuple[float, float, Derivation]:
    """Mean difference and its SE from each arm's mean and the CI of that mean.

    ``md = m1 - m2``; ``se_md = sqrt(se1^2 + k * se2^2)`` with
    ``se_j = (ub_j - lb_j) / (2 * 1.96)`` for 95% CIs (Handbook 6.5.2.2).
    ``k_control`` > 1 is a control arm shared by k comparisons: splitting its
    n by k (Handbook 23.3.4) multiplies the variance of its mean by k.

    Parameters
    ----------
    m1, m2 : float
        Treatment and control means.
    ci1, ci2 : (float, float)
        CI of each mean.
    level : float
        Confidence level of the CIs.
    k_control : int
        Comparisons sharing the control arm.

    Returns
    -------
    md, se : float
    derivation : Derivation

    Examples
    --------
    Gore 2012 (PMID 22092692), B. lactis 12.8 [9.4-16.6] vs placebo 11.8
    [9.6-14.3] at 12 weeks:

    >>> md, se, _ = md_from_arm_cis(12.8, (9.4, 16.6), 11.8, (9.6, 14.3))
    >>> round(md, 2), round(se, 4)
    (1.0, 2.1935)
    """
    se1, _ = se_mean_from_ci(*ci1, level=level)
    se2, _ = se_mean_from_ci(*ci2, level=level)
    m1, m2 = _finite("m1", m1), _finite("m2", m2)
    if int(k_control) != k_control or k_control < 1:
        raise ValueError(f"k_control must be a whole number >= 1, got {k_control!r}")
    md = m1 - m2
    se = math.sqrt(se1 ** 2 + k_control * se2 ** 2)
    crit = critical_value(level)
    note = "normal quantile (group sizes unknown)"
    if k_control > 1:
        note += f"; control shared by {k_control} comparisons: its variance x {k_control} " \
                f"({REF_SPLIT})"
    return md, se, _d("se_from_ci", {"m1": m1, "ci1_lb": ci1[0], "ci1_ub": ci1[1], "m2": m2,
                                     "ci2_lb": ci2[0], "ci2_ub": ci2[1], "crit": crit,
                                     "k_control": k_control},
                      "md = m1 - m2; se_j = (ub_j - lb_j)/(2 crit); se_md = sqrt(se1^2 + "
                      "k_control se2^2)", REF_SD_SE, {"md": md, "se": se}, note)


def log_rom(m1: ArrayLike, sd1: ArrayLike, n1: ArrayLike, m2: ArrayLike, sd2: ArrayLike,
            n2: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Log ratio of means and its variance (metafor ``escalc(measure="ROM")``).

    ``yi = ln(m1 / m2)``; ``vi = sd1^2/(n1 m1^2) + sd2^2/(n2 m2^2)``
    (Hedges, Gurevitch & Curtis 1999). Both means must be positive (a score
    at the end of treatment, never a change).

    Parameters
    ----------
    m1, sd1, n1, m2, sd2, n2 : array_like of shape (k,) or (k, d)
        Mean, SD and size of the treatment (1) and control (2) arms.

    Returns
    -------
    yi, vi : ndarray of the same shape

    Raises
    ------
    ValueError
        When a mean is not positive.
    """
    m1, sd1, n1, m2, sd2, n2 = (np.asarray(a, dtype=float) for a in (m1, sd1, n1, m2, sd2, n2))
    if np.any(m1 <= 0) or np.any(m2 <= 0):
        raise ValueError("a ratio of means needs positive means in both groups")
    return np.log(m1 / m2), sd1 ** 2 / (n1 * m1 ** 2) + sd2 ** 2 / (n2 * m2 ** 2)


def log_rom_from_arm_cis(m1: float, ci1: tuple[float, float], m2: float,
                         ci2: tuple[float, float], level: float = 0.95, k_control: int = 1
                         ) -> tuple[float, float, Derivation]:
    """Log ratio of means from each arm's mean and the CI of that mean.

    ``yi = ln(m1/m2)``; ``se^2 = (se1/m1)^2 + k (se2/m2)^2`` with ``se_j`` the
    SE of arm j's mean from its CI (Handbook 6.5.2.2): the delta method, which
    is the ROM variance of :func:`log_rom` with ``sd^2/n = se^2``.

    Parameters
    ----------
    m1, m2 : float
        Treatment and control means (> 0).
    ci1, ci2 : (float, float)
        CI of each mean.
    level : float
        Confidence level of the CIs.
    k_control : int
        Comparisons sharing the control arm.

    Returns
    -------
    yi, se : float
        Log ratio of means and its SE.
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).

    Examples
    --------
    >>> yi, se, _ = log_rom_from_arm_cis(12.8, (9.4, 16.6), 11.8, (9.6, 14.3))
    >>> [round(math.exp(yi + s * 1.959964 * se), 2) for s in (0, -1, 1)]
    [1.08, 0.77, 1.53]
    """
    se1, _ = se_mean_from_ci(*ci1, level=level)
    se2, _ = se_mean_from_ci(*ci2, level=level)
    m1, m2 = _pos("m1", m1), _pos("m2", m2)
    yi = math.log(m1 / m2)
    se = math.sqrt((se1 / m1) ** 2 + k_control * (se2 / m2) ** 2)
    return yi, se, _d("log_ratio_of_means", {"m1": m1, "se1": se1, "m2": m2, "se2": se2,
                                             "k_control": k_control},
                      "yi = ln(m1/m2); se = sqrt((se1/m1)^2 + k_control (se2/m2)^2)",
                      f"{REF_ROM}; {REF_SD_SE}", {"yi": yi, "se": se},
                      "delta method; se_j from the CI of arm j's mean")


def log_ratio_from_ci(ratio: float, ci_lb: float, ci_ub: float, level: float = 0.95
                      ) -> tuple[float, float, Derivation]:
    """A reported ratio (e.g. a ratio of geometric means) and its CI on the log scale.

    ``yi = ln(ratio)``; ``se = (ln ci_ub - ln ci_lb) / (2 z)``.

    Parameters
    ----------
    ratio, ci_lb, ci_ub : float
        The ratio and its CI as printed (> 0, the CI containing the ratio).
    level : float
        Confidence level of the CI.

    Returns
    -------
    yi, se : float
        On the log scale.
    derivation : Derivation
        The step as recorded in results.json (inputs, formula, reference).

    Examples
    --------
    Sistek 2006 (PMID 16650048): SCORAD geometric mean ratio 0.80 (95% CI
    0.62-1.04).

    >>> yi, se, _ = log_ratio_from_ci(0.80, 0.62, 1.04)
    >>> round(yi, 4), round(se, 4)
    (-0.2231, 0.132)
    """
    r, lb, ub = _pos("ratio", ratio), _pos("ci_lb", ci_lb), _pos("ci_ub", ci_ub)
    if not lb < r < ub:
        raise ValueError(f"the CI [{lb}, {ub}] must contain the ratio {r}")
    crit = critical_value(level)
    yi = math.log(r)
    se = (math.log(ub) - math.log(lb)) / (2 * crit)
    return yi, se, _d("log_ratio_of_means", {"ratio": r, "ci_lb": lb, "ci_ub": ub, "crit": crit},
                      "yi = ln(ratio); se = (ln ci_ub - ln ci_lb) / (2 crit)",
                      f"{REF_ROM}; {REF_SE_DIFF}", {"yi": yi, "se": se})


def pooled_sd(sd: ArrayLike, n: ArrayLike) -> tuple[float, Derivation]:
    """Pooled SD of other trials, to impute a trial's missing SD.

    ``sd_pooled = sqrt(sum((n_i - 1) sd_i^2) / sum(n_i - 1))`` over the arms
    that report an SD on the same outcome and scale (Furukawa et al. 2006
    borrow SDs from the other trials of the meta-analysis; Handbook 6.5.2.8).
    Use only in a sensitivity analysis: the imputed SD is an assumption.

    Parameters
    ----------
    sd, n : array_like of shape (k,)
        Each arm's SD (> 0) and size (>= 2).

    Returns
    -------
    sd : float
    derivation : Derivation

    Examples
    --------
    >>> round(pooled_sd([10.0, 20.0], [11, 11])[0], 4)      # sqrt((100 + 400)/2)
    15.8114
    """
    sd, n = np.asarray(sd, dtype=float), np.asarray(n, dtype=float)
    if sd.shape != n.shape or sd.ndim != 1 or sd.size == 0:
        raise ValueError("sd and n must be non-empty arrays of shape (k,)")
    if np.any(~np.isfinite(sd)) or np.any(sd <= 0) or np.any(n < 2):
        raise ValueError("each SD must be > 0 and each n >= 2")
    df = n - 1
    val = float(math.sqrt(float(np.sum(df * sd ** 2) / np.sum(df))))
    return val, _d("impute_sd", {"k_arms": sd.size, "sum_df": float(df.sum())},
                   "sd_imputed = sqrt(sum((n_i - 1) sd_i^2) / sum(n_i - 1))", REF_FURUKAWA,
                   {"sd": val}, "borrowed from the other trials: sensitivity analysis only")


def effect_from_percents_p(pct1: float, pct2: float, p: float,
                           measure: Literal["RR", "OR", "RD"] = "RR"
                           ) -> tuple[float, float, tuple[Derivation, Derivation]]:
    """A binary effect from the two arms' percentages and an exact two-sided p.

    For a trial that prints only the percentage with the event in each arm
    and an exact p-value (no counts, no denominators that reproduce the
    percentages): the effect follows from the two proportions alone,
    ``RR = p1 / p2``, ``OR = (p1 / (1 - p1)) / (p2 / (1 - p2))``,
    ``RD = p1 - p2`` (none needs the denominators), and its SE from the
    p-value as for any estimate (Handbook 6.3.2; Altman & Bland 2011):
    ``z = Phi^-1(1 - p/2)``, ``se = |yi| / z`` with ``yi`` on the analysis
    scale (log for RR and OR).

    This assumes the p-value comes from a test that is close to a z test of
    that effect; a chi-squared or Fisher test on the counts gives a similar
    but not identical p, so the SE is approximate. Callers flag the result
    ``derived_from_p`` so that a sensitivity analysis can leave it out.

    Parameters
    ----------
    pct1, pct2 : float
        Percentage with the event, intervention and control arm (0-100).
    p : float
        Exact two-sided p-value of the comparison.
    measure : {"RR", "OR", "RD"}

    Returns
    -------
    yi, se : float
        On the analysis scale (log RR, log OR, or RD as a proportion).
    derivations : (effect step, SE step)

    Examples
    --------
    Altman & Bland (2011), BMJ 343:d2090, example (a): "49% v 32%, P=0.032";
    the paper's SE, with its approximation to z, is 7.940 percentage points.

    >>> yi, se, _ = effect_from_percents_p(49, 32, 0.032, measure="RD")
    >>> round(yi, 2), round(100 * se, 2)
    (0.17, 7.93)
    """
    a, c = _finite("pct1", pct1), _finite("pct2", pct2)
    for name, v in (("pct1", a), ("pct2", c)):
        if not 0 <= v <= 100:
            raise ValueError(f"{name} must be a percentage in [0, 100], got {v!r}")
    p1, p2 = a / 100, c / 100
    if measure == "RR":
        if p1 == 0 or p2 == 0:
            raise ValueError("a risk ratio from percentages needs both above 0%")
        est = p1 / p2
        yi = math.log(est)
        formula = "RR = pct1 / pct2; yi = ln(RR)"
    elif measure == "OR":
        if p1 in (0, 1) or p2 in (0, 1):
            raise ValueError("an odds ratio from percentages needs both strictly between "
                             "0% and 100%")
        est = (p1 / (1 - p1)) / (p2 / (1 - p2))
        yi = math.log(est)
        formula = "OR = (p1 / (1 - p1)) / (p2 / (1 - p2)); yi = ln(OR)"
    elif measure == "RD":
        est = yi = p1 - p2
        formula = "RD = p1 - p2 (proportions)"
    else:
        raise ValueError(f"measure must be RR, OR or RD, got {measure!r}")
    step1 = _d("effect_from_percentages", {"pct1": a, "pct2": c}, formula,
               f"{REF_ALTMAN_BLAND}; arithmetic", {measure: est, "yi": yi},
               "the denominators are not needed for a ratio or difference of proportions; "
               "percentages printed to limited precision carry their rounding into the effect")
    se, step2 = se_from_p(yi, p)
    step2 = Derivation(step2.method, step2.inputs, step2.formula,
                       f"{REF_P}; {REF_ALTMAN_BLAND}", step2.result,
                       "z test assumed: a chi-squared or Fisher test on the counts gives a "
                       "similar but not identical p, so the SE is approximate")
    return yi, se, (step1, step2)
