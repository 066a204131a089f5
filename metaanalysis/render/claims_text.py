"""Claim verdicts as Markdown (claims.md) and as the text of ``meta explain``."""

from __future__ import annotations

_CRIT_WORDS = {"met": "met", "opposite": "met in the opposite direction",
               "neither": "neither met nor met in the opposite direction",
               "not evaluable": "not evaluable"}


def verdict_summary(verdict: str, judgement: dict) -> str:
    """The verdict sentence, written only from the judged values (criterion,
    its detail, the certainty the rule used and its basis), so that it cannot
    disagree with the verdict."""
    crit, detail = judgement["criterion"], judgement["criterion_detail"]
    cert, basis = judgement.get("certainty"), judgement.get("certainty_basis")
    if crit == "not evaluable":
        return f"The comparison cannot be made: {detail}."
    if crit == "neither":
        return f"Neither confirmed nor refuted: {detail}."
    if verdict == "inconclusive":  # met/opposite demoted by very low certainty
        return (f"The statistical criterion is {_CRIT_WORDS[crit]} ({detail}), but the {basis} is "
                "very low: the evidence is very uncertain, so the claim can be neither confirmed "
                "nor refuted.")
    tail = f"; {basis}: {cert}" if cert is not None else f"; {basis}"
    return f"{verdict.capitalize()}: {detail}{tail}."


def rule_lines(verdict: str, judgement: dict) -> tuple[str, str]:
    """The criterion line and the rule line that close a claim's reasons."""
    crit = judgement["criterion"]
    cert, basis = judgement.get("certainty"), judgement.get("certainty_basis")
    how = (f", certainty for the rule {cert} ({basis})" if cert is not None
           else f" ({basis})" if crit in ("met", "opposite") else "")
    return (f"statistical criterion: {crit} ({judgement['criterion_detail']})",
            f"{judgement['rule']}: criterion {crit}{how} -> {verdict}")


VERDICT_MARK = {"supported": "SUPPORTED", "contradicted": "CONTRADICTED",
                "inconclusive": "INCONCLUSIVE", "insufficient evidence": "INSUFFICIENT EVIDENCE",
                "out of scope": "OUT OF SCOPE"}


#: How the terminal names the basis of the certainty the verdict rule used.
_BASIS_SHORT = {
    "GRADE certainty": "GRADE",
    "GRADE certainty (without inconsistency)": "GRADE without inconsistency",
    "ICEMAN credibility of the effect modification": "ICEMAN credibility",
}


def run_line(claim: dict) -> str:
    """One line of ``meta run``'s summary: the verdict and the certainty the
    verdict rule used, named by its basis (GRADE, GRADE without inconsistency
    for "mixed results" claims, ICEMAN for effect modification), so the line
    never shows a rating the verdict did not depend on."""
    j = claim.get("judgement") or {}
    if j.get("certainty"):
        basis = _BASIS_SHORT.get(j.get("certainty_basis"), j.get("certainty_basis") or "")
        tail = f" ({j['certainty']}: {basis})" if basis else f" ({j['certainty']})"
    elif claim.get("certainty"):
        tail = f" (GRADE {claim['certainty']}; part of the criterion)"
    else:
        tail = ""
    return f"  {claim['id']:<18} {claim['verdict'].upper():<22}{tail}"


def translation_of(protocol: dict | None, claim_id: str) -> dict | None:
    """The protocol entry (claim or out-of-scope claim) that carries an English
    translation of ``claim_id``'s wording, if any."""
    for entry in list((protocol or {}).get("claims") or []) + list(
            (protocol or {}).get("out_of_scope") or []):
        if entry.get("id") == claim_id and entry.get("translation"):
            return entry
    return None


def explain(claim: dict, protocol_id: str | None = None, protocol: dict | None = None) -> str:
    """The full reasoning for one claim (a dict from results.json).

    With ``protocol`` (results.json's), a claim worded in another language
    reads in the project's English translation, the original beside it.
    """
    lines = [f"{claim['id']}: {VERDICT_MARK.get(claim['verdict'], claim['verdict'])}"
             + (f"  [{protocol_id}]" if protocol_id else ""), ""]
    tr = translation_of(protocol, claim["id"])
    if tr:
        lines.append(f"Claim: \"{tr['translation']}\" (the project's translation from "
                     f"{tr.get('language') or 'the original language'})")
        lines.append(f"Original: \"{claim['wording']}\"")
    else:
        lines.append(f"Claim: \"{claim['wording']}\"")
    lines.append(f"Source: {claim['source']}")
    if claim.get("operational"):
        lines.append(f"How it is tested: {claim['operational']}")
    lines.append("")
    lines.append(f"Verdict: {claim['verdict']}. {claim['summary']}")
    j = claim.get("judgement")
    if j:
        cert = (f"; certainty for the rule: {j['certainty']} ({j['certainty_basis']})"
                if j.get("certainty") else f"; {j['certainty_basis']}"
                if j["criterion"] in ("met", "opposite") else "")
        lines.append(f"Judged values ({j['rule']}): criterion {j['criterion']} "
                     f"({j['criterion_detail']}){cert}")
    if claim.get("certainty"):
        # a claim that results are mixed is rated without the inconsistency
        # domain: its level is not the effect's GRADE rating, so say which it is
        what = ("GRADE without inconsistency" if "without inconsistency" in
                str((j or {}).get("certainty_basis")) else "GRADE")
        lines.append(f"Certainty ({what}): {claim['certainty']}. {claim.get('certainty_statement') or ''}")
        for d in claim.get("downgrades", []):
            lines.append(f"  - downgraded {d['levels']} for {d['domain']}: {d['reason']}")
        if not claim.get("downgrades"):
            lines.append("  - no downgrades")
        for note in claim.get("grade_notes") or []:
            lines.append(f"  - {note}")
    if claim.get("iceman"):
        ice = claim["iceman"]
        lines.append(f"Credibility of the effect modification (ICEMAN-style): {ice['rating']}")
        for name, item in ice["items"].items():
            lines.append(f"  - {name.replace('_', ' ')}: {item['response']} ({item['note']})")
    if claim.get("reasons"):
        lines.append("Reasons:")
        for r in claim["reasons"]:
            lines.append(f"  - {r}")
    if claim.get("missing"):
        lines.append("Missing evidence: " + "; ".join(claim["missing"]))
    if claim.get("studies"):
        lines.append("Trials used: " + ", ".join(claim["studies"]))
    return "\n".join(lines) + "\n"


def claims_markdown(data: dict) -> str:
    proto = data["protocol"]
    out = [f"# Claims: {proto['title']}", "",
           f"Protocol `{proto['id']}`. Model: {proto['model']['measure']}, "
           f"{proto['model']['method']}, test {proto['model']['test']}. "
           "Verdicts: supported, contradicted, inconclusive, insufficient evidence.", "",
           f"**{data.get('verdict_rule', {}).get('text', '')}**", "",
           "| claim | verdict | criterion | certainty used by the rule | GRADE | summary |",
           "|---|---|---|---|---|---|"]
    for c in data["claims"]:
        summ = c["summary"].replace("|", "\\|")
        j = c.get("judgement") or {}
        used = (f"{j['certainty']} ({j['certainty_basis']})" if j.get("certainty")
                else "not applied" if j.get("criterion") in ("met", "opposite") else "–")
        grade_txt = c.get("certainty") or "–"
        if c.get("certainty") and "without inconsistency" in str(j.get("certainty_basis")):
            grade_txt += " (without inconsistency)"  # not the effect's full GRADE rating
        out.append(f"| {c['id']} | {c['verdict']} | {j.get('criterion') or '–'} | {used} | "
                   f"{grade_txt} | {summ} |")
    out.append("")
    for c in data["claims"]:
        out.append(f"## {c['id']}")
        out.append("")
        out.append("```")
        out.append(explain(c, protocol=proto).rstrip())
        out.append("```")
        out.append("")
    return "\n".join(out)
