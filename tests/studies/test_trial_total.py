"""``trial_total``: a trial's quoted total n, for counting participants only.

Trials that print a total but no n per arm (Gore 2012: '137/208 ... were
randomized' across three arms) used to drop out of every participant count:
GRADE's optimal information size, the availability of evidence, and the
square-root-of-n weights of the Stouffer combination (issue 10). The total is
counted, never split by arm, and never used for a variance.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from metaanalysis.analysis.claims import participants as count_participants
from metaanalysis.studies.load import load_studies
from metaanalysis.analysis.pipeline import _trial_n_source, run_protocol
from metaanalysis.runner import load_inputs
from metaanalysis.studies.validate import validate_paths

OK = Path(__file__).resolve().parents[1] / "data" / "studies_ok"


def _fixture_with(tmp_path: Path, block: str) -> Path:
    """A copy of the valid fictional study with ``block`` appended."""
    d = tmp_path / "studies"
    shutil.copytree(OK, d)
    f = d / "Fictional2024.yaml"
    f.write_text(f.read_text(encoding="utf-8").rstrip("\n") + "\n" + block, encoding="utf-8")
    return d


def _problems(tmp_path, block):
    return [(p.path, p.message) for p in validate_paths([_fixture_with(tmp_path, block)])]


# ---------------------------------------------------------------------------
# the schema


def test_a_total_over_the_listed_arms_must_match_their_sum(tmp_path):
    # the fixture's arms: randomised 30 + 30 ('60 children (30 per group)'), analysed 27 + 27
    ok = "trial_total:\n  n_randomised: {value: 60, quote: q1}\n  spans: listed_arms\n"
    assert _problems(tmp_path / "a", ok) == []
    bad = ok.replace("spans: listed_arms", "spans: listed_arms\n  n_analysed: {value: 30, quote: q1}")
    probs = _problems(tmp_path / "b", bad)
    assert len(probs) == 1 and probs[0][0] == "trial_total.n_analysed"
    assert "differs from the sum of the arms' n_analysed (54)" in probs[0][1]


def test_a_total_needs_its_number_in_the_quote(tmp_path):
    probs = _problems(tmp_path, "trial_total:\n  n_randomised: {value: 61, quote: q1}\n"
                                "  spans: more_arms\n")
    assert len(probs) == 1 and probs[0][0].startswith("trial_total.n_randomised")
    assert "61" in probs[0][1]


@pytest.mark.parametrize("block, words", [
    ("trial_total:\n  spans: listed_arms\n", "n_randomised, n_analysed or both"),
    ("trial_total:\n  n_randomised: {value: 30, quote: q1}\n"
     "  n_analysed: {value: 60, quote: q1}\n  spans: more_arms\n", "exceeds n_randomised"),
    ("trial_total:\n  n_randomised: {value: 60, quote: q1}\n  spans: all\n", "spans"),
])
def test_a_total_is_checked(tmp_path, block, words):
    probs = _problems(tmp_path, block)
    assert len(probs) == 1 and probs[0][0].startswith("trial_total"), probs
    assert words in probs[0][0] + probs[0][1]


# ---------------------------------------------------------------------------
# where it is used


def _study(arms_n, total=None, spans="listed_arms"):
    num = lambda v: None if v is None else SimpleNamespace(value=v)
    arms = [SimpleNamespace(n_randomised=num(r), n_analysed=num(a)) for r, a in arms_n]
    tot = None if total is None else SimpleNamespace(n_randomised=num(total[0]),
                                                      n_analysed=num(total[1]), spans=spans)
    return SimpleNamespace(arms=arms, trial_total=tot)


def test_trial_n_prefers_the_arms_then_the_listed_total():
    assert _trial_n_source(_study([(30, None), (30, 27)], (99, None)))[0] == 60
    n, src = _trial_n_source(_study([(None, None)] * 3, (137, None)))
    assert n == 137 and src.startswith("trial_total.n_randomised")
    # per-arm analysed n outranks a total's analysed n, a randomised total outranks both
    assert _trial_n_source(_study([(None, 10), (None, 12)], (None, 40)))[0] == 22
    assert _trial_n_source(_study([(None, 10), (None, 12)], (52, 40)))[0] == 52
    assert _trial_n_source(_study([(None, None)] * 2, (None, 40)))[0] == 40
    # a total that also counts an arm the file does not list is never used
    assert _trial_n_source(_study([(None, None)] * 2, (81, None), "more_arms")) == (None, None)


def _comp(study, arm, control, n_total=None, n_trial=None, arms=()):
    return SimpleNamespace(key=f"{study} ({arm})", study=study, arm=arm, control=control,
                           n_total=n_total, n_trial_total=n_trial, trial_arms=tuple(arms))


def participants(comps):
    """(known n, trials with n unknown) over every comparison given."""
    n, unknown = count_participants(comps, {c.key for c in comps})
    return n, len(unknown)


def test_grade_counts_a_total_once_and_only_with_all_its_arms():
    three = ("B", "L", "P")
    gore = [_comp("G", "B", "P", n_trial=137, arms=three), _comp("G", "L", "P", n_trial=137, arms=three)]
    other = _comp("W", "x", "c", n_total=54)
    assert participants(gore + [other]) == (137 + 54, 0)
    # one arm of a three-arm trial (a stratum): its share cannot be read from the total
    assert participants(gore[:1] + [other]) == (54, 1)
    # no total: one unknown trial, however many comparisons it has
    assert participants([_comp("X", "a", "p"), _comp("X", "b", "p"), other]) == (54, 1)
    assert participants([]) == (0, 0)


# ---------------------------------------------------------------------------
# the bundled studies (a session copy)


@pytest.fixture(scope="module")
def scorad_run(bundled):
    studies, registry, protos, _ = load_inputs([bundled / "protocols" / "treatment-scorad.yaml"],
                                               bundled / "studies")
    return run_protocol(protos[0][1], studies, registry)


def test_bundled_totals_reach_availability_and_stouffer(scorad_run):
    sw = scorad_run.swim
    rows = {t["id"]: t for t in sw["trials"]}
    assert rows["Gore2012"]["n"] == 137 and rows["Passeron2006"]["n"] == 48
    assert rows["NavarroLopez2018"]["n"] == 50
    assert rows["Gore2012"]["n_source"].startswith("trial_total")
    assert rows["Sabzevar2022"]["n"] is None       # 81 spans a vitamin D3 arm not listed
    assert rows["Han2012"]["n_source"] == "sum of the arms' n_randomised"
    w = sw["stouffer"]["weighted"]
    assert {"Gore2012", "NavarroLopez2018", "Passeron2006"} <= set(w["trials"])
    assert w["left_out_n_unknown"] == ["Sabzevar2022"]
    assert set(sw["availability"]["n_from_trial_total"]) >= {"Gore2012", "Passeron2006"}


def test_bundled_totals_reach_grade(scorad_run):
    comps = scorad_run.comparisons
    gore = [c for c in comps if c.study == "Gore2012"]
    assert [c.n_trial_total for c in gore] == [137.0, 137.0] and gore[0].n_total is None
    arm_n = sum(c.n_total or 0 for c in comps)
    # Sabzevar2022's 81 spans a vitamin D3 arm the file does not list: not counted
    assert participants(comps) == (arm_n + 137 + 50 + 48, 1)


def test_summary_of_findings_counts_totals_like_grade(scorad_run):
    from metaanalysis.render.sof import _participants as sof_participants

    text, note = sof_participants(scorad_run.comparisons)
    n, unknown = participants(scorad_run.comparisons)
    assert text.startswith(f"at least {n:,} (") and unknown == 1
    assert note.endswith("for 1 trial: Sabzevar2022.")


def test_the_total_is_never_used_for_a_variance(scorad_run, bundled):
    # Gore 2012's SEs come from its CIs; the extraction must not have picked up n = 137
    gore = [c for c in scorad_run.comparisons if c.study == "Gore2012"]
    assert all(c.extraction.n1i is None and c.extraction.n2i is None for c in gore)
    studies, _ = load_studies([bundled / "studies" / "Gore2012.yaml"])
    assert studies[0].trial_total.n_randomised.value == 137


def test_claim_target_availability_counts_totals_and_directions(bundled):
    # a claim restricted to a subset (C1: children) gets its own availability; it
    # counts a quoted trial total and the quoted directions as the SWiM block does
    from metaanalysis.analysis.pipeline import availability
    from metaanalysis.analysis.selection import awaiting_by_stratum, select_comparisons

    studies, registry, protos, _ = load_inputs([bundled / "protocols" / "treatment-scorad.yaml"],
                                               bundled / "studies")
    proto = protos[0][1]
    comps, fate = select_comparisons(proto, studies, registry)
    awaiting = awaiting_by_stratum(proto, studies, registry, fate)
    kids = {"age_group": ["infants", "children"]}
    av = availability(proto, studies, awaiting, kids, comps)
    by_id = {s.id: s for s in studies}
    miss = [by_id[s] for s in av["missing_trials"]]
    assert {"Farid2011", "Carucci2022", "Lin2015"} <= set(av["missing_trials"])
    assert av["missing_favour_probiotic"] == sum(
        1 for s in miss if any(d.outcome in ("SCORAD", "symptom_load") and d.favours == "probiotic"
                               for d in s.direction_of_effect))
    assert av["missing_favour_probiotic"] >= 8
    assert (av["missing_favour_probiotic"] + av["missing_favour_control"]
            + av["missing_no_direction"]) == av["trials_missing"]
    # Carucci2022 (100) and Farid2011 (52 randomised) count through their trial totals
    assert av["missing_n_unknown"] == sum(1 for s in miss if _trial_n_source(s)[0] is None)
    assert av["participants_missing"] == sum(_trial_n_source(s)[0] or 0 for s in miss)
