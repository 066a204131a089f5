"""Result objects are read-only all the way down.

``frozen=True`` only stops rebinding a field; every numpy array a stats
result holds is also a read-only copy owned by the result
(:class:`metaanalysis.stats.results.ReadOnlyArrays`), so writing into it
raises, and the caller's input arrays stay writeable.
"""

from dataclasses import fields

import numpy as np
import pytest

from metaanalysis.stats import bias, binary, diagnostics, fit
from metaanalysis.stats.pool import fit_one, pool_effects
from metaanalysis.stats.results import ReadOnlyArrays

YI = np.array([0.1, 0.5, 0.9, -0.3, 1.4, 0.2])
VI = np.array([0.01, 0.02, 0.03, 0.05, 0.02, 0.04])
A = np.array([3.0, 4, 2, 5, 1, 6])
N1 = np.array([20.0, 30, 25, 40, 15, 35])
C = np.array([5.0, 8, 6, 9, 4, 7])
N2 = np.array([20.0, 30, 25, 40, 15, 35])


def _results():
    X = np.column_stack([np.ones(6), np.arange(6.0)])
    return {
        "BatchFit": fit.rma(YI, VI, "REML"),
        "BatchFit (knha, X)": fit.rma(YI, VI, "REML", "knha", X=X),
        "Tau2Result": fit.estimate_tau2(YI, VI, "REML"),
        "CommonBinaryFit (MH)": binary.mantel_haenszel(A, N1 - A, C, N2 - C, "OR"),
        "CommonBinaryFit (Peto)": binary.peto(A, N1 - A, C, N2 - C),
        "SequentialFits (leave1out)": diagnostics.leave_one_out(YI, VI),
        "SequentialFits (cumul)": diagnostics.cumulative(YI, VI),
        "Influence": diagnostics.influence(YI, VI),
        "Gosh": diagnostics.gosh(YI, VI, "DL"),
        "PermutationTest": diagnostics.permutation_test(YI, VI, X=X[:, 1], method="DL",
                                                        n_perm=20, seed=1),
        "RegTest": bias.regtest(YI, VI),
        "TrimFill": bias.trimfill(YI, VI),
        "FunnelContours": bias.funnel_contours(np.sqrt(VI)),
    }


def _arrays(obj, name=""):
    """(path, array) of every array held by ``obj``, also inside tuples and nested results."""
    if isinstance(obj, np.ndarray):
        yield name, obj
    elif isinstance(obj, tuple):
        for i, v in enumerate(obj):
            yield from _arrays(v, f"{name}[{i}]")
    elif isinstance(obj, ReadOnlyArrays):
        for f in fields(obj):
            yield from _arrays(getattr(obj, f.name), f"{name}.{f.name}")


@pytest.mark.parametrize("name, res", list(_results().items()), ids=list(_results()))
def test_every_result_array_is_read_only(name, res):
    arrays = list(_arrays(res))
    assert arrays, f"{name} holds no array: the test would check nothing"
    for path, arr in arrays:
        assert not arr.flags.writeable, path
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 0


def test_writing_a_fit_raises_and_the_result_is_unchanged():
    res = fit.rma(YI, VI, "REML")
    before = res.tau2.copy()
    with pytest.raises(ValueError):
        res.tau2[0] = 0.0
    with pytest.raises(ValueError):
        res.beta += 1
    np.testing.assert_array_equal(res.tau2, before)


def test_the_callers_arrays_stay_writeable_and_unshared():
    yi, vi = YI.copy(), VI.copy()
    se = np.sqrt(vi)
    contours = bias.funnel_contours(se)
    assert se.flags.writeable and yi.flags.writeable
    se[0] = 99.0  # the result holds its own copy
    assert contours.se[0] != 99.0
    tf = bias.trimfill(yi, vi)
    yi[:] = 0.0
    assert not np.all(tf.yi_all[:len(yi)] == 0.0)


def test_pool_results_hold_no_writeable_array():
    res = pool_effects(YI, VI, list("abcdef"), measure="GEN", by="g", groups=list("AABBAB"))
    one = fit_one(YI, VI, list("abcdef"))
    for obj in (res, one, *one.studies):
        assert all(not a.flags.writeable for _, a in _arrays(obj))
