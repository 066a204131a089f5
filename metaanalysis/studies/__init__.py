"""Study files in: the schema (``schema``), YAML reading with lines (``yamlio``),
loading and validation (``load``, ``validate``), provenance checks, conversions of
reported statistics, extraction of effect sizes and the strain registry (``strains``).

Layer rule: imports :mod:`metaanalysis.stats` at most (and :mod:`metaanalysis.errors`);
never the analysis or render layers. ``tests/test_layers.py`` enforces the rule.
"""
