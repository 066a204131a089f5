"""Terminal tables for ``meta revman``: the only place its numbers are formatted."""

from __future__ import annotations

import math


def _num(x, digits=2):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _ci(est, lb, ub, digits=2):
    if est is None:
        return "-"
    return f"{_num(est, digits)} [{_num(lb, digits)}, {_num(ub, digits)}]"


def _dev(x, fmt="{:.1e}"):
    return "-" if x is None else fmt.format(x)


def reproduce_table(review: dict, title: str):
    """A rich Table: one line per analysis of ``Review.to_dict()``."""
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
    for a in review["analyses"]:
        p = a["pooled"]
        ov = p.get("overall") if p.get("shown") else None
        pooled = _ci(ov["estimate"], ov["ci_lb"], ov["ci_ub"]) if ov else (
            "per subgroup" if p.get("shown") else "no totals")
        md = a["max_deviation"]
        dev = "-" if md.get("effect") is None else f"{max(md['effect'], md['ci']):.1e}"
        t.add_row(f"{a['group']}.{a['number']}", a["name"], short.get(a["data_type"], a["data_type"]),
                  a["measure"], a["model"], str(len(a["studies"])), pooled,
                  "[green]yes[/green]" if a["reproduced"] else "[red]NO[/red]", dev,
                  _dev(md.get("weight"), "{:.4f}"))
    return t


def reproduce_summary(review: dict) -> list[str]:
    """Closing lines: share reproduced per data type, then every reason."""
    by: dict = {}
    for a in review["analyses"]:
        r, n = by.get(a["data_type"], (0, 0))
        by[a["data_type"]] = (r + int(a["reproduced"]), n + 1)
    lines = ["Reproduced to RevMan's printed precision (effect/CI 1e-4 relative, weight 0.01 pp):"]
    for dt, (r, n) in sorted(by.items()):
        lines.append(f"  {dt:<26} {r}/{n} ({100 * r / n:.1f}%)")
    for a in review["analyses"]:
        if not a["reproduced"]:
            lines.append(f"  not reproduced {a['group']}.{a['number']}: {a['max_deviation']['reason']}")
    return lines


def reanalysis_table(rows: list[dict], title: str, changed_only: bool = False):
    """A rich Table of the re-analysis: review settings vs Cochrane 2025 defaults."""
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("Analysis", "Outcome", "k", "Review: est [CI]", "tau2", "I2 (review)",
                "2025: est [CI]", "tau2 [Q-profile CI]", "PI", "Change"):
        t.add_column(col, max_width=34 if col == "Outcome" else None)
    for r in rows:
        if changed_only and not r["changes"]:
            continue
        o, n = r["review"], r["cochrane2025"]
        t.add_row(r["analysis"], r["name"], str(r["k"]), _ci(o["estimate"], o["ci_lb"], o["ci_ub"]),
                  _num(o["tau2"], 3), _num(o["I2"], 1), _ci(n["estimate"], n["ci_lb"], n["ci_ub"]),
                  f"{_num(n['tau2'], 3)} [{_num(n['tau2_ci_lb'], 3)}, {_num(n['tau2_ci_ub'], 3)}]",
                  "-" if n["pi_lb"] is None else f"[{_num(n['pi_lb'])}, {_num(n['pi_ub'])}]",
                  "; ".join(r["changes"]) or "-")
    return t


def reanalysis_markdown(review_name: str, rows: list[dict]) -> str:
    """The re-analysis as a markdown report (written by ``meta revman reanalyse --out``)."""
    head = ("| Analysis | Outcome | k | Review model | Review: est [CI] | 2025: est [CI] | "
            "tau2 (2025) [Q-profile CI] | I2 (review / 2025) | PI (2025) | Conclusion change |\n"
            "|---|---|---|---|---|---|---|---|---|---|\n")
    body = []
    for r in rows:
        o, n = r["review"], r["cochrane2025"]
        body.append(f"| {r['analysis']} | {r['name']} | {r['k']} | {r['model']} ({r['measure']}) | "
                    f"{_ci(o['estimate'], o['ci_lb'], o['ci_ub'])} | {_ci(n['estimate'], n['ci_lb'], n['ci_ub'])} | "
                    f"{_num(n['tau2'], 3)} [{_num(n['tau2_ci_lb'], 3)}, {_num(n['tau2_ci_ub'], 3)}] | "
                    f"{_num(o['I2'], 1)}% / {_num(n['I2'], 1)}% | "
                    + ("-" if n["pi_lb"] is None else f"[{_num(n['pi_lb'])}, {_num(n['pi_ub'])}]")
                    + f" | {'; '.join(r['changes']) or '-'} |")
    changed = [r for r in rows if r["changes"]]
    return (f"# Re-analysis of {review_name} under Cochrane's 2025 defaults\n\n"
            "Review settings: the measure, method and model inferred from the printed study weights "
            "(DerSimonian-Laird or REML tau2, Wald z CI). Cochrane 2025: inverse variance, REML tau2 "
            "with Q-profile CI, Hartung-Knapp-Sidik-Jonkman CI (t, k-1 df), prediction interval "
            "(t, k-1 df; shown when k >= 3). Ratios are on the ratio scale.\n\n"
            f"{len(rows)} pooled analyses; the conclusion changes in {len(changed)}.\n\n"
            "## Analyses whose conclusion changes\n\n" + head
            + "\n".join(x for r, x in zip(rows, body) if r["changes"]) + "\n\n## All pooled analyses\n\n"
            + head + "\n".join(body) + "\n")


def reanalysis_forest(result, row: dict, stem):
    """Forest plot (RevMan layout) of one re-analysed unit under the 2025 defaults; SVG."""
    from metaanalysis.render._common import save_figure
    from metaanalysis.render.forest import forest_plot

    scale = " (log ratio)" if row["measure"] == "ratio" else ""
    fig = forest_plot(result, columns=("weight", "effect"), prediction=True,
                      arms=("Experimental", "Control"),
                      title=f"Analysis {row['analysis']}: {row['name']}{scale} - Cochrane 2025 "
                            "(REML, HKSJ, prediction interval)",
                      footnotes=[f"Review: {row['model']}; " + "; ".join(row["changes"])])
    return save_figure(fig, stem, formats=("svg",))
