"""All figures of one protocol run. Draws results; never refits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection

import numpy as np

from metaanalysis.render import fmt

if TYPE_CHECKING:
    from metaanalysis.analysis.pipeline import RunResult

DERIVED_NOTES = {
    "derived_from_p": "SE of the effect derived from a reported P value",
    "from_figure": "figure",
    "news_report": "Effect read from a news report",
    "secondary_source": "Numbers from a secondary source",
    "sd_may_be_se": "Reported spread may be an SE, not an SD",
    "effect_from_percent": "Effect computed from the reported percentages (no counts)",
}

#: Footnotes of derived cells (marked on the value, not the study label): a
#: reader must not take a back-calculated SD for a reported one.
SD_FROM_P = "SD back-calculated from the reported P value of the difference (the same SD in both arms)"
SD_FROM_SE_DIFF = "SD back-calculated from the SE or CI of the difference (the same SD in both arms)"
SD_FROM_ARM = "SD derived from the arm's SE or CI"
SD_FROM_MEDIAN = "Mean and SD estimated from the median and IQR or range"
SD_CHANGE = "SD of the change imputed from baseline and final SDs with an assumed correlation"
SD_IMPUTED = "SD imputed (not reported; sensitivity analysis)"
EVENTS_FROM_PERCENT = "Events derived from a reported percentage"
N_DERIVED = "Number analysed derived (randomised minus drop-outs, or from a denominator)"
SPLIT_CONTROL = ("Control group shared by several comparisons: its events and total divided "
                 "between them (Cochrane Handbook 23.3.4)")
PAPER_CI_T = ("CI as printed in the paper (a t interval); the SE behind the weight is its "
              "half-width over the t quantile")


def _cell_notes(c) -> dict[str, str]:
    """Per-cell footnote texts ({"sd1i": text, ...}) from the derivation chain."""
    ex = c.extraction
    methods = [d.method for d in ex.derivations]
    notes: dict[str, str] = {}
    sd_note = None
    if "sd_from_se" in methods and any(dict(d.inputs).get("se_diff") is not None
                                       for d in ex.derivations if d.method == "sd_from_se"):
        sd_note = SD_FROM_P if "se_from_p" in methods else SD_FROM_SE_DIFF
    elif "sd_from_se" in methods or "sd_from_ci" in methods:
        sd_note = SD_FROM_ARM
    elif any(m.startswith("mean_sd_from_median") for m in methods):
        sd_note = SD_FROM_MEDIAN
        notes["m1i"] = notes["m2i"] = SD_FROM_MEDIAN
    elif "sd_change_from_correlation" in methods:
        sd_note = SD_CHANGE
    if "imputed_sd" in c.flags:
        sd_note = SD_IMPUTED
    if sd_note:
        notes["sd1i"] = notes["sd2i"] = sd_note
    if "percent_of_n" in methods or "events_from_percent" in c.flags:
        notes["ai"] = notes["ci"] = EVENTS_FROM_PERCENT
    if "split_control" in methods:
        notes["n2i"] = SPLIT_CONTROL
        if ex.ci is not None:
            notes["ci"] = SPLIT_CONTROL
    return notes


def _paper_ci(c):
    """The paper's own (lower, upper) when the effect was entered from its CI,
    with a footnote when that CI is a t interval; else (None, None)."""
    ex = c.extraction
    if ex.kind != "generic":
        return None, None
    for d in ex.derivations:
        inp = dict(d.inputs)
        if d.method == "se_from_ci" and "ci_lb" in inp and "ci_ub" in inp:
            crit, level = inp.get("crit"), inp.get("level", 0.95)
            from metaanalysis.stats.distributions import norm

            z = float(norm.ppf(1 - (1 - level) / 2))
            note = PAPER_CI_T if crit is not None and abs(crit - z) > 1e-9 else None
            return (inp["ci_lb"], inp["ci_ub"]), note
    return None, None


def _study_data(run) -> dict[str, dict]:
    out = {}
    for c in run.comparisons:
        ex = c.extraction
        d = {}
        if ex.kind == "arms":
            for k in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i", "ai", "ci"):
                v = getattr(ex, k)
                if v is not None:
                    d[k] = v
        notes = []
        cell_notes = _cell_notes(c)
        for flag, note in DERIVED_NOTES.items():
            if flag == "derived_from_p" and cell_notes.get("sd1i") == SD_FROM_P:
                continue  # the SD cells carry the mark: the effect is the difference of means
            if flag in c.flags:
                if "derived" not in d:
                    d["derived"] = note
                else:
                    notes.append(note)
        shown, note = _paper_ci(c)
        if shown is not None:
            d["ci_shown"] = shown
            if note:
                notes.append(note)
        d["notes"] = notes
        d["cell_notes"] = cell_notes
        if c.scale in ("change", "final"):
            d["scale"] = "Change" if c.scale == "change" else "Final"
        if c.rob_domains:
            d["rob"] = dict(c.rob_domains, Overall=c.rob_overall)
        for name, val in c.attrs.items():
            d[name] = val
        out[c.key] = d
    return out


def _columns(run) -> tuple[str, ...]:
    """RevMan's columns, plus "Scale" (change from baseline / final value)
    whenever the analysis holds change scores: one Mean column must not mix
    them unmarked."""
    from metaanalysis.render.forest import DEFAULT_COLUMNS

    if any(c.scale == "change" for c in run.comparisons):
        return ("scale",) + DEFAULT_COLUMNS
    return DEFAULT_COLUMNS


def _sentence(s: str) -> str:
    """Capitalised first letter (axis labels and titles: one house style)."""
    return s[:1].upper() + s[1:]


def _favours(run):
    if run.protocol.outcome.lower_is_better:
        return "lower"
    return "higher"


#: Grid points of the regression line's confidence band.
BAND_POINTS = 100


def _regression_band(reg, x, vi):
    """The fitted line's 1 - alpha confidence band, as metafor's
    ``predict(res, newmods = xs)`` gives it: Var(b0 + b1 x) from the fit's
    own covariance of the coefficients.

    The fit stores SEs, not the covariance, so the covariance is rebuilt from
    the fit's tau² as (X'WX)^-1 with W = 1/(vi + tau2), times the factor the
    fit applied to it (1 for z; the Knapp-Hartung s² under knha/adhoc, read
    off the stored SEs). tau² is not re-estimated. Returns None when the
    stored SEs do not match this covariance (then no band is drawn rather
    than a wrong one).
    """
    from metaanalysis.stats import distributions  # scipy.stats' values without its import time

    if reg is None or len(reg.beta) != 2 or not np.isfinite(reg.tau2):
        return None
    X = np.column_stack([np.ones_like(x), x])
    W = 1.0 / (vi + reg.tau2)
    cov = np.linalg.inv(X.T @ (W[:, None] * X))
    factor = np.array(reg.se) ** 2 / np.diag(cov)
    if not np.allclose(factor, factor[0], rtol=1e-6):
        return None
    cov = cov * factor[0]
    xs = np.linspace(x.min(), x.max(), BAND_POINTS)
    G = np.column_stack([np.ones_like(xs), xs])
    pred = G @ np.array(reg.beta)
    se = np.sqrt(np.einsum("ij,jk,ik->i", G, cov, G))
    crit = (distributions.norm.ppf(1 - reg.alpha / 2) if reg.df is None
            else distributions.t.ppf(1 - reg.alpha / 2, reg.df))
    return xs, pred - crit * se, pred + crit * se


@dataclass(frozen=True)
class FigureJob:
    """One figure to draw: ``fn(*args, **kwargs)`` returns it, saved as ``id.<format>``.

    A job holds everything the figure is drawn from, so the figure is a
    function of the job alone: jobs can be drawn in any process, in any
    order, and a job's content hash (:func:`metaanalysis.write.fingerprint`)
    names the figure in the output cache.
    """

    id: str
    title: str
    caption: str
    formats: tuple[str, ...]
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    #: The figure this job draws one page of ("forest_main" for the job
    #: "forest_main_p2"); None when it is a whole figure.
    page_of: str | None = None

    @property
    def base_id(self) -> str:
        """The figure's id without its page: ``page_of``, else ``id``."""
        return self.page_of or self.id

    @property
    def files(self) -> list[str]:
        """Paths of its files, relative to the protocol's output folder."""
        return [f"figures/{self.id}.{f}" for f in self.formats]

    def index_entry(self) -> dict:
        """The figure's entry in figures/index.json (a page also names its figure)."""
        entry = {"id": self.id, "title": self.title, "caption": self.caption, "files": self.files}
        if self.page_of:
            entry["page_of"] = self.page_of
        return entry

    def draw(self, figdir: Path) -> list[Path]:
        """Draw the figure and write its files into ``figdir``."""
        return draw_figure(self, figdir)


def draw_figure(job: FigureJob, figdir: Path) -> list[Path]:
    """Draw ``job`` and write its files into ``figdir``; return their paths.

    Every text is measured through the process-wide memo, while the figure
    is built and while it is saved (render/_common.py ``shared_text_metrics``).
    """
    from metaanalysis.render._common import shared_text_metrics
    from metaanalysis.render.forest import save_figure

    with shared_text_metrics():
        fig = job.fn(*job.args, **job.kwargs)
        return save_figure(fig, Path(figdir) / job.id, formats=job.formats)


def preload(formats: Collection[str] = ("svg", "png", "pdf")) -> None:
    """Import what drawing and saving ``formats`` use (``meta run`` does it
    once, before forking, with the formats of the figures it has to draw).

    Figures have their own Agg canvas (render/_common.py): no backend is chosen.
    The drawing modules import matplotlib's parts inside their functions (so
    that planning needs none of it), hence the parts are named here. The PDF
    backend (with fontTools, ~0.2 s of CPU) only when a PDF is asked: by
    default a run writes none, and a PDF saved without it imports it then.
    """
    import matplotlib.collections  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import matplotlib.font_manager  # noqa: F401
    import matplotlib.lines  # noqa: F401
    import matplotlib.markers  # noqa: F401
    import matplotlib.patches  # noqa: F401
    import matplotlib.path  # noqa: F401
    import matplotlib.text  # noqa: F401
    import matplotlib.ticker  # noqa: F401
    from matplotlib.backends import backend_agg, backend_svg  # noqa: F401

    if "pdf" in formats:
        from matplotlib.backends import backend_pdf  # noqa: F401
    from metaanalysis.render import _common, forest, plots, prisma  # noqa: F401

    _common._agg_classes()  # the unhinted Agg canvas, defined once for every fork


def make_figures(run: RunResult, outdir: Path, all_formats: bool = False,
                 pdf: bool = False) -> list[dict]:
    """Draw every figure into ``outdir/figures``; return their index.

    Returns
    -------
    list of dict
        ``{"id", "title", "caption", "files": [relative paths]}``, in report order.

    :func:`plan_figures` says what to draw; ``meta run`` draws the same jobs
    spread over the cores and from its cache (runner.py).
    """
    figdir = Path(outdir) / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    jobs = plan_figures(run, all_formats, pdf)
    for job in jobs:
        draw_figure(job, figdir)
    return [job.index_entry() for job in jobs]


def plan_figures(run: RunResult, all_formats: bool = False, pdf: bool = False) -> list[FigureJob]:
    """Every figure of a run as a :class:`FigureJob`, in report order; draws nothing.

    The main forest plot is SVG and 300 dpi PNG, plus PDF with ``pdf``
    (``meta run --pdf``: subsetting and embedding a PDF's fonts costs ~0.5 s
    of CPU a figure, for a file few readers open); the others are SVG
    (embedded in the report). ``all_formats`` gives every figure all three.
    A main forest plot in pages is SVG (plus PDF with ``pdf``) without the
    PNG: a page's 300 dpi PNG (a slide's picture of a plot that fits one)
    cost ~1-1.8 s of CPU, more than the rest of its page, and the run at
    1,000 or 10,000 trials drew dozens of them.

    A forest, leave-one-out, cumulative or traffic-light plot with more rows
    than a page holds (render/layout.py ``MAX_ROWS_PER_PAGE``) becomes one job
    per page, ``<id>_p1``, ``<id>_p2``, ... (``FigureJob.page_of`` is
    ``<id>``), each listed in the index with "(page i of n)" in its title.
    """
    from metaanalysis.render import plots
    from metaanalysis.render.forest import forest_page_count, forest_plot

    proto = run.protocol
    sd = _study_data(run)
    cols = _columns(run)
    index: list[FigureJob] = []
    label = proto.outcome.label
    Label = label[:1].upper() + label[1:]  # at the start of a figure title
    measure = proto.model.measure

    def save(job, name, title, caption, formats=("svg",), page_of=None):
        fn, args, kwargs = job
        if all_formats:
            formats = ("svg", "png", "pdf")
        elif page_of == "forest_main":  # a page of it: no PNG (see above)
            formats = ("svg", "pdf") if pdf else ("svg",)
        elif name == "forest_main":
            formats = ("svg", "png", "pdf") if pdf else ("svg", "png")
        index.append(FigureJob(name, title, caption, tuple(formats), fn, tuple(args), kwargs,
                               page_of))

    def call(fn, *args, **kwargs):
        return fn, args, kwargs

    def save_pages(job, name, title, caption, n):
        """A figure, or its ``n`` pages when it has more rows than a page holds
        (render/layout.py MAX_ROWS_PER_PAGE): each page is a figure of its own
        in the index, the overall result on the last."""
        fn, args, kwargs = job
        if n == 1:
            save(job, name, title, caption)
            return
        for i in range(1, n + 1):
            save(call(fn, *args, **kwargs, page=i), f"{name}_p{i}", f"{title} (page {i} of {n})",
                 f"{caption} Page {i} of {n}.", page_of=name)

    from metaanalysis.render import prisma

    counts = prisma.flow_counts(run.studies, proto.eligibility.purpose, len(run.comparisons))
    save(call(prisma.prisma_flow, counts), "prisma", "PRISMA 2020 flow diagram",
         f"Study files of the evidence base to the trials in the meta-analysis "
         f"({counts['analysed']} trials, {counts['comparisons']} comparisons); the reasons "
         "per study are in the table of studies not analysed.")
    model_note = None
    if run.main.result is not None:
        from metaanalysis.render.forest import TAU2_NAMES, TEST_NOTES, method_label

        fit0 = run.main.result.overall
        model_note = (f"Each row: {method_label(fit0)}, {fmt.ci_label(proto.model.alpha)}; "
                      f"Tau\u00b2 by {TAU2_NAMES.get(fit0.method, fit0.method)}."
                      + (f" {TEST_NOTES[fit0.test]}" if fit0.test in TEST_NOTES else ""))
    if run.main.result is not None:
        job = call(forest_plot, run.main.result, study_data=sd, benefit=_favours(run), columns=cols,
                          prediction=proto.model.prediction_interval,
                          title=f"{Label}: all eligible comparisons ({measure})")
        # the main forest plot can also go out as PDF (for manuscripts, `--pdf`);
        # PDF font subsetting costs ~0.5 s a figure, so it is not the default
        save_pages(job, "forest_main", f"Forest plot: {label}, all eligible comparisons",
                   f"{fmt.measure_name(measure)} (probiotic vs control), "
                   f"{method_label(run.main.result.overall)}, {fmt.ci_label(proto.model.alpha)}.",
                   forest_page_count(*job[1], **job[2]))
    for a in run.strata:
        if a.result is None:
            continue
        by = a.name.replace('_', ' ')
        job = call(forest_plot, a.result, study_data=sd, benefit=_favours(run), columns=cols,
                          prediction=proto.model.prediction_interval,
                          title=f"{Label} by {by}")
        n = forest_page_count(*job[1], **job[2])
        if n > 1:
            # its studies would fill pages, again for every stratum: the
            # subgroups alone (R meta's study.results = FALSE); every study
            # row is on the main forest plot
            job = call(forest_plot, *job[1], **{
                **job[2], "study_results": False,
                "title": f"{Label} by {by}: one row per subgroup (studies: main forest plot)"})
            save_pages(job, f"forest_{a.name}", f"Forest plot by {a.name} (one row per subgroup)",
                       f"Subgroups by {a.name}, one row each: its pooled estimate, k and "
                       f"participants, each with its own tau²; test for subgroup differences at "
                       f"the bottom. The {a.result.overall.k} study rows (they would fill {n} "
                       "pages) are in the main forest plot.", forest_page_count(*job[1], **job[2]))
            continue
        save_pages(job, f"forest_{a.name}", f"Forest plot by {a.name}",
                   f"Subgroups by {a.name}; each with its own tau²; test for subgroup differences "
                   "at the bottom.", n)
    if run.leave_one_out is not None and run.main.result is not None:
        L = run.leave_one_out
        job = call(plots.leave_one_out_plot, L.estimate, L.ci_lb, L.ci_ub, [c.key for c in run.comparisons],
                                       overall=run.main.result, measure=measure, tau2=L.tau2,
                                       I2=L.I2, benefit=_favours(run),
                                       alpha=proto.model.alpha, title=f"Leave-one-out: {label}",
                                       note=model_note)
        save_pages(job, "leave_one_out", "Leave-one-out analysis",
                   "Each row: the pooled estimate with that comparison left out.",
                   plots.rows_page_count(len(run.comparisons) + 1, pooled=True))
    if run.cumulative is not None:
        C = run.cumulative
        order = [int(i) for i in C.order]
        job = call(plots.cumulative_plot, C.estimate, C.ci_lb, C.ci_ub,
                                    [run.comparisons[i].key for i in order],
                                    years=[run.comparisons[i].year for i in order],
                                    measure=measure, benefit=_favours(run), alpha=proto.model.alpha,
                                    title=f"Cumulative meta-analysis by year: {label}",
                                    note=model_note)
        save_pages(job, "cumulative", "Cumulative meta-analysis by year",
                   "Each row: the pooled estimate of all comparisons published up to that one.",
                   plots.rows_page_count(len(order)))
    small = run.small_study
    if small.get("assessed") and run.main.result is not None:
        eg, tf = small["egger"], small["trimfill"]
        yi = np.array([c.yi for c in run.comparisons])
        vi = np.array([c.vi for c in run.comparisons])
        job = call(plots.funnel_plot, yi, vi, run.main.result.overall.estimate,
                                egger=(float(eg.beta[0]), float(eg.beta[1])),
                                filled=(tf.yi_fill, tf.vi_fill) if tf.k0 else None,
                                measure=measure, title=f"Contour-enhanced funnel plot: {label}")
        save(job, "funnel", "Contour-enhanced funnel plot",
             f"Egger's test {fmt.p_phrase(eg.pval)}; trim-and-fill imputed {tf.k0} studies.")
    for name, reg, note, keys in run.regressions:
        if reg is None:
            continue
        use = [c for c in run.comparisons if c.key in keys]
        x = np.array([getattr(c, name) for c in use], dtype=float)
        w = 1 / (np.array([c.vi for c in use]) + reg.tau2)
        vi_use = np.array([c.vi for c in use])
        mod_label = next(m.label for m in proto.meta_regression if m.moderator == name)
        job = call(plots.bubble_plot, x, np.array([c.yi for c in use]), w, regression=reg,
                                band=_regression_band(reg, x, vi_use),
                                labels=[c.key for c in use], measure=measure,
                                xlabel=_sentence(mod_label),
                                title=f"Meta-regression on {mod_label}")
        save(job, f"bubble_{name}", f"Meta-regression: {name}",
             f"Slope {fmt.small(reg.beta[1])} ({fmt.p_phrase(reg.pval[1])}); bubble area "
             f"proportional to weight; shaded: the {fmt.ci_label(reg.alpha)} of the regression line.")
    judged = {c.key: dict(c.rob_domains, Overall=c.rob_overall) for c in run.comparisons if c.rob_overall}
    if judged:
        job = call(plots.rob_traffic_light, judged)
        save_pages(job, "rob_traffic_light", "Risk of bias (traffic light)",
                   "Judgements as extracted.", plots.rob_page_count(len(judged)))
        job = call(plots.rob_summary, judged)
        save(job, "rob_summary", "Risk of bias (summary)", "Proportion of trials per judgement.")
    return index
