"""PRISMA 2020 flow diagram of the study files of one protocol run.

The counts come from the fate of every study file (``results.json``'s
``studies``: id, purpose, status, reason) and the comparisons analysed; the
diagram draws them in the layout of the PRISMA 2020 flow diagram for new
systematic reviews (Page et al. 2021, BMJ 372:n71, figure 1): phase bands on
the left (Identification, Screening, Included), the main boxes in one column,
and the records removed at each step in boxes to the right, with reasons.

Here a "record" is a study file of the evidence base (one per trial; see
``studies/PRISMA.md`` for how the evidence pack's rows became files), so the
diagram starts where ``studies/`` starts.

Artists carry gids for tests: ``prisma-box`` (FancyBboxPatch), ``prisma-arrow``
and ``prisma-phase``; every text is a Text.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing import TYPE_CHECKING

from metaanalysis.render._common import FONT_FAMILY, TextMeasure, new_figure

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn (render/_common.py)
    from matplotlib.figure import Figure

__all__ = ["flow_counts", "exclusion_category", "prisma_flow"]

#: PRISMA 2020's phase colour (the template's light blue bands).
PHASE_COLOR = "#C9DDF2"
BOX_EDGE = "#333333"


def exclusion_category(reason: str | None) -> str:
    """The reason a study file was not analysed, grouped as the report's table groups it."""
    reason = reason or ""
    if reason.startswith("excluded in its file"):
        return "Excluded at extraction"
    if reason.startswith("flag(s)"):
        return "Excluded by a protocol flag rule"
    if reason.startswith("no usable data"):
        return "No usable data for this outcome"
    if reason.startswith(("design", "age group", "comparator", "no intervention")):
        return "Not eligible (design, age group or comparator)"
    return "Other reason"


def flow_counts(studies: Sequence[dict], purpose: str, n_comparisons: int) -> dict:
    """The numbers of the diagram from the studies' fates.

    Parameters
    ----------
    studies : sequence of dict
        One per study file: ``id``, ``purpose``, ``status`` ("analysed" or
        not), ``reason``.
    purpose : str
        The protocol's question ("treatment", "prevention").
    n_comparisons : int
        Comparisons in the main analysis (a multi-arm trial may give several).

    Returns
    -------
    dict
        ``records``, ``other_question`` (with ``other_purposes``), ``screened``,
        ``not_analysed`` and ``reasons`` ({category: n}), ``analysed``,
        ``comparisons``.
    """
    studies = list(studies)
    this = [s for s in studies if s.get("purpose") == purpose]
    other = [s for s in studies if s.get("purpose") != purpose]
    excluded = [s for s in this if s.get("status") != "analysed"]
    reasons: dict[str, int] = {}
    for s in excluded:
        c = exclusion_category(s.get("reason"))
        reasons[c] = reasons.get(c, 0) + 1
    return {
        "records": len(studies), "other_question": len(other),
        "other_purposes": sorted({s.get("purpose") or "unknown" for s in other}),
        "screened": len(this), "not_analysed": len(excluded),
        "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "analysed": len(this) - len(excluded), "comparisons": int(n_comparisons),
        "purpose": purpose,
    }


def prisma_flow(counts: dict, *, title: str | None = None, fontsize: float = 8.5) -> Figure:
    """Draw the PRISMA 2020 flow diagram of :func:`flow_counts`' numbers.

    Returns
    -------
    matplotlib.figure.Figure
        Sized in inches to its text; save it with ``save_figure``.
    """
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    fig = new_figure()
    tm = TextMeasure(fig)
    fs = fontsize
    line_h = fs * 1.45 / 72
    pad = 0.1
    margin = 0.15
    band_w = 0.32
    gap_x = 0.45   # between the main column and the side boxes
    gap_y = 0.32   # between rows of boxes (room for the arrows)
    c = counts
    other = ", ".join(c.get("other_purposes") or []) or "other"

    phases = ["Identification", "Screening", "Included"]
    main = [
        ["Study files in the evidence base", f"(n = {c['records']})"],
        [f"Study files for this question ({c['purpose']})", f"(n = {c['screened']})"],
        ["Trials included in the meta-analysis", f"(n = {c['analysed']})",
         f"Comparisons in the main analysis (n = {c['comparisons']})"],
    ]
    side = [
        ["Removed before screening:", f"another question ({other})", f"(n = {c['other_question']})"],
        [f"Not analysed (n = {c['not_analysed']}):"]
        + [f"{name} (n = {n})" for name, n in c["reasons"].items()],
        None,
    ]
    def box_size(lines):
        w = max(tm.width(s, fs) for s in lines) + 2 * pad
        return w, len(lines) * line_h + 2 * pad * 0.8

    main_w = max(box_size(b)[0] for b in main)
    side_w = max(box_size(b)[0] for b in side if b)
    # a phase band is as tall as its rotated label needs
    heights = [max(box_size(m)[1], box_size(s)[1] if s else 0, tm.width(ph, fs, True) + 0.2)
               for m, s, ph in zip(main, side, phases)]
    title_h = (fs + 2) * 2.0 / 72 if title else 0.0
    x_main = margin + band_w + 0.2
    x_side = x_main + main_w + gap_x
    fig_w = x_side + side_w + margin
    fig_h = margin + title_h + sum(heights) + gap_y * (len(heights) - 1) + margin
    fig.set_size_inches(fig_w, fig_h)
    tr = fig.dpi_scale_trans

    def Y(y_top):  # inches from the top -> from the bottom
        return fig_h - y_top

    def draw_box(x0, y_top, w, h, lines, bold_first=False):
        fig.add_artist(FancyBboxPatch((x0, Y(y_top + h)), w, h, boxstyle="square,pad=0",
                                      transform=tr, facecolor="white", edgecolor=BOX_EDGE, lw=0.8,
                                      gid="prisma-box"))
        block_h = len(lines) * line_h
        y0 = y_top + (h - block_h) / 2
        for j, s in enumerate(lines):
            fig.text(x0 + w / 2 if not bold_first or j == 0 else x0 + pad,
                     Y(y0 + (j + 0.5) * line_h), s, transform=tr, fontsize=fs,
                     family=FONT_FAMILY, ha="center" if not bold_first or j == 0 else "left",
                     va="center", parse_math=False,
                     fontweight="bold" if bold_first and j == 0 else "normal")

    def arrow(p, q):
        fig.add_artist(FancyArrowPatch(p, q, transform=tr, arrowstyle="-|>", mutation_scale=9,
                                       lw=0.8, color=BOX_EDGE, gid="prisma-arrow",
                                       shrinkA=0, shrinkB=0))

    if title:
        fig.text(margin, Y(margin + title_h / 2), title, transform=tr, fontsize=fs + 1,
                 family=FONT_FAMILY, fontweight="bold", va="center", parse_math=False)
    y = margin + title_h
    tops = []
    for i, (m, s, h) in enumerate(zip(main, side, heights)):
        tops.append(y)
        fig.add_artist(Rectangle((margin, Y(y + h)), band_w, h, transform=tr,
                                 facecolor=PHASE_COLOR, edgecolor="none", gid="prisma-phase"))
        fig.text(margin + band_w / 2, Y(y + h / 2), phases[i], transform=tr, rotation=90,
                 fontsize=fs, family=FONT_FAMILY, fontweight="bold", ha="center", va="center",
                 parse_math=False)
        mh = box_size(m)[1]
        draw_box(x_main, y + (h - mh) / 2, main_w, mh, m)
        if s:
            sh = box_size(s)[1]
            draw_box(x_side, y + (h - sh) / 2, side_w, sh, s, bold_first=len(s) > 3)
            arrow((x_main + main_w, Y(y + h / 2)), (x_side, Y(y + h / 2)))
        y += h + gap_y
    for i in range(len(main) - 1):
        h, h2 = heights[i], heights[i + 1]
        mh, mh2 = box_size(main[i])[1], box_size(main[i + 1])[1]
        x_mid = x_main + main_w / 2
        arrow((x_mid, Y(tops[i] + (h + mh) / 2)), (x_mid, Y(tops[i + 1] + (h2 - mh2) / 2)))
    return fig
