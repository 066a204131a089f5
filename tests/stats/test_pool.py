"""The array-to-result layer (:mod:`metaanalysis.stats.pool`): checked
``yi``/``vi`` arrays in, frozen result objects out, no pandas.

Edge cases the layer must handle with a clear result or warning, never a
hang; the numbers themselves are checked against metafor in
``test_core_vs_metafor.py`` (through the pandas front end, which calls this
layer).
"""

import math

import numpy as np
import pytest

from metaanalysis.errors import InputError
from metaanalysis.stats import fit
from metaanalysis.stats.pool import (
    check_options, fit_one, pool_effects, regress_effects, subgroup_difference,
)
from tests.tolerances import ATOL_CLOSED, RTOL_CLOSED

METHODS = ["FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML"]


@pytest.mark.parametrize("method", METHODS)
def test_k1(method):
    res = fit_one([0.4], [0.04], ["a"], method=method)
    assert res.k == 1
    assert res.estimate == pytest.approx(0.4)
    assert res.se == pytest.approx(0.2)
    assert res.tau2 == 0
    assert res.Q is None and res.I2 is None
    assert any("k = 1" in w for w in res.warnings)


@pytest.mark.parametrize("method", METHODS)
def test_k2_knha(method):
    res = fit_one([0.1, 0.9], [0.04, 0.05], ["a", "b"], method=method,
                  test="z" if method == "FE" else "knha")
    assert res.k == 2
    assert np.isfinite(res.estimate) and np.isfinite(res.ci_lb)
    if method != "FE":
        assert res.df == 1


def test_no_usable_study_is_an_input_error():
    with pytest.raises(InputError, match="no studies with a usable effect size"):
        fit_one([math.nan], [math.nan], ["a"])


def test_regress_rejects_too_few_studies():
    X = np.column_stack([np.ones(2), [1.0, 2.0]])
    with pytest.raises(InputError, match="needs more than 2 studies"):
        regress_effects([0.1, 0.2], [0.1, 0.1], X, ("intrcpt", "x"), method="REML")


def test_mh_and_peto_run_with_zero_cells():
    arms = {"ai": np.array([0.0, 4, 2]), "n1i": np.array([20.0, 30, 25]),
            "ci": np.array([3.0, 8, 6]), "n2i": np.array([20.0, 30, 25])}
    yi = np.zeros(3)
    vi = np.ones(3)  # MH and Peto pool the counts, not yi/vi
    for measure in ("RR", "OR", "RD"):
        r = fit_one(yi, vi, list("abc"), measure=measure, method="MH", arms=arms)
        assert np.isfinite(r.estimate)
        assert sum(s.weight for s in r.studies) == pytest.approx(100)
    r = fit_one(yi, vi, list("abc"), measure="OR", method="PETO", arms=arms)
    assert np.isfinite(r.estimate)


def test_subgroup_difference_by_hand():
    # Q_between = sum w_j (b_j - b_bar)^2, w_j = 1/se_j^2
    b, s = np.array([0.2, 0.8]), np.array([0.1, 0.2])
    w = 1 / s**2
    mu = (w * b).sum() / w.sum()
    Q, df, p = subgroup_difference(b, s)
    assert Q == pytest.approx(float((w * (b - mu) ** 2).sum()), rel=RTOL_CLOSED, abs=ATOL_CLOSED)
    assert df == 1
    assert p == pytest.approx(math.erfc(math.sqrt(Q / 2)), rel=RTOL_CLOSED)
    # an undefined subgroup is left out; one subgroup left has no test
    assert subgroup_difference([0.2, None], [0.1, None]) == (None, 0, None)


def test_separate_subgroups_equal_fits_alone():
    yi = np.array([0.1, 0.5, 0.9, -0.2, 0.3])
    vi = np.array([0.02, 0.03, 0.04, 0.02, 0.05])
    groups = ["A", "B", "A", "B", "A"]
    res = pool_effects(yi, vi, list("abcde"), measure="GEN", method="DL", by="g", groups=groups)
    assert [lvl for lvl, _ in res.subgroups] == ["A", "B"]
    alone = fit_one(yi[[0, 2, 4]], vi[[0, 2, 4]], ["a", "c", "e"], method="DL")
    assert res.subgroups[0][1].estimate == pytest.approx(alone.estimate, rel=RTOL_CLOSED)
    assert res.Q_between_df == 1


def test_common_tau2_shares_one_tau2():
    yi = np.array([0.1, 0.5, 0.9, -0.2, 0.3, 0.4])
    vi = np.array([0.02, 0.03, 0.04, 0.02, 0.05, 0.03])
    groups = ["A", "B", "A", "B", "A", "B"]
    res = pool_effects(yi, vi, list("abcdef"), measure="GEN", method="REML", by="g",
                       groups=groups, subgroup_tau2="common")
    X = np.column_stack([np.ones(6), [g == "B" for g in groups]]).astype(float)
    full = fit.rma(yi, vi, "REML", X=X)
    assert res.subgroups[0][1].tau2 == res.subgroups[1][1].tau2 == pytest.approx(full.tau2[0])
    assert res.Q_between == pytest.approx(float(full.QM[0]))
    with pytest.raises(InputError, match="inverse-variance"):
        pool_effects(yi, vi, list("abcdef"), measure="OR", method="MH", by="g", groups=groups,
                     subgroup_tau2="common",
                     arms={c: np.full(6, 10.0) for c in ("ai", "n1i", "ci", "n2i")})


@pytest.mark.parametrize("args, message", [
    (("XX", "REML", "z", 0.05, "metafor"), "unknown measure"),
    (("MD", "XX", "z", 0.05, "metafor"), "unknown method"),
    (("MD", "MH", "z", 0.05, "metafor"), "MH needs a binary measure"),
    (("RR", "PETO", "z", 0.05, "metafor"), "PETO needs measure OR"),
    (("MD", "REML", "t", 0.05, "metafor"), "unknown test"),
    (("MD", "REML", "z", 1.5, "metafor"), "alpha must be between 0 and 1"),
    (("MD", "REML", "z", 0.05, "k-3"), "pi_df must be one of"),
    (("MD", "FE", "knha", 0.05, "metafor"), "is for random-effects models"),
])
def test_check_options_names_the_bad_option(args, message):
    with pytest.raises(InputError, match=message):
        check_options(*args)


def test_check_options_upper_cases():
    assert check_options("smd", "reml", "z", 0.05, "metafor") == ("SMD", "REML")
