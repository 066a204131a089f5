"""The pre-specified analysis: protocols, selection of comparisons, the pipeline that fits
them, GRADE/ICEMAN and the claims that judge (and only judge) the results.

Layer rule: imports :mod:`metaanalysis.stats` and :mod:`metaanalysis.studies` (and
:mod:`metaanalysis.errors`); never :mod:`metaanalysis.render`, which formats what this
layer decides. ``tests/test_layers.py`` enforces the rule.
"""
