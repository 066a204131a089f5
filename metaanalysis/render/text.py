"""Plain-text summaries in the style of metafor's print methods (4 decimals,
p "<.0001"; the metafor print style of render/fmt.py), so ``meta pool``
output can be compared with R line by line."""

from __future__ import annotations

from metaanalysis.render.fmt import RATIO_MEASURES
from metaanalysis.render.fmt import metafor_num as fmt
from metaanalysis.render.fmt import metafor_p as fmt_p
from metaanalysis.stats.results import FitResult, PoolResult


def format_fit(f: FitResult, title: str | None = None) -> str:
    out = []
    if f.method in ("FE", "MH", "PETO"):
        name = {"FE": "Common-effect (inverse variance)", "MH": "Common-effect (Mantel-Haenszel)",
                "PETO": "Common-effect (Peto)"}[f.method]
        out.append(f"{title + ': ' if title else ''}{name} model (k = {f.k})")
    else:
        out.append(f"{title + ': ' if title else ''}Random-effects model (k = {f.k}; tau^2 estimator: {f.method})")
        out.append("")
        lb, ub = f.tau2_ci
        ci = f" [{fmt(lb)}, {fmt(ub)}]" if lb is not None else ""
        out.append(f"tau^2 (estimated amount of total heterogeneity): {fmt(f.tau2)}{ci}")
        out.append(f"tau (square root of estimated tau^2 value):      {fmt(f.tau)}")
    if f.I2 is not None:
        out.append(f"I^2 (total heterogeneity / total variability):   {fmt(f.I2, 2)}%")
        out.append(f"H^2 (total variability / sampling variability):  {fmt(f.H2, 2)}")
    if f.Q is not None:
        out.append("")
        out.append("Test for Heterogeneity:")
        out.append(f"Q(df = {f.Q_df}) = {fmt(f.Q)}, p-val {'< .0001' if f.Q_p < 1e-4 else '= ' + fmt(f.Q_p)}")
    out.append("")
    out.append("Model Results:")
    out.append("")
    stat = "zval" if f.df is None else "tval"
    head = ["estimate", "se", stat]
    vals = [fmt(f.estimate), fmt(f.se), fmt(f.stat)]
    if f.df is not None:
        head.append("df")
        vals.append(f"{f.df:g}")
    head += ["pval", "ci.lb", "ci.ub"]
    vals += [fmt_p(f.pval), fmt(f.ci_lb), fmt(f.ci_ub)]
    widths = [max(len(h), len(v)) + 2 for h, v in zip(head, vals)]
    out.append("".join(h.rjust(w) for h, w in zip(head, widths)))
    out.append("".join(v.rjust(w) for v, w in zip(vals, widths)))
    if f.pi_lb is not None:
        out.append("")
        out.append(f"Prediction interval ({f.conventions.get('prediction_interval', '')}): "
                   f"[{fmt(f.pi_lb)}, {fmt(f.pi_ub)}]")
    if f.measure in RATIO_MEASURES and f.estimate == f.estimate:
        import math

        out.append("")
        out.append(f"{f.measure} (exponentiated): {fmt(math.exp(f.estimate))} "
                   f"[{fmt(math.exp(f.ci_lb))}, {fmt(math.exp(f.ci_ub))}]")
    for w in f.warnings:
        out.append(f"note: {w}")
    return "\n".join(out)


def format_pool(res: PoolResult) -> str:
    parts = [format_fit(res.overall, "Overall" if res.by else None)]
    if res.by:
        for lvl, f in res.subgroups:
            parts.append(format_fit(f, f"{res.by} = {lvl}"))
        q = "NA" if res.Q_between is None else fmt(res.Q_between)
        parts.append(f"Test for subgroup differences ({res.subgroup_test}):\n"
                     f"Q_between(df = {res.Q_between_df}) = {q}, p-val = {fmt_p(res.Q_between_p)}")
    return "\n\n".join(parts) + "\n"
