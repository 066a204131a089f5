"""The effect measures, named once for every layer.

Codes follow metafor's ``escalc(measure=...)``. This module imports nothing,
so that the study schema, the result types and ``render/`` can all read the
same definitions cheaply (``meta validate`` should not pay for numpy).
"""

from __future__ import annotations

#: Every measure the engine pools; ``GEN`` is a precomputed ``yi``/``vi`` pair.
MEASURES = ("MD", "SMD", "RR", "OR", "RD", "GEN", "ROM")
#: The measures a study file may report or be extracted to (all but ``GEN``),
#: in the order the schema lists them.
STUDY_MEASURES = tuple(m for m in MEASURES if m != "GEN")
#: Measures from arm means and SDs.
CONTINUOUS = ("MD", "SMD", "ROM")
#: Measures from arm event counts.
BINARY = ("RR", "OR", "RD")
#: Measures analysed on the log scale and shown exponentiated (no effect = 1).
RATIO_MEASURES = frozenset({"RR", "OR", "ROM"})
