"""Turn rows of a Cochrane "Data and analyses" CSV (RevMan Web export) into study-file blocks.

Used for CD006475.pub3 (Probiotics in infants for prevention of allergic disease): analysis
1.2 (probiotic, eczema by 2 years) and 2.1 (synbiotic, eczema by 2 years), their subgroup
analyses (risk of allergy, probiotic type, period of supplementation) and the RoB 2 columns.

The CSV row *is* the quote: a quote's text is the row's relevant cells, verbatim, written as
``Column: value`` pairs joined by `` | ``. RoB 2 support text is kept verbatim except that the
HTML markup is removed (tags dropped, entities decoded, paragraphs joined by a space).

    python tools/cochrane_import.py show CD006475.pub3.csv "Allen 2014"   # print the blocks
    python tools/cochrane_import.py new  CD006475.pub3.csv                # write new study files
    python tools/cochrane_import.py merge CD006475.pub3.csv               # add blocks to existing files

Which review label maps to which study file, and what the new files say beyond the CSV
(citation, organisms from a primary abstract), is the table ``TRIALS`` below.

A thin caller of the library behind ``meta revman import``
(:mod:`metaanalysis.analysis.revman`): the export is read by ``read_export`` (one reader, with
its FILE:LINE errors) and the RoB 2 columns by ``rob2_cells`` (the domain map, the judgement
map and the HTML-to-text rule). What stays here is this one review's curation: which trial is
which study file, the quote layout the existing study files carry, and the merge into them.
For another review, use ``meta revman import`` instead.
"""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from ruamel.yaml import YAML

# run as a script (python tools/cochrane_import.py): this repository's package, not another install
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from metaanalysis.analysis.revman import (  # noqa: E402
    ROB2_COLUMNS, ROB2_JUDGEMENTS, read_export, rob2_cells,
)
from metaanalysis.errors import MetaError  # noqa: E402

REVIEW_DOI = "10.1002/14651858.CD006475.pub3"
REVIEW_URL = "https://www.cochranelibrary.com/cdsr/doi/10.1002/14651858.CD006475.pub3/full"
REVIEW_CITATION = ("Cochrane Database of Systematic Reviews CD006475.pub3, 'Probiotics in infants for "
                   "prevention of allergic disease', Data and analyses table (RevMan export), "
                   f"doi {REVIEW_DOI}")

#: the analyses that give each trial's eczema-by-2-years data row
DATA_ANALYSES = (("1", "2"), ("2", "1"), ("1", "10"))
#: subgroup analyses whose headings say something about the trial
SUBGROUP_ANALYSES = {("1", "8"): "risk", ("2", "4"): "risk", ("1", "10"): "type",
                     ("2", "5"): "type", ("1", "11"): "timing", ("2", "6"): "timing"}

#: RoB 2 domain key -> export column, and export judgement -> schema value:
#: the maps `meta revman import` uses (one definition, in metaanalysis/analysis/revman.py)
ROB_COLUMNS = tuple(ROB2_COLUMNS.items())


def judgement(text: str) -> str:
    """'Low risk' / 'Some concerns' / 'High risk' as the schema's value."""
    value = ROB2_JUDGEMENTS.get(text.strip().lower())
    if value is None:
        raise SystemExit(f"unknown RoB 2 judgement {text!r}; expected one of "
                         f"{', '.join(ROB2_JUDGEMENTS)}")
    return value
DATA_CELLS = ("Study", "Experimental cases", "Experimental N", "Control cases", "Control N",
              "Weight", "Mean", "CI start", "CI end")

#: review label -> (study id, is new file, analysis that gives its data row)
TRIALS = {
    "Abrahamsson 2007": ("Abrahamsson2007", False, ("1", "2")),
    "Allen 2014": ("Allen2014", False, ("1", "2")),
    "Cabana 2007": ("Cabana2017", False, ("1", "2")),
    "Hascoët 2011": ("Hascoet2011", True, ("1", "2")),
    "Kalliomaki 2001": ("Kalliomaki2001", False, ("1", "2")),
    "Kim 2010": ("Kim2010", False, ("1", "2")),
    "Kopp 2008": ("Kopp2008", False, ("1", "2")),
    "Lau 2012": ("Lau2012", True, ("1", "2")),
    "Niers 2009": ("Niers2009", False, ("1", "2")),
    "Ortiz-Andrellucchi 2008": ("OrtizAndrellucchi2008", True, ("1", "2")),
    "Plummer 2020": ("Plummer2020", True, ("1", "2")),
    "Rautava 2006": ("Rautava2006", True, ("1", "2")),
    "Savino 2010": ("Savino2010", True, ("1", "2")),
    "Soh 2009": ("Soh2009", False, ("1", "2")),
    "Taylor 2006": ("Taylor2007", False, ("1", "2")),
    "Vlieger 2009": ("Vlieger2009", True, ("1", "2")),
    "West 2008": ("West2009", False, ("1", "2")),
    "Wickens 2008": ("Wickens2008", False, ("1", "2")),
    "Taipale 2011": ("Taipale2011", True, ("1", "10")),
    "Dissanayake 2018": ("Dissanayake2018", True, ("2", "1")),
    "Kukkonen 2006": ("Kukkonen2007", False, ("2", "1")),
    "Rozé 2012": ("Roze2012", True, ("2", "1")),
}




def load(path: str | Path) -> list[dict]:
    """The export's rows as ``{column: text}``, read by the library's ``read_export``."""
    try:
        ex = read_export(path)
    except MetaError as exc:  # one clean line, never a traceback
        raise SystemExit(str(exc)) from None
    return [{col: cells[r] for col, cells in ex.text.items()} for r in range(ex.n)]


def rows_for(rows, label, group, number):
    return [r for r in rows if r["Study"] == label and (r["Analysis group"], r["Analysis number"])
            == (group, number)]


def data_quote(row) -> str:
    head = f'Analysis {row["Analysis group"]}.{row["Analysis number"]} "{row["Analysis name"]}"'
    if row["Subgroup"]:
        head += f' | Subgroup: {row["Subgroup"]}'
    return head + " | " + " | ".join(f"{c}: {row[c]}" for c in DATA_CELLS)


def subgroup_quote(row) -> str:
    return (f'Analysis {row["Analysis group"]}.{row["Analysis number"]} "{row["Analysis name"]}" | '
            f'Subgroup: {row["Subgroup"]} | Study: {row["Study"]}')


def _num(x: str):
    v = float(x)
    return int(v) if v.is_integer() else v


def blocks(rows, label):
    """Source, quotes, outcome, rob and subgroup facts for one review label."""
    sid, _, (g, n) = TRIALS[label]
    data = rows_for(rows, label, g, n)
    if g == "1" and n == "10":
        data = [r for r in data if r["Subgroup"]]
    if not data:
        raise SystemExit(f"{label}: no row in analysis {g}.{n}")
    row = data[0]
    quotes = {"qc1": {"source": "cochrane", "location": f"Analysis {g}.{n} (data row)",
                      "text": data_quote(row)}}
    facts = {}
    k = 2
    for (sg, sn), kind in SUBGROUP_ANALYSES.items():
        for r in rows_for(rows, label, sg, sn):
            if not r["Subgroup"]:
                continue
            qid = f"qc{k}"
            k += 1
            quotes[qid] = {"source": "cochrane", "location": f"Analysis {sg}.{sn} (subgroup heading)",
                           "text": subgroup_quote(r)}
            facts.setdefault(kind, []).append((r["Subgroup"], qid))
    rob_q = f"qc{k}"
    j = {key: row[f"{col} (judgement)"] for key, col in ROB_COLUMNS}
    j["overall"] = row["Overall bias (judgement)"]
    quotes[rob_q] = {"source": "cochrane", "location": f"Analysis {g}.{n} RoB 2 columns",
                     "text": " | ".join(f"{col} (judgement): {row[f'{col} (judgement)']}"
                                        for _, col in ROB_COLUMNS + (("overall", "Overall bias"),))}
    rob = {"tool": "RoB2",
           "source": f"Cochrane CD006475.pub3, analysis {g}.{n} (RoB 2 columns of the data table; quote {rob_q})",
           "domains": {}, "overall": None}
    cells = rob2_cells(lambda col: row.get(col, ""))
    for key in (*ROB2_COLUMNS, "overall"):
        text, _, support = cells[key]
        entry = {"judgement": judgement(text), "note": f'{text}. Support: "{support}"'}
        if key == "overall":
            rob["overall"] = entry
        else:
            rob["domains"][key] = entry
    per_arm = {"events": _num(row["Experimental cases"]), "n": _num(row["Experimental N"])}
    ctl = {"events": _num(row["Control cases"]), "n": _num(row["Control N"])}
    source = {"citation": REVIEW_CITATION, "url": REVIEW_URL, "kind": "secondary review table",
              "secondary": True}
    return {"id": sid, "row": row, "source": source, "quotes": quotes, "rob": rob,
            "facts": facts, "probiotic": per_arm, "control": ctl}


def outcome(b, intervention="probiotic", control="control", timepoint_weeks=104,
            timepoint_label="by 2 years of age (the review's analysis; the trial's own assessment age is not in the data row)"):
    row = b["row"]
    q = "qc1"
    num = lambda v: {"value": v, "quote": q}
    return {
        "id": "cochrane_eczema_2y",
        "outcome": "eczema_incidence",
        "outcome_label": f'eczema by 2 years of age as extracted by Cochrane CD006475.pub3 (analysis {row["Analysis group"]}.{row["Analysis number"]})',
        "timepoint_weeks": timepoint_weeks,
        "timepoint_label": timepoint_label,
        "end_of_treatment": False,
        "scale": "events",
        "per_arm": {intervention: {"events": num(b["probiotic"]["events"]), "n": num(b["probiotic"]["n"])},
                    control: {"events": num(b["control"]["events"]), "n": num(b["control"]["n"])}},
        "between": {"measure": "RR", "direction": "probiotic_minus_control",
                    "estimate": num(_num(row["Mean"])), "ci_lb": num(_num(row["CI start"])),
                    "ci_ub": num(_num(row["CI end"])), "ci_level": 0.95},
        "note": f'RevMan risk ratio as printed by the review; weight {row["Weight"]}% in its analysis.',
    }


def dump(obj) -> str:
    """Block style, lists indented under their key ("  - id: ..."), as the study files are written."""
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    y.allow_unicode = True
    y.width = 100000
    y.sort_base_mapping_type_on_output = False
    y.indent(mapping=2, sequence=4, offset=2)
    buf = io.StringIO()
    y.dump(obj, buf)
    return buf.getvalue()


def indent(text: str, n: int) -> str:
    pad = " " * n
    return "".join(pad + line if line.strip() else line for line in text.splitlines(True))


def merge(path: Path, b, add_outcome: dict | None):
    """Add the Cochrane source, quotes, (optionally) an outcome and the RoB block to a file."""
    text = path.read_text(encoding="utf-8")
    if "  cochrane:\n" in text:
        print(f"{path}: already merged, skipped")
        return
    src = indent(dump({"cochrane": b["source"]}), 2)
    text = text.replace("\nquotes:\n", "\n" + src + "quotes:\n", 1)
    qs = indent(dump(b["quotes"]), 2)
    text = re.sub(r"\npopulation:", "\n" + qs.rstrip("\n") + "\npopulation:", text, count=1)
    if add_outcome is not None:
        oc = dump([add_outcome])  # a top-level list is already written as '  - id: ...'
        if "\noutcomes: []\n" in text:
            text = text.replace("\noutcomes: []\n", "\noutcomes:\n" + oc, 1)
        else:
            text = text.replace("\nadverse_events:", "\n" + oc.rstrip("\n") + "\nadverse_events:", 1)
    rob = dump({"rob": b["rob"]})
    if "\nrob: null\n" not in text:
        raise SystemExit(f"{path}: no 'rob: null' line to replace")
    text = text.replace("\nrob: null\n", "\n" + rob, 1)
    path.write_text(text, encoding="utf-8")
    print(f"{path}: merged")




# ---------------------------------------------------------------------------
# new study files: what each says beyond the CSV (organisms and design from a primary abstract
# page read for this import; None where no report was found)

UNNAMED = "probiotic organisms not read (no trial report found); Cochrane CD006475.pub3 subgroup heading: {type}"

NEW = {
    "Hascoet2011": dict(year=2011, citation="Hascoët 2011, as labelled in Cochrane CD006475.pub3 (trial report not read)",
                        primary=None, strains=None, viability="viable", vehicle=None, synbiotic=False),
    "Plummer2020": dict(year=2020, citation="Plummer 2020, as labelled in Cochrane CD006475.pub3 (trial report not read)",
                        primary=None, strains=None, viability="viable", vehicle=None, synbiotic=False),
    "Dissanayake2018": dict(year=2018, citation="Dissanayake 2018, as labelled in Cochrane CD006475.pub3 (trial report not read)",
                            primary=None, strains=None, viability="viable", vehicle=None, synbiotic=True),
    "Roze2012": dict(
        year=2012, citation="Rozé JC, Barbarot S, Butel MJ, et al. An α-lactalbumin-enriched and symbiotic-supplemented v. a standard infant formula: a multicentre, double-blind, randomised trial. Br J Nutr (published online 14 November 2011).",
        primary=dict(url="https://core-prod.cambridgecore.org/core/product/96A5E6A8E2E1C2BFD5CA563745887921/core-reader",
                     citation="Cambridge Core page of the trial report (title and authors)", kind="primary full text",
                     quotes={"q1": ("title", "An α-lactalbumin-enriched and symbiotic-supplemented v. a standard infant formula: a multicentre, double-blind, randomised trial")}),
        strains=None, viability="viable", vehicle="infant formula", synbiotic=True,
        control_name="standard infant formula", n_strains=None),
    "Lau2012": dict(
        year=2012, doi="10.1016/j.jaci.2012.02.005",
        citation="Lau S, Gerhold K, Zimmermann K, et al. Oral application of bacterial lysate in infancy decreases the risk of atopic dermatitis in children with 1 atopic parent in a randomized, placebo-controlled trial. J Allergy Clin Immunol 2012. doi:10.1016/j.jaci.2012.02.005",
        primary=dict(url="https://zhixidata.com/details/1/891256677", citation="Abstract of the trial report (copy on zhixidata.com, with DOI 10.1016/j.jaci.2012.02.005)",
                     kind="primary abstract",
                     quotes={"q1": ("abstract", "This randomized, placebo-controlled trial included 606 newborns with at least single heredity for atopy. From week 5 until the end of month 7, infants were treated orally with bacterial lysate containing heat-killed gram-negative Escherichia coli Symbio and gram-positive Enterococcus faecalis Symbio or its placebo. Children were followed until 3 years of age.")}),
        strains=[("Escherichia coli Symbio", "E_coli_Symbio"), ("Enterococcus faecalis Symbio", "E_faecalis_Symbio")],
        viability="heat-killed", vehicle="oral bacterial lysate", synbiotic=False, control_name="placebo", age_range="from week 5 to the end of month 7"),
    "OrtizAndrellucchi2008": dict(
        year=2008, pmid="18341756",
        citation="Ortiz-Andrellucchi A, Sánchez-Villegas A, Rodríguez-Gallego C, et al. Immunomodulatory effects of the intake of fermented milk with Lactobacillus casei DN114001 in lactating mothers and their children. Br J Nutr 2008;100(4):834-45. PMID 18341756.",
        primary=dict(url="https://greenmedinfo.com/article/consumption-fermented-milk-lactobacillus-casei-lactating-mothers-has-positive-",
                     citation="PubMed abstract PMID 18341756 (copy on greenmedinfo.com)", kind="primary abstract",
                     quotes={"q1": ("abstract title", "Immunomodulatory effects of the intake of fermented milk with Lactobacillus casei DN114001 in lactating mothers and their children."),
                             "q2": ("abstract", "The aim of the present study was to determine if 6 weeks of probiotic intake would be able to modulate the immune system in women who had recently delivered and were breast-feeding. The design consisted of a randomised, controlled and double-blind nutritional intervention study with parallel groups with a sample size of 104 women.")}),
        strains=[("Lactobacillus casei DN114001", "L_casei_DN114001")], viability="viable",
        vehicle="fermented milk taken by the breast-feeding mother", synbiotic=False, duration_weeks=6,
        control_name="control (double-blind; not described in the abstract)", age_range="breast-fed infants of mothers supplemented for 6 weeks after delivery"),
    "Rautava2006": dict(
        year=2006, pmid="18986600",
        citation="Rautava S, Salminen S, Isolauri E. Specific probiotics in reducing the risk of acute infections in infancy--a randomised, double-blind, placebo-controlled study. Br J Nutr 2009;101(11):1722-6 (Epub 2008). PMID 18986600.",
        primary=dict(url="https://greenmedinfo.com/article/lactobacillus-rhamnosus-gg-and-bifidobacterium-lactis-are-safe-and-effective-r",
                     citation="PubMed abstract PMID 18986600 (copy on greenmedinfo.com)", kind="primary abstract",
                     quotes={"q1": ("abstract", "Infants requiring formula before the age of 2 months were recruited from community well-baby clinics. Infant formula supplemented with the probiotics Lactobacillus rhamnosus GG and Bifidobacterium lactis Bb-12 or placebo was administered daily until the age of 12 months."),
                             "q2": ("abstract", "During the first 7 months of life, seven out of thirty-two (22 %) infants receiving probiotics and twenty out of forty (50 %) infants receiving placebo experienced acute otitis media")}),
        strains=[("Lactobacillus rhamnosus GG", "LGG"), ("Bifidobacterium lactis Bb-12", "B_lactis_BB12")], viability="viable",
        vehicle="infant formula", synbiotic=False, control_name="placebo formula", age_range="formula-fed from before 2 months to 12 months",
        note="Cochrane labels the trial 'Rautava 2006'; the report found is the 2009 Br J Nutr paper of the same group, whose analysed arms (32 probiotic, 40 placebo; quote q2) match the review's denominators."),
    "Savino2010": dict(
        year=2010, pmid="20713478",
        citation="Savino F, Cordisco L, Tarasco V, et al. Lactobacillus reuteri DSM 17938 in infantile colic: a randomized, double-blind, placebo-controlled trial. Pediatrics 2010;126(3):e526-33. PMID 20713478.",
        primary=dict(url="https://www.unboundmedicine.com/medline/citation/20713478/Lactobacillus_reuteri_DSM_17938_in_infantile_colic:_a_randomized_double_blind_placebo_controlled_trial_",
                     citation="MEDLINE abstract PMID 20713478 (copy on unboundmedicine.com)", kind="primary abstract",
                     quotes={"q1": ("abstract", "Fifty exclusively breastfed colicky infants, diagnosed according to modified Wessel's criteria, were randomly assigned to receive either L reuteri DSM 17 938 (10(8) colony-forming units) or placebo daily for 21 days."),
                             "q2": ("abstract", "Forty-six infants (L reuteri group: 25; placebo group: 21) completed the trial.")}),
        strains=[("L reuteri DSM 17 938", "L_reuteri_DSM17938")], viability="viable", vehicle="oral drops",
        synbiotic=False, control_name="placebo", duration_weeks=3, dose=(1.0e8, "q1", "10(8) colony-forming units daily"),
        age_range="exclusively breastfed colicky infants", note="A trial of infants with colic (not an allergy-prevention trial); the review counts its eczema data."),
    "Vlieger2009": dict(
        year=2009,
        citation="Vlieger AM, Robroch A, van Buuren S, et al. Tolerance and safety of Lactobacillus paracasei ssp. paracasei in combination with Bifidobacterium animalis ssp. lactis in a prebiotic-containing infant formula: a randomised controlled trial. Br J Nutr 2009.",
        primary=dict(url="https://researchinformation.umcutrecht.nl/en/publications/tolerance-and-safety-of-lactobacillus-paracasei-ssp-paracasei-in-",
                     citation="Abstract of the trial report (UMC Utrecht research portal)", kind="primary abstract",
                     quotes={"q1": ("abstract", "A group of 126 newborns were randomised to receive a prebiotic-containing starter formula supplemented with Lactobacillus paracasei ssp. paracasei and Bifidobacterium animalis ssp. lactis or the same formula without probiotics for the first 3 months of life. A total of eighty infants continued the study until they were aged 6 months.")}),
        strains=[("Lactobacillus paracasei ssp. paracasei", "L_paracasei"), ("Bifidobacterium animalis ssp. lactis", "B_lactis")],
        viability="viable", vehicle="prebiotic-containing starter formula", synbiotic=False,
        co_interventions=["prebiotic-containing starter formula (both arms)"],
        control_name="the same prebiotic-containing formula without probiotics", age_range="newborns, first 3 months"),
    "Taipale2011": dict(
        year=2011, doi="10.1017/S0007114510003685",
        citation="Taipale T, Pienihäkkinen K, Isolauri E, et al. Bifidobacterium animalis subsp. lactis BB-12 in reducing the risk of infections in infancy. Br J Nutr 2011;105:409-416. doi:10.1017/S0007114510003685",
        primary=dict(url="http://journals.cambridge.org/action/displayAbstract?fromPage=online&aid=7978241",
                     citation="Abstract of the trial report (Cambridge Journals page)", kind="primary abstract",
                     quotes={"q1": ("abstract", "In this double-blind, placebo-controlled study, 109 newborn 1-month-old infants were assigned randomly to a probiotic group receiving a BB-12-containing tablet (n 55) or to a control group receiving a control tablet (n 54). Test tablets were administered to the infants twice a day (daily dose of BB-12 10 billion colony-forming units) from the age of 1–2 months to 8 months with a novel slow-release pacifier or a spoon.")}),
        strains=[("Bifidobacterium animalis subsp. lactis BB-12", "B_lactis_BB12")], viability="viable",
        vehicle="slow-release pacifier tablet or spoon", synbiotic=False, control_name="control tablet",
        dose=(1.0e10, "q1", "daily dose of BB-12 10 billion colony-forming units"), n_rand=(55, 54, "q1"),
        age_range="from 1-2 months to 8 months",
        note="Cochrane has this trial only in analysis 1.10 (probiotic type), not in analysis 1.2."),
}


def _heading(b, kind):
    return [h for h, _ in b["facts"].get(kind, [])]


def _qid(b, kind):
    return [q for _, q in b["facts"].get(kind, [])]


def family_risk(b):
    hs = _heading(b, "risk")
    if any("not selected" in h for h in hs):
        return "unselected"
    if any("high risk" in h for h in hs):
        return "high"
    return None


def timing(b):
    hs = _heading(b, "timing")
    if any("did not receive" in h for h in hs):
        return "postnatal"
    if any("received prenatal" in h for h in hs):
        return "both"
    return None


def new_study(b, spec) -> dict:
    sid = b["id"]
    sources = {"cochrane": b["source"]}
    quotes = dict(b["quotes"])
    prim = spec.get("primary")
    if prim:
        sources["s1"] = {"citation": prim["citation"], "url": prim["url"], "kind": prim["kind"],
                         "secondary": False}
        for qid, (loc, text) in prim["quotes"].items():
            quotes[qid] = {"source": "s1", "location": loc, "text": text}
    typ = (_heading(b, "type") or ["(none)"])[0]
    if spec.get("strains"):
        strains = [{"as_written": a, "registry": r} for a, r in spec["strains"]]
    else:
        strains = [{"as_written": UNNAMED.format(type=typ), "registry": None}]
    flags = ["secondary_source"]
    if spec.get("viability") == "heat-killed":
        flags.append("heat_killed")
    dose = spec.get("dose")
    n_rand = spec.get("n_rand")
    tim = timing(b)
    iv = {"strains": strains,
          "dose_cfu_per_day": {"value": dose[0], "quote": dose[1]} if dose else None,
          "dose_as_written": dose[2] if dose else None,
          "viability": spec.get("viability", "viable"), "vehicle": spec.get("vehicle"),
          "duration_weeks": spec.get("duration_weeks"),
          "co_interventions": spec.get("co_interventions", []),
          "synbiotic": spec.get("synbiotic", False), "timing": tim}
    arms = [
        {"id": "probiotic", "role": "intervention",
         "name": ", ".join(a for a, _ in spec["strains"]) if spec.get("strains") else
         ("synbiotic" if spec.get("synbiotic") else "probiotic") + " (organisms not read)",
         "n_randomised": {"value": n_rand[0], "quote": n_rand[2]} if n_rand else None,
         "n_analysed": None, "intervention": iv},
        {"id": "control", "role": "control",
         "name": spec.get("control_name", "control (not described in the data row; the review compares probiotic with no probiotic)"),
         "comparator": "placebo",
         "n_randomised": {"value": n_rand[1], "quote": n_rand[2]} if n_rand else None,
         "n_analysed": None},
    ]
    out = outcome(b)
    notes = [f"Timing from the review's subgroup heading '{(_heading(b, 'timing') or ['?'])[0]}' (quote {(_qid(b, 'timing') or ['?'])[0]}): the review gives probiotics to infants, so 'did not receive prenatal' means postnatal only." if tim else None,
             spec.get("note")]
    st = {
        "schema_version": 1, "id": sid, "citation": spec["citation"], "doi": spec.get("doi"),
        "pmid": spec.get("pmid"), "year": spec["year"], "country": None, "design": "parallel",
        "blinding": None, "purpose": "prevention", "funding": None, "registration": None,
        "status": "included", "excluded": None, "awaiting_data": None, "same_cohort_as": None,
        "flags": flags, "sources": sources, "quotes": quotes,
        "population": {"age_group": "infants", "age_range": spec.get("age_range"), "diagnosis": None,
                       "severity_stated": None, "severity_categories": [],
                       "family_risk": family_risk(b), "baseline": []},
        "arms": arms, "outcomes": [out], "adverse_events": None, "rob": b["rob"], "conflicts": [],
    }
    note = " ".join(n for n in notes if n)
    if note:
        out["note"] = out["note"] + " " + note
    return st


HEADER = ("# Added from Cochrane CD006475.pub3 by tools/cochrane_import.py (the data row is the quote);\n"
          "# organisms and design from the primary abstract page in sources.s1 where one was found.\n")


def main_new(rows, root: Path):
    for label, (sid, is_new, _) in TRIALS.items():
        if not is_new:
            continue
        path = root / f"{sid}.yaml"
        if path.exists():
            print(f"{path}: exists, skipped")
            continue
        path.write_text(HEADER + dump(new_study(blocks(rows, label), NEW[sid])), encoding="utf-8")
        print(f"{path}: written")


#: existing files: whether the review's row becomes an outcome of the file (True when the file has
#: no usable 2-year count of its own), and the arm ids
MERGE = {
    "Abrahamsson2007": dict(outcome=True), "Allen2014": dict(outcome=False),
    "Cabana2017": dict(outcome=True), "Kalliomaki2001": dict(outcome=False),
    "Kim2010": dict(outcome=False), "Kopp2008": dict(outcome=False),
    "Kukkonen2007": dict(outcome=True), "Niers2009": dict(outcome=True),
    "Soh2009": dict(outcome=True), "Taylor2007": dict(outcome=True),
    "West2009": dict(outcome=True, timepoint_weeks=56,
                     timepoint_label="13 months of age (the trial's assessment, quote q1; the review pools it in 'by 2 years of age')"),
    "Wickens2008": dict(outcome="wickens"),
}


def wickens_outcome(rows, b):
    """Analysis 1.2 pools both probiotic arms (59/315); 1.10 gives HN001 alone (22/157)."""
    r10 = [r for r in rows_for(rows, "Wickens 2008", "1", "10") if r["Subgroup"]][0]
    b["quotes"]["qcw"] = {"source": "cochrane", "location": "Analysis 1.10 (data row)", "text": data_quote(r10)}
    e1, n1 = _num(r10["Experimental cases"]), _num(r10["Experimental N"])
    et, nt = b["probiotic"]["events"], b["probiotic"]["n"]
    out = outcome(b, intervention="HN001", control="placebo")
    out["per_arm"] = {
        "HN001": {"events": {"value": e1, "quote": "qcw"}, "n": {"value": n1, "quote": "qcw"}},
        "HN019": {
            "events": {"value": et - e1, "derived": {
                "method": "difference_of_arms",
                "formula": f"both probiotic arms (analysis 1.2) minus HN001 (analysis 1.10): {et} - {e1}",
                "inputs": {"both_arms": {"value": et, "quote": "qc1"}, "HN001": {"value": e1, "quote": "qcw"}},
                "quote": None, "reference": None}},
            "n": {"value": nt - n1, "derived": {
                "method": "difference_of_arms",
                "formula": f"both probiotic arms (analysis 1.2) minus HN001 (analysis 1.10): {nt} - {n1}",
                "inputs": {"both_arms": {"value": nt, "quote": "qc1"}, "HN001": {"value": n1, "quote": "qcw"}},
                "quote": None, "reference": None}}},
        "placebo": out["per_arm"]["placebo"],
    }
    out["between"] = None
    out["note"] = ("Analysis 1.2 pools HN001 and HN019 against the shared placebo (59/315 vs 41/159, RR "
                   f"{b['row']['Mean']}); analysis 1.10 gives HN001 alone (22/157 vs 41/159, RR {r10['Mean']}); "
                   "HN019 is the difference. The engine splits the shared placebo between the two comparisons.")
    return out


def main_merge(rows, root: Path):
    for label, (sid, is_new, _) in TRIALS.items():
        if is_new or sid not in MERGE:
            continue
        opt = MERGE[sid]
        b = blocks(rows, label)
        if opt["outcome"] == "wickens":
            out = wickens_outcome(rows, b)
        elif opt["outcome"]:
            kw = {k: opt[k] for k in ("timepoint_weeks", "timepoint_label") if k in opt}
            out = outcome(b, **kw)
        else:
            out = None
        merge(root / f"{sid}.yaml", b, out)


def main_rob(rows, root: Path):
    """Rewrite the rob block of every file the review covers (after a change to strip_html)."""
    for label, (sid, _, _) in TRIALS.items():
        path = root / f"{sid}.yaml"
        text = path.read_text(encoding="utf-8")
        i, j = text.index("\nrob:\n"), text.index("\nconflicts:")
        text = text[:i + 1] + dump({"rob": blocks(rows, label)["rob"]}).rstrip("\n") + text[j:]
        path.write_text(text, encoding="utf-8")


USAGE = ("usage: python tools/cochrane_import.py {show CSV LABEL | new CSV [STUDIES] | "
         "merge CSV [STUDIES] | rob CSV [STUDIES] | facts CSV}")


def main(argv):
    # a one-line usage error, never a traceback (house rule for bad input)
    if len(argv) < 3 or (argv[1] == "show" and len(argv) < 4):
        raise SystemExit(USAGE)
    cmd, csv_path = argv[1], argv[2]
    if not Path(csv_path).is_file():
        raise SystemExit(f"{csv_path}: no such file")
    rows = load(csv_path)
    if cmd == "show":
        print(dump(blocks(rows, argv[3])))
    elif cmd == "new":
        main_new(rows, Path(argv[3]) if len(argv) > 3 else Path("studies"))
    elif cmd == "merge":
        main_merge(rows, Path(argv[3]) if len(argv) > 3 else Path("studies"))
    elif cmd == "rob":
        main_rob(rows, Path(argv[3]) if len(argv) > 3 else Path("studies"))
    elif cmd == "facts":
        for label in TRIALS:
            b = blocks(rows, label)
            print(b["id"], b["facts"], b["probiotic"], b["control"], b["rob"]["overall"]["judgement"])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
