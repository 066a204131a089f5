"""Small-study effects (Egger's regression test, rank correlation test,
trim-and-fill, funnel contours) against metafor 3.8-1.

Reference values are pinned in tests/data/metafor_reference.json
(tests/reference/run_metafor.R) and tests/data/metafor_reference_diagnostics.json
(tests/reference/run_metafor_diagnostics.R: other predictors and estimators,
an explicit side, ties in the rank test, k = 60). metafor is not a test
dependency, so these numbers are pinned rather than recomputed.
"""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from metaanalysis.stats import bias
from tests.tolerances import (ATOL_BATCH_ITER, ATOL_CLOSED, ATOL_ITER, RTOL_BATCH_ITER,
                              RTOL_CLOSED, RTOL_ITER)

DATA = Path(__file__).resolve().parents[1] / "data"
ITERATIVE = {"PM", "EB", "ML", "REML"}


def _cases(group):
    out = []
    for name in ("metafor_reference.json", "metafor_reference_diagnostics.json"):
        out += json.loads((DATA / name).read_text()).get(group, [])
    assert out, f"no metafor reference cases for {group}"
    return out


def _tol(method):
    if method.upper() in ITERATIVE:
        return dict(rtol=RTOL_ITER, atol=ATOL_ITER)
    return dict(rtol=RTOL_CLOSED, atol=ATOL_CLOSED)


def _close(actual, expected, tol, what):
    exp = np.array([np.nan if v is None else v for v in np.ravel(expected)], dtype=float)
    np.testing.assert_allclose(np.ravel(np.asarray(actual, float)), exp, equal_nan=True,
                               err_msg=what, **tol)


def _ids(cases):
    return [c["id"] for c in cases]


# ----------------------------------------------------------------------------
# Egger's regression test

REG = _cases("regtest")


@pytest.mark.parametrize("case", REG, ids=_ids(REG))
def test_regtest_matches_metafor(case):
    a, inp, out = case["args"], case["input"], case["output"]
    k = len(inp["yi"])
    X = None
    if inp.get("mods"):
        X = np.column_stack([np.ones(k)] + [np.asarray(v, float) for v in inp["mods"].values()])
    r = bias.regtest(inp["yi"], inp["vi"], a["model"], a["predictor"], a["method"], a["test"],
                     X=X, ni=inp.get("ni"))
    # the lm model and FE/DL are closed forms; rma with PM/ML/REML iterates
    tol = _tol(a["method"] if a["model"] == "rma" else "FE")
    for key in ("stat", "pval", "est", "ci_lb", "ci_ub"):
        _close(getattr(r, key), out[key], tol, f"{case['id']}: {key}")
    _close(r.beta, out["fit_beta"], tol, "beta")
    _close(r.se, out["fit_se"], tol, "se")
    if out["df"] is None:
        assert np.isnan(r.df)
    else:
        assert r.df == out["df"]
    if "fit_tau2" in out:
        _close(r.tau2, out["fit_tau2"], tol, "tau2")
    if "fit_sigma" in out:
        _close(r.sigma, out["fit_sigma"], tol, "sigma")


def test_classic_egger_is_the_regression_of_the_standard_normal_deviate():
    # Egger 1997: regress yi/sei on 1/sei; the intercept's t test is the
    # test of asymmetry, identical to the weighted regression on sei
    rng = np.random.default_rng(8)
    v = rng.uniform(0.01, 0.3, 15)
    y = rng.normal(0.2 + 0.9 * np.sqrt(v), np.sqrt(v))
    r = bias.regtest(y, v, model="lm")
    s = np.sqrt(v)
    fit = stats.linregress(1 / s, y / s)
    assert r.stat == pytest.approx(fit.intercept / fit.intercept_stderr, rel=1e-10)
    assert r.beta[0] == pytest.approx(fit.slope, rel=1e-10)


# ----------------------------------------------------------------------------
# rank correlation test

RANK = _cases("ranktest")


@pytest.mark.parametrize("case", RANK, ids=_ids(RANK))
def test_ranktest_matches_metafor(case):
    inp, out = case["input"], case["output"]
    r = bias.ranktest(inp["yi"], inp["vi"])
    _close(r.tau, out["tau"], dict(rtol=RTOL_CLOSED, atol=ATOL_CLOSED), "tau")
    _close(r.pval, out["pval"], dict(rtol=RTOL_CLOSED, atol=ATOL_CLOSED), "pval")
    # R falls back to the normal approximation (with a warning) under ties
    assert r.exact == ("Cannot compute exact p-value with ties" not in case["warnings"])


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_kendall_null_distribution_by_enumeration(n):
    # T = number of concordant pairs over all n! orderings
    counts = np.zeros(n * (n - 1) // 2 + 1)
    for perm in itertools.permutations(range(n)):
        t = sum(perm[i] < perm[j] for i in range(n) for j in range(i + 1, n))
        counts[t] += 1
    np.testing.assert_allclose(bias._kendall_null_cdf(n), np.cumsum(counts) / counts.sum(),
                               rtol=1e-14)


# ----------------------------------------------------------------------------
# trim and fill

TF = _cases("trimfill")


@pytest.mark.parametrize("case", TF, ids=_ids(TF))
def test_trimfill_matches_metafor(case):
    a, inp, out = case["args"], case["input"], case["output"]
    side = None if a.get("side", "auto") == "auto" else a["side"]
    r = bias.trimfill(inp["yi"], inp["vi"], side, a["estimator"], a["method"])
    assert (r.k0, r.side) == (out["k0"], out["side"])
    tol = _tol(a["method"])
    _close(r.se_k0, out["se_k0"], tol, "se_k0")
    _close(r.p_k0, out["p_k0"], tol, "p_k0")
    _close(r.yi_fill, out["fill_yi"], tol, "fill_yi")
    _close(r.vi_fill, out["fill_vi"], tol, "fill_vi")
    f = r.fit
    assert int(f.k[0]) == out["k"]
    for key, val in (("estimate", f.beta[0]), ("se", f.se[0]), ("stat", f.stat[0]),
                     ("pval", f.pval[0]), ("ci_lb", f.ci_lb[0]), ("ci_ub", f.ci_ub[0]),
                     ("tau2", f.tau2), ("I2", f.I2), ("H2", f.H2), ("Q", f.Q), ("Q_p", f.Q_p)):
        _close(val, out[key], tol, f"{case['id']}: {key}")


def test_trimfill_fills_the_mirror_images():
    # a funnel with its lower-left corner cut off: studies go missing on the left
    rng = np.random.default_rng(1)
    v = rng.uniform(0.005, 0.2, 30)
    y = rng.normal(0.0, np.sqrt(v))
    keep = ~((y < 0) & (v > 0.08))
    r = bias.trimfill(y[keep], v[keep], method="FE")
    assert r.side == "left" and r.k0 > 0
    right = bias.trimfill(y[keep], v[keep], method="FE", side="right")
    assert r.fit.beta[0, 0] < right.fit.beta[0, 0]
    assert r.yi_all.size == keep.sum() + r.k0 and r.fill.sum() == r.k0


# ----------------------------------------------------------------------------
# contour-enhanced funnel plot


def test_funnel_contours_are_normal_quantiles():
    se = np.linspace(0, 0.5, 11)
    c = bias.funnel_contours(se)
    np.testing.assert_allclose(c.z, stats.norm.ppf([0.95, 0.975, 0.995]), rtol=1e-15)
    np.testing.assert_allclose(c.upper[1], 1.959963984540054 * se, rtol=1e-15)
    np.testing.assert_allclose(c.lower, -c.upper, rtol=0)
    # an estimate on the 0.05 contour has a two-sided z-test p-value of 0.05
    z = c.upper[1, 5] / se[5]
    assert 2 * stats.norm.sf(z) == pytest.approx(0.05, rel=1e-12)
    shifted = bias.funnel_contours(se, alphas=[0.05], center=1.0)
    np.testing.assert_allclose(shifted.lower[0], 1 - c.upper[1], rtol=1e-15)


def test_bias_input_validation():
    with pytest.raises(ValueError, match="predictor"):
        bias.regtest([1, 2, 3, 4], [1, 1, 1, 1], predictor="xx")
    with pytest.raises(ValueError, match="needs ni"):
        bias.regtest([1, 2, 3, 4], [1, 1, 1, 1], predictor="ni")
    with pytest.raises(ValueError, match="estimator"):
        bias.trimfill([1, 2, 3], [1, 1, 1], estimator="Q9")
    with pytest.raises(ValueError, match="alphas"):
        bias.funnel_contours([0.1], alphas=[1.5])


@pytest.mark.parametrize("method", ["REML", "DL"])
def test_trimfill_beyond_the_prefix_batch_fits_only_what_it_asks(method, monkeypatch):
    # k > 1,024: the (k, k) batch of every prefix fit would be k² elements;
    # the iteration instead fits the few prefixes it visits
    import tracemalloc

    rng = np.random.default_rng(20261130)
    k = 1500
    vi = rng.uniform(0.01, 0.5, k)
    yi = rng.normal(0.3, np.sqrt(vi + 0.05)) + 0.6 * np.sqrt(vi)  # small studies larger
    tracemalloc.start()
    few = bias.trimfill(yi, vi, method=method)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < k * k * 8 / 4  # not even a quarter of one (k, k) float array
    monkeypatch.setattr(bias, "CHUNK_ELEMENTS", k * k)  # the whole batch, as for small k
    tracemalloc.start()
    batched = bias.trimfill(yi, vi, method=method)
    peak_batched = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak_batched > k * k * 8  # the test can fail: the batch is that big
    assert few.k0 == batched.k0 > 0 and few.side == batched.side
    assert few.iterations == batched.iterations
    np.testing.assert_allclose(few.fit.beta, batched.fit.beta, rtol=RTOL_BATCH_ITER,
                               atol=ATOL_BATCH_ITER)
    np.testing.assert_allclose(few.yi_fill, batched.yi_fill, rtol=RTOL_BATCH_ITER,
                               atol=ATOL_BATCH_ITER)
