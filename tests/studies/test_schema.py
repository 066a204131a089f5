"""Input models (schema.py), the strain registry (strains.py) and the
provenance matcher (provenance.py), exercised directly in Python."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pydantic import ValidationError

from metaanalysis.studies.load import load_registry
from metaanalysis.studies.yamlio import read_yaml_with_lines
from metaanalysis.studies.provenance import number_in_text
from metaanalysis.studies.schema import (ArmOutcome, Between, FieldIssues, Number, StrainRegistry, Study,
                                 iter_numbers)
from metaanalysis.studies.strains import alias_index, group_label, lookup, mixture, normalise_name

DATA = Path(__file__).resolve().parents[1] / "data"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def base() -> dict:
    doc, problems = read_yaml_with_lines(DATA / "studies_ok" / "Fictional2024.yaml")
    assert not problems
    return doc.data


@pytest.fixture(scope="module")
def registry(bundled) -> StrainRegistry:
    reg, problems = load_registry(bundled / "studies" / "strains.yaml")
    assert not problems, problems
    return reg


def errors(exc: ValidationError) -> list[tuple[tuple, str]]:
    """(loc + FieldIssues sub-path, message) for every error."""
    out = []
    for e in exc.errors():
        err = (e.get("ctx") or {}).get("error")
        if isinstance(err, FieldIssues):
            out += [(tuple(e["loc"]) + p, m) for p, m in err.issues]
        else:
            out.append((tuple(e["loc"]), e["msg"]))
    return out


# ---------------------------------------------------------------------------
# numbers


def test_number_needs_exactly_one_provenance():
    assert Number(value=3, quote="q1").value == 3.0
    with pytest.raises(ValidationError, match="exactly one of 'quote' or 'derived'"):
        Number(value=3)
    with pytest.raises(ValidationError, match="exactly one"):
        Number(value=3, quote="q1", derived={"method": "other", "formula": "x"})


@pytest.mark.parametrize("value, message", [
    (float("inf"), "finite"), (float("nan"), "finite"), (1e16, "implausibly large"),
    ("30", "expected a number"), (True, "expected a number"), ("<<FILL: n>>", "placeholder"),
])
def test_number_value_rejects(value, message):
    with pytest.raises(ValidationError, match=message):
        Number(value=value, quote="q1")


def test_bare_number_message():
    with pytest.raises(ValidationError, match="bare number"):
        Number.model_validate(30)


def test_bare_derivation_inputs_inherit_the_quote():
    n = Number.model_validate({"value": 27, "derived": {"method": "denominator", "formula": "x",
                                                       "inputs": {"d": 27}, "quote": "q1"}})
    assert n.derived.inputs["d"].quote == "q1"
    with pytest.raises(ValidationError, match="bare number"):
        Number.model_validate({"value": 27, "derived": {"method": "other", "formula": "x",
                                                        "inputs": {"d": 27}}})


# ---------------------------------------------------------------------------
# cross-field rules report every issue with its own sub-path


def test_arm_outcome_collects_all_issues():
    with pytest.raises(ValidationError) as info:
        ArmOutcome.model_validate({
            "n": {"value": 10, "quote": "q"}, "events": {"value": 12, "quote": "q"},
            "percent": {"value": 50, "quote": "q"}})
    got = errors(info.value)
    assert ((), ) not in got
    paths = [p for p, _ in got]
    assert ("events",) in paths and ("percent",) in paths


@pytest.mark.parametrize("data, path, message", [
    ({"mean": 5, "ci_lb": 6, "ci_ub": 9}, ("mean",), "does not contain the mean"),
    ({"ci_lb": 9, "ci_ub": 6}, ("ci_lb",), "not below"),
    ({"median": 5, "q1": 6, "q3": 9}, ("median",), "expected min <= q1"),
    ({"mean": 5, "ci_lb": 4}, ("ci_ub",), "go together"),
    ({"mean": 5, "sd": 1, "ci_level": 0.9}, ("ci_level",), "without ci_lb"),
])
def test_summary_rules(data, path, message):
    full = {k: {"value": v, "quote": "q"} if k != "ci_level" else v for k, v in data.items()}
    with pytest.raises(ValidationError) as info:
        ArmOutcome.model_validate(full)
    assert any(p == path and message in m for p, m in errors(info.value)), errors(info.value)


@pytest.mark.parametrize("data, path, message", [
    ({"measure": "MD", "estimate": 1, "ci_lb": 2, "ci_ub": 3, "direction": "probiotic_minus_control"},
     ("estimate",), "does not contain the estimate"),
    ({"measure": "MD", "estimate": 1}, ("direction",), "direction"),
    ({"measure": "RR", "estimate": -1, "direction": "probiotic_minus_control"}, ("estimate",), "> 0"),
    ({"measure": "MD", "p": 0.02}, ("p_qualifier",), "exact"),
    ({"measure": "MD", "p_qualifier": "NS", "p": 0.2}, ("p_qualifier",), "no p-value"),
    ({"measure": "MD"}, (), "needs an estimate"),
])
def test_between_rules(data, path, message):
    full = {k: ({"value": v, "quote": "q"} if k in ("estimate", "ci_lb", "ci_ub", "p") else v)
            for k, v in data.items()}
    with pytest.raises(ValidationError) as info:
        Between.model_validate(full)
    assert any(p == path and message in m for p, m in errors(info.value)), errors(info.value)


def test_study_fixture_is_valid_and_frozen(base):
    s = Study.model_validate(base)
    assert s.id == "Fictional2024"
    assert isinstance(s.arms, tuple) and isinstance(s.flags, tuple)
    with pytest.raises(ValidationError):
        s.id = "x"  # frozen
    with pytest.raises(TypeError):
        s.quotes["q9"] = s.quotes["q1"]  # read-only mapping
    assert len(list(iter_numbers(s))) > 20


@pytest.mark.parametrize("edit, path, message", [
    (lambda d: d["outcomes"][0]["per_arm"].update(placebo=d["outcomes"][0]["per_arm"].pop("control")),
     ("outcomes", 0, "per_arm", "placebo"), "unknown arm 'placebo'"),
    (lambda d: d["arms"][0]["n_randomised"].update(quote="q7"),
     ("arms", 0, "n_randomised", "quote"), "unknown quote 'q7'"),
    (lambda d: d["quotes"]["q1"].update(source="s2"), ("quotes", "q1", "source"), "unknown source"),
    (lambda d: d.update(status="excluded"), ("excluded",), "needs the reason"),
    (lambda d: d.update(excluded="because"), ("excluded",), "gives a reason"),
    (lambda d: d["arms"].pop(), ("arms",), "an intervention arm and a control arm"),
    (lambda d: d["arms"][1].update(id="probiotic"), ("arms", 1, "id"), "duplicate arm id"),
    (lambda d: d.update(flags=[]), ("flags",), "add flag 'derived_n'"),
    (lambda d: d["arms"][1].update(comparator="prebiotic"), ("flags",), "active_comparator"),
    (lambda d: d["arms"][1].update(comparator=None), ("arms", 1, "comparator"), "needs 'comparator'"),
    (lambda d: d.update(same_cohort_as="Fictional2024"), ("same_cohort_as",), "itself"),
])
def test_study_rules(base, edit, path, message):
    data = copy.deepcopy(base)
    edit(data)
    with pytest.raises(ValidationError) as info:
        Study.model_validate(data)
    got = errors(info.value)
    assert any(p == path and message in m for p, m in got), got


def test_all_study_issues_reported_at_once(base):
    data = copy.deepcopy(base)
    data["status"] = "excluded"
    data["flags"] = []
    data["arms"][0]["n_randomised"]["quote"] = "q7"
    with pytest.raises(ValidationError) as info:
        Study.model_validate(data)
    paths = {p for p, _ in errors(info.value)}
    assert {("excluded",), ("flags",), ("arms", 0, "n_randomised", "quote")} <= paths


# ---------------------------------------------------------------------------
# registry and strain lookup


def test_registry_rejects_ambiguous_alias_and_bad_same_as():
    with pytest.raises(ValidationError) as info:
        StrainRegistry.model_validate({"strains": {
            "A": {"genus": "G", "species": "a", "aliases": ["X-1"]},
            "B": {"genus": "G", "species": "b", "aliases": ["x 1"], "same_as": "C"}}})
    got = errors(info.value)
    assert any(p == ("strains", "B", "aliases", 0) and "also names 'A'" in m for p, m in got)
    assert any(p == ("strains", "B", "same_as") and "unknown strain 'C'" in m for p, m in got)


@pytest.mark.parametrize("name, key", [
    ("LGG", "LGG"), ("Lactobacillus GG", "LGG"), ("L. rhamnosus GG", "LGG"),
    ("Lactobacillus rhamnosus GG (ATCC 53103)", "LGG"), ("lacticaseibacillus rhamnosus gg", "LGG"),
    ("ATCC 53103", "LGG"), ("HN001", "L_rhamnosus_HN001"),
    ("Bifidobacterium animalis subsp. lactis HN019", "B_lactis_HN019"),
    ("L. salivarius LS01 (DSM 22775)", "L_salivarius_LS01"), ("B. lactis", "B_lactis"),
    ("Lactobacillus rhamnosus", "L_rhamnosus"), ("Lactobacillus plantarum", "L_plantarum"),
    ("Lactobacillus reuteri ATCC 55730", "L_reuteri_ATCC55730"),
    ("Saccharomyces boulardii", "S_boulardii"), ("ŁOCK 0900", "L_rhamnosus_LOCK0900"),
    ("B. breve Bbi99", "B_breve_Bb99"), ("Lactobacillus fermentum VRI-033", "L_fermentum_VRI003"),
    ("Streptococcus thermophilus", "S_thermophilus"), ("Lactobacillus acidophilus", "L_acidophilus"),
    ("Lactobacillus sakei KCTC 10755BP", "L_sakei_KCTC10755BP"),
    ("Unknownella mysteria", None), ("B. bifidum GG", None),
])
def test_lookup(registry, name, key):
    assert lookup(registry, name) == key


def test_normalise_name():
    assert normalise_name("L. rhamnosus-GG") == normalise_name("l rhamnosus gg")
    assert normalise_name("ŁOCK 0900") == "lock0900"


def test_registry_uses_2020_genera(registry):
    s = registry.strains
    assert s["LGG"].species_name == "Lacticaseibacillus rhamnosus"
    assert s["L_plantarum"].genus == "Lactiplantibacillus"
    assert s["L_reuteri"].genus == s["L_fermentum"].genus == "Limosilactobacillus"
    assert s["L_salivarius"].genus == "Ligilactobacillus"
    assert s["L_sakei"].genus == "Latilactobacillus"
    assert s["L_acidophilus"].genus == "Lactobacillus" and s["L_acidophilus"].former_genus is None
    assert registry.resolve("L_casei_LOCK0900") == "L_rhamnosus_LOCK0900"
    # every alias names exactly one entry (the validator guarantees it)
    assert len(alias_index(registry)) > len(s)


def test_group_labels(base, registry):
    data = copy.deepcopy(base)
    inter = data["arms"][0]["intervention"]
    inter["strains"] = [{"as_written": "LGG", "registry": "LGG"},
                        {"as_written": "B. lactis Bb-12", "registry": "B_lactis_BB12"},
                        {"as_written": "unnamed", "registry": None},
                        {"as_written": "L. casei LOCK 0900", "registry": "L_casei_LOCK0900"}]
    arm = Study.model_validate(data).arms[0]
    assert group_label(arm.intervention, registry, "strain") == \
        "B_lactis_BB12+LGG+L_rhamnosus_LOCK0900+unspecified"
    assert group_label(arm.intervention, registry, "species") == \
        "Bifidobacterium animalis+Lacticaseibacillus rhamnosus+unspecified"
    assert group_label(arm.intervention, registry, "genus") == \
        "Bifidobacterium+Lacticaseibacillus+unspecified"
    assert group_label(arm.intervention, registry, "mixture") == "multi"
    single = Study.model_validate(base).arms[0].intervention
    assert mixture(single) == "single"
    with pytest.raises(ValueError):
        group_label(single, registry, "family")


def test_bundled_study_strains_resolve_by_name(bundled, registry):
    """Every strain written in the bundled study files is in the registry."""
    from metaanalysis.studies.load import load_studies

    studies, _ = load_studies([bundled / "studies"], registry=registry)
    for st in studies:
        for arm in st.arms:
            for ref in (arm.intervention.strains if arm.intervention else ()):
                if ref.registry is not None:
                    assert ref.registry in registry.strains, (st.id, ref)


# ---------------------------------------------------------------------------
# provenance matcher


@pytest.mark.parametrize("value, text", [
    (27.4, "SCORAD 27·4±12·7"), (27.4, "27.40"), (-13.89, "(−13.89 ± 10.05)"),
    (-13.89, "(-13.89 ± 10.05)"), (0.022, "P=0·022"), (0.001, "P < .001"),
    (1e10, "1.0 × 10 10 CPU/d"), (1e10, "1.0 × 1010 colony-forming units"),
    (1e10, "10¹º CFUs/d"), (1e9, "10⁹ CFUs/d"), (1e9, "10^9 CFU"), (1.2e9, "1.2 x 10(9) CFU"),
    (5e9, "5 × 109 colony-forming units"), (4e9, "4 billion colony forming units"),
    (2e10, "2e10"), (6.4, "26 ± 6,4"), (1124, "1,124 children"), (54, "Fifty-four infants"),
    (102, "one hundred and two"), (30, "30\u00a0per group"), (12.7, "12\u200b.7"),
])
def test_number_in_text_accepts(value, text):
    assert number_in_text(value, text)


@pytest.mark.parametrize("value, text", [
    (27.3, "27.4"), (13.89, "(−13.89)"), (-30, "30 per group"), (1e9, "10 9 children"),
    (274, "27.4"), (0.5, "5"),
])
def test_number_in_text_rejects(value, text):
    assert not number_in_text(value, text)
