"""Named tolerances for comparisons with metafor, each with its reason.

Reference values are pinned in tests/data/metafor_reference.json, produced by
tests/reference/run_metafor.R with converged settings
(threshold=1e-12, tol=1e-12, maxiter=10000; confint tol=1e-12, tau2.max=1e7).
"""

#: Closed forms (escalc, FE, DL, HE, SJ, MH, Peto, Q, I2 from closed-form tau2):
#: the same arithmetic in a different order; double rounding stays ~1e-14, so
#: 1e-10 relative leaves room for ill-conditioned sums without hiding a bug.
RTOL_CLOSED = 1e-10
ATOL_CLOSED = 1e-12

#: Iterative tau2 (ML, REML, PM, EB) and everything computed from it. Both
#: sides stop when a step changes tau2 by < 1e-12; the root is then known to
#: about 1e-10 relative in the worst conditioned data sets (slow linear
#: convergence of Fisher scoring near a flat likelihood).
RTOL_ITER = 1e-8
ATOL_ITER = 1e-10

#: Q-profile bounds: uniroot(tol=1e-12) in R against our bracketed Newton; the
#: bound is located to ~1e-12 absolute, relative error up to ~1e-9 for bounds
#: near zero.
RTOL_QPROFILE = 1e-8
ATOL_QPROFILE = 1e-9
