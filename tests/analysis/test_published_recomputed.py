"""Published comparisons whose pooled value was recomputed, not quoted (issue 10, item 5).

A ``published`` entry with ``recomputed_from`` carries a pooled estimate that
no stored source prints: it is what ``meta revman reproduce`` gives on the
review's own data table. These tests rerun that recomputation on the shared
RevMan export (skipped when ../shared/cochrane is absent, as in
tests/analysis/test_revman.py) and check every number the protocol carries; and they
check that the protocol model keeps such values apart from quoted ones.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from metaanalysis.analysis import revman
from metaanalysis.studies.load import read_yaml_with_lines
from metaanalysis.analysis.protocol import RECOMPUTED_FIELDS, Protocol, load_protocol

REPO = Path(__file__).resolve().parents[2]
PROTOCOLS = REPO / "protocols"

#: The protocol prints recomputed values as RevMan does: ratios to 2 decimals.
PRINTED_2DP = dict(abs=5e-3)


def _recomputed_entries():
    out = []
    for path in sorted(PROTOCOLS.glob("*.yaml")):
        proto, problems = load_protocol(path)
        assert not problems, problems
        out += [(path.name, p) for p in proto.published if p.recomputed_from is not None]
    return out


def _cochrane_dir() -> Path:
    env = os.environ.get("META_COCHRANE_DIR")
    d = Path(env) if env else REPO / ".." / "shared" / "cochrane"
    if d.is_dir():
        return d
    if os.environ.get("META_REQUIRE_ALL") == "1":
        pytest.fail(f"the Cochrane exports are missing at {d} but META_REQUIRE_ALL=1")
    pytest.skip(f"the shared Cochrane exports are not at {d} (set META_COCHRANE_DIR)")


def test_the_prevention_protocol_has_a_recomputed_value():
    entries = _recomputed_entries()
    assert [(name, p.id) for name, p in entries] == [("prevention-eczema.yaml", "CD006475-1.2")]


@pytest.mark.parametrize("name, pub", _recomputed_entries(), ids=lambda x: getattr(x, "id", x))
def test_recomputed_values_match_a_rerun_of_revman(name, pub):
    rec = pub.recomputed_from
    export = _cochrane_dir() / f"{rec.review}.csv"
    assert export.is_file(), f"{name}: {export} not found"
    review = revman.reproduce(export)
    group, number = (int(x) for x in rec.analysis.split("."))
    an = next(a for a in review.to_dict()["analyses"]
              if a["group"] == group and a["number"] == number)
    # the review's printed per-study rows are reproduced: the recomputed total is its model's
    assert an["reproduced"] is True
    assert an["measure"] == pub.measure
    assert an["model"] == "MH, random" and rec.method.startswith("RevMan M-H random effects")
    overall = an["pooled"]["overall"]
    assert overall["k"] == pub.k == len(an["studies"])
    assert pub.estimate == pytest.approx(overall["estimate"], **PRINTED_2DP)
    assert pub.ci_lb == pytest.approx(overall["ci_lb"], **PRINTED_2DP)
    assert pub.ci_ub == pytest.approx(overall["ci_ub"], **PRINTED_2DP)
    # the listed trials are the analysis's rows
    assert sorted(pub.trials) == sorted(s["study"] for s in an["studies"])


@pytest.fixture(scope="module")
def prevention() -> dict:
    doc, problems = read_yaml_with_lines(PROTOCOLS / "prevention-eczema.yaml")
    assert not problems
    return doc.data


def _entry(data):
    return next(p for p in data["published"] if p.get("recomputed_from"))


def test_a_number_not_in_the_quote_needs_recomputed_from(prevention):
    data = copy.deepcopy(prevention)
    del _entry(data)["recomputed_from"]
    with pytest.raises(ValueError, match="does not appear in its quote"):
        Protocol.model_validate(data)


def test_recomputed_from_frees_only_the_pooled_numbers(prevention):
    data = copy.deepcopy(prevention)
    _entry(data)["n"] = 4321        # a participant count is never recomputed: still quoted
    with pytest.raises(ValueError, match="n 4321 does not appear"):
        Protocol.model_validate(data)
    assert set(RECOMPUTED_FIELDS) == {"estimate", "ci_lb", "ci_ub", "k"}


def test_report_labels_a_recomputed_value(prevention):
    from metaanalysis.render.report import _published_view
    from metaanalysis.render.report import Scale
    from types import SimpleNamespace as NS  # render takes the run's objects (issue 16)
    run = NS(protocol=Protocol.model_validate(prevention), main=NS(result=None), comparisons=())
    view = _published_view(run, Scale("RR"))
    (p,) = [v for v in view if v["id"] == "CD006475-1.2"]
    assert p["label"] == "Recomputed from the review's data table, not quoted"
    assert p["theirs"] == "0.87 [0.78, 0.97]"
    assert any("recomputed from the review's own data table (CD006475.pub3, analysis 1.2)" in d
               for d in p["differences"])
