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
        lines.append(f"Certainty (GRADE): {claim['certainty']}. {claim.get('certainty_statement') or ''}")
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
        out.append(f"| {c['id']} | {c['verdict']} | {j.get('criterion') or '–'} | {used} | "
                   f"{c.get('certainty') or '–'} | {summ} |")
    out.append("")
    for c in data["claims"]:
        out.append(f"## {c['id']}")
        out.append("")
        out.append("```")
        out.append(explain(c, protocol=proto).rstrip())
        out.append("```")
        out.append("")
    return "\n".join(out)
