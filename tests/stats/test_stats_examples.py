"""The Examples sections of the stats modules run and print what they say.

A docstring example is documentation a reader trusts; run here, it cannot
drift from the code (two had: ``hedges_j(10)`` and ``pool``'s DL estimate).
"""

import doctest
import importlib
import pkgutil

import pytest

import metaanalysis.stats

MODULES = sorted(f"metaanalysis.stats.{m.name}" for m in pkgutil.iter_modules(metaanalysis.stats.__path__))


@pytest.mark.parametrize("name", MODULES + ["metaanalysis.api"])
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                          report=True)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples in {name} fail (see above)"
