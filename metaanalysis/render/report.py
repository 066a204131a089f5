"""report.html and report.md: one protocol's results for reviewers.

:func:`render_reports` takes one protocol's result objects (the
:class:`~metaanalysis.analysis.pipeline.RunResult` and its parts, as the
figures do; never the results.json dict) and the figure index
(``figures/index.json``, whose SVG files it inlines). It never fits anything;
it formats and rounds numbers, all through :mod:`metaanalysis.render.fmt`.

Both reports come from one view model (:func:`build_context`), filled into
jinja2 templates in ``render/templates``:

- ``report.html.j2``: a single self-contained page (autoescaped). Each figure's
  SVG is inlined, with its XML prolog, doctype, metadata and comments removed
  and every id prefixed with the figure id, because matplotlib numbers its
  ids per file (``figure_1``, ``text_1``, glyph and clip-path ids) and the
  figures of one page would otherwise share them. No script, no external
  stylesheet, font or image: the page loads without network access.
- ``report.md.j2``: the same sections for terminals and forges; figures are
  relative image links (PNG when written, else SVG). Every value is passed
  through :func:`md_escape` by the environment's ``finalize`` hook.

Number conventions (all from :mod:`metaanalysis.render.fmt`): effects with 2
decimals, exponentiated for ratio measures (RR, OR), small ratios with 2
significant digits (never "0.00"); p-values as "0.03", "0.004" or
"< 0.001"; I² as an integer percentage; tau² with 2 decimals (2 significant
digits below 0.005); interval labels ("95% CI", "95% PI") from alpha.
The output has no dates, so the same results give byte-identical reports.
"""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import jinja2
from markupsafe import Markup

from metaanalysis.analysis import claims as claims_mod
from metaanalysis.render import claims_text, fmt, sof
from metaanalysis.render.prisma import exclusion_category
from metaanalysis.render.fmt import RATIO_MEASURES
from metaanalysis.stats.results import _plain

if TYPE_CHECKING:
    from metaanalysis.analysis.claims import ClaimVerdict
    from metaanalysis.analysis.pipeline import Analysis, Comparison, RunResult
    from metaanalysis.stats.bias import RegTest
    from metaanalysis.stats.results import FitResult, PoolResult

TEMPLATES = Path(__file__).resolve().parent / "templates"
METHOD_NAMES = {"REML": "REML", "ML": "maximum likelihood", "DL": "DerSimonian-Laird",
                "PM": "Paule-Mandel", "HE": "Hedges", "SJ": "Sidik-Jonkman",
                "FE": "common effect (inverse variance)", "EE": "common effect (inverse variance)",
                "MH": "common effect (Mantel-Haenszel)", "PETO": "common effect (Peto)"}
TEST_NAMES = {"knha": "Hartung-Knapp-Sidik-Jonkman (t)", "z": "Wald z", "t": "t"}

VERDICTS = ("supported", "contradicted", "inconclusive", "insufficient evidence", "out of scope")

#: What each extraction flag means (the vocabulary of metaanalysis/studies/schema.py ``Flag``).
FLAG_TEXT = {
    "secondary_source": "numbers taken from a secondary source (a review), not the trial report",
    "news_report": "numbers taken from a news report",
    "derived_n": "analysed n per arm derived (not reported directly)",
    "sd_may_be_se": "the reported spread may be an SE rather than an SD",
    "active_comparator": "the control arm received an active treatment",
    "non_placebo_control": "the control arm received no placebo (usual care or nothing)",
    "heat_killed": "the product was heat-killed (not viable bacteria)",
    "crossover": "crossover design",
    "non_standard_outcome": "the outcome is not the standard instrument",
    "follow_up_same_cohort": "a follow-up of a cohort reported elsewhere",
    "shared_control_arm": "the control arm is shared by several comparisons",
    "doubtful_randomisation": "randomisation is doubtful",
    "conference_abstract": "reported only as a conference abstract",
    "from_figure": "numbers read from a figure",
    "derived_from_p": "the SE (or SD) was back-calculated from a p-value",
    "source_conflict": "sources disagree on some numbers",
    "shared_control_split": "a shared control's n (or its mean's variance) split between comparisons",
    "se_from_arm_ci": "SE of each arm mean from its CI (group sizes unknown)",
    "ci_asymmetric": "a mean or estimate is not halfway between its CI bounds",
    "imputed_sd": "SD missing, borrowed from the other trials (sensitivity analysis only)",
    "imputed_correlation": "SD of change imputed with an assumed baseline-final correlation",
    "n_from_randomised": "n analysed not reported; the number randomised is used",
    "effect_from_percent": "risk ratio (or OR/RD) from the arms' percentages; denominators not needed",
    "one_arm_of_multi_arm": "one arm of a multi-arm trial that reports only ratios (Handbook 23.3.4)",
}

#: Display names of the keys of data["conventions"] (others: underscores to spaces).
CONVENTION_NAMES = {"tau2_estimator": "τ² estimator", "tau2_ci": "τ² CI", "I2": "I²",
                    "test": "Test", "reference": "Reference", "scale": "Scale",
                    "prediction_interval": "Prediction interval", "zero_cells": "Zero cells",
                    "md_variance": "MD variance", "smd_variance": "SMD variance"}

#: Where a figure of the index goes, by id; the rest go to "Other figures".
FOREST_MAIN = "forest_main"


# ----------------------------------------------------------------------------
# number formatting


def _finite(x) -> bool:
    return fmt.is_number(x)


# the report's names for the formatters of render/fmt.py (the one formatter)
fmt_num = fmt.num      # fixed decimals, never "-0.00"
fmt_p = fmt.p_value    # '< 0.001', 3 decimals below 0.01, else 2
p_eq = fmt.p_phrase    # 'p = 0.03' or 'p < 0.001'
fmt_i2 = fmt.percent   # I² (and R²) as an integer percentage
fmt_tau2 = fmt.small   # 2 decimals; a positive value below 0.005 keeps 2 significant digits
fmt_data = fmt.data    # an extracted or derived input as entered


def _val(x):
    """A number of a result object as results.json holds it: numpy scalars as
    Python numbers, NaN and infinities as None (so "is None" means missing)."""
    return _plain(x)


class Scale:
    """Effects on the reader's scale: ratio measures exponentiated."""

    def __init__(self, measure: str):
        self.measure = measure
        self.ratio = measure in RATIO_MEASURES
        self.null = "1" if self.ratio else "0"

    def value(self, x: float | None) -> float | None:
        """``x`` on the natural scale (exp for ratios); None when missing."""
        if not _finite(x):
            return None
        if self.ratio:
            try:
                return math.exp(x)
            except OverflowError:
                return math.inf
        return x

    def est(self, x: float | None) -> str:
        """One estimate, rounded on the natural scale."""
        v = self.value(x)
        return fmt.ratio(v) if self.ratio and v is not None else fmt_num(v)

    def ci(self, lb: float | None, ub: float | None) -> str:
        """"[lb, ub]" on the natural scale; "NA" when a bound is missing."""
        if not (_finite(lb) and _finite(ub)):
            return "NA"
        return f"[{self.est(lb)}, {self.est(ub)}]"

    def est_ci(self, x: float | None, lb: float | None, ub: float | None) -> str:
        """"est [lb, ub]"."""
        return f"{self.est(x)} {self.ci(lb, ub)}"


# ----------------------------------------------------------------------------
# figures


_PROLOG = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->|<metadata>.*?</metadata>", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^)"]+)')


def inline_svg(text: str, prefix: str) -> str:
    """An SVG file's text, ready to sit inside HTML.

    Drops the prolog, doctype, comments and metadata; prefixes every id (and
    every ``url(#id)`` / ``href="#id"`` reference) with ``prefix``; an id
    repeated within the file keeps its first occurrence as the target of
    references, as a browser would resolve it.
    """
    text = _PROLOG.sub("", text)
    seen: dict[str, int] = {}

    def new_id(m):
        # matplotlib repeats gids within a file (one per subtotal diamond);
        # ids must be unique in the page, so repeats get a suffix
        old = m.group(1)
        seen[old] = seen.get(old, 0) + 1
        suffix = "" if seen[old] == 1 else f"-{seen[old]}"
        return f'id="{prefix}-{old}{suffix}"'

    text = _ID.sub(new_id, text)
    text = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", text)
    text = re.sub(r"\n\s*\n", "\n", text).strip()
    start = text.find("<svg")
    if start < 0:
        raise ValueError(f"figure {prefix}: no <svg> element")
    return text[start:]


def _safe_id(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(s)).strip("-") or "x"


class Figures:
    """The figure index, handed out section by section."""

    def __init__(self, index: list[dict], outdir: Path):
        self.index = list(index)
        self.outdir = Path(outdir)
        self.taken: set[str] = set()

    def take(self, fig_id: str) -> dict | None:
        """The figure ``fig_id`` for its section; a figure drawn in pages
        (``page_of``, render/layout.py) comes as one view showing every page."""
        pages = [f for f in self.index if f.get("page_of") == fig_id and f["id"] not in self.taken]
        if pages:
            self.taken.update(f["id"] for f in pages)
            views = [self._view(f) for f in pages]
            first = dict(views[0])
            first["title"] = re.sub(r" \(page 1 of \d+\)$", "", first["title"])
            first["html"] = Markup("").join(v["html"] for v in views if v["html"] is not None) or None
            first["files"] = [p for v in views for p in v["files"]]
            return first
        for f in self.index:
            if f["id"] == fig_id and fig_id not in self.taken:
                self.taken.add(fig_id)
                return self._view(f)
        return None

    def rest(self) -> list[dict]:
        out = []
        for f in self.index:
            if f["id"] not in self.taken:
                self.taken.add(f["id"])
                out.append(self._view(f))
        return out

    def _view(self, f: dict) -> dict:
        files = list(f.get("files", []))
        svg = next((p for p in files if p.endswith(".svg")), None)
        png = next((p for p in files if p.endswith(".png")), None)
        anchor = "fig-" + _safe_id(f["id"])
        html = None
        if svg is not None and (self.outdir / svg).is_file():
            html = Markup(inline_svg((self.outdir / svg).read_text(encoding="utf-8"), anchor))
        elif png is not None and (self.outdir / png).is_file():
            b64 = base64.b64encode((self.outdir / png).read_bytes()).decode("ascii")
            html = Markup(f'<img alt="" src="data:image/png;base64,{b64}">')
        return {"id": f["id"], "anchor": anchor, "title": f.get("title", f["id"]),
                "caption": f.get("caption", ""), "html": html,
                "link": png or svg, "files": files}


# ----------------------------------------------------------------------------
# view model


def _fit_view(r: FitResult, S: Scale) -> dict:
    """One fitted model as display strings."""
    lb, ub = (r.tau2_ci or (None, None))[:2]
    stat, df, k = r.stat, _val(r.df), _val(r.k)
    if df is not None:
        test = f"t = {fmt_num(stat)}, df = {fmt_data(df)} ({p_eq(r.pval)})"
    else:
        test = f"z = {fmt_num(stat)} ({p_eq(r.pval)})"
    if _val(r.Q) is not None:
        het = (f"τ² = {fmt_tau2(r.tau2)}"
               + (f" [{fmt_tau2(lb)}, {fmt_tau2(ub)}]" if _finite(lb) and _finite(ub) else "")
               + f"; Q = {fmt_num(r.Q)}, df = {_val(r.Q_df)} ({p_eq(r.Q_p)})"
               + f"; I² = {fmt_i2(r.I2)}")
    else:
        het = "not estimable (k = 1)" if k == 1 else "NA"
    return {
        "k": k,
        "method": METHOD_NAMES.get(r.method, r.method),
        "test_name": TEST_NAMES.get(r.test, r.test),
        "effect": S.est(r.estimate),
        "ci": S.ci(r.ci_lb, r.ci_ub),
        "effect_ci": S.est_ci(r.estimate, r.ci_lb, r.ci_ub),
        "pi": S.ci(r.pi_lb, r.pi_ub),
        "p": fmt_p(r.pval),
        "test": test,
        "tau2": fmt_tau2(r.tau2),
        "tau2_ci": (f"[{fmt_tau2(lb)}, {fmt_tau2(ub)}]" if _finite(lb) and _finite(ub) else "NA"),
        "I2": fmt_i2(r.I2),
        "Q": fmt_num(r.Q),
        "Q_df": _val(r.Q_df),
        "Q_p": fmt_p(r.Q_p),
        "het": het,
        "warnings": list(r.warnings),
    }


def _pooled_view(res: PoolResult, S: Scale) -> dict:
    out = _fit_view(res.overall, S)
    out["subgroups"] = []
    out["subgroup_test"] = None
    if res.by:
        out["subgroups"] = [dict(_fit_view(sub, S), level=lvl) for lvl, sub in res.subgroups]
        qb = res.Q_between
        out["subgroup_test"] = (
            f"Q = {fmt_num(qb)}, df = {_val(res.Q_between_df)} ({p_eq(res.Q_between_p)})"
            if _finite(qb) else "not estimable")
        out["subgroup_method"] = res.subgroup_test or ""
    return out


def _analysis_view(a: Analysis, S: Scale) -> dict:
    desc = a.description or ""
    if desc == f"by {a.name}":
        desc = ""  # the heading says it
    return {"name": a.name, "description": desc,
            "note": a.note, "comparisons": list(a.keys),
            "fit": _pooled_view(a.result, S) if a.result is not None else None}


def _wald(c: Comparison, alpha: float = 0.05) -> tuple:
    """A comparison's Wald 1 - alpha interval on the analysis scale (as the forest plot draws it)."""
    yi, vi = c.yi, c.vi
    if not (_finite(yi) and _finite(vi) and vi >= 0):
        return None, None
    sei = math.sqrt(vi)
    z = NormalDist().inv_cdf(1 - alpha / 2)  # qnorm(0.975) = 1.959964 for alpha = 0.05
    return yi - z * sei, yi + z * sei


def _studies_view(run: RunResult, S: Scale) -> dict:
    proto = run.protocol
    purpose = proto.eligibility.purpose
    studies = run.studies  # every study file's fate (the run's own dicts)
    this = [s for s in studies if s.get("purpose") == purpose]
    other = [s for s in studies if s.get("purpose") != purpose]
    analysed = [s for s in this if s["status"] == "analysed"]

    def category(reason: str) -> str:
        # one grouping for the table and the PRISMA diagram; lower case in a table cell
        name = exclusion_category(reason)
        return name[:1].lower() + name[1:]

    def detail(reason: str) -> str:
        # the category already says what these prefixes say
        for prefix in ("excluded in its file: ", "no usable data for this outcome: "):
            if (reason or "").startswith(prefix):
                return reason[len(prefix):]
        return reason or ""

    excluded = [s for s in this if s["status"] != "analysed"]
    counts: dict[str, int] = {}
    for s in excluded:
        counts[category(s.get("reason"))] = counts.get(category(s.get("reason")), 0) + 1
    flow = [("Study files in the evidence base", len(studies), 0),
            (f"Addressing another question (purpose other than {purpose})", len(other), 1),
            (f"Study files for this question ({purpose})", len(this), 0),
            ("Not analysed", len(excluded), 1)]
    flow += [(name, n, 2) for name, n in sorted(counts.items())]
    flow += [("Trials analysed", len(analysed), 1),
             ("Comparisons in the main analysis", len(run.comparisons), 2)]

    weights = {}
    main = run.main.result
    if main is not None:
        for s in main.overall.studies:
            weights[s.study] = s.weight
    alpha = proto.model.alpha
    comps = []
    for i, c in enumerate(run.comparisons, 1):
        lb, ub = _wald(c, alpha)
        weeks = _val(c.timepoint_weeks)
        comps.append({
            "key": c.key, "anchor": f"cmp-{i}-{_safe_id(c.key)}",
            "der_anchor": f"der-{i}-{_safe_id(c.key)}", "study": c.study,
            "year": c.year if c.year is not None else "NA",
            "arms": f"{c.arm} vs {c.control}",
            "outcome": c.outcome,
            "timepoint": fmt_data(weeks) + " wk" if weeks is not None else "NA",
            "scale": c.scale,
            "n": fmt_data(_val(c.n_total)),
            "data_kind": c.extraction.kind or "",
            "effect_ci": S.est_ci(c.yi, lb, ub),
            "weight": (fmt_num(weights[c.key], 1) + "%") if _finite(weights.get(c.key)) else "NA",
            "flags": list(c.flags),
            "rob": c.rob_overall or "not assessed",
        })
    strata_names = [st.name for st in proto.strata]
    characteristics = {"columns": strata_names,
                       "rows": [{"key": c.key,
                                 "cells": [c.attrs.get(n) or "NA" for n in strata_names]}
                                for c in run.comparisons]}
    return {
        "purpose": purpose,
        "characteristics": characteristics,
        "flow": [{"label": a, "n": b, "level": lvl} for a, b, lvl in flow],
        "comparisons": comps,
        "excluded": [{"id": s["id"], "category": category(s.get("reason")),
                      "reason": detail(s.get("reason")), "awaiting": s.get("awaiting_data") or ""}
                     for s in excluded],
        "analysed_notes": [{"id": s["id"], "reason": s["reason"]} for s in analysed if s.get("reason")],
        "other": [s["id"] for s in other],
        "other_purposes": sorted({s.get("purpose") or "unknown" for s in other}),
    }


def _regression_view(run: RunResult, S: Scale, figs: Figures) -> list[dict]:
    labels = {m.moderator: m.label or m.moderator for m in run.protocol.meta_regression}
    out = []
    for moderator, r, note, keys in run.regressions:
        v = {"moderator": moderator, "label": labels.get(moderator, moderator),
             "note": re.sub(r"^not estimable:\s*", "", note or ""),
             "k": len(keys), "comparisons": list(keys), "fit": None,
             "figure": figs.take(f"bubble_{moderator}")}
        if r is not None:
            coefs = []
            for i, name in enumerate(r.coef_names):
                row = {"name": name, "beta": fmt_num(r.beta[i]), "se": fmt_num(r.se[i]),
                       "ci": f"[{fmt_num(r.ci_lb[i])}, {fmt_num(r.ci_ub[i])}]",
                       "stat": fmt_num(r.stat[i]), "p": fmt_p(r.pval[i])}
                if S.ratio:
                    row["exp"] = f"{S.est(r.beta[i])} [{S.est(r.ci_lb[i])}, {S.est(r.ci_ub[i])}]"
                coefs.append(row)
            qm_df = _val(r.QM_df)
            if isinstance(qm_df, (list, tuple)):  # F test under knha: (df1, df2)
                qm_df = "(" + ", ".join(fmt_data(d) for d in qm_df) + ")"
            v["fit"] = {
                "k": _val(r.k), "method": METHOD_NAMES.get(r.method, r.method),
                "test_name": TEST_NAMES.get(r.test, r.test), "coefs": coefs,
                "stat_name": "t" if _val(r.df) is not None else "z",
                "tau2": fmt_tau2(r.tau2), "I2": fmt_i2(r.I2),
                "R2": fmt_i2(r.R2),
                "QM": f"{fmt_num(r.QM)}, df = {qm_df} ({p_eq(r.QM_p)})",
                "QE": f"{fmt_num(r.QE)}, df = {_val(r.QE_df)} ({p_eq(r.QE_p)})",
                "warnings": list(r.warnings),
            }
        out.append(v)
    return out


def _loo_view(run: RunResult, S: Scale) -> list[dict]:
    L = run.leave_one_out
    if L is None:
        return []
    rows = []
    for i, c in enumerate(run.comparisons):
        rows.append({"omitted": c.key,
                     "effect_ci": S.est_ci(_val(L.estimate[i]), _val(L.ci_lb[i]), _val(L.ci_ub[i])),
                     "p": fmt_p(_val(L.pval[i])), "tau2": fmt_tau2(_val(L.tau2[i])),
                     "I2": fmt_i2(_val(L.I2[i])), "Q_p": fmt_p(_val(L.Q_p[i]))})
    return rows


def egger_label(eg: RegTest) -> str:
    """What the Egger test of a run was: metafor's ``regtest`` with its model and predictor.

    Parameters
    ----------
    eg : RegTest
        The run's Egger regression (``run.small_study["egger"]``).

    Returns
    -------
    str
        E.g. "Egger regression (metafor regtest model='lm', predictor sei)".
    """
    return f"Egger regression (metafor regtest model='{eg.model}', predictor {eg.predictor})"


def _small_study_view(run: RunResult, S: Scale, figs: Figures) -> dict:
    s = run.small_study  # the run's own record: assessed, k, reason, egger, trimfill
    v = {"assessed": bool(s.get("assessed")), "k": s.get("k"),
         "reason": s.get("reason") or "", "figure": figs.take("funnel")}
    if v["assessed"]:
        eg, tf = s["egger"], s["trimfill"]
        df = _val(eg.df)
        v["egger"] = {"test": egger_label(eg),
                      "intercept": fmt_num(_val(eg.beta[0])),
                      "stat": fmt_num(_val(eg.stat)),
                      "df": fmt_data(df) if df is not None else "NA",
                      "p": fmt_p(_val(eg.pval)), "p_eq": p_eq(_val(eg.pval))}
        v["trimfill"] = {"estimator": tf.estimator, "side": tf.side, "k0": _val(tf.k0),
                         "effect_ci": S.est_ci(_val(tf.fit.beta[0, 0]), _val(tf.fit.ci_lb[0, 0]),
                                               _val(tf.fit.ci_ub[0, 0]))}
    return v


def _effect_label(S: Scale, unit: str) -> str:
    return f"{S.measure}" + (f" ({unit})" if unit and not S.ratio else "")


def _target_label(proto_claim) -> str:
    """The comparisons a claim is tested on, from the protocol Claim's ``target.subset``."""
    subset = proto_claim.target.subset if proto_claim is not None else {}
    if not subset:
        return "all"
    return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                     for k, v in subset.items())


def _translated(view: dict, proto_entry) -> dict:
    """A claim worded in another language reads in English, with the original
    kept beside it: ``wording`` becomes the project's translation (of the
    protocol's Claim or OutOfScope entry) and ``original`` the quoted claim
    (a translation is not a number, but it is ours, and the report says so)."""
    if proto_entry is None or not proto_entry.translation:
        return view
    lang = proto_entry.language or "the original language"
    return {**view, "wording": proto_entry.translation, "original": view["wording"],
            "translation_note": f"Translated from {lang} by the project; the original wording "
                                "is the claim as quoted."}


def _claim_view(v: ClaimVerdict, S: Scale, proto_claim=None) -> dict:
    """One claim card: the verdict object's figures and every text about it
    (written by :mod:`metaanalysis.render.claims_text`); ``proto_claim`` is
    the protocol's Claim (its target names the summary line)."""
    fig = v.figures or {}
    measure = fig.get("measure") or S.measure
    CS = S if measure == S.measure else Scale(measure)
    rows = []  # summary-of-findings lines: one overall, or one per subgroup
    if "k" in fig and "estimate" in fig:
        rows.append({"label": _target_label(proto_claim), "overall": True, "k": fig["k"],
                     "effect_ci": f"{measure} {CS.est_ci(fig['estimate'], fig.get('ci_lb'), fig.get('ci_ub'))}",
                     "pi": CS.ci(fig.get("pi_lb"), fig.get("pi_ub")), "I2": fmt_i2(fig.get("I2"))})
    for lvl, sub in (fig.get("subgroups") or {}).items():
        if not isinstance(sub, dict) or "estimate" not in sub:
            continue
        rows.append({"label": lvl, "overall": False, "k": sub.get("k"),
                     "effect_ci": f"{measure} {CS.est_ci(sub['estimate'], sub.get('ci_lb'), sub.get('ci_ub'))}",
                     "pi": CS.ci(sub.get("pi_lb"), sub.get("pi_ub")), "I2": fmt_i2(sub.get("I2"))})
    interaction = None
    if fig.get("Q_between_p") is not None:
        interaction = ("Test for subgroup differences: "
                       + (f"Q = {fmt_num(fig['Q_between'])}, df = {fig.get('Q_between_df')}, "
                          if _finite(fig.get("Q_between")) else "")
                       + p_eq(fig["Q_between_p"]))
    k_total = None
    if rows:
        ks = [r["k"] for r in rows if isinstance(r["k"], int)]
        k_total = rows[0]["k"] if rows[0]["overall"] else (sum(ks) if ks else None)
    ice = claims_text.iceman_dict(v.iceman, v.scale)
    certainty = v.certainty
    if certainty and ice:
        cert_label = f"{certainty} (GRADE); ICEMAN: {ice.get('rating')}"
    elif certainty:
        cert_label = certainty
    elif ice:
        cert_label = f"ICEMAN: {ice.get('rating')}"
    else:
        cert_label = "not rated"
    return {
        "id": v.id, "anchor": "claim-" + _safe_id(v.id),
        "wording": v.wording or "", "source": v.source or "",
        "original": None, "translation_note": None,  # see _translated
        "finding": (v.finding or "").replace("_", " "),
        "operational": v.operational or "", "in_scope": v.in_scope,
        "verdict": v.verdict, "verdict_class": "v-" + _safe_id(v.verdict),
        "card_class": "claim-" + _safe_id(v.verdict),
        "summary": claims_text.verdict_summary(v), "reasons": list(claims_text.reason_lines(v)),
        "certainty": certainty, "certainty_statement": claims_text.statement_text(v) or "",
        "cert_label": cert_label,
        "downgrades": [{"domain": d.domain, "levels": d.levels,
                        "reason": claims_text.downgrade_reason(d, v.scale)} for d in v.downgrades],
        "iceman": ({"rating": ice.get("rating"),
                    "entries": [{"name": n.replace("_", " "), "response": it.get("response"),
                               "note": it.get("note")}
                              for n, it in (ice.get("items") or {}).items()]} if ice else None),
        "missing": list(claims_text.missing_lines(v)), "studies": list(v.studies),
        "sof": rows, "k": k_total if k_total is not None else "NA", "interaction": interaction,
    }


def _derivation_view(run: RunResult, S: Scale) -> list[dict]:
    out = []
    arm_keys = (("m1i", "mean (probiotic)"), ("sd1i", "SD (probiotic)"), ("n1i", "n (probiotic)"),
                ("ai", "events (probiotic)"), ("m2i", "mean (control)"), ("sd2i", "SD (control)"),
                ("n2i", "n (control)"), ("ci", "events (control)"),
                ("yi", "reported effect"), ("vi", "reported variance"))
    alpha = run.protocol.model.alpha
    for i, c in enumerate(run.comparisons, 1):
        ex = c.extraction
        used = [{"name": label, "value": fmt_data(_val(getattr(ex, k)))} for k, label in arm_keys
                if _val(getattr(ex, k)) is not None]
        steps = []
        for step, d in enumerate(ex.derivations, 1):
            steps.append({
                "n": step, "method": d.method, "formula": d.formula,
                "inputs": "; ".join(f"{k} = {fmt_data(v)}" for k, v in dict(d.inputs).items()),
                "result": "; ".join(f"{k} = {fmt_data(v)}" for k, v in dict(d.result).items()),
                "reference": d.reference or "", "note": d.note or "",
            })
        out.append({
            "key": c.key, "anchor": f"der-{i}-{_safe_id(c.key)}", "study": c.study,
            "outcome": c.outcome, "scale": c.scale, "kind": ex.kind or "",
            "arms": f"{ex.intervention_arm or c.arm} vs {ex.control_arm or c.control}",
            "measure": ex.measure or S.measure,
            "used": used, "steps": steps, "notes": list(ex.notes),
            "flags": list(c.flags), "outcome_choice": c.outcome_choice or "",
            "yi": fmt_num(c.yi, 4), "vi": fmt_num(c.vi, 4),
            "effect_ci": S.est_ci(c.yi, *_wald(c, alpha)),
        })
    return out


def _flags_view(run: RunResult) -> list[dict]:
    by_flag: dict[str, list[str]] = {}
    for c in run.comparisons:
        for f in c.flags:
            by_flag.setdefault(f, []).append(c.key)
    return [{"flag": f, "text": FLAG_TEXT.get(f, ""), "comparisons": keys}
            for f, keys in sorted(by_flag.items())]


def _claims_views(run: RunResult, S: Scale) -> list[dict]:
    """Every claim's view, in the run's order, worded in English where translated."""
    proto = run.protocol
    proto_claims = {pc.id: pc for pc in proto.claims}
    translations = {pc.id: pc for pc in list(proto.claims) + list(proto.out_of_scope)
                    if pc.translation}
    return [_translated(_claim_view(c, S, proto_claims.get(c.id)), translations.get(c.id))
            for c in run.claims]


def build_context(run: RunResult, index: list[dict], outdir: Path) -> dict:
    """Everything the templates show, as display strings (numbers rounded here).

    Parameters
    ----------
    run : RunResult
        One protocol's run (:func:`metaanalysis.analysis.pipeline.run_protocol`).
    index : list of dict
        The figure index (``{"id", "title", "caption", "files"}``; paths
        relative to ``outdir``).
    outdir : Path
        The folder holding ``figures/``; SVG files are read from it.

    Returns
    -------
    dict
        The templates' variables: the protocol's question and model, then one
        view (display strings) per report section.
    """
    proto = run.protocol
    model = proto.model
    S = Scale(model.measure)
    figs = Figures(index, outdir)
    unit = proto.outcome.unit or ""

    main = _analysis_view(run.main, S)
    prisma_figure = figs.take("prisma")
    main["figure"] = figs.take(FOREST_MAIN)
    strata = []
    for a in run.strata:
        v = _analysis_view(a, S)
        v["figure"] = figs.take(f"forest_{a.name}")
        strata.append(v)
    regressions = _regression_view(run, S, figs)
    # an analysis on another measure (the ratio of means) is shown on its own scale
    sensitivity = [_analysis_view(a, Scale(a.result.measure if a.result is not None else S.measure))
                   for a in run.sensitivity]
    loo = _loo_view(run, S)
    loo_figure = figs.take("leave_one_out")
    cumulative_figure = figs.take("cumulative")
    rob_figures = [f for f in (figs.take("rob_summary"), figs.take("rob_traffic_light")) if f]
    small = _small_study_view(run, S, figs)
    adverse = _analysis_view(run.adverse_events, Scale("RR")) if run.adverse_events else None
    claims = _claims_views(run, S)
    sof_table = sof.summary_of_findings(run)
    for r in sof_table["rows"]:
        r["marks_text"] = sof.marks_text(r["marks"])
    other_figures = figs.rest()

    q = proto.question
    conv = run.main.result.overall.conventions if run.main.result is not None else {}
    conventions = [{"name": CONVENTION_NAMES.get(k, k.replace("_", " ").capitalize()), "value": v}
                   for k, v in _plain(conv).items()]
    severity = proto.severity
    return {
        "title": proto.title or proto.id,
        "protocol_id": proto.id,
        "question": [{"name": n, "value": getattr(q, n) or ""}
                     for n in ("population", "intervention", "comparator", "outcome")],
        "eligibility": proto.eligibility,
        "outcome": proto.outcome,
        "model": {
            "measure": S.measure, "measure_name": fmt.measure_name(S.measure, lower=True),
            "ratio": S.ratio, "null": S.null,
            "method": METHOD_NAMES.get(model.method, model.method),
            "test": TEST_NAMES.get(model.test, model.test),
            "alpha": model.alpha,
            "level": fmt.level(model.alpha),
            "ci_label": fmt.ci_label(model.alpha),
            "pi_label": fmt.pi_label(model.alpha),
            "prediction_interval": model.prediction_interval,
            "change_score_correlation": model.change_score_correlation,
            "multi_arm": (model.multi_arm or "").replace("_", " "),
            "effect_label": _effect_label(S, unit),
            "lower_is_better": proto.outcome.lower_is_better,
        },
        "conventions": conventions,
        "mcid": (f"{fmt_data(proto.mcid)} {unit}".strip() if proto.mcid is not None else None),
        "mcid_source": proto.mcid_source or "",
        "severity_bands": ([{"name": b.name, "range": f"{fmt_data(b.lower)}–{fmt_data(b.upper)}"}
                            for b in severity.bands] if severity else []),
        "severity_source": (severity.bands_source if severity else "") or "",
        "small_study_min_k": proto.small_study_min_k,
        "studies": _studies_view(run, S),
        "prisma_figure": prisma_figure,
        "main": main,
        "strata": strata,
        "regressions": regressions,
        "sensitivity": sensitivity,
        "loo": loo, "loo_figure": loo_figure, "cumulative_figure": cumulative_figure,
        "rob_figures": rob_figures,
        "small": small,
        "adverse": adverse,
        "claims": claims,
        # the one verdict rule every claim was judged by (protocols/README.md)
        "verdict_rule": {"id": claims_mod.RULE_ID, "text": claims_text.RULE_TEXT},
        "sof": sof_table,
        "sof_md": _MdRaw(sof.sof_markdown(sof_table, escape=md_escape)),
        "verdict_counts": [{"verdict": v, "n": sum(c["verdict"] == v for c in claims),
                            "cls": "v-" + _safe_id(v)} for v in VERDICTS
                           if any(c["verdict"] == v for c in claims)],
        "other_figures": other_figures,
        "derivations": _derivation_view(run, S),
        "flag_table": _flags_view(run),
        "swim": _swim_view(run, S),
        "published": _published_view(run, S),
    }


# ----------------------------------------------------------------------------
# evidence outside the pooled estimate (SWiM) and published meta-analyses


def _swim_view(run: RunResult, S: Scale) -> dict | None:
    """Availability of evidence, vote counting and Stouffer, as display strings."""
    sw = run.swim  # the run's own record of the synthesis without meta-analysis
    if not sw:
        return None
    av = sw["availability"]
    main = run.main.result
    pooled = (S.est_ci(main.estimate, main.ci_lb, main.ci_ub)
              if main is not None else "not estimable")

    def n_text(n, unknown):
        txt = f"{fmt_data(n)} participants"
        return txt + (f" (n unknown for {unknown})" if unknown else "")

    n_in_unknown = sum(1 for t in sw["trials"] if t["in_analysis"] and not t["n"])
    headline = (f"The pooled {S.measure} {pooled} comes from {av['trials_analysed']} of "
                f"{av['trials_eligible']} eligible trials ("
                f"{n_text(av['participants_analysed'], n_in_unknown)}). "
                f"{av['trials_missing']} eligible trials "
                f"({n_text(av['participants_missing'], av['missing_n_unknown'])}) are not in it: "
                f"{av['missing_favour_probiotic']} point towards the probiotic, "
                f"{av['missing_favour_control']} towards the control, and "
                f"{av['missing_no_direction']} report no usable direction.")

    def vote_text(v):
        if v["proportion"] is None:
            return "no trial with a direction"
        return (f"{v['favour_probiotic']} of {v['favour_probiotic'] + v['favour_control']} "
                f"favour the probiotic (proportion {fmt_num(v['proportion'])}, 95% CI "
                f"[{fmt_num(v['ci_lb'])}, {fmt_num(v['ci_ub'])}], Wilson; sign test "
                f"{p_eq(v['pval'])})" + (f"; {v['neither']} neither" if v["neither"] else ""))

    def stouffer_text(st, label):
        if not st["k"]:
            return f"{label}: no trial with an exact p-value"
        return (f"{label}: k = {st['k']}, Z = {fmt_num(st['z'])}, one-sided {p_eq(st['pval'])}"
                f" ({', '.join(st['trials'])})")

    word = {1: "probiotic", -1: "control", 0: "neither", None: "not reported"}
    missing = [{"id": t["id"], "n": fmt_data(t["n"]) if t["n"] else "NA",
                "direction": word[t["direction"]],
                "basis": t["direction_source"] or "",
                "p": fmt_p(t["p"]) if t["p"] is not None else ""}
               for t in sw["trials"] if not t["in_analysis"]]
    w = sw["stouffer"]["weighted"]
    return {
        "headline": headline,
        "vote_all": vote_text(sw["vote_count"]["all"]),
        "vote_missing": vote_text(sw["vote_count"]["missing"]),
        "stouffer_weighted": stouffer_text(w, "weighted by the square root of n")
        + (f"; left out, n unknown: {', '.join(w['left_out_n_unknown'])}"
           if w.get("left_out_n_unknown") else ""),
        "stouffer_unweighted": stouffer_text(sw["stouffer"]["unweighted"], "equal weights"),
        "kinds": ", ".join(sw["outcome_kinds"]),
        "missing": missing,
    }


def _norm_label(s: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", s)


def _published_view(run: RunResult, S: Scale) -> list[dict]:
    """Our pooled estimate beside each published one, with the differences the
    data show (trials, years, model); the protocol's ``published`` entries."""
    proto = run.protocol
    main = run.main.result
    comps = run.comparisons
    ours_ids = sorted({c.study for c in comps})
    years = {c.study: c.year for c in comps}
    model = proto.model
    out = []
    for p in proto.published:
        PS = Scale(p.measure)
        pub = (lambda v: fmt.effect(v, PS.ratio))  # published values are on the natural scale
        theirs = (pub(p.estimate) + (f" [{pub(p.ci_lb)}, {pub(p.ci_ub)}]"
                                     if p.ci_lb is not None else "")
                  if p.estimate is not None else "not in the stored source")
        ours = (S.est_ci(main.estimate, main.ci_lb, main.ci_ub)
                if main is not None else "not estimable")
        diffs = []
        k_ours = main.k if main is not None else 0
        diffs.append(f"Trials: ours {k_ours} comparisons from {len(ours_ids)} trials; theirs "
                     + (f"{p.k} trials" if p.k else f"{len(p.trials)} listed"
                        if p.trials else "not stated") + ".")
        if p.trials:
            mine = {_norm_label(i): i for i in ours_ids}
            theirs_l = {_norm_label(t): t for t in p.trials}
            both = sorted(mine[k] for k in mine if k in theirs_l)
            only_t = sorted(theirs_l[k] for k in theirs_l if k not in mine)
            only_o = sorted(mine[k] for k in mine if k not in theirs_l)
            diffs.append(f"In both: {', '.join(both) or 'none'}. Only in theirs: "
                         f"{', '.join(only_t) or 'none'}. Only in ours: {', '.join(only_o) or 'none'}"
                         " (labels matched on author and year).")
        if p.year:
            later = sorted(i for i in ours_ids if years.get(i) and years[i] > p.year)
            if later:
                diffs.append(f"Ours includes trials published after {p.year}: "
                             f"{', '.join(later)}.")
        if main is not None and p.estimate is not None and p.measure == S.measure and not S.ratio:
            d = S.value(main.estimate) - p.estimate
            diffs.append(f"Difference in point estimates: {fmt_num(d)} {S.measure} "
                         f"(ours minus theirs).")
        diffs.append(f"Our model: {METHOD_NAMES.get(model.method, model.method)}, "
                     f"{TEST_NAMES.get(model.test, model.test)}; final values and "
                     "change scores mixed for MD; shared controls split; derived SEs and SDs as "
                     "in Appendix A." if S.measure == "MD" else
                     f"Our model: {METHOD_NAMES.get(model.method, model.method)}, "
                     f"{TEST_NAMES.get(model.test, model.test)}.")
        rec = p.recomputed_from
        if rec is not None:
            # a value we computed from the review's data table is never shown as quoted
            label = "Recomputed from the review's data table, not quoted"
            diffs.append(f"Their pooled value is not printed in any stored source: it was "
                         f"recomputed from the review's own data table ({rec.review}, "
                         f"analysis {rec.analysis}) by meta revman reproduce, under the "
                         f"model inferred from its printed weights ({rec.method})."
                         + (f" {rec.note}" if rec.note else ""))
        else:
            label = "Published"
        if p.notes:
            diffs.append(p.notes)
        out.append({"id": p.id, "citation": p.citation, "source": p.source, "label": label,
                    "analysis": p.analysis, "population": p.population,
                    "measure": p.measure, "theirs": theirs, "ours": ours,
                    "quote": p.quote, "differences": diffs,
                    "same_scale": PS.ratio == S.ratio})
    return out


# ----------------------------------------------------------------------------
# markdown escaping


def md_escape(value: object) -> str:
    """Make a value safe inside Markdown text and table cells.

    Escapes what CommonMark would read as markup: a backslash, ``|`` (table
    cells), ``*`` and backticks, ``<`` that could open an HTML tag or an
    autolink, ``&`` that would form an entity, and ``](`` (an inline link).
    Newlines become spaces so a value never breaks a table row.
    """
    if value is None:
        return ""
    if isinstance(value, Markup):
        value = str(value)
    s = str(value).replace("\\", "\\\\")
    s = re.sub(r"([|*`])", r"\\\1", s)
    s = re.sub(r"<(?=[A-Za-z/!?])", r"\\<", s)
    s = re.sub(r"&(?=#?\w+;)", r"\\&", s)
    s = s.replace("](", "\\](")
    return re.sub(r"\s*\n\s*", " ", s)


class _MdRaw(str):
    """Markdown written by the template itself (not escaped)."""


def _md_finalize(value):
    if isinstance(value, _MdRaw):
        return str(value)
    return md_escape(value)


# ----------------------------------------------------------------------------
# entry point


#: The two reports' templates, by ``html``.
TEMPLATE_NAMES = {True: "report.html.j2", False: "report.md.j2"}

#: This process's environments, by ``html``: a template is compiled once a
#: process (compiling both costs ~0.3 s of CPU, most of a report's time).
_ENVIRONMENTS: dict[bool, jinja2.Environment] = {}
_BYTECODE: jinja2.BytecodeCache | None = None


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """jinja2's folder of compiled templates, in which a damaged file is a miss.

    jinja2 checks a file's header and the template's checksum, but a damaged
    checksum raises (an unpickling error) and a file holding marshalled data
    other than code would fail when run; either way the template is compiled
    again here, and jinja2 writes the file anew.
    """

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        import types

        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - any damage: compile instead
            bucket.reset()
        if bucket.code is not None and not isinstance(bucket.code, types.CodeType):
            bucket.reset()


def preload(bytecode_dir: Path | None = None) -> None:
    """Compile both templates in this process (``meta run`` does it before
    forking the report workers, which inherit them).

    With ``bytecode_dir``, compiled templates are kept there (jinja2's
    ``FileSystemBytecodeCache``, checked against each template's source; a
    damaged file is compiled again), so a later run loads them instead of
    compiling. Without it none is kept (nor read from an earlier folder).
    """
    global _BYTECODE
    cache = None
    if bytecode_dir is not None:
        try:
            Path(bytecode_dir).mkdir(parents=True, exist_ok=True)
            cache = _BytecodeCache(str(bytecode_dir))
        except OSError:  # not a folder: compile, keep nothing
            cache = None
    if cache is not None or _BYTECODE is not None:
        _BYTECODE = cache
        _ENVIRONMENTS.clear()
    for html, name in TEMPLATE_NAMES.items():
        _environment(html).get_template(name)


def _environment(html: bool) -> jinja2.Environment:
    env = _ENVIRONMENTS.get(html)
    if env is not None:
        return env
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=None if html else _md_finalize,
        bytecode_cache=_BYTECODE,
    )
    env.filters["raw"] = _MdRaw
    _ENVIRONMENTS[html] = env
    return env


def render_reports(run: RunResult, index: list[dict], outdir: Path) -> dict[str, str]:
    """Render report.html and report.md for one protocol's run.

    Parameters
    ----------
    run : RunResult
        One protocol's run (:func:`metaanalysis.analysis.pipeline.run_protocol`).
    index : list of dict
        The figure index (``{"id", "title", "caption", "files"}``; paths
        relative to ``outdir``).
    outdir : Path
        The folder holding ``figures/``; SVG files are read from it.

    Returns
    -------
    dict of str to str
        ``{"report.html": ..., "report.md": ..., "sof.csv": ...}``: the two
        reports and the GRADE Summary of Findings table
        (:mod:`metaanalysis.render.sof`), which both reports show near the top.
    """
    ctx = build_context(run, index, Path(outdir))
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    html = _environment(True).get_template(TEMPLATE_NAMES[True]).render(css=Markup(css), **ctx)
    md = _environment(False).get_template(TEMPLATE_NAMES[False]).render(**ctx)
    md = re.sub(r"\n{3,}", "\n\n", md).strip() + "\n"
    return {"report.html": html, "report.md": md, "sof.csv": sof.sof_csv(ctx["sof"])}
