"""extract(): from study models to escalc inputs, with derivation chains.

Studies are built from the fictional fixture (tests/data/studies_ok) with
small edits, so each test shows the one reporting form it exercises.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from metaanalysis.studies import conversions as cv
from metaanalysis.stats.effects import escalc
from metaanalysis.studies.extract import Extraction, ExtractionError, check_scales, extract, extract_many
from metaanalysis.studies.yamlio import read_yaml_with_lines
from metaanalysis.studies.schema import Study

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "studies_ok" / "Fictional2024.yaml"
CLOSED = dict(rel=1e-12)


@pytest.fixture(scope="module")
def base() -> dict:
    doc, problems = read_yaml_with_lines(FIXTURE)
    assert not problems
    return doc.data


def study(base: dict, edit=None) -> Study:
    data = copy.deepcopy(base)
    if edit is not None:
        edit(data)
    return Study.model_validate(data)


def q(v, quote="q1"):
    return {"value": v, "quote": quote}


def der(v):
    return {"value": v, "derived": {"method": "other", "formula": "test"}}


def outcome(data, oid):
    return next(o for o in data["outcomes"] if o["id"] == oid)


def test_complete_arms(base):
    ex = extract(study(base), "scorad_8wk", measure="MD")
    assert ex.kind == "arms" and ex.scale == "final"
    assert (ex.m1i, ex.sd1i, ex.n1i, ex.m2i, ex.sd2i, ex.n2i) == (27.4, 12.7, 27, 36.3, 14.9, 27)
    assert ex.derivations == ()
    measure, kw = ex.escalc_args()
    yi, vi = escalc(measure, **kw)
    assert yi[0] == pytest.approx(27.4 - 36.3, **CLOSED)
    assert vi[0] == pytest.approx(12.7 ** 2 / 27 + 14.9 ** 2 / 27, **CLOSED)


def test_between_md_with_ci_is_flipped_to_probiotic_minus_control(base):
    ex = extract(study(base), "scorad_change_8wk", measure="MD")
    assert ex.kind == "generic"
    assert ex.yi == -9.5
    # n = 27 per arm (< 60): t with 27 + 27 - 2 df (Handbook 6.5.2.3)
    se = (16.9 - 2.1) / (2 * cv.critical_value(0.95, df=52))
    assert ex.vi == pytest.approx(se ** 2, **CLOSED)
    assert [d.method for d in ex.derivations] == ["denominator", "se_from_ci"]
    assert any("flipped" in n for n in ex.notes)
    assert ex.escalc_args() == ("GEN", {"yi": [-9.5], "vi": [ex.vi]})


def test_between_md_gives_smd_via_pooled_sd(base):
    ex = extract(study(base), "scorad_change_8wk", measure="SMD")
    assert ex.kind == "arms" and ex.m1i == -9.5 and ex.m2i == 0.0
    assert ex.sd1i == ex.sd2i
    se = math.sqrt(extract(study(base), "scorad_change_8wk", measure="MD").vi)
    assert ex.sd1i == pytest.approx(se / math.sqrt(1 / 27 + 1 / 27), **CLOSED)


def test_means_with_exact_p_only(base):
    def edit(d):
        o = outcome(d, "scorad_8wk")
        for arm in o["per_arm"].values():
            del arm["sd"]
    ex = extract(study(base, edit), "scorad_8wk", measure="MD")
    assert "derived_from_p" in ex.flags
    md = 27.4 - 36.3
    se, _ = cv.se_from_p(md, 0.022, df=52)
    # arms with a common SD reproduce the SE from p exactly
    assert ex.m1i - ex.m2i == pytest.approx(md, **CLOSED)
    assert ex.sd1i ** 2 / 27 + ex.sd2i ** 2 / 27 == pytest.approx(se ** 2, **CLOSED)
    assert [d.method for d in ex.derivations] == ["se_from_p", "sd_from_se"]


def test_p_bound_is_not_enough(base):
    def edit(d):
        o = outcome(d, "scorad_8wk")
        for arm in o["per_arm"].values():
            del arm["sd"]
        o["between"]["p_qualifier"] = "<"
    with pytest.raises(ExtractionError, match="exact p-value"):
        extract(study(base, edit), "scorad_8wk", measure="MD")


def test_se_and_ci_per_arm(base):
    def edit(d):
        arms = outcome(d, "scorad_8wk")["per_arm"]
        arms["probiotic"]["se"] = der(2.0)
        del arms["probiotic"]["sd"]
        arms["control"]["ci_lb"] = der(30.0)
        arms["control"]["ci_ub"] = der(42.6)
        del arms["control"]["sd"]
    ex = extract(study(base, edit), "scorad_8wk", measure="MD")
    assert ex.sd1i == pytest.approx(2.0 * math.sqrt(27), **CLOSED)
    assert ex.sd2i == pytest.approx(math.sqrt(27) * 12.6 / (2 * cv.critical_value(0.95, 26)),
                                    **CLOSED)
    assert [d.method for d in ex.derivations if d.method != "other"] == ["sd_from_se", "sd_from_ci"]


def test_median_iqr_arm(base):
    def edit(d):
        arm = outcome(d, "scorad_8wk")["per_arm"]["control"]
        for k in ("mean", "sd"):
            del arm[k]
        arm.update(median=der(35.0), q1=der(28.0), q3=der(44.0))
    ex = extract(study(base, edit), "scorad_8wk", measure="MD")
    m, s, _ = cv.mean_sd_from_median_iqr(28.0, 35.0, 44.0, 27)
    assert (ex.m2i, ex.sd2i) == (m, s)
    assert "median_converted" in ex.flags


def test_change_sd_imputed_from_baseline_and_final(base):
    def edit(d):
        d["outcomes"].append({
            "id": "scorad_chg", "outcome": "SCORAD", "timepoint_weeks": 8, "scale": "change",
            "per_arm": {"probiotic": {"n": q(27), "mean": der(-12.7)},
                        "control": {"n": q(27), "mean": der(-3.2)}}})
    s = study(base, edit)
    ex = extract(s, "scorad_chg", measure="MD", r=0.5)
    sd1, _ = cv.sd_change(9.8, 12.7, 0.5)
    sd2, _ = cv.sd_change(10.2, 14.9, 0.5)
    assert (ex.sd1i, ex.sd2i) == (pytest.approx(sd1), pytest.approx(sd2))
    assert "imputed_correlation" in ex.flags
    ex8 = extract(s, "scorad_chg", measure="MD", r=0.8)
    assert ex8.sd1i < ex.sd1i  # higher correlation, smaller change SD


def test_smd_refuses_to_mix_change_and_final(base):
    s = study(base)
    final = extract(s, "scorad_8wk", measure="SMD")
    change = extract(s, "scorad_change_8wk", measure="SMD")
    with pytest.raises(ExtractionError, match="cannot mix"):
        check_scales([final, change])
    with pytest.raises(ExtractionError, match="cannot mix"):
        extract_many([(s, "scorad_8wk"), (s, "scorad_change_8wk")], measure="SMD")
    # MD may mix them
    assert len(extract_many([(s, "scorad_8wk"), (s, "scorad_change_8wk")], measure="MD")) == 2


def test_binary_arms_and_split_control(base):
    ex = extract(study(base), "mild_8wk", measure="RR")
    assert (ex.ai, ex.n1i, ex.ci, ex.n2i) == (14, 27, 8, 27)
    ex2 = extract(study(base), "mild_8wk", measure="OR", split_control=2)
    assert (ex2.ci, ex2.n2i) == (4.0, 13.5)
    assert "shared_control_split" in ex2.flags
    assert ex2.derivations[-1].method == "split_control"


def test_binary_between_ratio_on_log_scale(base):
    def edit(d):
        d["quotes"]["q4"] = {"source": "s1", "location": "x",
                             "text": "RR 0.57 (95% CI 0.29 to 1.12)"}
        d["outcomes"].append({"id": "rr", "outcome": "eczema_incidence", "scale": "events",
                              "between": {"measure": "RR", "direction": "probiotic_minus_control",
                                          "estimate": q(0.57, "q4"), "ci_lb": q(0.29, "q4"),
                                          "ci_ub": q(1.12, "q4")}})
    ex = extract(study(base, edit), "rr", measure="RR")
    assert ex.yi == pytest.approx(math.log(0.57), **CLOSED)
    assert math.sqrt(ex.vi) == pytest.approx(
        (math.log(1.12) - math.log(0.29)) / (2 * cv.critical_value(0.95)), **CLOSED)
    with pytest.raises(ExtractionError, match="reports RR"):
        extract(study(base, edit), "rr", measure="OR")


def _percent_outcome(pct1, n1, pct2, n2, p=None):
    def edit(d):
        d["quotes"]["q5"] = {"source": "s1", "location": "x",
                             "text": f"150 randomised per arm; {pct1}% of {n1} vs {pct2}% of "
                                     f"{n2} (P = {p})"}
        for arm in d["arms"]:
            arm["n_randomised"] = q(150, "q5")
        out = {"id": "pct", "outcome": "eczema_incidence", "scale": "events",
               "per_arm": {"probiotic": {"percent": q(pct1, "q5"), "n": q(n1, "q5")},
                           "control": {"percent": q(pct2, "q5"), "n": q(n2, "q5")}}}
        if p is not None:
            out["between"] = {"measure": "RR", "p": q(p, "q5"), "p_qualifier": "="}
        d["outcomes"].append(out)
    return edit


def test_percent_with_its_denominator_gives_events(base):
    # 4.2% of 143 = 6.006 -> 6 (6/143 = 4.196% prints as 4.2%)
    ex = extract(study(base, _percent_outcome(4.2, 143, 11.5, 139)), "pct", measure="RR")
    assert ex.kind == "arms" and (ex.ai, ex.n1i, ex.ci, ex.n2i) == (6, 143, 16, 139)
    assert "events_from_percent" in ex.flags


def test_percent_of_a_wrong_denominator_gives_no_events(base):
    # Schmidt 2019 (doi 10.1111/pai.13018): 11.5% of the 146 randomised is 16.8; rounding
    # to 17 would print 11.6%. Without a p-value the outcome cannot be extracted.
    with pytest.raises(ExtractionError, match="needs events and n"):
        extract(study(base, _percent_outcome(4.2, 144, 11.5, 146)), "pct", measure="RR")


def test_percentages_and_exact_p_give_generic_ratio(base):
    ex = extract(study(base, _percent_outcome(4.2, 144, 11.5, 146, p=0.036)), "pct",
                 measure="RR")
    assert ex.kind == "generic" and ex.ai is None
    assert ex.yi == pytest.approx(math.log(4.2 / 11.5), **CLOSED)
    assert math.sqrt(ex.vi) == pytest.approx(abs(math.log(4.2 / 11.5)) / 2.0969, rel=1e-4)
    assert {"derived_from_p", "effect_from_percent"} <= set(ex.flags)
    # the probiotic arm's count (6/144 reproduces 4.2%) is not used, so its step is dropped
    assert "events_from_percent" not in ex.flags
    assert [d.method for d in ex.derivations] == ["effect_from_percentages", "se_from_p"]
    assert any("events not derived" in n for n in ex.notes)
    ex_or = extract(study(base, _percent_outcome(4.2, 144, 11.5, 146, p=0.036)), "pct",
                    measure="OR")
    assert ex_or.yi == pytest.approx(math.log((0.042 / 0.958) / (0.115 / 0.885)), **CLOSED)


def test_measure_must_fit_outcome(base):
    with pytest.raises(ExtractionError, match="cannot give RR"):
        extract(study(base), "scorad_8wk", measure="RR")
    with pytest.raises(ExtractionError, match="unknown measure"):
        extract(study(base), "scorad_8wk", measure="XX")
    with pytest.raises(ExtractionError, match="no outcome"):
        extract(study(base), "nope", measure="MD")


def test_excluded_study_is_refused(base):
    def edit(d):
        d["status"] = "excluded"
        d["excluded"] = "characteristics only"
    with pytest.raises(ExtractionError, match="excluded: characteristics only"):
        extract(study(base, edit), "scorad_8wk", measure="MD")


def test_multi_arm_needs_choice(base):
    def edit(d):
        arm = copy.deepcopy(d["arms"][0])
        arm["id"] = "probiotic2"
        d["arms"].append(arm)
        d["outcomes"] = [o for o in d["outcomes"] if o["id"] != "scorad_change_8wk"]
        d["outcomes"][0]["per_arm"]["probiotic2"] = copy.deepcopy(
            d["outcomes"][0]["per_arm"]["probiotic"])
        d["outcomes"][0]["between"]["comparison"] = {"intervention": "probiotic",
                                                     "control": "control"}
        del d["outcomes"][1]
    s = study(base, edit)
    ex = extract(s, "scorad_8wk", measure="MD")  # the comparison says which
    assert ex.intervention_arm == "probiotic"
    ex2 = extract(s, "scorad_8wk", measure="MD", intervention="probiotic2", split_control=2)
    assert ex2.n2i == 13.5
    with pytest.raises(ExtractionError, match="not an arm with role 'intervention'"):
        extract(s, "scorad_8wk", measure="MD", intervention="control")


def test_file_level_derivations_join_the_chain(base):
    def edit(d):
        o = outcome(d, "scorad_8wk")
        del o["per_arm"]["probiotic"]["n"]
    ex = extract(study(base, edit), "scorad_8wk", measure="MD")
    assert ex.n1i == 27
    assert ex.derivations[0].method == "denominator"
    assert ex.derivations[0].reference == "study file"
    assert isinstance(ex, Extraction) and ex.to_dict()["derivations"][0]["result"] == {"n": 27.0}
