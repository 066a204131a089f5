"""Conversions against worked examples.

Sources of the expected values (each test says which it checks):

* Cochrane Handbook v6.4, 6.5.2.2: "the t value for a 95% confidence interval
  from a sample size of 25 ... (the result is 2.0639)", divisor
  "2 x 2.0639 = 4.128" instead of 3.92.
* Cochrane Handbook v6.4, 6.5.2.3: MD 3.8 with P = 0.008 from a t test with
  25 + 22 - 2 = 45 df: "t = 2.78", "standard error ... 3.8 / 2.78 = 1.37".
* Cochrane Handbook v5.1, 16.4.6.4 (correlated measurements): SDs 2.38 and
  2.21, n = 10, imputed correlation 0.68 -> SE of MD 0.583.
* Wan et al. (2014), Table 1: exact xi(n) for n <= 50.
* metafor's conv.wald()/conv.fivenum() through tests/data/metafor_reference.json
  (group ``conv``), when that group exists.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from metaanalysis.studies import conversions as cv

#: Closed forms computed in a different order: rounding only.
CLOSED = dict(rel=1e-12)
#: Values printed by a publication to k decimals: half a unit in the last place.
PUBLISHED_2DP = dict(abs=5e-3)
PUBLISHED_3DP = dict(abs=5e-4)
PUBLISHED_4DP = dict(abs=5e-5)
#: Numerical integration (scipy quad at epsabs=epsrel=1e-12).
QUAD = dict(abs=1e-9)

DATA = Path(__file__).resolve().parents[1] / "data"


# ---------------------------------------------------------------------------
# Handbook 6.5.2.2: SDs from SEs and CIs of group means


def test_handbook_6522_t_multiplier_for_n25():
    # "tinv(1-0.95,25-1) ... (the result is 2.0639)"; divisor 4.128
    assert cv.critical_value(0.95, df=24) == pytest.approx(2.0639, **PUBLISHED_4DP)
    assert 2 * cv.critical_value(0.95, df=24) == pytest.approx(4.128, **PUBLISHED_3DP)


def test_handbook_6522_large_sample_divisor_392():
    assert 2 * cv.critical_value(0.95) == pytest.approx(3.92, **PUBLISHED_2DP)
    assert 2 * cv.critical_value(0.90) == pytest.approx(3.29, **PUBLISHED_2DP)
    assert 2 * cv.critical_value(0.99) == pytest.approx(5.15, **PUBLISHED_2DP)


def test_sd_from_ci_small_n_uses_t_with_n_minus_1_df():
    sd, d = cv.sd_from_ci(10.0, 14.128, 25)
    # width 4.128 = 2 * 2.0639 standard errors -> SE 1, SD = sqrt(25) = 5
    assert sd == pytest.approx(5.0, abs=1e-3)
    assert d.method == "sd_from_ci" and "24 df" in d.note


def test_sd_from_ci_large_n_uses_392():
    sd, d = cv.sd_from_ci(0.0, 3.92, 100)
    assert sd == pytest.approx(10 * 3.92 / (2 * cv.critical_value(0.95)), **CLOSED)
    assert sd == pytest.approx(10.0, abs=1e-3)
    assert d.note == "normal quantile"


def test_sd_from_ci_threshold_is_60():
    _, d59 = cv.sd_from_ci(0, 1, 59)
    _, d60 = cv.sd_from_ci(0, 1, 60)
    assert "t quantile" in d59.note and d60.note == "normal quantile"


def test_sd_from_se():
    sd, d = cv.sd_from_se(2.0, 25)
    assert sd == 10.0
    assert d.to_dict() == {"method": "sd_from_se", "inputs": {"se": 2.0, "n": 25.0},
                           "formula": "sd = se * sqrt(n)", "reference": cv.REF_SD_SE,
                           "result": {"sd": 10.0}, "note": ""}


# ---------------------------------------------------------------------------
# Handbook 6.5.2.3: SE of a difference from its CI or p-value


def test_handbook_6523_t_test_p_value():
    se, d = cv.se_from_p(3.8, 0.008, df=45)
    t = dict(d.inputs)["t"]
    assert t == pytest.approx(2.78, **PUBLISHED_2DP)
    assert se == pytest.approx(1.37, **PUBLISHED_2DP)
    assert d.method == "se_from_p"


def test_se_from_p_z():
    se, d = cv.se_from_p(-3.8, 0.008)
    z = dict(d.inputs)["z"]
    assert z == pytest.approx(2.6521, **PUBLISHED_4DP)
    assert se == pytest.approx(3.8 / z, **CLOSED)


def test_se_from_ci_of_difference():
    se, _ = cv.se_from_ci(-1.0, 2.92)
    assert se == pytest.approx(3.92 / (2 * cv.critical_value(0.95)), **CLOSED)
    se_t, d = cv.se_from_ci(-1.0, 2.92, df=45)
    assert se_t == pytest.approx(3.92 / (2 * cv.critical_value(0.95, 45)), **CLOSED)
    assert "45 df" in d.note


def test_se_from_ci_ratio_on_log_scale():
    # conv.wald(out=0.96, ci.lb=0.38, ci.ub=2.33, transf=log)
    se, d = cv.se_from_ci(0.38, 2.33, log=True)
    assert se == pytest.approx((math.log(2.33) - math.log(0.38)) / (2 * 1.959963984540054),
                               **CLOSED)
    assert "ln" in d.formula


def test_pooled_sd_from_se_of_difference_roundtrip():
    # with equal SDs, the SE of a difference is sd * sqrt(1/n1 + 1/n2)
    sd, _ = cv.sd_pooled_from_se_diff(4.0 * math.sqrt(1 / 25 + 1 / 22), 25, 22)
    assert sd == pytest.approx(4.0, **CLOSED)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_se_from_p_rejects_uninformative_p(p):
    with pytest.raises(ValueError):
        cv.se_from_p(1.0, p)


# ---------------------------------------------------------------------------
# Handbook 6.5.2.8: change-from-baseline SDs


def test_handbook_correlation_example_se_0583():
    # Handbook 5.1, 16.4.6.4: SD_E 2.38, SD_C 2.21, Corr 0.68, n = 10 -> SE 0.583
    sd_diff, d = cv.sd_change(2.38, 2.21, 0.68)
    assert sd_diff / math.sqrt(10) == pytest.approx(0.583, **PUBLISHED_3DP)
    assert d.method == "sd_change_from_correlation"


def test_correlation_from_sds_inverts_sd_change():
    for r in (-0.3, 0.0, 0.5, 0.8):
        sd, _ = cv.sd_change(6.4, 7.1, r)
        r_back, _ = cv.correlation_from_sds(6.4, 7.1, sd)
        assert r_back == pytest.approx(r, abs=1e-12)


def test_correlation_from_sds_blog_example():
    # Jane (2023), "Calculating pre/post correlation from the SD of change
    # scores": S_pre 9, S_post 11, S_change 8 -> r = 0.697
    r, _ = cv.correlation_from_sds(9, 11, 8)
    assert r == pytest.approx(0.697, **PUBLISHED_3DP)


def test_correlation_from_inconsistent_sds_raises():
    with pytest.raises(ValueError, match="outside"):
        cv.correlation_from_sds(1.0, 1.0, 5.0)


# ---------------------------------------------------------------------------
# Wan 2014 / Luo 2018: medians


WAN_TABLE1 = {2: 1.128, 3: 1.693, 4: 2.059, 5: 2.326, 10: 3.078, 11: 3.173, 20: 3.735,
              25: 3.931, 30: 4.086, 40: 4.322, 50: 4.498}


@pytest.mark.parametrize("n", sorted(WAN_TABLE1))
def test_wan2014_table1_exact_xi(n):
    assert cv.xi(n, "exact") == pytest.approx(WAN_TABLE1[n], **PUBLISHED_3DP)


def test_xi_eta_approximations_are_close_to_exact():
    # eq. (9)/(16) approximate the exact expectations (Wan 2014, section 2)
    for n in (9, 21, 41, 101):
        assert cv.xi(n) == pytest.approx(cv.xi(n, "exact"), rel=0.02)
        assert cv.eta(n) == pytest.approx(cv.eta(n, "exact"), rel=0.02)
    # large n: the IQR of a standard normal is 2 * 0.6745
    assert cv.eta(10 ** 6) == pytest.approx(2 * 0.6744897501960817, rel=1e-5)


def test_exact_eta_needs_4q_plus_1():
    with pytest.raises(ValueError, match="4Q"):
        cv.eta(10, "exact")


def test_median_iqr_recovers_normal_parameters():
    # Exact normal quartiles of N(20, 5): the Wan SD with the exact eta(n)
    # recovers sigma up to the gap between E[quartile] and the quantile.
    mu, sigma, n = 20.0, 5.0, 401
    q = sigma * cv.eta(n, "exact") / 2
    mean, sd, d = cv.mean_sd_from_median_iqr(mu - q, mu, mu + q, n, quantities="exact")
    assert mean == pytest.approx(mu, **CLOSED)
    assert sd == pytest.approx(sigma, **CLOSED)
    assert d.method == "mean_sd_from_median_iqr"
    assert dict(d.result) == {"mean": mean, "sd": sd}


def test_median_range_formulas():
    a, m, b, n = 2.0, 10.0, 30.0, 40
    mean, sd, d = cv.mean_sd_from_median_range(a, m, b, n)
    w = 4 / (4 + n ** 0.75)
    assert mean == pytest.approx(w * (a + b) / 2 + (1 - w) * m, **CLOSED)
    assert sd == pytest.approx((b - a) / (2 * cv.distributions.norm.ppf((n - 0.375) / (n + 0.25))),
                               **CLOSED)
    mean_w, _, _ = cv.mean_sd_from_median_range(a, m, b, n, mean_method="wan")
    assert mean_w == pytest.approx((a + 2 * m + b) / 4, **CLOSED)
    assert "skewed" in d.note  # |a + b - 2m| / (b - a) = 0.43 > crit(40)


def test_median_iqr_formulas():
    q1, m, q3, n = 8.0, 10.0, 13.0, 30
    mean, sd, _ = cv.mean_sd_from_median_iqr(q1, m, q3, n)
    w = 0.7 + 0.39 / n
    assert mean == pytest.approx(w * (q1 + q3) / 2 + (1 - w) * m, **CLOSED)
    assert sd == pytest.approx((q3 - q1) / (2 * cv.distributions.norm.ppf((0.75 * n - 0.125) / (n + 0.25))),
                               **CLOSED)
    mean_w, _, _ = cv.mean_sd_from_median_iqr(q1, m, q3, n, mean_method="wan")
    assert mean_w == pytest.approx((q1 + m + q3) / 3, **CLOSED)


def test_five_numbers_wan_and_shi():
    a, q1, m, q3, b, n = 1.0, 8.0, 10.0, 13.0, 25.0, 50
    _, sd_wan, _ = cv.mean_sd_from_five_numbers(a, q1, m, q3, b, n)
    assert sd_wan == pytest.approx(((b - a) / cv.xi(n) + (q3 - q1) / cv.eta(n)) / 2, **CLOSED)
    _, sd_shi, d = cv.mean_sd_from_five_numbers(a, q1, m, q3, b, n, sd_method="shi")
    w = 1 / (1 + 0.07 * n ** 0.6)
    assert sd_shi == pytest.approx(w * (b - a) / cv.xi(n) + (1 - w) * (q3 - q1) / cv.eta(n),
                                   **CLOSED)
    assert cv.REF_SHI in d.reference


@pytest.mark.parametrize("args", [(5, 4, 6, 20), (4, 4, 4, 20), (1, 2, 3, 0)])
def test_median_inputs_checked(args):
    with pytest.raises(ValueError):
        cv.mean_sd_from_median_iqr(*args)


# ---------------------------------------------------------------------------
# combining and splitting arms


def test_combine_arms_matches_pooling_raw_data():
    # Table 6.5.a is exact: compare with the SD of the concatenated samples.
    rng = np.random.default_rng(1)
    x, y = rng.normal(5, 1, 10), rng.normal(8, 2, 17)
    n, m, sd, d = cv.combine_arms(x.size, x.mean(), x.std(ddof=1), y.size, y.mean(), y.std(ddof=1))
    z = np.concatenate([x, y])
    assert (n, m, sd) == pytest.approx((27, z.mean(), z.std(ddof=1)), rel=1e-12)
    assert d.method == "combine_arms" and "6.5.2.10" in d.reference


def test_combine_arms_binary_and_split_control():
    e, n, _ = cv.combine_arms_binary(3, 20, 5, 22)
    assert (e, n) == (8, 42)
    n2, e2, d = cv.split_shared_control(84, 2, events=10)
    assert (n2, e2) == (42.0, 5.0)
    assert d.method == "split_control" and dict(d.result) == {"n": 42.0, "events": 5.0}
    with pytest.raises(ValueError):
        cv.split_shared_control(84, 0)


def test_derivation_str_is_readable():
    _, d = cv.sd_from_se(2.0, 25)
    assert str(d) == "sd_from_se: sd = se * sqrt(n) with se=2, n=25 -> sd=10 [" + cv.REF_SD_SE + "]"
    with pytest.raises(ValueError):
        cv.combine_arms(1, 1, 1, 1, 1, 1)[3].value  # four results, no single value


# metafor's conv.wald()/conv.fivenum() arrived in metafor 4.0; the pinned reference
# (metafor 3.8-1) has no 'conv' group, so the conversions are checked against the
# Cochrane Handbook and Wan 2014 worked examples above instead.


# ---------------------------------------------------------------------------
# Handbook 6.3.2 / Altman & Bland 2011: an effect from two percentages and an exact p

#: Altman & Bland's z = -0.862 + sqrt(0.743 - 2.404 ln P) approximates the
#: normal quantile Phi^-1(1 - P/2) that we use; between P = 0.01 and 0.2 the two
#: differ by less than 0.005 (0.0035 at P = 0.032, 0.0033 at P = 0.05).
ALTMAN_BLAND_Z = dict(abs=5e-3)


def test_altman_bland_difference_example():
    # BMJ 2011;343:d2090, (a): "49% v 32%, P=0.032" -> Est = 17 points,
    # z = 2.141, SE = 17/2.141 = 7.940
    yi, se, (step1, step2) = cv.effect_from_percents_p(49, 32, 0.032, measure="RD")
    assert 100 * yi == pytest.approx(17.0, **CLOSED)
    z = dict(step2.inputs)["z"]
    assert z == pytest.approx(2.141, **ALTMAN_BLAND_Z)
    assert 100 * se == pytest.approx(17 / z, **CLOSED)
    assert 100 * se == pytest.approx(7.940, abs=17 / 2.141 - 17 / (2.141 + 5e-3))
    assert step1.method == "effect_from_percentages" and step2.method == "se_from_p"


@pytest.mark.parametrize("measure", ["RR", "OR"])
def test_effect_from_percents_recovers_wald_se(measure):
    # 10/100 vs 20/100: the p of the Wald z test on the log ratio gives back its SE
    # (escalc variances: RR 1/a - 1/n1 + 1/c - 1/n2; OR 1/a + 1/b + 1/c + 1/d)
    a, n1, c, n2 = 10, 100, 20, 100
    if measure == "RR":
        est, var = (a / n1) / (c / n2), 1 / a - 1 / n1 + 1 / c - 1 / n2
    else:
        est, var = (a / (n1 - a)) / (c / (n2 - c)), 1 / a + 1 / (n1 - a) + 1 / c + 1 / (n2 - c)
    p = 2 * float(cv.distributions.norm.sf(abs(math.log(est)) / math.sqrt(var)))
    yi, se, _ = cv.effect_from_percents_p(100 * a / n1, 100 * c / n2, p, measure=measure)
    assert yi == pytest.approx(math.log(est), **CLOSED)
    assert se == pytest.approx(math.sqrt(var), rel=1e-9)


def test_effect_from_percents_refuses_what_gives_no_effect():
    with pytest.raises(ValueError, match="above 0%"):
        cv.effect_from_percents_p(0, 11.5, 0.036)
    with pytest.raises(ValueError, match="between 0% and 100%"):
        cv.effect_from_percents_p(100, 11.5, 0.036, measure="OR")
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        cv.effect_from_percents_p(104, 11.5, 0.036)
    with pytest.raises(ValueError, match="no standard error"):
        cv.effect_from_percents_p(11.5, 11.5, 0.5)
    with pytest.raises(ValueError, match="measure"):
        cv.effect_from_percents_p(4.2, 11.5, 0.036, measure="MD")
