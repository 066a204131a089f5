"""The process-wide memo of text metrics (render/_common.py, issue 14).

Every string is measured once per process instead of once per figure and
once more per saved format. The memo must be invisible in the files: a hit
returns what the renderer itself computes, the key changes with whatever
changes a measurement (renderer class, resolution, font properties, the
font and text rcParams), and files drawn with the memo are byte-identical to
files drawn without it.
"""

from __future__ import annotations

import matplotlib
import matplotlib.text as mtext
import pytest
from matplotlib.font_manager import FontProperties

import metaanalysis as m
from metaanalysis.render import _common
from metaanalysis.render._common import TextMeasure, new_figure, save_figure
from metaanalysis.render.forest import forest_plot
from tests.render.test_render import arm_data, synthetic


class _NoMemo(_common._TextMetrics):
    """Measures every time, as before the memo."""

    def get(self, renderer, text, prop, ismath, dpi):
        return renderer.get_text_width_height_descent(text, prop, ismath)


@pytest.fixture
def fresh_memo(monkeypatch):
    memo = _common._TextMetrics()
    monkeypatch.setattr(_common, "_TEXT_METRICS", memo)
    return memo


def test_a_hit_is_what_the_renderer_measures(fresh_memo):
    fig = new_figure(dpi=100)
    r = fig.canvas.get_renderer()
    prop = FontProperties(family=_common.FONT_FAMILY, size=8)
    direct = r.get_text_width_height_descent("Kalliomäki 2001 (LGG)", prop, False)
    first = fresh_memo.get(r, "Kalliomäki 2001 (LGG)", prop, False, 100)
    # another figure's renderer of the same class and resolution shares the entry
    r2 = new_figure(dpi=100).canvas.get_renderer()
    again = fresh_memo.get(r2, "Kalliomäki 2001 (LGG)", prop.copy(), False, 100)
    assert first == direct and again is first
    assert len(fresh_memo.memo) == 1


def test_the_key_holds_what_changes_a_measurement(fresh_memo):
    prop = FontProperties(family="sans-serif", size=8)
    s = "Total (95% CI) 1234"
    at100 = new_figure(dpi=100).canvas.get_renderer()
    at300 = new_figure(dpi=300).canvas.get_renderer()
    w100 = fresh_memo.get(at100, s, prop, False, 100)[0]
    w300 = fresh_memo.get(at300, s, prop, False, 300)[0]
    assert w300 == pytest.approx(3 * w100, rel=0.02) and w300 != w100
    bold = FontProperties(family="sans-serif", size=8, weight="bold")
    assert fresh_memo.get(at100, s, bold, False, 100)[0] > w100
    # the font a generic family resolves to is an rcParam: another value, another entry
    with matplotlib.rc_context({"font.sans-serif": ["DejaVu Sans Mono"]}):
        mono = fresh_memo.get(at100, s, prop, False, 100)
        assert mono == at100.get_text_width_height_descent(s, prop, False)
        assert mono[0] != w100
    # and back: the first entry again, not the monospaced one
    assert fresh_memo.get(at100, s, prop, False, 100)[0] == w100
    # a font list edited in place is a new state too
    before = matplotlib.rcParams["font.sans-serif"]
    try:
        matplotlib.rcParams["font.sans-serif"].insert(0, "DejaVu Sans Mono")
        assert fresh_memo.get(at100, s, prop, False, 100) == mono
    finally:
        matplotlib.rcParams["font.sans-serif"] = [f for f in before if f != "DejaVu Sans Mono"]


def test_text_layout_uses_the_memo_only_within_the_context(fresh_memo):
    original = mtext._get_text_metrics_with_cache
    fig = new_figure()
    t = fig.text(0.1, 0.1, "Heterogeneity: Tau² = 0.04", fontsize=7)
    with _common.shared_text_metrics():
        with _common.shared_text_metrics():  # re-entrant
            assert mtext._get_text_metrics_with_cache is _common._cached_text_metrics
        assert mtext._get_text_metrics_with_cache is _common._cached_text_metrics
        t.get_window_extent(fig.canvas.get_renderer())
    assert mtext._get_text_metrics_with_cache is original
    assert any(key[3] == "Heterogeneity: Tau² = 0.04" for key in fresh_memo.memo)


def test_files_drawn_with_the_memo_are_those_drawn_without(tmp_path, monkeypatch):
    df = synthetic(12, 3)
    res = m.pool(df, "MD", "REML")

    def draw(folder):
        fig = forest_plot(res, study_data=arm_data(df), prediction=True)
        return [p.read_bytes() for p in save_figure(fig, tmp_path / folder / "f")]

    monkeypatch.setattr(_common, "_TEXT_METRICS", _common._TextMetrics())
    cold = draw("cold")   # the memo filling up
    warm = draw("warm")   # every text a hit
    monkeypatch.setattr(_common, "_TEXT_METRICS", _NoMemo())
    monkeypatch.setattr(_common, "shared_text_metrics", _no_context)
    without = draw("without")
    assert cold == without and warm == without


class _no_context:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_text_measure_reads_the_memo(fresh_memo):
    tm = TextMeasure(new_figure())
    w = tm.width("Favours probiotic", 8)
    assert w > 0 and len(fresh_memo.memo) == 1
    tm2 = TextMeasure(new_figure())  # another figure: no new measurement
    assert tm2.width("Favours probiotic", 8) == w and len(fresh_memo.memo) == 1


def test_the_memo_is_bounded(fresh_memo, monkeypatch):
    monkeypatch.setattr(_common, "TEXT_METRICS_MAX", 2)
    r = new_figure().canvas.get_renderer()
    prop = FontProperties(family=_common.FONT_FAMILY, size=8)
    widths = [fresh_memo.get(r, s, prop, False, 100)[0] for s in ("a", "ab", "abc")]
    assert len(fresh_memo.memo) == 1  # emptied when full, then the third entry
    assert widths == [r.get_text_width_height_descent(s, prop, False)[0] for s in ("a", "ab", "abc")]
