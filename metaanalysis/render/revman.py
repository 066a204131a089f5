"""Terminal tables, Markdown and JSON records for ``meta revman``: the only
place its numbers are formatted and its changes of conclusion are worded.

Takes the result objects of :mod:`metaanalysis.analysis.revman`
(:class:`~metaanalysis.analysis.revman.Review`,
:class:`~metaanalysis.analysis.revman.Reanalysed`), never their JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from metaanalysis.render import fmt

if TYPE_CHECKING:  # types only: the render layer takes these objects
    from rich.table import Table

    from metaanalysis.analysis.revman import Change, Reanalysed, Review
    from metaanalysis.stats.results import PoolResult

#: a missing value in these tables (RevMan's own convention)
MISSING = "-"


def _num(x, digits: int = 2) -> str:
    return fmt.num(None if x is None else float(x), digits, na=MISSING)


def _ci(est, lb, ub, digits: int = 2) -> str:
    if not fmt.is_number(est):
        return MISSING
    return f"{_num(est, digits)} [{_num(lb, digits)}, {_num(ub, digits)}]"


def _dev(x, spec: str = ".1e") -> str:
    return format(x, spec) if fmt.is_number(x) else MISSING


def reproduce_table(review: Review, title: str) -> Table:
    """A rich Table: one line per analysis of the reproduced review."""
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_lines=False)
    for col, kw in (("Analysis", {"no_wrap": True}), ("Outcome", {"max_width": 34}),
                    ("Data", {}), ("Measure", {}), ("Model", {}), ("k", {"justify": "right"}),
                    ("Pooled [CI]", {"no_wrap": True}), ("Reproduced", {}),
                    ("max dev effect/CI (rel)", {"justify": "right"}),
                    ("weight (pp)", {"justify": "right"})):
        t.add_column(col, **kw)
    short = {"dichotomous": "dich", "continuous": "cont", "generic inverse variance": "GIV",
             "O-E and variance": "O-E", "unknown": "?"}
    for a in review.analyses:
        p = a.pooled
        ov = p.get("overall") if p.get("shown") else None
        pooled = (_ci(ov["estimate"], ov["ci_lb"], ov["ci_ub"]) if ov
                  else ("per subgroup" if p.get("shown") else "no totals"))
        md = a.dev
        dev = _dev(max(md["effect"], md["ci"])) if fmt.is_number(md.get("effect")) else MISSING
        t.add_row(a.label, a.name, short.get(a.data_type, a.data_type),
                  a.measure, a.model, str(len(a.rows)), pooled,
                  "[green]yes[/green]" if a.reproduced else "[red]NO[/red]", dev,
                  _dev(md.get("weight"), ".4f"))
    return t


def reproduce_summary(review: Review) -> list[str]:
    """Closing lines: share reproduced per data type, then every reason."""
    by: dict = {}
    for a in review.analyses:
        r, n = by.get(a.data_type, (0, 0))
        by[a.data_type] = (r + int(a.reproduced), n + 1)
    lines = ["Reproduced to RevMan's printed precision (effect/CI 1e-4 relative, weight 0.01 pp):"]
    for dt, (r, n) in sorted(by.items()):
        lines.append(f"  {dt:<26} {r}/{n} ({100 * r / n:.1f}%)")
    for a in review.analyses:
        if not a.reproduced:
            lines.append(f"  not reproduced {a.label}: {a.reason or None}")
    return lines


def change_text(c: Change) -> str:
    """One change of conclusion in words, with the settings behind it."""
    if c.kind == "pi_crosses_null":
        return "prediction interval crosses no effect"
    old = "nan" if c.review_tau2 is None else format(c.review_tau2, ".3g")
    why = f"{c.review_model} (tau2 {old}) -> IV REML (tau2 {c.tau2:.3g}) with HKSJ t({c.df})"
    verb = "includes" if c.kind == "ci_now_includes_null" else "excludes"
    return f"CI now {verb} no effect [{why}]"


def _changes(r: Reanalysed) -> list[str]:
    return [change_text(c) for c in r.changes]


def reanalysis_record(r: Reanalysed) -> dict:
    """One unit as the JSON record of ``meta revman reanalyse --out`` (reanalysis.json)."""
    return {"analysis": r.analysis, "name": r.name, "measure": r.measure, "model": r.model,
            "k": r.k, "alpha": r.alpha, "review": r.review, "cochrane2025": r.cochrane2025,
            "changes": _changes(r), "studies": list(r.studies), "yi": list(r.yi),
            "vi": list(r.vi)}


def reanalysis_table(rows: list[Reanalysed], title: str, changed_only: bool = False) -> Table:
    """A rich Table of the re-analysis: review settings vs Cochrane 2025 defaults."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("Analysis", "Outcome", "k", "Review: est [CI]", "tau2", "I2 (review)",
                "2025: est [CI]", "tau2 [Q-profile CI]", "PI", "Change"):
        t.add_column(col, max_width=34 if col == "Outcome" else None)
    for r in rows:
        if changed_only and not r.changes:
            continue
        o, n = r.review, r.cochrane2025
        t.add_row(r.analysis, r.name, str(r.k), _ci(o["estimate"], o["ci_lb"], o["ci_ub"]),
                  _num(o["tau2"], 3), _num(o["I2"], 1), _ci(n["estimate"], n["ci_lb"], n["ci_ub"]),
                  f"{_num(n['tau2'], 3)} [{_num(n['tau2_ci_lb'], 3)}, {_num(n['tau2_ci_ub'], 3)}]",
                  MISSING if n["pi_lb"] is None else f"[{_num(n['pi_lb'])}, {_num(n['pi_ub'])}]",
                  "; ".join(_changes(r)) or MISSING)
    return t


def reanalysis_markdown(review_name: str, rows: list[Reanalysed]) -> str:
    """The re-analysis as a markdown report (written by ``meta revman reanalyse --out``)."""
    head = ("| Analysis | Outcome | k | Review model | Review: est [CI] | 2025: est [CI] | "
            "tau2 (2025) [Q-profile CI] | I2 (review / 2025) | PI (2025) | Conclusion change |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    body = []
    for r in rows:
        o, n = r.review, r.cochrane2025
        body.append(f"| {r.analysis} | {r.name} | {r.k} | {r.model} ({r.measure}) | "
                    f"{_ci(o['estimate'], o['ci_lb'], o['ci_ub'])} | {_ci(n['estimate'], n['ci_lb'], n['ci_ub'])} | "
                    f"{_num(n['tau2'], 3)} [{_num(n['tau2_ci_lb'], 3)}, {_num(n['tau2_ci_ub'], 3)}] | "
                    f"{_num(o['I2'], 1)}% / {_num(n['I2'], 1)}% | "
                    + (MISSING if n["pi_lb"] is None else f"[{_num(n['pi_lb'])}, {_num(n['pi_ub'])}]")
                    + f" | {'; '.join(_changes(r)) or MISSING} |")
    changed = [r for r in rows if r.changes]
    return (f"# Re-analysis of {review_name} under Cochrane's 2025 defaults\n\n"
            "Review settings: the measure, method and model inferred from the printed study weights "
            "(DerSimonian-Laird or REML tau2, Wald z CI). Cochrane 2025: inverse variance, REML tau2 "
            "with Q-profile CI, Hartung-Knapp-Sidik-Jonkman CI (t, k-1 df), prediction interval "
            "(t, k-1 df; shown when k >= 3). Ratios are on the ratio scale.\n\n"
            f"{len(rows)} pooled analyses; the conclusion changes in {len(changed)}.\n\n"
            "## Analyses whose conclusion changes\n\n" + head
            + "\n".join(x for r, x in zip(rows, body) if r.changes) + "\n\n## All pooled analyses\n\n"
            + head + "\n".join(body) + "\n")


def reanalysis_forest(result: PoolResult, row: Reanalysed, stem: str | Path) -> list[Path]:
    """Forest plot (RevMan layout) of one re-analysed unit under the 2025 defaults; SVG."""
    from metaanalysis.render._common import save_figure
    from metaanalysis.render.forest import forest_plot

    scale = " (log ratio)" if row.measure == "ratio" else ""
    fig = forest_plot(result, columns=("weight", "effect"), prediction=True,
                      arms=("Experimental", "Control"),
                      title=f"Analysis {row.analysis}: {row.name}{scale} - Cochrane 2025 "
                            "(REML, HKSJ, prediction interval)",
                      footnotes=[f"Review: {row.model}; " + "; ".join(_changes(row))])
    return save_figure(fig, stem, formats=("svg",))
