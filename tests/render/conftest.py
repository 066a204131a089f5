"""Fixtures of the render tests: the bundled runs as result objects.

``render/`` takes result objects (a RunResult and its parts), never the
results.json dict; these are the runs the shared bundled ``meta run``
(tests/conftest.py ``bundled_run``) wrote, fitted once more from the same
session copy of the data, without drawing.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def bundled_results(bundled) -> dict:
    """protocol id -> RunResult of every bundled protocol (read only)."""
    from metaanalysis.analysis.pipeline import run_protocol
    from metaanalysis.runner import find_protocols, load_inputs

    studies, registry, protos, _ = load_inputs(find_protocols([bundled / "protocols"]),
                                               bundled / "studies")
    return {proto.id: run_protocol(proto, studies, registry) for _, proto in protos}
