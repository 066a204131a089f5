"""PyMARE as an independent cross-check (it is on the design card).

PEERS.md: PyMARE's batched DL/ML/REML tau2 agree with converged metafor to
~1.6e-8 (its own stopping rule), and its Wald inference needs
small_sample_correction="wald" to match metafor. We only compare tau2 and the pooled estimate,
which is where PyMARE is right; its I2 (from Q whatever the estimator) and
its missing PM/SJ are not used.
"""

import numpy as np
import pytest

from metaanalysis.stats import fit



#: PyMARE stops REML/ML iterations at ~1e-8 relative (PEERS.md: 1.6e-8 vs metafor)
RTOL_PYMARE = 1e-6


@pytest.mark.parametrize("method,cls", [("DL", "DerSimonianLaird"), ("ML", "VarianceBasedLikelihoodEstimator"),
                                        ("REML", "VarianceBasedLikelihoodEstimator")])
def test_tau2_matches_pymare_batched(method, cls):
    from pymare import estimators

    rng = np.random.default_rng(7)
    k, d = 20, 50
    v = rng.uniform(0.01, 0.2, (k, d))
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    ours = fit.rma(y, v, method)
    if cls == "DerSimonianLaird":
        est = estimators.DerSimonianLaird()
    else:
        est = estimators.VarianceBasedLikelihoodEstimator(method=method)
    est.fit(y=y, v=v, X=np.ones((k, 1)))
    theirs_tau2 = np.asarray(est.params_["tau2"]).ravel()
    theirs_beta = np.asarray(est.params_["fe_params"])[0].ravel()
    assert np.allclose(ours.tau2, theirs_tau2, rtol=RTOL_PYMARE, atol=1e-9)
    assert np.allclose(ours.beta[0], theirs_beta, rtol=RTOL_PYMARE, atol=1e-9)
