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

#: Batched fits against the same fit run alone (tests/stats/test_batched.py). Same
#: code path; a masked-out study adds 0.0 to every sum, but numpy's pairwise
#: summation groups terms differently for different k and d, so closed forms
#: differ by rounding only (~1e-15 relative).
RTOL_BATCH = 1e-12
ATOL_BATCH = 1e-14

#: Batched against alone for iterative tau2 (ML, REML, PM, EB). Each dataset
#: stops on its own when a step is < TOL * max(1, tau2) = 1e-12; Newton's last
#: step near the root is ~1e-16, PM's bracketed Newton likewise, so the two
#: runs may differ by one final step: well under 1e-10 relative.
RTOL_BATCH_ITER = 1e-10
ATOL_BATCH_ITER = 1e-13

#: Diagnostics (leave1out, influence, cumul, gosh, permutest, trimfill,
#: regtest) under an iterative estimator against metafor. metafor stops
#: Fisher scoring at an absolute step of 1e-12; its linear convergence leaves
#: an error of up to ~1e-11 relative in tau2 in the worst reference case
#: (influence, bcg ~ablat, REML), and ratios such as DFBETAS of small
#: coefficients amplify it ~10x. 1e-8 (RTOL_ITER) covers this with margin;
#: closed-form estimators use RTOL_CLOSED.

#: Permutation p-values are counts / n: compared exactly (same permutations,
#: same comptol rule), so no tolerance is defined for them.

#: I2 (in percent) under an iterative estimator where tau2 is at the boundary:
#: metafor approaches tau2 = 0 by step halving and stops at tau2 ~ 1e-13..1e-12
#: instead of 0, and I2 = 100 tau2 / (vt + tau2) magnifies that by 100/vt
#: (vt ~ 3e-4 for bcg trials 1-7): up to 5e-10 percent observed.
ATOL_I2_ITER = 1e-8

#: Ill-conditioned moderator designs (bcg ~ ablat + year: cond(X'WX) ~ 3e11).
#: metafor and this engine both solve the normal equations, so rounding is
#: amplified by the condition number; 2e-10 relative observed even for the
#: closed-form DL. Used only for cases with such a design.
RTOL_ILLCOND = 1e-8
