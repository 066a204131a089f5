"""Property tests for the statistical core (hypothesis).

Each property is a mathematical fact about the estimators, checked on
random data: invariance under permutation, sign flips when arms swap, FE = RE
at tau2 = 0, DL's closed form, and the Q-profile bounds' defining equations.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from metaanalysis.stats import fit
from metaanalysis import pool
from metaanalysis.stats.effects import escalc

METHODS = ["FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"]

finite = st.floats(min_value=-5, max_value=5, allow_nan=False, allow_infinity=False)
variance = st.floats(min_value=0.01, max_value=2.0, allow_nan=False)


@st.composite
def datasets(draw, min_k=3, max_k=12):
    k = draw(st.integers(min_k, max_k))
    y = np.array(draw(st.lists(finite, min_size=k, max_size=k)))
    v = np.array(draw(st.lists(variance, min_size=k, max_size=k)))
    return y, v


@settings(max_examples=60, deadline=None)
@given(datasets(), st.sampled_from(METHODS), st.randoms(use_true_random=False))
def test_estimate_invariant_under_permutation(data, method, rnd):
    y, v = data
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    a = fit.rma(y, v, method)
    b = fit.rma(y[perm], v[perm], method)
    assert np.allclose(a.beta, b.beta, rtol=1e-9, atol=1e-11)
    assert np.allclose(a.tau2, b.tau2, rtol=1e-8, atol=1e-10)
    assert np.allclose(a.Q, b.Q, rtol=1e-9, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 10), st.integers(0, 10_000), st.sampled_from(["REML", "DL", "PM"]))
def test_md_flips_sign_when_arms_swap(k, seed, method):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "m1i": rng.normal(20, 5, k), "sd1i": rng.uniform(5, 15, k), "n1i": rng.integers(10, 80, k),
        "m2i": rng.normal(25, 5, k), "sd2i": rng.uniform(5, 15, k), "n2i": rng.integers(10, 80, k),
    })
    swapped = df.rename(columns={"m1i": "m2i", "m2i": "m1i", "sd1i": "sd2i", "sd2i": "sd1i",
                                 "n1i": "n2i", "n2i": "n1i"})
    a = pool(df, "MD", method)
    b = pool(swapped, "MD", method)
    assert b.estimate == pytest.approx(-a.estimate, rel=1e-9, abs=1e-12)
    assert b.tau2 == pytest.approx(a.tau2, rel=1e-8, abs=1e-10)
    assert b.ci_lb == pytest.approx(-a.ci_ub, rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(datasets(), st.sampled_from(["DL", "HE", "REML", "PM"]))
def test_fixed_tau2_zero_equals_fe(data, method):
    y, v = data
    fe = fit.rma(y, v, "FE")
    re0 = fit.rma(y, v, method, tau2=np.zeros(1))
    assert np.allclose(fe.beta, re0.beta, rtol=1e-12)
    assert np.allclose(fe.se, re0.se, rtol=1e-12)


def test_re_equals_fe_for_homogeneous_data():
    # identical estimates: every estimator gives tau2 = 0, so RE = FE
    y = np.full(6, 0.3)
    v = np.array([0.1, 0.2, 0.05, 0.3, 0.15, 0.08])
    fe = fit.rma(y, v, "FE")
    for m in METHODS:
        re = fit.rma(y, v, m)
        assert re.tau2[0] == 0.0, m
        assert re.beta[0, 0] == pytest.approx(fe.beta[0, 0], rel=1e-12)
        assert re.se[0, 0] == pytest.approx(fe.se[0, 0], rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(datasets())
def test_dl_closed_form(data):
    y, v = data
    w = 1 / v
    mu = np.sum(w * y) / w.sum()
    Q = np.sum(w * (y - mu) ** 2)
    expected = max(0.0, (Q - (len(y) - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
    got = fit.estimate_tau2(y, v, "DL").tau2[0]
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-14)


@settings(max_examples=40, deadline=None)
@given(datasets(min_k=4))
def test_q_profile_bounds_solve_their_equations(data):
    y, v = data
    k = len(y)
    lb, ub = fit.q_profile_ci(y, v, alpha=0.05)
    crit_hi = stats.chi2.isf(0.025, k - 1)
    crit_lo = stats.chi2.ppf(0.025, k - 1)
    q_at = lambda t: fit.generalized_q(np.array([t]), y[:, None], v[:, None],
                                       np.ones((k, 1), bool), np.ones((k, 1)))[0][0]
    if lb[0] > 0:
        assert q_at(lb[0]) == pytest.approx(crit_hi, rel=1e-8)
    else:
        assert q_at(0.0) <= crit_hi + 1e-9
    if ub[0] > 0:
        assert q_at(ub[0]) == pytest.approx(crit_lo, rel=1e-8)
    else:
        assert q_at(0.0) <= crit_lo + 1e-9
    assert lb[0] <= ub[0]


@settings(max_examples=30, deadline=None)
@given(datasets(min_k=3, max_k=8), st.sampled_from(METHODS))
def test_batched_equals_one_at_a_time(data, method):
    y, v = data
    rng = np.random.default_rng(len(y))
    Y = np.column_stack([y, y + rng.normal(0, 1, len(y)), y[::-1]])
    V = np.column_stack([v, v * 2, v[::-1]])
    batch = fit.rma(Y, V, method)
    for j in range(3):
        one = fit.rma(Y[:, j], V[:, j], method)
        assert one.tau2[0] == pytest.approx(batch.tau2[j], rel=1e-9, abs=1e-12)
        assert one.beta[0, 0] == pytest.approx(batch.beta[0, j], rel=1e-9, abs=1e-12)


def test_smd_exact_and_revman_differ_by_small_amount():
    y1, _ = escalc("SMD", m1i=[10.0], sd1i=[3.0], n1i=[15], m2i=[12.0], sd2i=[3.0], n2i=[15])
    y2, _ = escalc("SMD", m1i=[10.0], sd1i=[3.0], n1i=[15], m2i=[12.0], sd2i=[3.0], n2i=[15],
                   smd_correction="revman")
    assert y1[0] != y2[0]
    assert abs(y1[0] - y2[0]) < 2e-3
