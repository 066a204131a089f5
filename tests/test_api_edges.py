"""Edge cases the core must handle with a clear result or warning, never a hang."""

import numpy as np
import pandas as pd
import pytest

from metaanalysis.stats import fit
from metaanalysis import pool, regress
from metaanalysis.errors import InputError

METHODS = ["FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"]


@pytest.mark.parametrize("method", METHODS)
def test_k1(method):
    res = pool(pd.DataFrame({"yi": [0.4], "vi": [0.04]}), "GEN", method)
    assert res.k == 1
    assert res.estimate == pytest.approx(0.4)
    assert res.se == pytest.approx(0.2)
    assert res.tau2 == 0
    assert res.Q is None and res.I2 is None
    assert any("k = 1" in w for w in res.warnings)


@pytest.mark.parametrize("method", METHODS)
def test_k2_knha(method):
    res = pool(pd.DataFrame({"yi": [0.1, 0.9], "vi": [0.04, 0.05]}), "GEN", method,
               "z" if method == "FE" else "knha")
    assert res.k == 2
    assert np.isfinite(res.estimate) and np.isfinite(res.ci_lb)
    if method != "FE":
        assert res.df == 1


def test_zero_variance_is_an_input_error():
    with pytest.raises(InputError, match="row 2.*'vi'.*> 0"):
        pool(pd.DataFrame({"yi": [0.1, 0.2], "vi": [0.1, 0.0]}), "GEN", "REML")


def test_non_convergence_is_reported_not_hidden():
    y = np.array([0.1, 0.5, 0.9, -0.3, 1.4])
    v = np.array([0.01, 0.02, 0.03, 0.05, 0.02])
    r = fit.rma(y, v, "REML", maxiter=1)
    assert not r.converged[0]


def test_regress_rejects_too_few_studies():
    df = pd.DataFrame({"yi": [0.1, 0.2], "vi": [0.1, 0.1], "x": [1.0, 2.0]})
    with pytest.raises(InputError, match="needs more than 2 studies"):
        regress(df, ["x"], "GEN")


def test_binary_double_zero_kept_by_default():
    df = pd.DataFrame({"ai": [0, 4, 2], "n1i": [20, 30, 25], "ci": [0, 8, 6], "n2i": [20, 30, 25]})
    res = pool(df, "RR", "DL")
    assert res.k == 3
    assert res.studies[0].yi == pytest.approx(0.0)  # 0.5/20.5 vs 0.5/20.5 after correction
    assert "double-zero studies kept" in res.conventions["zero_cells"]


def test_mh_and_peto_run_with_zero_cells():
    df = pd.DataFrame({"ai": [0, 4, 2], "n1i": [20, 30, 25], "ci": [3, 8, 6], "n2i": [20, 30, 25]})
    for measure in ("RR", "OR", "RD"):
        r = pool(df, measure, "MH")
        assert np.isfinite(r.estimate)
        assert sum(s.weight for s in r.studies) == pytest.approx(100)
    r = pool(df, "OR", "PETO")
    assert np.isfinite(r.estimate)


def test_to_dict_has_exponentiated_values_for_ratios():
    df = pd.DataFrame({"ai": [3, 4, 2], "n1i": [20, 30, 25], "ci": [5, 8, 6], "n2i": [20, 30, 25]})
    d = pool(df, "RR", "REML").to_dict()
    assert d["estimate_exp"] == pytest.approx(np.exp(d["estimate"]))
    assert d["ci_lb_exp"] == pytest.approx(np.exp(d["ci_lb"]))
