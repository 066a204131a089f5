"""The statistical core: effect sizes, fitting, binary models, distributions, diagnostics,
small-study tests, evidence synthesis without meta-analysis, and the result types.

Layer rule: imports numpy, scipy and pymare only (and :mod:`metaanalysis.errors`).
Every function takes ``(k,)`` or ``(k, d)`` arrays and knows nothing of study files,
protocols or formatting; ``tests/test_layers.py`` enforces the rule.
"""
