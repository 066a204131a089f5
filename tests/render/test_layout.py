"""The table-layout engine (metaanalysis/render/layout.py) and the pages of
big forest plots, read back from the drawn figures (SVG text, PNG size).

The pages are checked on a synthetic 300-study forest plot with three
subgroups: every study on exactly one page, the pooled rows and tests on the
last page only, every page within the page limit and as wide as the others,
and the same axis on every page.
"""

import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import metaanalysis as m
from metaanalysis.render import layout
from metaanalysis.render._common import TextMeasure, new_figure, save_figure
from metaanalysis.render.forest import forest_page_count, forest_plot
from metaanalysis.render.layout import (
    FOREST_STYLE,
    INTERVAL_STYLE,
    MARGIN_IN,
    MAX_ROWS_PER_PAGE,
    Column,
    TableCanvas,
    paginate,
    panel_width,
    place_columns,
    vertical_bands,
)
from tests.render.test_render import arm_data, synthetic  # the forest tests' generated trials

SVG = "{http://www.w3.org/2000/svg}"


def svg_texts(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [s for s in ("".join(t.itertext()).strip() for t in root.iter(f"{SVG}text")) if s]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# ----------------------------------------------------------------------------
# the engine


def test_style_sizes_scale_with_the_font():
    big = FOREST_STYLE.with_fontsize(16)
    assert big.row_h == pytest.approx(2 * FOREST_STYLE.row_h)
    assert big.col_gap == pytest.approx(2 * FOREST_STYLE.col_gap)
    assert big.pad == pytest.approx(2 * FOREST_STYLE.pad)
    assert big.row_em == FOREST_STYLE.row_em  # only the font size changed
    assert INTERVAL_STYLE.row_h > FOREST_STYLE.row_h


def test_place_columns_puts_each_column_after_its_gap():
    cols = [Column("a", "", "left", width=1.0), Column("b", "", "right", width=0.5),
            Column("c", "", "right", group="g", width=0.25)]
    end = place_columns(cols, 0.1, lambda prev, cur: 0.2 if prev.group == cur.group else 0.4)
    assert [c.x0 for c in cols] == pytest.approx([0.1, 1.3, 2.2])
    assert end == pytest.approx(cols[-1].x1) and cols[1].x1 == pytest.approx(1.8)
    assert cols[0].centre == pytest.approx(0.6)


@pytest.mark.parametrize("style", [FOREST_STYLE, INTERVAL_STYLE])
def test_bands_are_ordered_and_grow_with_rows_and_notes(style):
    b = vertical_bands(style, title=True, head_rows=2, n_rows=10, note_rows=0)
    assert MARGIN_IN < b.top < b.body_top < b.body_bot < b.fav_y < b.fig_h
    assert b.body_bot - b.body_top == pytest.approx(10 * style.row_h)
    assert b.row_centre(0, style.row_h) == pytest.approx(b.body_top + style.row_h / 2)
    more = vertical_bands(style, title=True, head_rows=2, n_rows=11, note_rows=0)
    assert more.fig_h == pytest.approx(b.fig_h + style.row_h)
    notes = vertical_bands(style, title=True, head_rows=2, n_rows=10, note_rows=3)
    assert notes.notes_top > b.fav_y and notes.fig_h > b.fig_h
    untitled = vertical_bands(style, title=False, head_rows=2, n_rows=10)
    assert untitled.title_h == 0 and untitled.fig_h < b.fig_h


def test_lines_below_the_table_push_the_notes_down():
    axis_only = vertical_bands(FOREST_STYLE, title=False, head_rows=2, n_rows=5, note_rows=1)
    lines = vertical_bands(FOREST_STYLE, title=False, head_rows=2, n_rows=5, bottom_rows=6,
                           note_rows=1)
    assert lines.notes_top - axis_only.notes_top > 2 * FOREST_STYLE.row_h


def test_panel_width_makes_room_for_favours_and_titles():
    assert panel_width(2.6, 0.5) == 2.6
    assert panel_width(2.6, 1.5) == pytest.approx(2 * 1.5 + layout.FAVOURS_SPACE_IN)
    assert panel_width(2.6, 0.5, [3.0]) == pytest.approx(3.0 + layout.PANEL_TITLE_SPACE_IN)


def test_canvas_places_text_by_row_centre_and_alignment():
    fig = new_figure(4, 3)
    canvas = TableCanvas(fig, FOREST_STYLE)
    col = Column("x", "", "right", width=1.0, x0=0.5)
    t = canvas.text_in(col, 1.0, "12.5")
    assert t.get_ha() == "right" and t.get_position()[0] == pytest.approx(1.5)
    # the baseline sits below the row centre (inches from the bottom)
    assert t.get_position()[1] == pytest.approx(3 - 1.0 - FOREST_STYLE.baseline)
    assert canvas.text(0.1, 1.0, "") is None  # nothing drawn for an empty cell
    tm = TextMeasure(fig)
    assert tm.width("12.5", FOREST_STYLE.fontsize) > 0


# ----------------------------------------------------------------------------
# pages


def test_a_table_that_fits_is_one_page():
    assert paginate(["study"] * MAX_ROWS_PER_PAGE, tail=1) == [range(0, MAX_ROWS_PER_PAGE)]


def test_pages_keep_the_tail_whole_and_never_exceed_the_limit():
    kinds = ["study"] * 25 + ["total", "events", "pi"]
    pages = paginate(kinds, 10, tail=3)
    assert all(len(p) <= 10 for p in pages)
    assert [i for p in pages for i in p] == list(range(len(kinds)))
    assert list(pages[-1])[-3:] == [25, 26, 27]
    # the tail is never split from the page before it... nor left alone when
    # studies can share its page
    assert len(pages[-1]) > 3


def test_pages_break_at_the_end_of_a_subgroup_and_keep_headers_with_studies():
    block = ["header"] + ["study"] * 3 + ["subtotal", "text", "text", "blank"]
    kinds = block * 6 + ["total"]
    pages = paginate(kinds, 20, tail=1)
    for p in pages[:-1]:
        assert kinds[p.stop - 1] == "blank"       # ends where a subgroup ends
    for p in pages[1:]:
        assert kinds[p.start] != "blank"          # never starts with a blank row
    # no subgroup end in reach: the header moves to the next page
    kinds = ["study"] * 8 + ["header"] + ["study"] * 10 + ["total"]
    pages = paginate(kinds, 9, tail=1)
    assert all(kinds[p.stop - 1] != "header" for p in pages)
    # and a pooled row's text lines are not cut from it
    kinds = ["study"] * 7 + ["subtotal", "text", "text"] + ["study"] * 5 + ["total"]
    pages = paginate(kinds, 9, tail=1)
    assert all(kinds[p.start] not in ("text", "events", "pi") for p in pages)


def test_a_page_holds_at_least_two_rows():
    with pytest.raises(ValueError):
        paginate(["study"] * 5, 1)


@pytest.fixture(scope="module")
def big_forest():
    df = synthetic(300, seed=1, by=["mild", "moderate", "severe"])
    return m.pool(df, measure="MD", by="severity"), arm_data(df)


def test_a_300_study_forest_plot_is_split_into_readable_pages(big_forest, tmp_path):
    res, data = big_forest
    n = forest_page_count(res, study_data=data, prediction=True)
    assert n >= 300 // MAX_ROWS_PER_PAGE + 1
    labels_seen, widths, ticks = [], set(), set()
    one_page_in = None
    for p in range(1, n + 1):
        fig = forest_plot(res, study_data=data, prediction=True, page=p, title="Synthetic")
        ax = next(a for a in fig.axes if a.get_gid() == "forest-panel")
        ticks.add(tuple(t.get_text() for t in ax.get_xticklabels()))
        rows = ax.get_ylim()[0] + 0.5
        assert rows <= MAX_ROWS_PER_PAGE
        [svg] = save_figure(fig, tmp_path / f"p{p}", formats=("svg",))
        texts = svg_texts(svg)
        assert f"Synthetic (page {p} of {n})" in texts
        labels_seen += [t for t in texts if t.startswith("Trial ")]
        last = p == n
        assert ("Total (95% CI)" in texts) == last
        assert any(t.startswith("Test for subgroup differences") for t in texts) == last
        assert ("Prediction interval" in texts) == last
        assert any(t.startswith("Tau\u00b2 estimator") for t in texts)  # notes on every page
        assert "Favours probiotic" in texts
        widths.add(round(fig.get_figwidth(), 9))
        # never drawn small: the table text stays 8 pt and a page stays within
        # what MAX_ROWS_PER_PAGE rows need
        assert all("font-size: 8px" in el.get("style", "") or "font-size: 7.5px" in
                   el.get("style", "") or "font-size: 9px" in el.get("style", "")
                   for el in ET.parse(svg).getroot().iter(f"{SVG}text"))
        if p == 1:
            [png] = save_figure(fig, tmp_path / "p1", formats=("png",), dpi=50)
            w, h = png_size(png)
            assert abs(w - fig.get_figwidth() * 50) < 1 and abs(h - fig.get_figheight() * 50) < 1
            one_page_in = h / 50
    assert sorted(labels_seen) == sorted(s for s in data)  # every study once
    assert len(widths) == 1 and len(ticks) == 1  # the pages line up
    # a full page is no taller than its rows, header, axis band and notes
    assert one_page_in < (MAX_ROWS_PER_PAGE + 2 + 4) * FOREST_STYLE.row_h + 2
    # and the unpaged figure would have been about n times taller
    whole = forest_plot(res, study_data=data, prediction=True)
    assert whole.get_figheight() > (n - 1) * one_page_in * 0.8


def test_a_page_inside_a_subgroup_repeats_its_header(big_forest, tmp_path):
    res, data = big_forest
    fig = forest_plot(res, study_data=data, page=2)
    [svg] = save_figure(fig, tmp_path / "p2", formats=("svg",))
    texts = svg_texts(svg)
    heads = [t for t in texts if t.startswith("Severity: ")]
    assert heads and heads[0].endswith("(continued)")


def test_page_numbers_are_checked(big_forest):
    res, data = big_forest
    n = forest_page_count(res, study_data=data)
    for bad in (0, n + 1):
        with pytest.raises(ValueError, match="page must be"):
            forest_plot(res, study_data=data, page=bad)


def test_a_small_forest_plot_is_one_page_and_page_1_is_the_whole_figure(tmp_path):
    df = synthetic(8, seed=2)
    res = m.pool(df, measure="MD")
    assert forest_page_count(res, study_data=arm_data(df)) == 1
    [a] = save_figure(forest_plot(res, study_data=arm_data(df)), tmp_path / "a", formats=("svg",))
    [b] = save_figure(forest_plot(res, study_data=arm_data(df), page=1), tmp_path / "b",
                      formats=("svg",))
    assert a.read_bytes() == b.read_bytes()


def test_tiny_pages_still_hold_every_row():
    """Even 3 rows a page (2 plus a repeated subgroup header): every study
    once, no page over the limit, the overall result on the last page."""
    res = m.pool(synthetic(9, seed=4, by=["a", "b"]), measure="MD", by="severity")
    n = forest_page_count(res, rows_per_page=3)
    seen = []
    for p in range(1, n + 1):
        fig = forest_plot(res, rows_per_page=3, page=p)
        ax = next(a for a in fig.axes if a.get_gid() == "forest-panel")
        assert ax.get_ylim()[0] + 0.5 <= 3
        texts = [t.get_text() for t in fig.texts]
        seen += [t for t in texts if t.startswith("Trial ")]
        assert ("Total (95% CI)" in texts) == (p == n)
    assert sorted(seen) == sorted(s.study for s in res.overall.studies)
