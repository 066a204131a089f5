"""meta: a meta-analysis engine for probiotics in atopic dermatitis.

The public Python API::

    from metaanalysis import pool
    res = pool(df, measure="MD", method="REML", test="z")
    res.to_dict()
"""

__all__ = ["pool", "regress"]
__version__ = "0.1.0"


def __getattr__(name):
    # Imported lazily: `meta validate` and `meta --help` should not pay for
    # pandas and scipy.
    if name in ("pool", "regress"):
        from metaanalysis import api

        return getattr(api, name)
    raise AttributeError(name)
