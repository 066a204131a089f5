"""Edge cases of the pandas front end (:mod:`metaanalysis.api`): a clear error or
warning, never a hang. The array layer's own edge cases are in tests/stats/test_pool.py."""

import numpy as np
import pandas as pd
import pytest

from metaanalysis.stats import fit
from metaanalysis import pool, regress
from metaanalysis.errors import InputError


def test_zero_variance_is_an_input_error():
    with pytest.raises(InputError, match="row 2.*'vi'.*> 0"):
        pool(pd.DataFrame({"yi": [0.1, 0.2], "vi": [0.1, 0.0]}), "GEN", "REML")


def test_non_convergence_is_reported_not_hidden():
    y = np.array([0.1, 0.5, 0.9, -0.3, 1.4])
    v = np.array([0.01, 0.02, 0.03, 0.05, 0.02])
    r = fit.rma(y, v, "REML", maxiter=1)
    assert not r.converged[0]


def test_binary_double_zero_kept_by_default():
    df = pd.DataFrame({"ai": [0, 4, 2], "n1i": [20, 30, 25], "ci": [0, 8, 6], "n2i": [20, 30, 25]})
    res = pool(df, "RR", "DL")
    assert res.k == 3
    assert res.studies[0].yi == pytest.approx(0.0)  # 0.5/20.5 vs 0.5/20.5 after correction
    assert "double-zero studies kept" in res.conventions["zero_cells"]


def test_to_dict_has_exponentiated_values_for_ratios():
    df = pd.DataFrame({"ai": [3, 4, 2], "n1i": [20, 30, 25], "ci": [5, 8, 6], "n2i": [20, 30, 25]})
    d = pool(df, "RR", "REML").to_dict()
    assert d["estimate_exp"] == pytest.approx(np.exp(d["estimate"]))
    assert d["ci_lb_exp"] == pytest.approx(np.exp(d["ci_lb"]))


def test_regress_rejects_mh_and_unknown_moderators():
    df = pd.DataFrame({"yi": [0.1, 0.2, 0.4], "vi": [0.1, 0.1, 0.2], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match="inverse-variance method"):
        regress(df, ["x"], "RR", "MH")
    with pytest.raises(InputError, match="missing moderator column 'z'"):
        regress(df, "z", "GEN")
