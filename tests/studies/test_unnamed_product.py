"""A product whose organisms are not named is neither single- nor multi-strain."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from metaanalysis.studies.yamlio import read_yaml_with_lines
from metaanalysis.studies.schema import Study
from metaanalysis.studies.strains import UNSPECIFIED, mixture

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base() -> dict:
    doc, problems = read_yaml_with_lines(REPO / "tests" / "data" / "studies_ok" / "Fictional2024.yaml")
    assert not problems
    return doc.data


def _intervention(base, strains, n_strains=None):
    data = copy.deepcopy(base)
    inter = data["arms"][0]["intervention"]
    inter["strains"] = strains
    inter["n_strains"] = n_strains
    return Study.model_validate(data).arms[0].intervention


def test_unnamed_product_is_unspecified(base):
    iv = _intervention(base, [{"as_written": "probiotic (organisms not read)", "registry": None}])
    assert mixture(iv) == UNSPECIFIED


def test_unnamed_multistrain_product_with_count_is_multi(base):
    # "multistrain synbiotic" (Sabzevar 2022): organisms unnamed, n_strains says it is a mixture
    iv = _intervention(base, [{"as_written": "multistrain synbiotic", "registry": None}], n_strains=2)
    assert mixture(iv) == "multi"


def test_one_named_organism_is_single(base):
    iv = _intervention(base, [{"as_written": "LGG", "registry": "LGG"}])
    assert mixture(iv) == "single"
