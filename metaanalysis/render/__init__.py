"""Rendering: the only place that rounds numbers, formats text or draws.

Layer rule: imports :mod:`metaanalysis.stats`, :mod:`metaanalysis.studies` and
:mod:`metaanalysis.analysis` (result objects and vocabularies), never the top
(:mod:`metaanalysis.runner`, :mod:`metaanalysis.write`, :mod:`metaanalysis.cli`).
``tests/test_layers.py`` enforces the rule.

Input contract: figures, tables (:mod:`~metaanalysis.render.tables`), the
reports and the Summary of Findings take the run's result objects (a
:class:`~metaanalysis.analysis.pipeline.RunResult` and its parts), never the
results.json dict; numbers are formatted only by :mod:`~metaanalysis.render.fmt`.
"""
