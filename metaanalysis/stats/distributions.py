"""The few distribution functions the numerics need, straight from
scipy.special.

``scipy.stats`` costs about 0.5 s to import, a sixth of a whole `meta run`;
these are the same special functions scipy.stats' norm, t, chi2 and f call
underneath, so the values are identical. Each object mirrors the scipy.stats
method names used here (sf, isf, cdf, ppf, ...).
"""

from __future__ import annotations

import numpy as np
from scipy import special as sc


class _Norm:
    @staticmethod
    def cdf(x):
        return sc.ndtr(x)

    @staticmethod
    def sf(x):
        return sc.ndtr(-np.asarray(x, dtype=float))

    @staticmethod
    def ppf(q):
        return sc.ndtri(q)

    @staticmethod
    def isf(q):
        return -sc.ndtri(q)

    @staticmethod
    def logcdf(x):
        return sc.log_ndtr(x)

    @staticmethod
    def logsf(x):
        return sc.log_ndtr(-np.asarray(x, dtype=float))

    @staticmethod
    def logpdf(x):
        x = np.asarray(x, dtype=float)
        return -x**2 / 2.0 - 0.5 * np.log(2 * np.pi)


class _T:
    @staticmethod
    def cdf(x, df):
        return sc.stdtr(df, x)

    @staticmethod
    def sf(x, df):
        return sc.stdtr(df, -np.asarray(x, dtype=float))

    @staticmethod
    def ppf(q, df):
        return sc.stdtrit(df, q)

    @staticmethod
    def isf(q, df):
        return -sc.stdtrit(df, q)


class _Chi2:
    @staticmethod
    def cdf(x, df):
        return sc.chdtr(df, x)

    @staticmethod
    def sf(x, df):
        return sc.chdtrc(df, x)

    @staticmethod
    def ppf(q, df):
        return 2.0 * sc.gammaincinv(np.asarray(df, dtype=float) / 2.0, q)

    @staticmethod
    def isf(q, df):
        return sc.chdtri(df, q)


class _F:
    @staticmethod
    def sf(x, dfn, dfd):
        return sc.fdtrc(dfn, dfd, x)


norm = _Norm()
t = _T()
chi2 = _Chi2()
f = _F()
