"""The Examples sections of the studies modules run and print what they say."""

import doctest
import importlib
import pkgutil

import pytest

import metaanalysis.studies

MODULES = sorted(f"metaanalysis.studies.{m.name}"
                 for m in pkgutil.iter_modules(metaanalysis.studies.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                          report=True)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples in {name} fail (see above)"
