"""The one table layout of every row-based figure: forest plots, leave-one-out
and cumulative plots.

A row-based figure is a table laid out in inches from the top of the figure:
an optional title, header rows, one body row per study or pooled result, an
interval panel (one matplotlib Axes whose y data coordinate is the row index,
so squares, diamonds and text rows line up), an axis band with the favours
labels, lines below the table and wrapped footnotes. This module holds

* the named sizes of that table (:class:`TableStyle` and the module
  constants, each with its reason),
* the row and column models (:class:`Row`, :class:`Column`,
  :func:`place_columns`),
* the vertical bands (:class:`Bands`, :func:`vertical_bands`),
* text placement in inches (:class:`TableCanvas`),
* the interval panel's axes set-up (:func:`interval_panel`), its limits in
  inches (:func:`panel_x`) and the favours labels (:func:`put_favours`),
* splitting a table that is too long for one page (:func:`paginate`,
  :data:`MAX_ROWS_PER_PAGE`).

It measures and places; what goes in a cell is decided by the figure modules
(:mod:`~metaanalysis.render.forest`, :mod:`~metaanalysis.render.plots`), and
every number is formatted by :mod:`~metaanalysis.render.fmt`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from metaanalysis.render._common import FONT_FAMILY, TextMeasure, tick_label

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (render/_common.py)
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.text import Text

__all__ = [
    "MARGIN_IN", "PAD_EM", "MAX_ROWS_PER_PAGE", "FOREST_STYLE", "INTERVAL_STYLE", "TableStyle",
    "Row", "Column", "place_columns", "Bands", "vertical_bands", "TableCanvas", "wrap_notes",
    "panel_width", "auto_ticks", "panel_x", "interval_panel", "put_favours", "paginate",
]

# ----------------------------------------------------------------------------
# named sizes (inches unless the name says pt or em; an em is the font size)

#: White border around the table: keeps the outermost text off the edge of
#: the page when the figure is placed without a frame.
MARGIN_IN = 0.12
#: Added to every measured column width: the Agg text extents are exact, and
#: a cell exactly as wide as its text would touch its neighbour's text.
PAD_EM = 0.35
#: Height of the cap-height centre above the baseline: text is placed on its
#: baseline this far below the row's centre, so it looks centred in the row.
BASELINE_EM = 0.36
#: Height of the title row, in units of the title's font size: room for the
#: title and a gap before the header rows.
TITLE_ROW_EM = 1.9
#: The title is one point larger than the table text (a title, not a shout).
TITLE_SIZE_STEP = 1.0
#: Footnotes are half a point smaller than the table text and their lines
#: 0.92 rows apart: they read as notes and do not dominate a long figure.
NOTE_SIZE_STEP = -0.5
NOTE_LINE_ROWS = 0.92
#: Tick marks of the interval panel point outwards this long and their labels
#: sit this far below them (matplotlib's defaults, written down because the
#: axis band below the table is computed from them).
TICK_LENGTH_PT = 3.0
TICK_PAD_PT = 2.5
#: Height of a tick label's line, in ems (ascenders and descenders).
TICK_LABEL_EM = 1.25
#: The favours labels sit this many rows below the tick labels (centre), and
#: the axis band ends this many rows below that centre.
FAVOURS_ROW_OFFSET = 0.55
FAVOURS_BAND_END = 0.6
#: Gap between no effect and the favours labels either side of it.
FAVOURS_GAP_IN = 0.06
#: The panel is at least twice the wider favours label plus this, so the two
#: labels never touch at no effect.
FAVOURS_SPACE_IN = 0.3
#: A title over the panel gets this much air either side.
PANEL_TITLE_SPACE_IN = 0.1
#: Line widths (points): the panel's axis, ticks, CI lines and no-effect line
#: share one width; the header rule is a little lighter, in grey, so it
#: separates the header without competing with the data.
LINE_WIDTH_PT = 0.8
RULE_WIDTH_PT = 0.7
RULE_COLOR = "#555555"
#: Half the height of a diamond, in rows: 0.68 of a row, so diamonds of
#: adjacent rows never touch.
DIAMOND_HALF_ROWS = 0.34

#: The most table rows one figure (page) holds. At the default 8 pt a forest
#: row is 12.4 pt (1.55 em), so 70 rows are 12.1 in of table and a full page
#: with header, axis band and a few footnotes is about 13.5 in tall: scaled
#: into the 10.5 in between an A4 page's 15 mm margins, its 8 pt text prints
#: at about 6 pt, the smallest we let a figure's text become. A table with
#: more rows is split into pages (:func:`paginate`) rather than scaled below
#: that. The largest bundled forest plot has 63 rows (one page).
MAX_ROWS_PER_PAGE = 70


@dataclass(frozen=True)
class TableStyle:
    """Font size and spacing of one kind of row-based figure.

    Parameters
    ----------
    fontsize : float
        Points; every table text uses it (title and notes step from it).
    row_em : float
        Row height in ems: 1.55 em leaves a clear gap between two rows of
        text and room for a study square of 0.82 of a row.
    col_gap_em : float
        Gap between two columns, in ems.
    group_gap_factor : float
        Gap between two column groups (arm, effect, free columns), as a
        multiple of the column gap: groups must read as groups.
    notes_gap_rows : float
        Space between what is above the footnotes and the footnotes, in rows.
    tick_overhang_in : float or None
        Room left and right of the panel for half a tick label. None measures
        the widest tick label; a number reserves that many inches.
    arithmetic : {"forest", "interval"}
        The order in which :func:`vertical_bands` adds up the same sizes.
        The two orders agree to about 1e-15 in, but an SVG names the panel's
        clip path by a hash of its exact coordinates, so each kind of figure
        keeps the order its committed files were drawn with ("interval" has
        no lines below the table). Make them one when outputs may change.
    """

    fontsize: float = 8.0
    row_em: float = 1.55
    col_gap_em: float = 0.9
    group_gap_factor: float = 1.6
    notes_gap_rows: float = 0.3
    tick_overhang_in: float | None = None
    arithmetic: str = "forest"

    @property
    def row_h(self) -> float:
        """Inches per table row."""
        return self.fontsize * self.row_em / 72

    @property
    def col_gap(self) -> float:
        return self.fontsize * self.col_gap_em / 72

    @property
    def pad(self) -> float:
        return self.fontsize * PAD_EM / 72

    @property
    def baseline(self) -> float:
        return BASELINE_EM * self.fontsize / 72

    def with_fontsize(self, fontsize: float) -> "TableStyle":
        """The same style at another font size (every size scales with it)."""
        return dataclasses.replace(self, fontsize=fontsize)


#: Forest plots (RevMan's layout): two header rows, many columns in groups.
FOREST_STYLE = TableStyle()
#: Leave-one-out and cumulative plots: one header row and few columns, so the
#: rows are a little taller (1.6 em), the gaps wider (1.2 em) and a fixed
#: 0.2 in either side of the panel holds half a tick label. (These differ
#: from the forest plot's for no deeper reason than history; they are kept
#: because the committed figures are pinned byte for byte.)
INTERVAL_STYLE = TableStyle(row_em=1.6, col_gap_em=1.2, notes_gap_rows=0.2,
                            tick_overhang_in=0.2, arithmetic="interval")


# ----------------------------------------------------------------------------
# rows and columns


@dataclass
class Row:
    """One body row of the table.

    ``kind`` is one of "header" (a subgroup's title), "study", "subtotal",
    "total", "events", "pi" (prediction interval), "text" or "blank";
    :func:`paginate` breaks pages by it. ``cells`` maps column keys to text,
    ``effect`` holds the effect as three right-aligned parts
    ``(est, "[lb,", "ub]")`` or one text (``("Not estimable",)``), and
    ``draw`` what the panel draws on the row: ``("square", yi, lb, ub,
    weight)``, ``("diamond", est, lb, ub, kind)``, ``("pi", lb, ub)`` or
    ``("point", est, lb, ub)`` (analysis scale).
    """

    kind: str
    label: str = ""
    bold: bool = False
    italic: bool = False
    span: bool = False  # the label spans the whole left region
    cells: dict = field(default_factory=dict)
    effect: tuple = ()
    draw: tuple | None = None



@dataclass
class Column:
    """One column of the table: its text alignment and, once placed, its
    left edge ``x0`` and ``width`` (inches from the figure's left edge).

    ``group`` joins columns under one group header (an arm's name, the
    effect); ``cap`` is the most width it may claim (longer cells get an
    ellipsis).
    """

    key: str
    title: str
    align: str  # left | right | center
    group: str | None = None
    cap: float | None = None
    width: float = 0.0
    x0: float = 0.0

    @property
    def x1(self) -> float:
        return self.x0 + self.width

    @property
    def centre(self) -> float:
        return (self.x0 + self.x1) / 2


def place_columns(cols: Sequence[Column], x0: float,
                  gap_before: Callable[[Column, Column], float]) -> float:
    """Set each column's ``x0`` left to right from ``x0``; return the right
    edge of the last column. ``gap_before(prev, cur)`` is the gap between two
    neighbours."""
    x = x0
    for prev, c in zip([None, *cols[:-1]], cols):
        if prev is not None:
            x += gap_before(prev, c)
        c.x0 = x
        x += c.width
    return x


# ----------------------------------------------------------------------------
# vertical bands


@dataclass(frozen=True)
class Bands:
    """Where the parts of the table are, in inches from the top."""

    title_h: float    #: height of the title row (0 without a title)
    top: float        #: top of the header rows
    body_top: float   #: top of the first body row (the header rule)
    body_bot: float   #: bottom of the last body row (the panel's axis)
    fav_y: float      #: centre of the favours labels
    notes_top: float  #: top of the first footnote line
    fig_h: float      #: height of the figure

    def row_centre(self, i: int, row_h: float) -> float:
        return self.body_top + (i + 0.5) * row_h


def vertical_bands(style: TableStyle, *, title: bool, head_rows: int, n_rows: int,
                   bottom_rows: int = 0, note_rows: int = 0) -> Bands:
    """The vertical layout of a table of ``n_rows`` body rows.

    Below the body: the axis band (tick marks, tick labels, favours labels);
    ``bottom_rows`` lines of text (heterogeneity, tests) beside it, whichever
    is taller; then ``note_rows`` footnote lines.
    """
    fs, row_h = style.fontsize, style.row_h
    title_h = (fs + TITLE_SIZE_STEP) * TITLE_ROW_EM / 72 if title else 0.0
    top = MARGIN_IN + title_h
    body_top = top + head_rows * row_h
    body_bot = body_top + n_rows * row_h
    tick_h = fs * TICK_LABEL_EM / 72
    if style.arithmetic == "interval":
        # the same sizes summed in another order (see TableStyle.arithmetic)
        fav_y = (body_bot + (TICK_LENGTH_PT + TICK_PAD_PT) / 72 + tick_h
                 + FAVOURS_ROW_OFFSET * row_h)
        fig_h = fav_y + FAVOURS_BAND_END * row_h + MARGIN_IN
        notes_top = fig_h - MARGIN_IN + style.notes_gap_rows * row_h
        fig_h += note_rows * row_h * NOTE_LINE_ROWS + (style.notes_gap_rows * row_h
                                                        if note_rows else 0)
        return Bands(title_h, top, body_top, body_bot, fav_y, notes_top, fig_h)
    fav_y = (body_bot + TICK_LENGTH_PT / 72 + TICK_PAD_PT / 72 + tick_h
             + FAVOURS_ROW_OFFSET * row_h)
    axis_band = fav_y + FAVOURS_BAND_END * row_h - body_bot
    bottom_band = max(axis_band, bottom_rows * row_h + 0.25 * row_h)
    notes_top = body_bot + bottom_band + (style.notes_gap_rows * row_h if note_rows else 0)
    fig_h = notes_top + note_rows * row_h * NOTE_LINE_ROWS + MARGIN_IN
    return Bands(title_h, top, body_top, body_bot, fav_y, notes_top, fig_h)


# ----------------------------------------------------------------------------
# text


class TableCanvas:
    """Places text and rules on a figure in inches measured from the top.

    Parameters
    ----------
    fig : Figure
        Already sized (its height is the origin of "from the top").
    style : TableStyle
    """

    def __init__(self, fig: Figure, style: TableStyle):
        self.fig = fig
        self.style = style
        self.fig_w, self.fig_h = fig.get_size_inches()

    def y(self, y_from_top: float) -> float:
        """Inches from the top -> figure inches from the bottom."""
        return self.fig_h - y_from_top

    def text(self, x: float, yc: float, s: str, ha: str = "left", *, bold: bool = False,
             italic: bool = False, size: float | None = None, color: str = "black",
             gid: str | None = None) -> Text | None:
        """Write ``s`` centred on the row centre ``yc`` (nothing for "")."""
        if not s:
            return None
        st = self.style
        return self.fig.text(x, self.y(yc) - st.baseline, s, transform=self.fig.dpi_scale_trans,
                             ha=ha, va="baseline", fontsize=size or st.fontsize,
                             family=FONT_FAMILY, fontweight="bold" if bold else "normal",
                             fontstyle="italic" if italic else "normal", color=color,
                             parse_math=False, gid=gid)

    def text_in(self, col: Column, yc: float, s: str, *, bold: bool = False,
                italic: bool = False) -> Text | None:
        """Write ``s`` in ``col`` with the column's alignment."""
        if col.align == "left":
            return self.text(col.x0, yc, s, "left", bold=bold, italic=italic)
        if col.align == "right":
            return self.text(col.x1, yc, s, "right", bold=bold, italic=italic)
        return self.text(col.centre, yc, s, "center", bold=bold, italic=italic)

    def title(self, s: str, tm: TextMeasure, bands: Bands) -> None:
        """The title line, cut to the figure's width."""
        size = self.style.fontsize + TITLE_SIZE_STEP
        inner = self.fig_w - 2 * MARGIN_IN
        self.text(MARGIN_IN, MARGIN_IN + bands.title_h / 2, tm.fit(s, inner, size, True),
                  bold=True, size=size)

    def rule(self, x0: float, x1: float, y_from_top: float, *, lift: float = 0.0,
             lw: float = RULE_WIDTH_PT, color: str = RULE_COLOR, gid: str | None = None) -> None:
        """A horizontal line ``lift`` inches above ``y_from_top``."""
        from matplotlib.lines import Line2D

        yy = self.y(y_from_top) + lift
        self.fig.add_artist(Line2D([x0, x1], [yy, yy], transform=self.fig.dpi_scale_trans,
                                   lw=lw, color=color, gid=gid))

    def notes(self, lines: Sequence[str], top: float, gid: str | None = None) -> None:
        """Footnote lines (already wrapped) from ``top`` down."""
        row_h = self.style.row_h
        for j, s in enumerate(lines):
            self.text(MARGIN_IN, top + (j + 0.5) * row_h * NOTE_LINE_ROWS, s,
                      size=self.style.fontsize + NOTE_SIZE_STEP, gid=gid)


def wrap_notes(notes: Sequence[str], tm: TextMeasure, width: float, style: TableStyle) -> list[str]:
    """Footnotes wrapped to ``width`` inches at the notes' font size."""
    lines: list[str] = []
    for note in notes:
        lines += tm.wrap(note, width, style.fontsize + NOTE_SIZE_STEP)
    return lines


# ----------------------------------------------------------------------------
# the interval panel


def panel_width(plot_width: float, favours_w: float, titles_w: Sequence[float] = ()) -> float:
    """The panel's width: at least ``plot_width``, room for both favours
    labels (``favours_w`` is the wider one) and for the titles over it."""
    return max(plot_width, 2 * favours_w + FAVOURS_SPACE_IN,
               *[w + PANEL_TITLE_SPACE_IN for w in titles_w])


def auto_ticks(lo: float, hi: float, ratio: bool) -> list[float]:
    """Ticks for limits the caller chose: 1-2-5 on a ratio axis, else about 5."""
    from matplotlib.ticker import LogLocator, MaxNLocator

    loc = LogLocator(base=10, subs=(1.0, 2.0, 5.0)) if ratio else MaxNLocator(5)
    return [t for t in loc.tick_values(lo, hi) if lo <= t <= hi]


def panel_x(v: float, lo: float, hi: float, x0: float, width: float, ratio: bool) -> float:
    """Inches from the figure's left edge of the display-scale value ``v`` on
    a panel from ``x0`` that is ``width`` wide and shows ``lo`` to ``hi``."""
    f = math.log if ratio else (lambda t: t)
    return x0 + (f(v) - f(lo)) / (f(hi) - f(lo)) * width


def interval_panel(fig: Figure, canvas: TableCanvas, bands: Bands, *, x0: float, width: float,
                   n_rows: int, lo: float, hi: float, ratio: bool, ticks: Sequence[float],
                   null: float, null_color: str = "black", gid: str | None = None) -> Axes:
    """The axes of the intervals: no frame but the bottom axis, one row per
    y unit (row 0 at the top), ticks with the house labels, and the line of
    no effect."""
    from matplotlib.ticker import NullLocator

    st = canvas.style
    fig_w, fig_h = canvas.fig_w, canvas.fig_h
    ax = fig.add_axes([x0 / fig_w, canvas.y(bands.body_bot) / fig_h, width / fig_w,
                       n_rows * st.row_h / fig_h])
    if gid:
        ax.set_gid(gid)
    if ratio:
        ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(n_rows - 0.5, -0.5)
    ax.patch.set_visible(False)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_linewidth(LINE_WIDTH_PT)
    ax.set_yticks([])
    ax.set_xticks(ticks, [tick_label(t, ratio) for t in ticks], fontsize=st.fontsize,
                  family=FONT_FAMILY)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis="x", direction="out", length=TICK_LENGTH_PT, width=LINE_WIDTH_PT,
                   pad=TICK_PAD_PT)
    ax.axvline(null, color=null_color, lw=LINE_WIDTH_PT, zorder=1, gid="null-line")
    return ax


def put_favours(canvas: TableCanvas, tm: TextMeasure, favours: tuple[str, str], *, x0: float,
                width: float, lo: float, hi: float, ratio: bool, null: float, y: float) -> None:
    """The favours labels either side of no effect, each kept inside the
    panel even when no effect is off-centre (or off the axis)."""
    fs = canvas.style.fontsize
    x1 = x0 + width
    x_null = panel_x(null, lo, hi, x0, width, ratio) if lo < null < hi else (x0 + x1) / 2
    left_x = max(x_null - FAVOURS_GAP_IN, x0 + tm.width(favours[0], fs))
    right_x = min(x_null + FAVOURS_GAP_IN, x1 - tm.width(favours[1], fs))
    canvas.text(left_x, y, favours[0], "right", gid="favours-left")
    canvas.text(right_x, y, favours[1], "left", gid="favours-right")


# ----------------------------------------------------------------------------
# pages


#: Rows that belong to the row above them (a pooled row's events, prediction
#: interval and test lines): a page does not start with one.
_FOLLOWERS = frozenset({"events", "pi", "text"})


def paginate(kinds: Sequence[str], max_rows: int = MAX_ROWS_PER_PAGE, *,
             tail: int = 0) -> list[range]:
    """Split table rows into pages of at most ``max_rows`` rows.

    Parameters
    ----------
    kinds : sequence of str
        The kind of each row ("header", "study", "subtotal", "text", "blank",
        "total", ...). A page breaks after a "blank" row (the end of a
        subgroup) when one lies in the last third of the page, else after
        any row but never right after a "header" row nor before the
        events, prediction-interval or text rows of a pooled row; a page
        never starts with a "blank" row.
    max_rows : int
        Rows per page (at least 2).
    tail : int
        The last ``tail`` rows (the overall result) stay together on the
        last page.

    Returns
    -------
    list of range
        Row indices of each page; one page when everything fits.

    Examples
    --------
    >>> paginate(["study"] * 5, 3, tail=1)
    [range(0, 3), range(3, 5)]
    """
    if max_rows < 2:
        raise ValueError("a page holds at least 2 rows")
    n = len(kinds)
    if n <= max_rows:
        return [range(0, n)]
    tail = min(tail, max_rows, n)
    pages: list[range] = []
    start = 0
    while n - start > max_rows:
        # never past the tail: it goes whole onto the last page
        end = min(start + max_rows, n - tail)
        blanks = [i + 1 for i in range(start + (2 * max_rows) // 3, end) if kinds[i] == "blank"]
        cut = blanks[-1] if blanks else end
        if not blanks:
            # a subgroup header goes with its first study; a pooled row's
            # events, prediction interval and test lines go with it
            while cut - 1 > start and (kinds[cut - 1] == "header" or kinds[cut] in _FOLLOWERS):
                cut -= 1
        pages.append(range(start, cut))
        start = cut
        while start < n and kinds[start] == "blank":
            start += 1
    if start < n:
        pages.append(range(start, n))
    return pages
