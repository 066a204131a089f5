"""The one number formatter (metaanalysis/render/fmt.py): each rule, each edge."""

from __future__ import annotations

import math
import re

import pytest

from metaanalysis.render import fmt


def test_num_fixed_decimals_and_no_negative_zero():
    assert fmt.num(1.23456) == "1.23"
    assert fmt.num(-1.235, 1) == "-1.2"
    assert fmt.num(-0.04, 1) == "0.0"          # never "-0.0"
    assert fmt.num(-0.004) == "0.00"           # never "-0.00"
    assert fmt.num(-0.0) == "0.00"
    assert fmt.num(-0.06, 1) == "-0.1"         # a real negative keeps its sign
    assert fmt.num(3, 0) == "3"


def test_num_missing_and_typographic_minus():
    for bad in (None, float("nan"), float("inf"), True, "1"):
        assert fmt.num(bad) == "NA"
    assert fmt.num(-2.5, 1, minus=fmt.MINUS) == "\u22122.5"
    assert fmt.num(-0.01, 1, minus=fmt.MINUS) == "0.0"


@pytest.mark.parametrize("p, text", [
    (0.0321, "0.03"), (0.5, "0.50"), (0.0042, "0.004"), (0.00999, "0.010"),
    (0.0009999, "< 0.001"), (1e-12, "< 0.001"), (0.001, "0.001"),
    (0.0496, "0.050"), (0.0504, "0.050"), (0.05, "0.05"), (1.0, "1.00"),
    (None, "NA"), (float("nan"), "NA"),
])
def test_p_value(p, text):
    assert fmt.p_value(p) == text


def test_p_phrase():
    assert fmt.p_phrase(0.03) == "p = 0.03"
    assert fmt.p_phrase(0.0001) == "p < 0.001"
    assert fmt.p_phrase(0.27, symbol="P") == "P = 0.27"
    assert fmt.p_phrase(None) == "p = NA"


@pytest.mark.parametrize("x, text", [
    (0.81, "0.81"), (34.91, "34.91"), (1.0, "1.00"),
    (0.0213, "0.021"), (0.02, "0.020"), (0.0999, "0.10"), (0.0042, "0.0042"),
    (0.00099, "0.0010"), (0.0002, "<0.001"), (0.0, "<0.001"),
    (324.21, "324.2"), (1234.5, "1234"), (5e4, ">10000"), (math.inf, ">10000"),
    (None, "NA"), (float("nan"), "NA"), (-1.0, "NA"),
])
def test_ratio_never_prints_zero(x, text):
    assert fmt.ratio(x) == text


def test_ratio_bound_is_never_0_00():
    for x in (1e-9, 0.001, 0.0049, 0.005, 0.0051, 0.009, 0.01, 0.04):
        s = fmt.ratio(x)
        assert s != "0.00" and not re.fullmatch(r"0\.0*", s), (x, s)


def test_effect_and_interval():
    assert fmt.effect(-0.004, False) == "0.00"
    assert fmt.effect(0.02, True) == "0.020"
    assert fmt.interval(-14.93, -4.8, digits=1) == "[-14.9, -4.8]"
    assert fmt.interval(0.0002, 324.21, is_ratio=True) == "[<0.001, 324.2]"
    assert fmt.interval(None, 1.0) == "NA"
    assert fmt.interval(-0.01, 0.01, digits=1) == "[0.0, 0.0]"


def test_levels_from_alpha():
    assert fmt.level(0.05) == "95%"
    assert fmt.level(0.1) == "90%"
    assert fmt.level(0.025) == "97.5%"
    assert fmt.level(None) == "95%"
    assert fmt.pi_label(0.05) == "95% PI" and fmt.pi_label(0.10) == "90% PI"
    assert fmt.ci_label(0.01) == "99% CI"
    with pytest.raises(ValueError):
        fmt.level(1.5)


def test_excludes_null_phrase():
    assert fmt.excludes_null_phrase(0.05, "MD") == "the 95% CI excludes no effect (0)"
    assert fmt.excludes_null_phrase(0.10, "RR") == "the 90% CI excludes no effect (1)"
    assert fmt.excludes_null_phrase(0.05, True, "PI") == "the 95% PI excludes no effect (1)"


def test_measure_names_one_house_style():
    assert fmt.measure_name("MD") == "Mean difference"
    assert fmt.measure_name("RR") == "Risk ratio"
    assert fmt.measure_name("SMD", lower=True) == "standardised mean difference"
    assert fmt.measure_name("XYZ", lower=True) == "XYZ"
    # sentence case: only the first letter is a capital
    for name in fmt.MEASURE_NAMES.values():
        assert name[0].isupper() and name[1:] == name[1:].lower()
    assert fmt.RATIO_MEASURES == {"RR", "OR", "ROM"}
    # the stats core and the schema keep their own copies (they must not import
    # render/): all three must name the same measures
    from metaanalysis.stats import results
    from metaanalysis.studies import schema
    assert fmt.RATIO_MEASURES == results.RATIO_MEASURES == schema.RATIO_MEASURES
    assert fmt.null_value("OR") == "1" and fmt.null_value("SMD") == "0"


def test_metafor_print_style():
    assert fmt.metafor_num(-0.00001) == "0.0000"
    assert fmt.metafor_p(0.00001) == "<.0001"
    assert fmt.metafor_p(0.1234567) == "0.1235"
    assert fmt.metafor_p(None) == "NA"


def test_ratio_measures_agree_with_the_stats_core():
    from metaanalysis.stats.results import RATIO_MEASURES as core

    assert fmt.RATIO_MEASURES == core


@pytest.mark.parametrize("x, text", [
    (0.0042, "0.0042"), (0.000042, "0.000042"), (0.04, "0.04"), (0.0, "0.00"), (12.345, "12.35"),
    (0.0049, "0.0049"), (0.00499, "0.0050"), (0.0000995, "0.00010"), (-0.0042, "-0.0042"), (None, "NA"),
])
def test_small_keeps_two_significant_digits(x, text):
    assert fmt.small(x) == text


# percent, data, thousands, compact: what report.py and sof.py printed with
# their own f-strings before (issue 16); the expected texts are those outputs


@pytest.mark.parametrize("x, text", [
    (52.83, "53%"), (0.0, "0%"), (-0.2, "0%"), (100.0, "100%"), (None, "NA"), (float("nan"), "NA"),
])
def test_percent_is_an_integer_percentage(x, text):
    assert fmt.percent(x) == text


@pytest.mark.parametrize("x, text", [
    (12.0, "12"), (137, "137"), (0.5, "0.5"), (0.12345, "0.1235"), (2.5e-05, "2.5e-05"),
    (12345.6, "1.235e+04"), (True, "yes"), (False, "no"), ([1, 2.5], "1, 2.5"), ((3.0,), "3"),
    (None, "NA"), (float("nan"), "NA"), ("text", "text"),
])
def test_data_shows_an_input_as_entered(x, text):
    assert fmt.data(x) == text


def test_thousands_and_compact():
    assert fmt.thousands(1234.4) == "1,234" and fmt.thousands(999.5) == "1,000"
    assert fmt.thousands(0.4) == "0"
    assert fmt.compact(104.0) == "104" and fmt.compact(0.5) == "0.5" and fmt.compact(12) == "12"
