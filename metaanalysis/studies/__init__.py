"""Study files in: the schema, YAML reading with lines, validation, provenance checks,
conversions of reported statistics, extraction of effect sizes and the strain registry.

Layer rule: imports :mod:`metaanalysis.stats` at most (and :mod:`metaanalysis.errors`);
never the analysis or render layers. ``tests/test_layers.py`` enforces the rule.
"""
