"""All figures of one protocol run. Draws results; never refits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from metaanalysis.render import fmt

DERIVED_NOTES = {
    "derived_from_p": "p-value",
    "from_figure": "figure",
    "news_report": "Effect read from a news report",
    "secondary_source": "Numbers from a secondary source",
    "sd_may_be_se": "Reported spread may be an SE, not an SD",
}


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
        for flag, note in DERIVED_NOTES.items():
            if flag in c.flags:
                d["derived"] = note
                break
        if c.rob_domains:
            d["rob"] = dict(c.rob_domains, Overall=c.rob_overall)
        for name, val in c.attrs.items():
            d[name] = val
        out[c.key] = d
    return out


def _favours(run):
    if run.protocol.outcome.lower_is_better:
        return "lower"
    return "higher"


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

    @property
    def files(self) -> list[str]:
        """Paths of its files, relative to the protocol's output folder."""
        return [f"figures/{self.id}.{f}" for f in self.formats]

    def index_entry(self) -> dict:
        return {"id": self.id, "title": self.title, "caption": self.caption, "files": self.files}

    def draw(self, figdir: Path) -> list[Path]:
        """Draw the figure and write its files into ``figdir``."""
        return draw_figure(self, figdir)


def draw_figure(job: FigureJob, figdir: Path) -> list[Path]:
    """Draw ``job`` and write its files into ``figdir``; return their paths."""
    from metaanalysis.render.forest import save_figure

    fig = job.fn(*job.args, **job.kwargs)
    return save_figure(fig, Path(figdir) / job.id, formats=job.formats)


def preload() -> None:
    """Import what drawing and saving use (``meta run`` does it once, before forking).

    Figures have their own Agg canvas (render/_common.py): no backend is chosen.
    """
    from matplotlib.backends import backend_agg, backend_pdf, backend_svg  # noqa: F401

    from metaanalysis.render import forest, plots  # noqa: F401


def make_figures(run, outdir: Path, all_formats: bool = False) -> list[dict]:
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
    jobs = plan_figures(run, all_formats)
    for job in jobs:
        draw_figure(job, figdir)
    return [job.index_entry() for job in jobs]


def plan_figures(run, all_formats: bool = False) -> list[FigureJob]:
    """Every figure of a run as a :class:`FigureJob`, in report order; draws nothing.

    The main forest plot is always written as SVG, 300 dpi PNG and PDF; the
    others as SVG (embedded in the report) unless ``all_formats`` adds PNG
    and PDF too. Rasterising and PDF font subsetting cost ~0.6 s a figure,
    most of a run's time.
    """
    from metaanalysis.render.forest import forest_plot
    from metaanalysis.render import plots

    proto = run.protocol
    sd = _study_data(run)
    index: list[FigureJob] = []
    label = proto.outcome.label
    Label = label[:1].upper() + label[1:]  # at the start of a figure title
    measure = proto.model.measure

    def save(job, name, title, caption, formats=("svg",)):
        fn, args, kwargs = job
        if all_formats or name == "forest_main":
            formats = ("svg", "png", "pdf")
        index.append(FigureJob(name, title, caption, tuple(formats), fn, tuple(args), kwargs))

    def call(fn, *args, **kwargs):
        return fn, args, kwargs

    if run.main.result is not None:
        job = call(forest_plot, run.main.result, study_data=sd, benefit=_favours(run),
                          prediction=proto.model.prediction_interval,
                          title=f"{Label}: all eligible comparisons ({measure})")
        # the main forest plot also goes out as PDF (for manuscripts); PDF font
        # subsetting costs ~0.7 s a figure, so the others are SVG + 300 dpi PNG
        save(job, "forest_main", f"Forest plot: {label}, all eligible comparisons",
             f"{measure} (probiotic vs control), {proto.model.method}, test {proto.model.test}.")
    for a in run.strata:
        if a.result is None:
            continue
        job = call(forest_plot, a.result, study_data=sd, benefit=_favours(run),
                          prediction=proto.model.prediction_interval,
                          title=f"{Label} by {a.name.replace('_', ' ')}")
        save(job, f"forest_{a.name}", f"Forest plot by {a.name}",
             f"Subgroups by {a.name}; each with its own tau²; test for subgroup differences at the bottom.")
    if run.leave_one_out is not None and run.main.result is not None:
        L = run.leave_one_out
        job = call(plots.leave_one_out_plot, L.estimate, L.ci_lb, L.ci_ub, [c.key for c in run.comparisons],
                                       overall=run.main.result, measure=measure, tau2=L.tau2,
                                       I2=L.I2, benefit=_favours(run),
                                       alpha=proto.model.alpha, title=f"Leave-one-out: {label}")
        save(job, "leave_one_out", "Leave-one-out analysis",
             "Each row: the pooled estimate with that comparison left out.")
    if run.cumulative is not None:
        C = run.cumulative
        order = [int(i) for i in C.order]
        job = call(plots.cumulative_plot, C.estimate, C.ci_lb, C.ci_ub,
                                    [run.comparisons[i].key for i in order],
                                    years=[run.comparisons[i].year for i in order],
                                    measure=measure, benefit=_favours(run), alpha=proto.model.alpha,
                                    title=f"Cumulative meta-analysis by year: {label}")
        save(job, "cumulative", "Cumulative meta-analysis by year",
             "Each row: the pooled estimate of all comparisons published up to that one.")
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
        job = call(plots.bubble_plot, x, np.array([c.yi for c in use]), w, regression=reg,
                                labels=[c.key for c in use], measure=measure,
                                xlabel=next(m.label for m in proto.meta_regression if m.moderator == name),
                                title=f"Meta-regression on {name}")
        save(job, f"bubble_{name}", f"Meta-regression: {name}",
             f"Slope {fmt.num(reg.beta[1])} ({fmt.p_phrase(reg.pval[1])}); bubble area proportional to weight.")
    judged = {c.key: dict(c.rob_domains, Overall=c.rob_overall) for c in run.comparisons if c.rob_overall}
    if judged:
        job = call(plots.rob_traffic_light, judged)
        save(job, "rob_traffic_light", "Risk of bias (traffic light)", "Judgements as extracted.")
        job = call(plots.rob_summary, judged)
        save(job, "rob_summary", "Risk of bias (summary)", "Proportion of trials per judgement.")
    return index
