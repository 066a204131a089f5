"""Diagnostics (leave-one-out, influence, cumulative, GOSH, permutation tests)
against metafor 3.8-1, plus their defining properties.

Reference values are pinned in tests/data/metafor_reference.json (written
by tests/reference/run_metafor.R) and tests/data/metafor_reference_diagnostics.json
(tests/reference/run_metafor_diagnostics.R: every estimator, knha,
moderators, and random-mode permutation tests with the permutations metafor
drew). metafor is not a test dependency, so these numbers are pinned rather
than recomputed.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from metaanalysis.stats import diagnostics as D
from metaanalysis.stats import fit
from tests.tolerances import (ATOL_CLOSED, ATOL_I2_ITER, ATOL_ITER, RTOL_CLOSED, RTOL_ILLCOND,
                              RTOL_ITER)

DATA = Path(__file__).resolve().parents[1] / "data"
ITERATIVE = {"PM", "EB", "ML", "REML"}


def _cases(group):
    out = []
    for name in ("metafor_reference.json", "metafor_reference_diagnostics.json"):
        ref = json.loads((DATA / name).read_text())
        out += ref.get(group, [])
    assert out, f"no metafor reference cases for {group}"
    return out


def _tol(method, key=None, mods=None):
    """Named tolerance for a quantity: closed form or iterative tau2 (see
    tests/tolerances.py for the reasons)."""
    if mods and "year" in mods:
        return dict(rtol=RTOL_ILLCOND, atol=ATOL_ITER)
    if method.upper() in ITERATIVE:
        return dict(rtol=RTOL_ITER, atol=ATOL_I2_ITER if key == "I2" else ATOL_ITER)
    return dict(rtol=RTOL_CLOSED, atol=ATOL_CLOSED)


def _arr(x):
    flat = [np.nan if v is None else v for v in np.ravel(x)]
    return np.array(flat, dtype=float).reshape(np.shape(x))


def _close(actual, expected, tol, what):
    np.testing.assert_allclose(np.asarray(actual, float), _arr(expected), equal_nan=True,
                               err_msg=what, **tol)


def _X(inp):
    mods = inp.get("mods")
    k = len(inp["yi"])
    if not mods:
        return None
    return np.column_stack([np.ones(k)] + [np.asarray(v, float) for v in mods.values()])


def _ids(cases):
    return [c["id"] for c in cases]


SEQ_KEYS = ("estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "Q", "Q_p", "tau2", "I2", "H2")


# ----------------------------------------------------------------------------
# leave-one-out and cumulative

L1O = _cases("leave1out")


@pytest.mark.parametrize("case", L1O, ids=_ids(L1O))
def test_leave_one_out_matches_metafor(case):
    a, inp, out = case["args"], case["input"], case["output"]
    r = D.leave_one_out(inp["yi"], inp["vi"], a["method"], a["test"])
    for key in SEQ_KEYS:
        if not out[key]:
            continue  # metafor omits tau2 for FE (and run_metafor.R has no t under knha)
        _close(getattr(r, key), out[key], _tol(a["method"], key), f"{case['id']}: {key}")


CUMUL = _cases("cumul")


@pytest.mark.parametrize("case", CUMUL, ids=_ids(CUMUL))
def test_cumulative_matches_metafor(case):
    a, inp, out = case["args"], case["input"], case["output"]
    r = D.cumulative(inp["yi"], inp["vi"], inp["year"], a["method"], a["test"])
    assert (r.order + 1).tolist() == out["order"]
    for key in SEQ_KEYS:
        if not out[key]:
            continue
        _close(getattr(r, key), out[key], _tol(a["method"], key), f"{case['id']}: {key}")


def test_cumulative_last_row_is_the_full_fit_and_k_grows():
    rng = np.random.default_rng(3)
    y, v = rng.normal(0, 1, 9), rng.uniform(0.05, 0.5, 9)
    r = D.cumulative(y, v, order=rng.permutation(9), method="REML")
    full = fit.rma(y, v, "REML")
    assert r.k.tolist() == list(range(1, 10))
    assert r.estimate[-1] == pytest.approx(full.beta[0, 0], rel=1e-12)
    assert r.tau2[-1] == pytest.approx(full.tau2[0], rel=1e-10, abs=1e-14)


def test_cumulative_decreasing_keeps_ties_in_input_order():
    y, v = np.arange(5.0), np.full(5, 0.1)
    r = D.cumulative(y, v, order=[2000, 2010, 2010, 1990, 2020], method="FE", decreasing=True)
    assert r.order.tolist() == [4, 1, 2, 0, 3]


def test_leave_one_out_k2_gives_single_study_fits_with_z():
    # each deletion leaves k = 1: metafor switches to z ("Setting argument
    # test='z' since k=1") and reports the study itself
    r = D.leave_one_out([0.2, 0.6], [0.04, 0.09], "REML", "knha")
    assert r.estimate.tolist() == [0.6, 0.2]
    np.testing.assert_allclose(r.se, [0.3, 0.2], rtol=1e-15)
    assert np.all(r.tau2 == 0) and np.all(r.Q == 0) and np.all(r.Q_p == 1)


# ----------------------------------------------------------------------------
# influence

INF = _cases("influence")


@pytest.mark.parametrize("case", INF, ids=_ids(INF))
def test_influence_matches_metafor(case):
    a, inp, out = case["args"], case["input"], case["output"]
    r = D.influence(inp["yi"], inp["vi"], a["method"], a["test"], X=_X(inp))
    tol = _tol(a["method"], mods=a.get("mods"))
    for key in ("rstudent", "dffits", "cook_d", "cov_r", "tau2_del", "QE_del", "hat", "weight"):
        _close(getattr(r, key), out[key], tol, f"{case['id']}: {key}")
    dfb = np.column_stack([out["dfbetas"][name] for name in out["dfbetas"]])
    _close(r.dfbetas, dfb, tol, f"{case['id']}: dfbetas")
    assert r.inf.tolist() == out["inf"]
    if "rstudent_resid" in out:
        _close(r.resid, out["rstudent_resid"], tol, "resid")
        _close(r.se_resid, out["rstudent_se"], tol, "se_resid")


def test_influence_of_a_lone_dummy_level_is_missing():
    # deleting the only study with x = 1 leaves a rank-deficient design:
    # metafor reports NA for that study, and so do we
    y = np.array([0.1, 0.3, 0.2, 0.5, 0.9])
    v = np.full(5, 0.05)
    X = np.column_stack([np.ones(5), [0, 0, 0, 0, 1.0]])
    r = D.influence(y, v, "DL", X=X)
    assert np.isnan(r.rstudent[4]) and np.isnan(r.dfbetas[4]).all()
    assert np.isfinite(r.rstudent[:4]).all()


# ----------------------------------------------------------------------------
# GOSH

GOSH = _cases("gosh")


@pytest.mark.parametrize("case", GOSH, ids=_ids(GOSH))
def test_gosh_matches_metafor(case):
    a, inp, out = case["args"], case["input"], case["output"]
    X = _X(inp)
    g = D.gosh(inp["yi"], inp["vi"], a["method"], X=X)
    assert g.exact
    assert ["".join("1" if b else "0" for b in row) for row in g.incl] == out["incl"]
    assert g.k.tolist() == out["k"]
    tol = _tol(a["method"])
    if X is None:
        _close(g.estimate, out["estimate"], tol, "estimate")
    else:
        _close(g.beta[:, 0], out["intrcpt"], tol, "intrcpt")
        _close(g.beta[:, 1], out["ablat"], tol, "ablat")
        assert g.fit_ok.tolist() == out["fit"]
    for key, ref in (("I2", "I2"), ("H2", "H2"), ("tau2", "tau2"), ("QE", "Q")):
        _close(getattr(g, key), out[ref], _tol(a["method"], key), key)


def test_gosh_chunking_does_not_change_results(monkeypatch):
    rng = np.random.default_rng(11)
    y, v = rng.normal(0.3, 0.4, 8), rng.uniform(0.02, 0.3, 8)
    whole = D.gosh(y, v, "REML")
    monkeypatch.setattr(D, "CHUNK_ELEMENTS", 8 * 17)  # 17 subsets per chunk
    parts = D.gosh(y, v, "REML")
    assert np.array_equal(whole.incl, parts.incl)
    np.testing.assert_allclose(parts.tau2, whole.tau2, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(parts.estimate, whole.estimate, rtol=1e-12)


def test_gosh_random_subsets_when_over_the_cap():
    rng = np.random.default_rng(5)
    y, v = rng.normal(0, 1, 12), rng.uniform(0.05, 0.5, 12)
    g = D.gosh(y, v, "DL", max_subsets=500, seed=1)
    assert not g.exact and g.incl.shape == (500, 12)
    assert np.all(np.diff(g.k) >= 0) and g.k.min() >= 1
    # the same seed gives the same subsets
    assert np.array_equal(g.incl, D.gosh(y, v, "DL", max_subsets=500, seed=1).incl)
    # each row is the fit of its subset
    j = 123
    one = fit.rma(y[g.incl[j]], v[g.incl[j]], "DL")
    assert g.estimate[j] == pytest.approx(one.beta[0, 0], rel=1e-12)


def test_results_are_read_only():
    g = D.gosh([0.1, 0.5, 0.9], [0.01, 0.02, 0.03], "DL")
    with pytest.raises(ValueError):
        g.tau2[0] = 1.0
    with pytest.raises(AttributeError):
        g.method = "REML"


# ----------------------------------------------------------------------------
# permutation tests

PERM = _cases("permutest")


@pytest.mark.parametrize("case", PERM, ids=_ids(PERM))
def test_permutation_test_matches_metafor(case):
    a, inp, out = case["args"], case["input"], case["output"]
    X = _X(inp)
    k = len(inp["yi"])
    if a["exact"]:
        r = D.permutation_test(inp["yi"], inp["vi"], X, a["method"], a["test"], exact=True)
        assert r.exact
    else:
        # metafor's own draws; it counts the observed data instead of draw 1
        perms = np.array(out["perms"])
        if X is None:
            perms[0] = 1
        else:
            perms = perms - 1
            perms[0] = np.arange(k)
        r = D.permutation_test(inp["yi"], inp["vi"], X, a["method"], a["test"],
                               permutations=perms)
    assert r.n_perm == out["n_perm"]
    tol = _tol(a["method"])
    _close(r.beta, out["beta"], tol, "beta")
    _close(r.stat, out["stat"], tol, "stat")
    _close(r.QM, out["QM"], tol, "QM")
    # counts over the same permutations: exact
    assert r.pval.tolist() == pytest.approx(out["pval"], rel=1e-15)
    assert r.QM_p == pytest.approx(out["QMp"], rel=1e-15)


def test_permutation_test_random_mode_counts_the_observed_data():
    rng = np.random.default_rng(2)
    k = 15
    y, v = rng.normal(0.2, 0.5, k), rng.uniform(0.05, 0.3, k)
    X = np.column_stack([np.ones(k), rng.normal(size=k), rng.normal(size=k)])
    r = D.permutation_test(y, v, X, "REML", n_perm=200, seed=9)
    assert not r.exact and r.n_perm == 200
    np.testing.assert_allclose(r.stat_perm[0], r.stat, rtol=1e-12)
    # p-values are multiples of 1/n and at least 1/n (the observed data count)
    assert np.all(r.pval >= 1 / 200) and np.allclose(r.pval * 200, np.round(r.pval * 200))
    # reproducible with a seed
    again = D.permutation_test(y, v, X, "REML", n_perm=200, seed=9)
    assert np.array_equal(again.stat_perm, r.stat_perm)


def test_permuting_x_equals_permuting_the_data():
    # the batched engine permutes (yi, vi) against fixed X; check one row by
    # fitting the permuted design directly
    rng = np.random.default_rng(4)
    k = 10
    y, v = rng.normal(size=k), rng.uniform(0.1, 0.4, k)
    X = np.column_stack([np.ones(k), rng.normal(size=k)])
    perm = rng.permutation(k)
    r = D.permutation_test(y, v, X, "PM", permutations=np.vstack([np.arange(k), perm]))
    direct = fit.rma(y, v, "PM", X=X[perm])
    np.testing.assert_allclose(r.beta_perm[1], direct.beta[:, 0], rtol=1e-10)
    assert r.QM_perm[1] == pytest.approx(direct.QM[0], rel=1e-9)


def test_exact_enumeration_sizes():
    X = np.column_stack([np.ones(6), [0, 0, 1, 1, 1, 2.0]])
    assert D._n_distinct_row_permutations(X) == 60  # 6! / (2! 3! 1!)
    perms = D._exact_row_permutations(X)
    assert perms.shape == (60, 6)
    designs = {tuple(X[p, 1]) for p in perms}
    assert len(designs) == 60
    y, v = np.linspace(-1, 1, 6), np.full(6, 0.1)
    r = D.permutation_test(y, v, None, "DL", n_perm=100)
    assert r.exact and r.n_perm == 64  # 2^6 sign flips <= 100


def test_input_validation():
    with pytest.raises(ValueError, match="method"):
        D.leave_one_out([1, 2, 3], [1, 1, 1], "XX")
    with pytest.raises(ValueError, match="k >= 2"):
        D.leave_one_out([1.0], [1.0])
    with pytest.raises(ValueError, match="vi must be > 0"):
        D.gosh([1, 2], [1, 0])
    with pytest.raises(ValueError, match="permutation of 0"):
        D.permutation_test([1, 2, 3], [1, 1, 1], np.column_stack([np.ones(3), [1, 2, 3.0]]),
                           permutations=[[0, 0, 1]])
