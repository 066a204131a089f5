"""Batched fitting: every column of a (k, d) batch equals the same fit run
alone, for every estimator and test, with masks and moderators; the batch
reproduces metafor; and REML converges where metafor's Fisher scoring
oscillates.

metafor values are pinned in tests/data/metafor_reference.json
(tests/reference/run_metafor.R) and, for the REML non-convergence cases,
tests/data/metafor_reference_diagnostics.json
(tests/reference/run_metafor_diagnostics.R, group ``reml_nonconvergence``).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from metaanalysis.stats import fit
from tests.tolerances import (ATOL_BATCH, ATOL_BATCH_ITER, ATOL_CLOSED, ATOL_I2_ITER, ATOL_ITER,
                              RTOL_BATCH, RTOL_BATCH_ITER, RTOL_CLOSED, RTOL_ITER)

DATA = Path(__file__).resolve().parents[1] / "data"
METHODS = ["FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"]
ITERATIVE = {"PM", "EB", "ML", "REML"}
REF = json.loads((DATA / "metafor_reference.json").read_text())
REF_DIAG = json.loads((DATA / "metafor_reference_diagnostics.json").read_text())

#: BatchFit fields with the dataset axis last, compared column by column
FIELDS = ("beta", "se", "stat", "pval", "ci_lb", "ci_ub", "tau2", "Q", "Q_p", "I2", "H2", "s2w",
          "QM", "QM_p", "k", "converged")


def _batch_tol(method):
    if method in ITERATIVE:
        return dict(rtol=RTOL_BATCH_ITER, atol=ATOL_BATCH_ITER)
    return dict(rtol=RTOL_BATCH, atol=ATOL_BATCH)


def _assert_column_equals(batch, j, one, method, what=""):
    tol = _batch_tol(method)
    for name in FIELDS:
        b = np.asarray(getattr(batch, name))[..., j]
        o = np.asarray(getattr(one, name))[..., 0]
        np.testing.assert_allclose(b.astype(float), o.astype(float), equal_nan=True,
                                   err_msg=f"{what} {name}", **tol)
    np.testing.assert_allclose(batch.vb[j], one.vb[0], err_msg=f"{what} vb", **tol)


# ----------------------------------------------------------------------------
# batched == alone


def _random_batch(rng, k, d, p=1):
    v = rng.uniform(0.01, 0.6, (k, d))
    y = rng.normal(0.3, np.sqrt(v + rng.choice([0.0, 0.02, 0.2], d)))
    mask = rng.random((k, d)) < 0.8
    mask[: p + 2] = True  # every column keeps enough studies to fit
    X = None
    if p > 1:
        X = np.column_stack([np.ones(k), rng.normal(size=(k, p - 1))])
    return y, v, mask, X


@pytest.mark.parametrize("test", ["z", "knha", "adhoc"])
@pytest.mark.parametrize("method", METHODS)
def test_masked_batch_equals_each_subset_alone(method, test):
    rng = np.random.default_rng(METHODS.index(method) * 10 + len(test))
    k, d = 12, 40
    y, v, mask, _ = _random_batch(rng, k, d)
    batch = fit.rma(y, v, method, test, mask=mask)
    for j in range(d):
        sel = mask[:, j]
        one = fit.rma(y[sel, j], v[sel, j], method, test)
        _assert_column_equals(batch, j, one, method, f"{method}/{test} column {j}")
        # masked studies get weight 0
        assert np.all(batch.weights[~sel, j] == 0)
        np.testing.assert_allclose(batch.weights[sel, j], one.weights[:, 0], **_batch_tol(method))


@pytest.mark.parametrize("method", METHODS)
def test_masked_batch_with_moderators_equals_each_subset_alone(method):
    rng = np.random.default_rng(100 + METHODS.index(method))
    k, d = 15, 25
    y, v, mask, X = _random_batch(rng, k, d, p=3)
    for test in ("z", "knha"):
        batch = fit.rma(y, v, method, test, X=X, mask=mask)
        for j in range(d):
            sel = mask[:, j]
            one = fit.rma(y[sel, j], v[sel, j], method, test, X=X[sel])
            _assert_column_equals(batch, j, one, method, f"{method}/{test} column {j}")


@pytest.mark.parametrize("method", METHODS)
def test_estimate_tau2_batched_equals_alone(method):
    rng = np.random.default_rng(7)
    y, v, mask, _ = _random_batch(rng, 20, 60)
    batch = fit.estimate_tau2(y, v, method, mask=mask)
    for j in range(60):
        one = fit.estimate_tau2(y[mask[:, j], j], v[mask[:, j], j], method)
        np.testing.assert_allclose(batch.tau2[j], one.tau2[0], **_batch_tol(method))
        assert batch.converged[j] == one.converged[0]


def test_q_profile_ci_batched_equals_alone():
    rng = np.random.default_rng(12)
    y, v, mask, _ = _random_batch(rng, 10, 30)
    lb, ub = fit.q_profile_ci(y, v, mask=mask)
    for j in range(30):
        l1, u1 = fit.q_profile_ci(y[mask[:, j], j], v[mask[:, j], j])
        np.testing.assert_allclose([lb[j], ub[j]], [l1[0], u1[0]], rtol=RTOL_BATCH_ITER,
                                   atol=ATOL_BATCH_ITER)


# ----------------------------------------------------------------------------
# the batch reproduces metafor: all rma reference cases of one method and
# test, of different k, padded into one (k_max, d) batch with a mask

RMA_KEYS = ("estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "tau2", "I2", "H2", "Q", "Q_p",
            "s2w")
GROUPS = sorted({(c["args"]["method"], c["args"]["test"]) for c in REF["rma"]})


@pytest.mark.parametrize("method,test", GROUPS, ids=[f"{m}-{t}" for m, t in GROUPS])
def test_padded_batch_matches_metafor(method, test):
    cases = [c for c in REF["rma"] if (c["args"]["method"], c["args"]["test"]) == (method, test)]
    kmax = max(len(c["input"]["yi"]) for c in cases)
    d = len(cases)
    y = np.full((kmax, d), np.nan)
    v = np.full((kmax, d), np.nan)
    for j, c in enumerate(cases):
        k = len(c["input"]["yi"])
        # place the studies at the bottom so that masked rows come first
        y[kmax - k:, j] = c["input"]["yi"]
        v[kmax - k:, j] = c["input"]["vi"]
    batch = fit.rma(y, v, method, test)  # NaN rows are masked out
    for j, c in enumerate(cases):
        out = c["output"]
        got = dict(estimate=batch.beta[0, j], se=batch.se[0, j], stat=batch.stat[0, j],
                   pval=batch.pval[0, j], ci_lb=batch.ci_lb[0, j], ci_ub=batch.ci_ub[0, j],
                   tau2=batch.tau2[j], I2=batch.I2[j], H2=batch.H2[j], Q=batch.Q[j],
                   Q_p=batch.Q_p[j], s2w=batch.s2w[j])
        for key in RMA_KEYS:
            if method in ITERATIVE:
                tol = dict(rtol=RTOL_ITER, atol=ATOL_I2_ITER if key == "I2" else ATOL_ITER)
            else:
                tol = dict(rtol=RTOL_CLOSED, atol=ATOL_CLOSED)
            exp = np.nan if out[key] is None else out[key]
            np.testing.assert_allclose(got[key], exp, err_msg=f"{c['id']}: {key}", **tol)
        k = len(c["input"]["yi"])
        np.testing.assert_allclose(batch.weights[kmax - k:, j], out["weights"],
                                   rtol=RTOL_ITER if method in ITERATIVE else RTOL_CLOSED)
        assert batch.k[j] == out["k"]
        # and the column equals the same case fitted alone
        one = fit.rma(c["input"]["yi"], c["input"]["vi"], method, test)
        _assert_column_equals(batch, j, one, method, c["id"])


# ----------------------------------------------------------------------------
# REML where metafor's default Fisher scoring fails

NONCONV = REF_DIAG["reml_nonconvergence"]


def _fisher_scoring(y, v, tau2, maxiter=100, threshold=1e-5):
    """metafor's default REML iteration (stepadj = 1), for one dataset."""
    for _ in range(maxiter):
        w = 1 / (v + tau2)
        sw = w.sum()
        r = y - (w * y).sum() / sw
        trP = sw - (w**2).sum() / sw
        trPP = (w**2).sum() - 2 * (w**3).sum() / sw + ((w**2).sum() / sw) ** 2
        step = ((w * r) ** 2).sum() - trP
        step /= trPP
        new = tau2 + step
        while new < 0:
            step /= 2
            new = tau2 + step
        if abs(new - tau2) < threshold:
            return new, True
        tau2 = new
    return tau2, False


@pytest.mark.parametrize("case", NONCONV, ids=[c["id"] for c in NONCONV])
def test_reml_converges_where_fisher_scoring_oscillates(case):
    y = np.array(case["input"]["yi"])
    v = np.array(case["input"]["vi"])
    out = case["output"]
    assert "did not converge" in out["default_error"]
    # the plain iteration really fails on these data (from metafor's HE start)
    he = fit.estimate_tau2(y, v, "HE").tau2[0]
    assert not _fisher_scoring(y, v, he)[1]
    r = fit.rma(y, v, "REML")
    assert r.converged[0]
    np.testing.assert_allclose(r.tau2[0], out["tau2"], rtol=RTOL_ITER, atol=ATOL_ITER)
    np.testing.assert_allclose(r.beta[0, 0], out["estimate"], rtol=RTOL_ITER, atol=ATOL_ITER)
    np.testing.assert_allclose(r.se[0, 0], out["se"], rtol=RTOL_ITER, atol=ATOL_ITER)


def test_reml_nonconvergence_cases_batched():
    Y = np.column_stack([c["input"]["yi"] for c in NONCONV])
    V = np.column_stack([c["input"]["vi"] for c in NONCONV])
    batch = fit.estimate_tau2(Y, V, "REML")
    assert batch.converged.all()
    np.testing.assert_allclose(batch.tau2, [c["output"]["tau2"] for c in NONCONV],
                               rtol=RTOL_ITER, atol=ATOL_ITER)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_every_simulated_dataset_converges_to_the_score_root(method):
    # 5,000 datasets of k = 20, a design where ~2% make Fisher scoring
    # oscillate. At the answer the score is 0 (or negative at tau2 = 0) and
    # the likelihood is not lower than at nearby points.
    rng = np.random.default_rng(20261124)
    k, d = 20, 5000
    v = rng.uniform(0.01, 0.5, (k, d))
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    r = fit.estimate_tau2(y, v, method)
    assert r.converged.all()
    m = np.ones((k, d), bool)
    X = np.ones((k, 1))
    ll, score, obs, _ = fit._ml_derivs(r.tau2, y, v, m, X, method == "REML", True)
    interior = r.tau2 > 0
    # |score| relative to its scale (obs info * tau2) is at rounding level
    assert np.all(np.abs(score[interior]) <= 1e-9 * np.maximum(1, obs[interior] * r.tau2[interior]))
    assert np.all(score[~interior] <= 1e-12)
    for h in (1e-6, -1e-6):
        t = np.maximum(r.tau2 + h, 0)
        ll_h = fit._ml_derivs(t, y, v, m, X, method == "REML", True)[0]
        assert np.all(ll_h <= ll + 1e-12 * np.abs(ll))
    # Newton's last step is far below the 1e-10 target
    assert np.all(r.iterations < 50)


# ----------------------------------------------------------------------------
# REML with a local maximum at tau2 = 0 and a higher one inside

BIMODAL = REF_DIAG["reml_bimodal"]


@pytest.mark.parametrize("case", BIMODAL, ids=[c["id"] for c in BIMODAL])
def test_reml_finds_the_higher_interior_maximum(case):
    out = case["output"]
    assert out["score_at_0"] < 0 < out["tau2"]  # 0 is a local maximum too
    r = fit.rma(case["input"]["yi"], case["input"]["vi"], "REML")
    assert r.converged[0]
    np.testing.assert_allclose(r.tau2[0], out["tau2"], rtol=RTOL_ITER, atol=ATOL_ITER)
    np.testing.assert_allclose(r.beta[0, 0], out["estimate"], rtol=RTOL_ITER, atol=ATOL_ITER)


def test_reml_bimodal_cases_batched_with_others():
    Y = np.column_stack([c["input"]["yi"] for c in BIMODAL + NONCONV])
    V = np.column_stack([c["input"]["vi"] for c in BIMODAL + NONCONV])
    batch = fit.estimate_tau2(Y, V, "REML")
    np.testing.assert_allclose(batch.tau2, [c["output"]["tau2"] for c in BIMODAL + NONCONV],
                               rtol=RTOL_ITER, atol=ATOL_ITER)
