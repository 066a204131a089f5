"""Rendering: the only place that rounds numbers, formats text or draws.

Layer rule: imports :mod:`metaanalysis.stats`, :mod:`metaanalysis.studies` and
:mod:`metaanalysis.analysis` (result objects and vocabularies), never the top
(:mod:`metaanalysis.runner`, :mod:`metaanalysis.write`, :mod:`metaanalysis.cli`).
``tests/test_layers.py`` enforces the rule.
"""
