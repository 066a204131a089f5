"""The GRADE Summary of Findings table of one protocol, as GRADEpro lays it out.

Built from one protocol's result objects (the RunResult the reports receive,
never the results.json dict); it never fits anything. One row per pooled
estimate a reader needs: the protocol's main analysis, then each distinct
target-subset analysis the claims are judged on. Columns (GRADE Handbook
14.1; Guyatt et al. 2013, J Clin Epidemiol 66:158-172):

* **Outcome** with its follow-up (the range of the analysed time points).
* **Anticipated absolute effects** (95% CI from the protocol's alpha):
  binary outcomes give the *risk with control* (the pooled control-arm
  risk: all control events over all control participants of the trials in
  the row with per-arm counts) and the *risk with probiotic* per 1,000 =
  control risk x RR (x OR through the odds for OR; + RD for RD), with the
  risk difference per 1,000. Continuous outcomes give the mean difference
  ("MD 9.85 points lower (14.93 lower to 4.76 lower)") and, when trials
  report per-arm means, the participant-weighted mean of the control arms
  (separately for change and final scores, which are not comparable).
* **Relative effect** (ratio measures only): "RR 0.77 (0.57 to 1.05)".
* **№ of participants (studies)**: the sum of analysed participants;
  "at least N" when some trials report no n.
* **Certainty**: GRADE symbols and words (⊕⊕◯◯ Low), with a numbered
  footnote per downgrade (domain, levels, reason from the claim's
  ``downgrades``).
* **Comments**: the claims judged on the row with their verdicts, and the
  claim's GRADE certainty statement.

A row's certainty is the rating of the first claim (in protocol order) judged
on that estimate; effect-modification claims are used only when no other
claim is. A row no claim rates says "not rated".
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING

from metaanalysis.analysis import claims as claims_mod  # one participants rule
from metaanalysis.render import claims_text, fmt
from metaanalysis.stats.results import _plain

if TYPE_CHECKING:
    from metaanalysis.analysis.claims import ClaimVerdict, Downgrade
    from metaanalysis.analysis.pipeline import Comparison, RunResult

#: GRADE's symbols (GRADE Handbook 5.1: ⊕ for each level reached, ◯ for each lost).
CERTAINTY_SYMBOLS = {"high": "\u2295\u2295\u2295\u2295", "moderate": "\u2295\u2295\u2295\u25ef",
                     "low": "\u2295\u2295\u25ef\u25ef", "very low": "\u2295\u25ef\u25ef\u25ef"}
CERTAINTY_WORDS = {"high": "High", "moderate": "Moderate", "low": "Low", "very low": "Very low"}
LEVEL_WORDS = {1: "one level", 2: "two levels", 3: "three levels"}
#: Absolute effects of binary outcomes are given per this many people (GRADEpro's default).
PER = 1000
#: Findings that rate the pooled effect itself; effect-modification claims
#: rate a comparison between strata, so their certainty is a last resort.
_MODIFIER_FINDINGS = ("effect_modification",)
#: Findings whose certainty leaves a GRADE domain out (a claim that results are
#: mixed is rated without inconsistency): never the row's rating of the effect.
_PARTIAL_FINDINGS = ("heterogeneity",)

CSV_COLUMNS = ["row", "outcome", "follow_up", "claims", "studies", "participants",
               "participants_note", "measure", "relative_effect", "risk_control",
               "risk_probiotic", "risk_difference", "mean_difference", "control_mean",
               "certainty", "certainty_symbols", "footnotes", "comments"]


_thousands = fmt.thousands  # "1,234"


@dataclass(frozen=True)
class _Estimate:
    """The pooled estimate of one row: the main fit's or a claim's ``figures``
    (analysis scale; None where missing or not finite, as in results.json)."""

    k: int | None
    measure: str | None
    estimate: float | None
    ci_lb: float | None
    ci_ub: float | None

    @classmethod
    def of_fit(cls, fit) -> "_Estimate":
        return cls(*(_plain(getattr(fit, n)) for n in ("k", "measure", "estimate", "ci_lb",
                                                           "ci_ub")))

    @classmethod
    def of_figures(cls, fig: dict) -> "_Estimate":
        return cls(*(_plain(fig.get(n)) for n in ("k", "measure", "estimate", "ci_lb", "ci_ub")))


def _same_estimate(fig: _Estimate, res: _Estimate) -> bool:
    return (fig.k == res.k and fmt.is_number(fig.estimate) and fmt.is_number(res.estimate)
            and math.isclose(fig.estimate, res.estimate, rel_tol=1e-12, abs_tol=1e-12))


def _subset_label(subset: dict) -> str:
    return "; ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                     for k, v in subset.items())


def _row_comparisons(run: RunResult, subset: dict, claim, k) -> list[Comparison]:
    """The comparisons behind a row: the main analysis filtered by the claim's
    target subset; when that does not give k comparisons, those of the
    claim's trials."""
    main_keys = set(run.main.keys)
    comps = [c for c in run.comparisons if c.key in main_keys]
    if subset:
        def keep(c):
            strata = c.attrs
            for field, levels in subset.items():
                levels = levels if isinstance(levels, (list, tuple)) else [levels]
                if strata.get(field) not in levels:
                    return False
            return True
        comps = [c for c in comps if keep(c)]
    if claim is not None and k is not None and len(comps) != k:
        studies = set(claim.studies)
        comps = [c for c in run.comparisons if c.study in studies]
    return comps


def _follow_up(comps: list[Comparison]) -> str:
    weeks = sorted({c.timepoint_weeks for c in comps if fmt.is_number(c.timepoint_weeks)})
    if not weeks:
        return "not reported"
    show = fmt.compact
    if len(weeks) == 1:
        return f"{show(weeks[0])} weeks"
    return f"range {show(weeks[0])} to {show(weeks[-1])} weeks"


def _participants(comps) -> tuple[str, str]:
    """The participants cell and its note, counted by GRADE's rule
    (:func:`metaanalysis.analysis.claims.participants`: a trial's quoted total
    counts once, when every arm it spans is here)."""
    studies = sorted({c.study for c in comps})
    known, missing = claims_mod.participants(comps)
    rcts = f"{len(studies)} RCT{'s' if len(studies) != 1 else ''}"
    if not known:
        return f"not reported ({rcts})", f"Participant numbers not reported for any of {len(studies)} trials."
    if missing:
        return (f"at least {_thousands(known)} ({rcts})",
                f"Participant numbers not reported for {len(missing)} trial{'s' if len(missing) != 1 else ''}: "
                + ", ".join(missing) + ".")
    return f"{_thousands(known)} ({rcts})", ""


def _control_risk(comps: list[Comparison]):
    events = total = 0.0
    used = set()  # trials (not comparisons: a multi-arm trial counts once)
    for c in comps:
        ex = c.extraction
        if fmt.is_number(ex.ci) and fmt.is_number(ex.n2i) and ex.n2i > 0:
            events += ex.ci
            total += ex.n2i
            used.add(c.study)
    return (events / total if total > 0 else None), len(used)


def _risk_with(cr: float, x: float, measure: str) -> float:
    """The risk with probiotic given the control risk and an effect on the display scale."""
    if measure == "RR":
        r = cr * x
    elif measure == "OR":
        r = cr * x / (1 - cr + cr * x)
    else:  # RD
        r = cr + x
    return min(1.0, max(0.0, r))


def _per_k(r: float) -> str:
    return f"{_thousands(PER * r)} per {_thousands(PER)}"


def _diff_words(d: float) -> str:
    n = int(round(PER * d))
    if n == 0:
        return "0 fewer"
    return f"{_thousands(abs(n))} {'fewer' if n < 0 else 'more'}"


def _md_words(x: float, unit: str, digits: int = 2) -> str:
    s = fmt.num(abs(x), digits)
    if float(s) == 0:
        return fmt.num(0.0, digits) + (f" {unit}" if unit else "")
    return f"{s}{f' {unit}' if unit else ''} {'lower' if x < 0 else 'higher'}"


def _control_mean(comps: list[Comparison], unit: str) -> str:
    parts = []
    for scale, word in (("final", "final score"), ("change", "change from baseline")):
        num = den = 0.0
        k = 0
        for c in comps:
            ex = c.extraction
            if c.scale == scale and fmt.is_number(ex.m2i) and fmt.is_number(ex.n2i):
                num += ex.m2i * ex.n2i
                den += ex.n2i
                k += 1
        if den > 0:
            parts.append(f"mean {word} {fmt.num(num / den, 1)}{f' {unit}' if unit else ''} "
                         f"({k} trial{'s' if k != 1 else ''})")
    return "; ".join(parts)


class _Footnotes:
    """Numbered footnotes; the same text keeps its number."""

    def __init__(self):
        self.texts: list[str] = []

    def add(self, text: str) -> int:
        if text not in self.texts:
            self.texts.append(text)
        return self.texts.index(text) + 1


def _claim_note(v: ClaimVerdict, modifier: str | None) -> str:
    """"C1 inconclusive"; an effect-modification claim adds its interaction
    test by ``modifier`` (the protocol Claim's)."""
    note = f"{v.id} {v.verdict}"
    fig = v.figures or {}
    if v.finding in _MODIFIER_FINDINGS and fmt.is_number(fig.get("Q_between_p")):
        by = str(modifier or "subgroup").replace("_", " ")
        q = (f"Q = {fmt.num(fig['Q_between'])}, df = {fig['Q_between_df']}, "
             if fmt.is_number(fig.get("Q_between")) and fig.get("Q_between_df") else "")
        note += f" (subgroup differences by {by}: {q}{fmt.p_phrase(fig['Q_between_p'])})"
    return note


def _downgrade_text(d: Downgrade, scale) -> str:
    """A footnote: 'Risk of bias (downgraded one level): Why.' (``scale``: the verdict's)."""
    lv = d.levels
    lv_words = LEVEL_WORDS.get(lv, f"{lv} levels")
    domain = str(d.domain or "").strip()
    reason = claims_text.downgrade_reason(d, scale).strip()
    reason = reason[:1].upper() + reason[1:]
    if reason and not reason.endswith("."):
        reason += "."
    return f"{domain[:1].upper()}{domain[1:]} (downgraded {lv_words}): {reason}".strip()


def summary_of_findings(run: RunResult) -> dict:
    """The Summary of Findings table of one protocol as display strings.

    Parameters
    ----------
    run : RunResult
        One protocol's run (:func:`metaanalysis.analysis.pipeline.run_protocol`):
        its protocol, comparisons, main analysis, adverse events and claims.

    Returns
    -------
    dict
        ``{"header": [(name, value)], "rows": [row dicts], "footnotes":
        [str], "ci_label": str, "binary": bool, "continuous": bool,
        "control_head": str, "probiotic_head": str, ...}``; each row has the
        keys of :data:`CSV_COLUMNS` plus ``marks`` (footnote numbers) and the
        display cells ``abs_control``, ``abs_probiotic``, ``abs_detail``,
        ``relative`` (GRADEpro puts binary and continuous outcomes in one
        table; the column heads say which kinds it holds).
    """
    proto = run.protocol
    model = proto.model
    alpha = model.alpha
    unit = proto.outcome.unit or ""
    label = proto.outcome.label or "outcome"
    label = label[:1].upper() + label[1:]
    q = proto.question
    proto_claims = {pc.id: pc for pc in proto.claims}

    # ---- the estimates: main analysis first, then each distinct claim subset
    groups: list[dict] = []
    if run.main.result is not None and fmt.is_number(_plain(run.main.result.estimate)):
        groups.append({"fig": _Estimate.of_fit(run.main.result.overall), "subset": {},
                       "claims": [], "main": True})
    for c in run.claims:
        figures = c.figures or {}
        if not c.in_scope or "k" not in figures or not fmt.is_number(figures.get("estimate")):
            continue
        fig = _Estimate.of_figures(figures)
        g = next((g for g in groups if _same_estimate(fig, g["fig"])
                  and (fig.measure or model.measure) == (g["fig"].measure or model.measure)),
                 None)
        if g is None:
            pc = proto_claims.get(c.id)
            subset = dict(pc.target.subset) if pc is not None else {}
            g = {"fig": fig, "subset": subset, "claims": [], "main": False}
            groups.append(g)
        g["claims"].append(c)

    notes = _Footnotes()
    rows = []
    for i, g in enumerate(groups, 1):
        fig = g["fig"]
        measure = fig.measure or model.measure
        is_ratio = measure in fmt.RATIO_MEASURES
        rated = [c for c in g["claims"] if c.certainty
                 and c.finding not in _MODIFIER_FINDINGS + _PARTIAL_FINDINGS]
        rated = rated or [c for c in g["claims"] if c.certainty
                          and c.finding not in _PARTIAL_FINDINGS]
        rater = rated[0] if rated else None
        harms = not g["main"] and any(c.finding == "harms" for c in g["claims"])
        if harms:
            # the adverse-event analysis has its own trials; the run keeps
            # their effects but not their per-arm counts
            comps = []
            ae = run.adverse_events
            ae_studies = ({st.study for st in ae.result.overall.studies}
                          if ae is not None and ae.result is not None else set())
            n_trials = len(ae_studies) or fig.k
            name = "Adverse events (any)"
            participants = f"not available ({n_trials} RCT{'s' if n_trials != 1 else ''})"
            p_note = "Participant numbers and control-arm risks of the adverse-event trials are not in results.json."
        else:
            comps = _row_comparisons(run, g["subset"], g["claims"][0] if g["claims"] else None,
                                     fig.k)
            name = f"{label}, all trials" if g["main"] else \
                f"{label}, {_subset_label(g['subset']) or 'claim analysis'}"
            participants, p_note = _participants(comps)

        est, lb, ub = fig.estimate, fig.ci_lb, fig.ci_ub
        disp = (lambda v: math.exp(v) if fmt.is_number(v) else None) if is_ratio else (lambda v: v)
        e, l, u = disp(est), disp(lb), disp(ub)
        capped: list = []  # risk bounds cut at 0 or 1
        row = {"row": i, "outcome": name, "follow_up": _follow_up(comps),
               "claims": ", ".join(c.id for c in g["claims"]),
               "studies": len({c.study for c in comps}) if not harms else n_trials,
               "participants": participants, "participants_note": p_note, "measure": measure,
               "relative_effect": "", "risk_control": "", "risk_probiotic": "", "risk_difference": "",
               "mean_difference": "", "control_mean": ""}
        if is_ratio or measure == "RD":
            if is_ratio:
                row["relative_effect"] = (f"{measure} {fmt.ratio(e)} ({fmt.ratio(l)} to {fmt.ratio(u)})"
                                          if fmt.is_number(l) and fmt.is_number(u) else f"{measure} {fmt.ratio(e)}")
            cr, used = _control_risk(comps)
            if cr is not None and all(fmt.is_number(v) for v in (e, l, u)):
                rp, rl, ru = (_risk_with(cr, v, measure) for v in (e, l, u))
                n_trials_row = len({c.study for c in comps})
                row["risk_control"] = _per_k(cr) + (f" (from {used} of {n_trials_row} trials)"
                                                    if used < n_trials_row else "")
                row["risk_probiotic"] = f"{_per_k(rp)} ({_thousands(PER * rl)} to {_thousands(PER * ru)})"
                capped = [v for v in (l, u) if _risk_with(cr, v, measure) in (0.0, 1.0)]
                row["risk_difference"] = (f"{_diff_words(rp - cr)} per {_thousands(PER)} "
                                          f"(from {_diff_words(rl - cr)} to {_diff_words(ru - cr)})")
            else:
                row["risk_control"] = "not available (no per-arm counts)"
            if harms:
                row["risk_probiotic"] = row["risk_difference"] = ""
        else:
            if all(fmt.is_number(v) for v in (e, l, u)):
                row["mean_difference"] = (f"{measure} {_md_words(e, unit)} "
                                          f"({_md_words(l, '')} to {_md_words(u, '')})")
            row["control_mean"] = _control_mean(comps, unit)

        marks = []
        if rater is not None:
            cert = rater.certainty
            row["certainty"] = CERTAINTY_WORDS.get(cert, cert)
            row["certainty_symbols"] = CERTAINTY_SYMBOLS.get(cert, "")
            for d in rater.downgrades:
                marks.append(notes.add(_downgrade_text(d, rater.scale)))
            marks = sorted(set(marks))
        else:
            row["certainty"] = "Not rated"
            row["certainty_symbols"] = ""
        row["marks"] = marks
        row["footnotes"] = " ".join(f"{m}. {notes.texts[m - 1]}" for m in marks)

        comments = []
        if g["claims"]:
            comments.append("Claims: " + "; ".join(
                _claim_note(c, getattr(proto_claims.get(c.id), "modifier", None))
                for c in g["claims"]) + ".")
        else:
            comments.append("No claim is judged on this estimate; certainty not rated.")
        if rater is not None:
            if len(g["claims"]) > 1:
                comments.append(f"Certainty as rated for {rater.id}.")
            # name the claim and what its rating is of, so that a second level
            # for one estimate is not read as a second rating of the effect
            # "C3 low, GRADE certainty without inconsistency": the basis is
            # written with commas, never as a parenthesis inside a parenthesis
            differ = [f"{c.id} {c.certainty}"
                      + (", " + claims_text.basis_text(c).replace(" (", " ").replace(")", "")
                         if claims_text.basis_text(c) else "")
                      for c in g["claims"] if c.certainty
                      and c.certainty != rater.certainty]
            if differ:
                comments.append("Other claims on this estimate rated: " + "; ".join(differ) + ".")
            if claims_text.statement_text(rater):
                comments.append(claims_text.statement_text(rater))
        if p_note:
            comments.append(p_note)
        if capped:
            comments.append(f"A risk bound beyond 0 or {_thousands(PER)} per {_thousands(PER)} "
                            "is shown at that limit.")
        row["comments"] = " ".join(comments)
        row["binary"] = is_ratio or measure == "RD"
        if row["binary"]:
            row["abs_control"] = row["risk_control"] or "NA"
            row["abs_probiotic"] = row["risk_probiotic"] or "NA"
            row["abs_detail"] = row["risk_difference"]
            row["relative"] = row["relative_effect"] or "NA"
        else:
            row["abs_control"] = row["control_mean"] or "not reported"
            row["abs_probiotic"] = row["mean_difference"] or "NA"
            row["abs_detail"] = ""
            row["relative"] = "not applicable"
        rows.append(row)

    header = [("Patient or population", q.population or ""),
              ("Intervention", q.intervention or ""),
              ("Comparison", q.comparator or ""),
              ("Outcome", q.outcome or label)]
    binary = any(r["binary"] for r in rows)
    continuous = any(not r["binary"] for r in rows)
    ci = fmt.ci_label(alpha)
    if binary and not continuous:
        control_head, probiotic_head = "Risk with control", f"Risk with probiotic ({ci})"
    elif continuous and not binary:
        control_head, probiotic_head = "Control groups", f"Difference with probiotic ({ci})"
    else:
        control_head, probiotic_head = "With control", f"With probiotic ({ci})"
    return {"header": header, "rows": rows, "footnotes": notes.texts, "ci_label": ci,
            "measure": model.measure, "binary": binary, "continuous": continuous,
            "control_head": control_head, "probiotic_head": probiotic_head,
            "per": _thousands(PER)}


def sof_csv(table: dict) -> str:
    """The table as CSV (display strings, one row per estimate; byte-stable)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in table["rows"]:
        w.writerow({k: r.get(k, "") for k in CSV_COLUMNS})
    return buf.getvalue()


_SUP = str.maketrans("0123456789", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def marks_text(marks: list[int]) -> str:
    """Footnote numbers as superscripts ("¹,²"), for plain text and Markdown."""
    return ",".join(str(m).translate(_SUP) for m in marks)


def sof_markdown(table: dict, escape: Callable[[object], str] | None = None) -> str:
    """The table as Markdown (GRADEpro's columns), with the numbered footnotes below.

    ``escape`` makes a value safe inside Markdown (the report passes
    :func:`metaanalysis.render.report.md_escape`); by default only ``|`` is escaped.
    """
    ci = table["ci_label"]
    cell = escape or (lambda s: str(s).replace("|", "\\|").replace("\n", " "))
    lines = [f"**{name}:** {cell(value)}  " for name, value in table["header"] if value]
    lines.append("")
    rel = table["binary"]  # a relative-effect column only when some outcome is binary
    head = ["Outcome", table["control_head"], table["probiotic_head"]]
    head += [f"Relative effect ({ci})"] if rel else []
    head += ["№ of participants (studies)", "Certainty of the evidence (GRADE)", "Comments"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table["rows"]:
        cert = f"{r['certainty_symbols']} {r['certainty']}".strip() + marks_text(r["marks"])
        out = [f"{r['outcome']} (follow-up: {r['follow_up']})", r["abs_control"],
               r["abs_probiotic"] + (f"; {r['abs_detail']}" if r["abs_detail"] else "")]
        out += [r["relative"]] if rel else []
        out += [r["participants"], cert, r["comments"]]
        lines.append("| " + " | ".join(cell(x) for x in out) + " |")
    if table["footnotes"]:
        lines.append("")
        lines.append("Explanations:")
        lines.append("")
        for i, t in enumerate(table["footnotes"], 1):
            lines.append(f"{i}. {cell(t)}")
    return "\n".join(lines) + "\n"
