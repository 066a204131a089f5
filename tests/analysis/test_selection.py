"""Selection (metaanalysis/analysis/selection.py): which study is eligible,
which outcome each comparison uses, the stratum it falls in, and the subset
a claim targets. Hand-built studies and protocols (SimpleNamespace stand-ins,
FICTIONAL values); selection on real files is exercised by
tests/test_attack_inputs.py (one report per cohort, the bundled k) and every
bundled run.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from metaanalysis.analysis import protocol, selection
from metaanalysis.studies import strains


def _proto(**kw):
    el = NS(purpose="treatment", designs=("parallel",), age_groups=None, exclude_flags=("retracted",),
            comparators=None)
    outcome = NS(kinds=("SCORAD",), scales=("SCORAD",), overrides={}, timepoint="end_of_treatment",
                 target_weeks=8.0)
    bands = (NS(name="mild", lower=0.0, upper=25.0), NS(name="moderate", lower=25.0, upper=50.0),
             NS(name="severe", lower=50.0, upper=103.0))
    severity = NS(source="stated_then_baseline", bands=bands, scale="SCORAD", bands_source="Kunz 1997",
                  groups={"mild": "mild", "moderate+severe": "moderate-severe",
                          "moderate": "moderate-severe", "severe": "moderate-severe"})
    base = dict(eligibility=el, outcome=outcome, severity=severity, strata=())
    return NS(**{**base, **kw})


def _study(**kw):
    base = dict(id="S2001", status="included", excluded=None, purpose="treatment", design="parallel",
                population=NS(age_group="children", severity_categories=(), baseline=()),
                flags=(), arms=(), outcomes=())
    return NS(**{**base, **kw})


@pytest.mark.parametrize("change, why", [
    (dict(status="excluded", excluded="duplicate"), "excluded in its file: duplicate"),
    (dict(purpose="prevention"), "purpose is prevention, the protocol analyses treatment"),
    (dict(design="crossover"), "design 'crossover' not in the eligible designs (parallel)"),
    (dict(flags=("retracted",)), "flag(s) retracted excluded by the protocol"),
])
def test_eligible_names_the_reason(change, why):
    assert selection.eligible(_study(), _proto()) is None
    assert selection.eligible(_study(**change), _proto()) == why


def test_age_group_outside_the_protocol():
    p = _proto()
    p.eligibility.age_groups = ("adults",)
    assert selection.eligible(_study(), p) == "age group 'children' not eligible"


def _outcome(oid, weeks, eot=False):
    return NS(id=oid, timepoint_weeks=weeks, end_of_treatment=eot)


def test_choose_outcome_end_of_treatment_then_latest():
    p = _proto()
    cands = [_outcome("w4", 4.0), _outcome("w8", 8.0, eot=True), _outcome("w12", 12.0)]
    assert selection.choose_outcome(cands, p, "S")[0].id == "w8"
    no_eot = [_outcome("w4", 4.0), _outcome("w12", 12.0)]
    o, why = selection.choose_outcome(no_eot, p, "S")
    assert o.id == "w12" and why == "latest time point (no end-of-treatment value)"


def test_choose_outcome_override_and_nearest():
    p = _proto()
    p.outcome.overrides = {"S": "w4"}
    cands = [_outcome("w4", 4.0), _outcome("w8", 8.0, eot=True)]
    assert selection.choose_outcome(cands, p, "S") == (cands[0], "protocol override: outcome 'w4'")
    p = _proto()
    p.outcome.timepoint, p.outcome.target_weeks = "nearest", 10.0
    cands = [_outcome("w8", 8.0), _outcome("w12", 12.0)]  # equally near: the first listed
    o, why = selection.choose_outcome(cands, p, "S")
    assert o.id == "w8" and why == "time point nearest 10 weeks (ties: first listed in the file)"


def _baseline(arm, mean, n):
    return NS(scale="SCORAD", arm=arm, mean=NS(value=mean), n=NS(value=n) if n else None)


def test_baseline_score_is_weighted_by_arm_n():
    st = _study(population=NS(age_group="children", severity_categories=(),
                              baseline=(_baseline("a", 40.0, 30), _baseline("c", 20.0, 10))))
    assert selection.baseline_score(st, "SCORAD") == pytest.approx(35.0)
    assert selection.baseline_score(st, "EASI") is None


def test_severity_from_stated_categories_then_baseline():
    p = _proto()
    stated = _study(population=NS(age_group="children", severity_categories=("moderate", "severe"),
                                  baseline=()))
    assert selection.severity_group(stated, p, None) == (
        "moderate-severe", "as stated by the authors (moderate+severe)")
    unstated = _study()
    group, how = selection.severity_group(unstated, p, 20.0)
    assert group == "mild" and how == "from baseline SCORAD 20.0 with Kunz 1997 bands (mild)"
    assert selection.severity_group(unstated, p, None) == (
        "unclassified", "no stated severity and no baseline score")
    # the upper edge of the last band belongs to it
    assert selection.severity_group(unstated, p, 103.0)[0] == "moderate-severe"


#: A strain registry stand-in: a pre-2020 Lactobacillus, a renamed one, and two other genera.
GENERA = NS(strains={"L": NS(genus="Lactobacillus", former_genus=None),
                     "LP": NS(genus="Lacticaseibacillus", former_genus="Lactobacillus"),
                     "B": NS(genus="Bifidobacterium", former_genus=None),
                     "S": NS(genus="Streptococcus", former_genus=None)},
            resolve=lambda k: k)


def _iv(*keys):
    """An intervention of the registry keys ``keys``."""
    return NS(strains=[NS(registry=k) for k in keys])


def test_mix_type_groups_by_genus_before_the_2020_split():
    reg, iv = GENERA, _iv
    assert selection.mix_type(iv("LP"), reg) == "Lactobacillus only"
    assert selection.mix_type(iv("L", "B"), reg) == "Lactobacillus+Bifidobacterium"
    assert selection.mix_type(iv("LP", "B", "S"), reg) == "Lactobacillus+Bifidobacterium (+other)"
    assert selection.mix_type(iv("B"), reg) == "Bifidobacterium only"
    assert selection.mix_type(iv("L", "S"), reg) == "other"
    assert selection.mix_type(iv(None), reg) == strains.UNSPECIFIED
    assert selection.mix_type(None, reg) == "unknown"
    assert {selection.mix_type(iv(*c), reg) for c in (["L"], ["B"], ["S"], ["L", "B"])} <= set(
        protocol.MIX_TYPES)


def test_mix_type_levels_match_the_pipeline():
    """Every label ``selection.mix_type`` can give is a known mix_type level."""
    combos = [["L"], ["B"], ["S"], ["L", "B"], ["LP", "B", "S"], ["L", "S"], [None]]
    labels = {selection.mix_type(_iv(*c), GENERA) for c in combos}
    labels.add(selection.mix_type(None, GENERA))
    assert labels <= set(protocol.MIX_TYPES)


def test_stratum_attrs_reads_each_field():
    p = _proto(strata=(NS(name="severity", field="severity"), NS(name="age", field="age_group"),
                       NS(name="comparator", field="comparator"), NS(name="syn", field="synbiotic")))
    arm = NS(intervention=NS(synbiotic=True))
    control = NS(comparator=None)
    levels, notes = selection.stratum_attrs(_study(), arm, control, p, None, 60.0)
    assert levels == {"severity": "moderate-severe", "age": "children", "comparator": "unknown",
                      "syn": "synbiotic"}
    assert set(notes) == {"severity"}


def test_arm_outcomes_of_a_multi_arm_trial():
    p = _proto()
    per_arm = NS(outcome="SCORAD", scale="SCORAD", between=None, per_arm={"a1": 1, "c": 1})
    contrast = NS(outcome="SCORAD", scale="SCORAD", per_arm=None,
                  between=NS(comparison=NS(intervention="a2")))
    unlabelled = NS(outcome="SCORAD", scale="SCORAD", per_arm=None, between=None)
    other = NS(outcome="EASI", scale="EASI", per_arm={"a1": 1}, between=None)
    arms = (NS(role="intervention"), NS(role="intervention"), NS(role="control"))
    st = _study(arms=arms, outcomes=(per_arm, contrast, unlabelled, other))
    assert selection.arm_outcomes(st, "a1", "c", p) == [per_arm]
    assert selection.arm_outcomes(st, "a2", "c", p) == [contrast]
    # with one intervention arm, an outcome that names no arm is this arm's
    two_arm = _study(arms=arms[1:], outcomes=(unlabelled,))
    assert selection.arm_outcomes(two_arm, "a1", "c", p) == [unlabelled]


def test_subset_matches_every_attribute():
    comps = [NS(key=k, attrs=a) for k, a in [("A", {"age": "children", "sev": "mild"}),
                                              ("B", {"age": "adults", "sev": "mild"}),
                                              ("C", {"age": "children", "sev": "severe"})]]
    assert [c.key for c in selection.subset(comps, {"age": ["children"]})] == ["A", "C"]
    assert [c.key for c in selection.subset(comps, {"age": ["children"], "sev": ["mild"]})] == ["A"]
    assert [c.key for c in selection.subset(comps, {})] == ["A", "B", "C"]


def test_listed_total_only_when_it_spans_the_listed_arms():
    assert selection.listed_total(NS(trial_total=NS(spans="listed_arms"))).spans == "listed_arms"
    assert selection.listed_total(NS(trial_total=NS(spans="more_arms"))) is None
    assert selection.listed_total(NS()) is None
