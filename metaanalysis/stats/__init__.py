"""The statistical core: the measure codes (``measures``), effect sizes (``effects``),
fitting (``fit``, ``binary``), distributions, diagnostics, small-study tests (``bias``),
evidence synthesis without meta-analysis (``swim``), the result types (``results``) and
the layer that turns checked yi/vi arrays into them (``pool``: single fits, subgroups,
meta-regression; :mod:`metaanalysis.api` is its pandas front end).

Layer rule: imports numpy, scipy and pymare only (and :mod:`metaanalysis.errors`).
Every function takes ``(k,)`` or ``(k, d)`` arrays and knows nothing of study files,
protocols or formatting; ``tests/test_layers.py`` enforces the rule.
"""
