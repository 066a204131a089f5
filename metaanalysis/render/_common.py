"""Shared helpers for the figures: text measurement, axis ticks, figure
creation and deterministic saving. Numbers are formatted by
:mod:`metaanalysis.render.fmt` alone; tables are laid out by
:mod:`metaanalysis.render.layout`.

Only ``render/`` imports matplotlib. Figures are built with
:class:`matplotlib.figure.Figure` and an Agg canvas directly (never
``pyplot``), so nothing accumulates in pyplot's global figure list.

matplotlib is imported when a figure is drawn, never when this module (or
forest, plots, layout, prisma) is: planning the figures of a run
(render/figures.py) must not cost its import (0.35-0.55 s) when every
figure then comes from the output cache.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metaanalysis.render import fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

#: One font family for every figure: DejaVu Sans ships with matplotlib, so
#: text widths (and therefore the layout) are the same on every machine.
FONT_FAMILY = "DejaVu Sans"

MINUS = fmt.MINUS  # typographic minus, as matplotlib's own tick labels use

#: robvis colours (McGuinness & Higgins 2021, Res Synth Methods 12:55-61).
ROB_COLORS = {
    "low": "#02C100",
    "some_concerns": "#E2DF07",
    "high": "#BF0000",
    "no_information": "#4EA1F7",
}
ROB_LABELS = {
    "low": "Low risk",
    "some_concerns": "Some concerns",
    "high": "High risk",
    "no_information": "No information",
}
#: Symbols inside the traffic-light dots (robvis: +, -, X, ?): as text, and
#: as the matplotlib markers that draw them.
ROB_SYMBOLS = {"low": "+", "some_concerns": MINUS, "high": "\u00d7", "no_information": "?"}
ROB_MARKERS = {"low": "+", "some_concerns": "_", "high": "x", "no_information": "$?$"}

#: The five RoB 2 domains and the overall judgement (Sterne et al. 2019, BMJ 366:l4898).
ROB2_DOMAINS = {
    "D1": "Bias arising from the randomisation process",
    "D2": "Bias due to deviations from intended interventions",
    "D3": "Bias due to missing outcome data",
    "D4": "Bias in measurement of the outcome",
    "D5": "Bias in selection of the reported result",
    "Overall": "Overall risk of bias",
}

#: rcParams that make saved files byte-identical between runs.
DETERMINISTIC_RC = {
    "svg.hashsalt": "metaanalysis",  # ids of clip paths etc. no longer random
    # text stays <text> (searchable, selectable, ~3x faster to write than glyph
    # paths); the report's CSS names the same DejaVu Sans the layout measured
    "svg.fonttype": "none",
    "pdf.fonttype": 42,              # TrueType, not Type 3 (journals ask for this)
    "ps.fonttype": 42,
    "pdf.compression": 6,
}
SAVE_METADATA = {
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
    "png": {"Software": None},
}


# ----------------------------------------------------------------------------
# risk of bias


def rob_level(value: str | None) -> str:
    """Normalise a RoB judgement to one of the keys of :data:`ROB_COLORS`."""
    if value is None:
        return "no_information"
    s = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    aliases = {
        "low": "low", "low_risk": "low", "+": "low",
        "some_concerns": "some_concerns", "some": "some_concerns", "unclear": "some_concerns",
        "moderate": "some_concerns",
        "high": "high", "high_risk": "high", "x": "high",
        "no_information": "no_information", "ni": "no_information", "none": "no_information",
        "?": "no_information", "": "no_information",
    }
    if s not in aliases:
        raise ValueError(f"unknown risk-of-bias judgement {value!r}; expected low, some_concerns, "
                         "high or no_information")
    return aliases[s]


# ----------------------------------------------------------------------------
# axis limits and ticks

_RATIO_TICKS = {
    1.5: (1 / 1.5, 1, 1.5),
    2: (0.5, 0.7, 1, 1.5, 2),
    5: (0.2, 0.5, 1, 2, 5),
    10: (0.1, 0.2, 0.5, 1, 2, 5, 10),
    20: (0.05, 0.2, 1, 5, 20),
    50: (0.02, 0.1, 1, 10, 50),
    100: (0.01, 0.1, 1, 10, 100),
    200: (0.005, 0.1, 1, 10, 200),
    500: (0.002, 0.1, 1, 10, 500),
    1000: (0.001, 0.1, 1, 10, 1000),
}


def nice_limits(extent: float, ratio: bool) -> tuple[tuple[float, float], list[float]]:
    """Symmetric limits around no effect covering ``extent`` (analysis
    scale), with RevMan-like ticks. Returns ((lo, hi), ticks) on the
    display scale."""
    if ratio:
        bound = math.exp(extent)
        for b, ticks in _RATIO_TICKS.items():
            if bound <= b * 1.0001:
                return (1 / b, b), ticks
        e = math.ceil(math.log10(bound))
        return (10.0**-e, 10.0**e), (10.0**-e, 1.0, 10.0**e)
    if not extent > 0:
        extent = 1.0
    e = math.floor(math.log10(extent))
    for m in (1, 2, 4, 5, 10):
        top = m * 10.0**e
        if extent <= top * 1.0001:
            break
    return (-top, top), (-top, -top / 2, 0.0, top / 2, top)


def tick_label(t: float, ratio: bool) -> str:
    if ratio:
        if t < 1:
            s = f"{t:.2g}" if t >= 0.001 else f"{t:g}"
            return s
        return f"{t:g}"
    s = f"{t:g}"
    if "e" in s:
        s = f"{t:.10f}".rstrip("0").rstrip(".")
    return s.replace("-", MINUS)


# ----------------------------------------------------------------------------
# figures and text


class _NoHinting:
    """Switch font hinting off for one text operation.

    With hinting, Agg's glyph advances snap to the pixel grid, so the width
    of a long string changes by several percent between 72, 100, 150 and 300
    dpi. The layout is computed in inches once, so the raster text must have
    the same (unhinted, vector) widths as SVG and PDF at every resolution.
    """

    def __enter__(self):
        import matplotlib

        self.old = matplotlib.rcParams["text.hinting"]
        matplotlib.rcParams["text.hinting"] = "no_hinting"

    def __exit__(self, *exc):
        import matplotlib

        matplotlib.rcParams["text.hinting"] = self.old


@functools.cache
def _agg_classes() -> tuple[type, type]:
    """``(renderer, canvas)``: the Agg renderer and canvas without font hinting.

    Defined on first use, because subclassing them imports matplotlib
    (importing this module must not). The canvas gives every figure the
    renderer whose text widths do not depend on the resolution (see
    :class:`_NoHinting`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg

    class _UnhintedRendererAgg(RendererAgg):
        def get_text_width_height_descent(self, s, prop, ismath):
            with _NoHinting():
                return super().get_text_width_height_descent(s, prop, ismath)

        def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            with _NoHinting():
                return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    class FigureCanvas(FigureCanvasAgg):
        """An Agg canvas whose text widths do not depend on the resolution
        (see :class:`_NoHinting`)."""

        def get_renderer(self) -> RendererAgg:
            """The canvas's renderer, one without font hinting (see :class:`_NoHinting`)."""
            w, h = self.get_width_height(physical=True)
            key = w, h, self.figure.dpi
            if getattr(self, "_lastKey", None) != key or not isinstance(
                    getattr(self, "renderer", None), _UnhintedRendererAgg):
                self.renderer = _UnhintedRendererAgg(w, h, self.figure.dpi)
                self._lastKey = key
            return self.renderer

    return _UnhintedRendererAgg, FigureCanvas


def new_figure(width: float = 6.0, height: float = 4.0, dpi: float = 100) -> Figure:
    """A Figure with its own Agg canvas (no pyplot state)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    _agg_classes()[1](fig)
    return fig


# ----------------------------------------------------------------------------
# text metrics, measured once per process
#
# Measuring a string (FreeType laying out its glyphs, ~0.3 ms) was a third of
# the CPU of drawing the figures: each string is measured by TextMeasure while
# a figure is built, and again by the SVG (or Agg, PDF) renderer while it is
# saved. matplotlib's own cache of text metrics is kept per renderer
# instance, and every figure and every savefig makes new renderers, so the
# study labels, numbers and notes that recur on a protocol's ten forest
# plots were measured anew each time (9,271 measurements of 2,822 distinct
# ones for the bundled figures). The memo below is shared by every figure of
# the process (a forked worker inherits the parent's).
#
# A measurement is a function of the renderer's class (our unhinted Agg, SVG,
# PDF: each measures its own way), its resolution, the text, the font
# properties, whether it is mathtext, and the rcParams that choose or scale
# the glyphs (font.*: family lists and defaults; text.hinting,
# text.hinting_factor, text.kerning_factor, text.usetex, text.latex.*;
# mathtext.*; pdf.use14corefonts and ps.useafm: AFM metrics instead of
# TrueType). All of it is the key, so a hit returns exactly what the renderer
# would compute and the files stay byte-identical.


#: rcParams (by prefix, plus the names) that change a measured text extent;
#: more than needed (text.color) only costs a miss when they change.
_METRIC_RC_PREFIXES = ("font.", "text.", "mathtext.")
_METRIC_RC_NAMES = ("pdf.use14corefonts", "ps.useafm")

#: Memo entries before it is emptied: ~250 bytes each, so at most ~25 MB a
#: drawing process (a run of 10,000 trials measures a few hundred thousand
#: strings; the recurring ones come back after an emptying).
TEXT_METRICS_MAX = 100_000


class _TextMetrics:
    """The process-wide memo of text extents (see the notes above)."""

    def __init__(self) -> None:
        self.memo: dict = {}
        self._props: dict = {}  # one frozen copy per distinct FontProperties
        self._rc_names: tuple[str, ...] | None = None
        self._rc_seen: list[tuple] = []  # rcParams value tuples; the index is the key
        self._rc_last: tuple | None = None
        self._rc_last_id = -1

    def _rc_state(self) -> int:
        """A small int naming the current values of the metric rcParams.

        The values (font lists among them) are compared, not hashed: the
        same objects stand in rcParams between two calls, so the comparison
        is a few identity checks.
        """
        import matplotlib

        rc = matplotlib.rcParams
        if self._rc_names is None:
            self._rc_names = tuple(sorted(k for k in rc if k.startswith(_METRIC_RC_PREFIXES)
                                          or k in _METRIC_RC_NAMES))
        values = tuple(map(functools.partial(dict.__getitem__, rc), self._rc_names))
        if values != self._rc_last:
            # rc_context() restores copies of the values, so compare with every
            # state seen; each is kept as a copy (a font list edited in place
            # is a new state)
            for i, seen in enumerate(self._rc_seen):
                if seen == values:
                    break
            else:
                import copy

                self._rc_seen.append(copy.deepcopy(values))
                i = len(self._rc_seen) - 1
            self._rc_last, self._rc_last_id = self._rc_seen[i], i
        return self._rc_last_id

    def get(self, renderer: Any, text: str, prop: FontProperties, ismath: Any,
            dpi: float) -> tuple[float, float, float]:
        """``renderer.get_text_width_height_descent(text, prop, ismath)``, memoised."""
        # a MixedModeRenderer (SVG, PDF) hands the call to the renderer it wraps
        measure = renderer.get_text_width_height_descent
        owner = getattr(measure, "__self__", renderer)
        # FontProperties is mutable: the key holds a copy (as matplotlib's own
        # cache does), one per distinct value, never changed
        frozen = self._props.get(prop)
        if frozen is None:
            frozen = prop.copy()
            self._props[frozen] = frozen
        key = (type(owner), owner.points_to_pixels(72.0), dpi, text, frozen, ismath,
               self._rc_state())
        hit = self.memo.get(key)
        if hit is None:
            hit = measure(text, prop, ismath)
            if len(self.memo) >= TEXT_METRICS_MAX:
                self.memo.clear()
                self._props.clear()
            self.memo[key] = hit
        return hit


_TEXT_METRICS = _TextMetrics()


def _cached_text_metrics(renderer: Any, text: str, fontprop: FontProperties, ismath: Any,
                         dpi: float) -> tuple[float, float, float]:
    """Stands in for ``matplotlib.text._get_text_metrics_with_cache`` (same arguments)."""
    return _TEXT_METRICS.get(renderer, text, fontprop, ismath, dpi)


@contextlib.contextmanager
def shared_text_metrics() -> Iterator[None]:
    """Within: every Text that matplotlib lays out is measured through the
    process-wide memo (see the notes above), not per renderer.

    matplotlib's ``text._get_text_metrics_with_cache`` (a private function,
    replaced the same way by matplotlib's own test fixtures) is swapped for
    the memo and restored on exit. Re-entrant; not thread-safe (figures are
    drawn in processes, one at a time each). Without that function (another
    matplotlib) it does nothing: texts are measured as before.
    """
    import matplotlib.text as mtext

    original = getattr(mtext, "_get_text_metrics_with_cache", None)
    if original is None or original is _cached_text_metrics:
        yield
        return
    mtext._get_text_metrics_with_cache = _cached_text_metrics
    try:
        yield
    finally:
        mtext._get_text_metrics_with_cache = original


class TextMeasure:
    """Measure text extents in inches with an Agg renderer.

    Text is measured without mathtext (study labels may contain ``$``), the
    same way it is drawn (``parse_math=False``), through the process-wide
    memo of text metrics (see :func:`shared_text_metrics`).
    """

    def __init__(self, fig: Figure, family: str = FONT_FAMILY):
        self.fig = fig
        self.family = family
        self.renderer = fig.canvas.get_renderer()
        self._cache: dict = {}

    def props(self, size: float, bold: bool = False, italic: bool = False) -> FontProperties:
        from matplotlib.font_manager import FontProperties

        return FontProperties(family=self.family, size=size, weight="bold" if bold else "normal",
                              style="italic" if italic else "normal")

    def width(self, s: str, size: float, bold: bool = False, italic: bool = False) -> float:
        if not s:
            return 0.0
        key = (s, size, bold, italic)
        if key not in self._cache:
            w, _h, _d = _TEXT_METRICS.get(self.renderer, s, self.props(size, bold, italic),
                                          False, self.fig.dpi)
            self._cache[key] = w / self.fig.dpi
        return self._cache[key]

    def fit(self, s: str, max_width: float, size: float, bold: bool = False,
            italic: bool = False) -> str:
        """``s`` itself if it fits in ``max_width`` inches, else the longest
        prefix that fits with an ellipsis appended."""
        if self.width(s, size, bold, italic) <= max_width:
            return s
        lo, hi = 0, len(s)
        while lo < hi:  # longest prefix whose "prefix…" fits
            mid = (lo + hi + 1) // 2
            if self.width(s[:mid].rstrip() + "\u2026", size, bold, italic) <= max_width:
                lo = mid
            else:
                hi = mid - 1
        return s[:lo].rstrip() + "\u2026"

    def wrap(self, s: str, max_width: float, size: float, bold: bool = False) -> list[str]:
        """Greedy word wrap to ``max_width`` inches; over-long words are cut
        with an ellipsis."""
        lines: list[str] = []
        cur = ""
        for word in s.split():
            trial = f"{cur} {word}" if cur else word
            if self.width(trial, size, bold) <= max_width or not cur:
                cur = trial
            else:
                lines.append(cur)
                cur = word
        if cur:
            lines.append(cur)
        return [self.fit(line, max_width, size, bold) for line in lines] or [""]


def save_figure(fig: Figure, path_stem: str | Path, formats: Sequence[str] = ("svg", "png", "pdf"),
                dpi: float = 300) -> list[Path]:
    """Write ``fig`` as ``path_stem.<fmt>`` for each format; return the paths.

    The files are deterministic: no dates and no software versions in the
    metadata, a fixed SVG hash salt (ids of clip paths), TrueType fonts in
    PDF. Saving the same figure twice gives byte-identical files.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path_stem : str or Path
        Path without the extension; parent directories are created.
    formats : sequence of {"svg", "png", "pdf"}
    dpi : float
        Resolution of raster output (PNG); vector formats ignore it.
    """
    import matplotlib

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in formats:
        ext = ext.lower().lstrip(".")
        if ext not in SAVE_METADATA:
            raise ValueError(f"unknown figure format {ext!r}; expected svg, png or pdf")
        path = stem.with_name(stem.name + "." + ext)
        # the date keys are removed explicitly, so SOURCE_DATE_EPOCH or the
        # clock cannot leak into the file
        with matplotlib.rc_context(DETERMINISTIC_RC), shared_text_metrics():
            fig.savefig(path, format=ext, dpi=dpi, metadata=SAVE_METADATA[ext],
                        facecolor="white")
        out.append(path)
    return out

