"""The attack corpus: hostile and mistaken inputs through the real command line.

Every case runs ``python -m metaanalysis.cli ...`` in a subprocess on files
made in a temporary folder (never the user's ``studies/`` in place) and
asserts one of two outcomes:

* a clean error: exit code 1, no traceback, and a line naming the file (with
  its line, and the field or row/column where there is one) and saying what
  is wrong;
* acceptance, where accepting is right (a BOM and CRLF line ends, a
  follow-up linked with ``same_cohort_as``, a size limit raised on purpose).

The cases run two at a time (the machine is shared) before the assertions;
``test_corpus_figures`` prints the totals: inputs tried, clean errors,
silent acceptances (goal 0) and tracebacks (goal 0).

In-process tests at the end check the pieces the corpus relies on: quote
number boundaries, one report per cohort in pooling, and that the protocol
vocabularies follow the study schema.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Wall-clock guard per subprocess. Not a timing test: a case that hangs (a
#: FIFO opened for reading blocks until a writer appears) fails with a clear
#: message instead of hanging the suite.
HANG_GUARD_S = 300

# ----------------------------------------------------------------------------
# inputs


#: A small valid study (synthetic: the corpus never needs real numbers).
STUDY = """\
schema_version: 1
id: {id}
citation: "Synthetic trial for the attack corpus"
doi: {doi}
pmid: "{pmid}"
year: 2020
purpose: treatment
status: included
same_cohort_as: {parent}
flags: []
sources:
  s1: {{citation: "synthetic", kind: primary abstract, secondary: false}}
quotes:
  q1: {{source: s1, location: abstract, text: "{quote}"}}
population:
  age_group: children
arms:
  - id: probiotic
    role: intervention
    name: probiotic
    n_randomised: {{value: 20, quote: q1}}
    intervention:
      strains: [{{as_written: "B. lactis", registry: B_lactis_CECT8145}}]
  - id: control
    role: control
    name: placebo
    comparator: placebo
    n_randomised: {{value: 20, quote: q1}}
outcomes:
  - id: scorad
    outcome: SCORAD
    timepoint_weeks: 8
    end_of_treatment: true
    scale: final
    per_arm:
      probiotic: {{n: {{value: {n1}, quote: q1}}, mean: {{value: {m1}, quote: q1}}, sd: {{value: {sd1}, quote: q1}}}}
      control: {{n: {{value: 20, quote: q1}}, mean: {{value: 35.5, quote: q1}}, sd: {{value: 11.2, quote: q1}}}}
"""
QUOTE = "20 children per arm (20 analysed); SCORAD 30.5 ± 10.1 vs 35.5 ± 11.2"


def study(sid="Synth2020", *, doi="10.1000/synth.1", pmid="12345678", parent="null",
          quote=QUOTE, n1="20", m1="30.5", sd1="10.1") -> str:
    return STUDY.format(id=sid, doi=doi, pmid=pmid, parent=parent, quote=quote, n1=n1, m1=m1,
                        sd1=sd1)


def study_folder(root: Path, name: str, files: dict[str, str]) -> Path:
    """A folder with the registry and the given study files."""
    d = root / name
    d.mkdir()
    shutil.copy(REPO / "studies" / "strains.yaml", d / "strains.yaml")
    for fname, text in files.items():
        (d / fname).write_text(text, encoding="utf-8")
    return d


TREATMENT = (REPO / "protocols" / "treatment-scorad.yaml").read_text(encoding="utf-8")
PREVENTION = (REPO / "protocols" / "prevention-eczema.yaml").read_text(encoding="utf-8")


def at(text: str, needle: str) -> str:
    """':N:' for the first line of ``text`` holding ``needle``: expected error
    locations follow the bundled protocol as it changes, not a line number
    written into the test."""
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return f":{n}:"
    raise AssertionError(f"{needle!r} not in the text")


def edit(text: str, old: str, new: str) -> str:
    assert old in text, f"the bundled protocol changed: {old!r} not found"
    return text.replace(old, new, 1)


# ----------------------------------------------------------------------------
# the corpus


@dataclass
class Case:
    id: str
    argv: list  # strings; "{T}" is the temporary folder, "{S}" the studies copy
    code: int = 1
    #: substrings expected in stderr (errors) or stdout (acceptance)
    expect: tuple = ()
    files: dict = field(default_factory=dict)  # path under {T} -> text or bytes
    setup: object = None  # callable(T) for FIFOs, links, folders


def run_protocol(text: str, name="treatment-scorad", *, studies="{S}") -> dict:
    return {"files": {f"p/{name}.yaml": text},
            "argv": ["run", f"{{T}}/p/{name}.yaml", "--studies", studies, "--out", "{T}/out"]}


def proto_case(cid, text, expect, name="treatment-scorad", code=1):
    spec = run_protocol(text, name)
    return Case(cid, spec["argv"], code, expect, spec["files"])


def fifo(path):
    def make(root: Path):
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(p)
    return make


def symlink(path, target):
    def make(root: Path):
        p = root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(str(target).replace("{T}", str(root)), p)
    return make


def mkdir(path):
    return lambda root: (root / path).mkdir(parents=True, exist_ok=True)


def validate_case(cid, files, expect, code=1, setup=None, folder="v"):
    files = {f"{folder}/{k}": v for k, v in files.items()}
    files.setdefault(f"{folder}/strains.yaml", (REPO / "studies" / "strains.yaml").read_text())
    return Case(cid, ["validate", f"{{T}}/{folder}"], code, expect, files, setup)


CSV_OK = "study,yi,vi\nA,0.1,0.01\nB,0.5,0.02\nC,0.9,0.03\n"
ARMS = "study,m1i,sd1i,n1i,m2i,sd2i,n2i\n"
BIN = "study,ai,n1i,ci,n2i\n"


def pool_case(cid, content, expect, *extra, code=1):
    return Case(cid, ["pool", "{T}/t.csv", *extra], code, expect, {"t.csv": content})


CASES = [
    # --- protocols: vocabularies (the silent changes of k) -----------
    proto_case("proto-flag-case", t := edit(TREATMENT, "exclude_flags: [sd_may_be_se]",
                                            "exclude_flags: [sd_may_be_SE]"),
               (at(t, "sd_may_be_SE") + " eligibility.exclude_flags[0]:", "did you mean 'sd_may_be_se'")),
    proto_case("proto-comparator-typo", edit(TREATMENT, "[placebo, prebiotic, usual_care",
                                             "[placebo, prebiotics, usual_care"),
               ("eligibility.comparators[1]:", "did you mean 'prebiotic'")),
    proto_case("proto-age-group-child", t := edit(TREATMENT, "  comparators: [placebo",
                                                  "  age_groups: [child]\n  comparators: [placebo"),
               (at(t, "age_groups: [child]") + " eligibility.age_groups[0]:", "did you mean 'children'")),
    proto_case("proto-unknown-key-eligibility", t := edit(TREATMENT, "  comparators: [placebo",
                                                          "  age_grup: [children]\n  comparators: [placebo"),
               (at(t, "age_grup:") + " eligibility.age_grup: unknown field", "did you mean 'age_groups'")),
    proto_case("proto-unknown-key-target", edit(TREATMENT, "{subset: {age_group: [infants",
                                                "{subset: {age_grup: [infants"),
               ("claims[0].target.subset.age_grup:", "did you mean 'age_group'")),
    proto_case("proto-target-level-typo", edit(TREATMENT, "{subset: {age_group: [infants",
                                               "{subset: {age_group: [infant"),
               ("claims[0].target.subset.age_group[0]:", "did you mean 'infants'")),
    proto_case("proto-unknown-key-top", edit(TREATMENT, "mcid: 8.7", "mcid: 8.7\nmcdi: 9"),
               ("mcdi: unknown field", "did you mean 'mcid'")),
    proto_case("proto-unknown-key-model", edit(TREATMENT, "  method: REML", "  methdo: REML"),
               ("model.methdo: unknown field", "did you mean 'method'")),
    proto_case("proto-measure-rr-on-scorad", t := edit(TREATMENT, "measure: MD", "measure: RR"),
               (at(t, "measure: RR") + " model.measure: RR cannot be computed from continuous outcomes",)),
    proto_case("proto-measure-md-on-events", edit(PREVENTION, "measure: RR", "measure: MD"),
               ("model.measure: MD cannot be computed from events outcomes",),
               name="prevention-eczema"),
    proto_case("proto-measure-lowercase", edit(TREATMENT, "measure: MD", "measure: md"),
               ("model.measure:", "did you mean 'MD'")),
    proto_case("proto-smd-mixed-scales", edit(TREATMENT, "measure: MD", "measure: SMD"),
               ("outcome.scales: final values and change scores may be mixed for MD only",)),
    proto_case("proto-mh-on-md", edit(TREATMENT, "method: REML", "method: MH"),
               ("model.method: method MH needs measure",)),
    proto_case("proto-scales-mixed-types", edit(TREATMENT, "scales: [final, change]",
                                                "scales: [final, events]"),
               ("outcome.scales: event counts and continuous scales cannot be pooled",)),
    proto_case("proto-kind-case", edit(TREATMENT, "kinds: [SCORAD]", "kinds: [scorad]"),
               ("outcome.kinds[0]:", "did you mean 'SCORAD'")),
    proto_case("proto-stratum-field-typo", edit(TREATMENT, "{name: age_group, field: age_group}",
                                                "{name: age_group, field: agegroup}"),
               ("strata[3].field:", "did you mean 'age_group'")),
    proto_case("proto-stratum-twice", edit(TREATMENT, "{name: comparator, field: comparator}",
                                           "{name: severity, field: comparator}"),
               ("strata[4].name: stratum name 'severity' is used twice",)),
    proto_case("proto-modifier-typo", edit(TREATMENT, "modifier: severity", "modifier: severty"),
               ("claims[1].modifier:", "did you mean 'severity'")),
    proto_case("proto-expected-level-typo", edit(TREATMENT, "expected_no_effect_in: [mild]",
                                                 "expected_no_effect_in: [mlid]"),
               ("claims[1].expected_no_effect_in[0]:", "did you mean 'mild'")),
    proto_case("proto-finding-typo", edit(TREATMENT, "finding: heterogeneity",
                                          "finding: heterogenity"),
               ("claims[2].finding:", "did you mean 'heterogeneity'")),
    proto_case("proto-groups-order", edit(TREATMENT, "moderate+severe: moderate-severe",
                                          "severe+moderate: moderate-severe"),
               ("severity.groups.severe+moderate: write the category set as 'moderate+severe'",)),
    proto_case("proto-groups-unknown", edit(TREATMENT, "mild+severe: mixed", "mild+sever: mixed"),
               ("severity.groups.mild+sever:", "did you mean 'severe'")),
    proto_case("proto-sensitivity-flag", edit(TREATMENT, "[heat_killed]", "[heatkilled]"),
               ("sensitivity.exclude_flags.heat-killed products[0]:", "did you mean 'heat_killed'")),
    # --- protocols: ranges ---------------------------------------------------
    proto_case("proto-alpha-tiny", t := edit(TREATMENT, "alpha: 0.05", "alpha: 1e-300"),
               (at(t, "alpha: 1e-300") + " model.alpha: must be >= 1e-06",)),
    proto_case("proto-alpha-half", edit(TREATMENT, "alpha: 0.05", "alpha: 0.5"),
               ("model.alpha: must be < 0.5",)),
    proto_case("proto-alpha-text", edit(TREATMENT, "alpha: 0.05", "alpha: five percent"),
               ("model.alpha:",)),
    proto_case("proto-alpha-quoted", edit(TREATMENT, "alpha: 0.05", 'alpha: "0.05"'),
               ("model.alpha: expected a number, got the text '0.05'",)),
    proto_case("proto-min-k-bool", edit(TREATMENT, "min_k_per_stratum: 2", "min_k_per_stratum: true"),
               ("min_k_per_stratum: expected a whole number, got true/false",)),
    proto_case("proto-min-k-fraction", edit(TREATMENT, "min_k_per_stratum: 2",
                                            "min_k_per_stratum: 2.5"),
               ("min_k_per_stratum: expected a whole number",)),
    proto_case("proto-bool-text", edit(TREATMENT, "lower_is_better: true", 'lower_is_better: "no"'),
               ("outcome.lower_is_better: expected true or false",)),
    proto_case("proto-correlation-5", edit(TREATMENT, "correlations: [0.2, 0.5, 0.8]",
                                           "correlations: [0.2, 5, 0.8]"),
               ("sensitivity.correlations[1]: must be <= 1",)),
    proto_case("proto-correlation-main", edit(TREATMENT, "change_score_correlation: 0.5",
                                              "change_score_correlation: -1.5"),
               ("model.change_score_correlation: must be >= -1",)),
    proto_case("proto-band-inverted", edit(TREATMENT, "{name: mild, lower: 0, upper: 25}",
                                           "{name: mild, lower: 30, upper: 25}"),
               ("severity.bands[0].upper: upper 25 is not above lower 30",)),
    proto_case("proto-band-overlap", edit(TREATMENT, "{name: severe, lower: 50,",
                                          "{name: severe, lower: 40,"),
               ("severity.bands[2].lower:", "must not overlap")),
    proto_case("proto-band-outside-scale", edit(TREATMENT, "lower: 50, upper: 103}",
                                                "lower: 50, upper: 120}"),
               ("severity.bands[2]: band 50-120 is outside the SCORAD range 0-103",)),
    proto_case("proto-band-order", edit(edit(TREATMENT, "{name: mild, lower: 0, upper: 25}",
                                             "{name: moderate, lower: 0, upper: 25}"),
                                        "{name: moderate, lower: 25, upper: 50}",
                                        "{name: mild, lower: 25, upper: 50}"),
               ("severity.bands[1].name: bands must be in the order mild, moderate, severe",)),
    proto_case("proto-mcid-negative", t := edit(TREATMENT, "mcid: 8.7", "mcid: -8.7"),
               (at(t, "mcid: -8.7") + " mcid: must be > 0",)),
    proto_case("proto-mcid-inf", edit(TREATMENT, "mcid: 8.7", "mcid: .inf"),
               ("mcid: must be a finite number",)),
    proto_case("proto-threshold-nan", edit(TREATMENT, "threshold: 8.7", "threshold: .nan"),
               ("claims[7].threshold: must be a finite number",)),
    proto_case("proto-min-k-0", edit(TREATMENT, "min_k_per_stratum: 2", "min_k_per_stratum: 0"),
               ("min_k_per_stratum: must be >= 1",)),
    proto_case("proto-small-study-k-2", edit(TREATMENT, "small_study_min_k: 10",
                                             "small_study_min_k: 2"),
               ("small_study_min_k: must be >= 3",)),
    proto_case("proto-no-effect-without-threshold",
               edit(edit(TREATMENT, "    threshold: 8.7\n", ""), "mcid: 8.7\n", ""),
               ("threshold: a no_effect claim needs 'threshold'",)),
    # --- protocols: ids --------------------------------------------------------
    proto_case("proto-claim-id-path", t := edit(TREATMENT, "- id: C1\n", "- id: ../../C1\n"),
               (at(t, "- id: ../../C1") + " claims[0].id: '../../C1' is not a valid id",)),
    proto_case("proto-claim-id-twice", edit(TREATMENT, "- id: C3\n", "- id: C1\n"),
               ("claims[2].id: claim id 'C1' is used twice",)),
    proto_case("proto-id-path", edit(TREATMENT, "id: treatment-scorad", "id: ../treatment-scorad"),
               ("id: '../treatment-scorad' is not a valid id",)),
    proto_case("proto-id-not-file-name", edit(TREATMENT, "id: treatment-scorad", "id: other"),
               ("id: must equal the file name 'treatment-scorad'",)),
    # --- protocols: checked against the loaded studies -------------------------
    proto_case("proto-override-no-study", t := edit(PREVENTION, "Allen2014: diagnosed",
                                                    "Alen2014: diagnosed"),
               (at(t, "Alen2014: diagnosed") + " outcome.overrides.Alen2014: override names no study",
                "did you mean 'Allen2014'"), name="prevention-eczema"),
    proto_case("proto-override-no-outcome", edit(PREVENTION, "diagnosed_eczema_2y",
                                                 "diagnosed_eczema_2"),
               ("outcome.overrides.Allen2014: study Allen2014 has no outcome",
                "did you mean 'diagnosed_eczema_2y'"), name="prevention-eczema"),
    proto_case("proto-override-wrong-kind", edit(PREVENTION, "diagnosed_eczema_2y",
                                                 "eczema_severity_2y"),
               ("outcome.overrides.Allen2014:", "the override would be ignored"),
               name="prevention-eczema"),
    proto_case("proto-eligibility-empty", t := edit(TREATMENT, "designs: [parallel]",
                                                    "designs: [cluster]"),
               (at(t, "eligibility:") + " eligibility: selects no trial",)),
    proto_case("proto-target-empty", edit(TREATMENT, "{subset: {age_group: [infants, children]}}",
                                          "{subset: {comparator: [active]}}"),
               ("claims[0].target.subset: claim C1: the target selects none",)),
    proto_case("proto-designs-empty", edit(TREATMENT, "designs: [parallel]", "designs: []"),
               ("eligibility.designs:",)),
    proto_case("proto-kinds-empty", edit(TREATMENT, "kinds: [SCORAD]", "kinds: []"),
               ("outcome.kinds:",)),
    proto_case("proto-override-key-path", edit(PREVENTION, "Allen2014: diagnosed",
                                               "../Allen2014: diagnosed"),
               ("'../Allen2014' is not a valid id",), name="prevention-eczema"),
    proto_case("proto-duplicate-key", edit(TREATMENT, "  alpha: 0.05", "  alpha: 0.05\n  alpha: 0.1"),
               ("model.alpha: duplicate key",)),
    proto_case("proto-python-tag", edit(TREATMENT, "title: ", "title: !!python/object:os.system "),
               ("is not allowed",)),
    proto_case("proto-top-level-list", "- schema_version: 1\n", ("expected a mapping",)),
    proto_case("proto-empty", "# nothing\n", ("empty file",)),
    # --- protocols: files ------------------------------------------------------
    Case("proto-fifo", ["run", "{T}/p/fifo.yaml", "--studies", "{S}", "--out", "{T}/out"], 1,
         ("fifo.yaml", "named pipe"), setup=fifo("p/fifo.yaml")),
    Case("proto-dir-named-yaml", ["run", "{T}/pd", "--studies", "{S}", "--out", "{T}/out"], 1,
         ("x.yaml", "is a directory"), setup=mkdir("pd/x.yaml")),
    Case("proto-dev-null", ["run", "/dev/null", "--studies", "{S}", "--out", "{T}/out"], 1,
         ("/dev/null", "is a device")),

    # --- study files: evidence integrity ----------------------------------------
    validate_case("study-copy-same-doi-pmid",
                  {"Synth2020.yaml": study(), "Copy2020.yaml": study("Copy2020")},
                  ("Synth2020.yaml:", "doi: same doi as", "pmid: same pmid as",
                   "same_cohort_as: Copy2020")),
    validate_case("study-same-registration",
                  {"A2020.yaml": study("A2020", doi="null", pmid="1").replace(
                      "flags: []", "registration: NCT01234567\nflags: []"),
                   "B2020.yaml": study("B2020", doi="null", pmid="2").replace(
                      "flags: []", "registration: nct 01234567\nflags: []")},
                  ("B2020.yaml:", "registration: same registration as")),
    validate_case("study-doi-url-form",
                  {"A2020.yaml": study("A2020", pmid="1"),
                   "B2020.yaml": study("B2020", doi="https://doi.org/10.1000/SYNTH.1", pmid="2")},
                  ("doi: same doi as",)),
    validate_case("study-linked-follow-up-accepted",
                  {"Synth2020.yaml": study(),
                   "Synth2022.yaml": study("Synth2022", parent="Synth2020")},
                  ("files checked, no problems found",), code=0),
    validate_case("study-cohort-cycle",
                  {"A2020.yaml": study("A2020", parent="B2020", pmid="1"),
                   "B2020.yaml": study("B2020", parent="A2020", pmid="2")},
                  ("same_cohort_as: same_cohort_as forms a cycle (A2020 -> B2020 -> A2020)",)),
    validate_case("study-cohort-unknown", {"A2020.yaml": study("A2020", parent="Nobody2000")},
                  ("same_cohort_as: unknown study 'Nobody2000'",)),
    validate_case("study-cohort-is-registry", {"A2020.yaml": study("A2020", parent="strains")},
                  ("same_cohort_as: unknown study 'strains'",)),
    validate_case("study-n-over-randomised", {"A2020.yaml": study("A2020", n1="25").replace(
                      "(20 analysed)", "(25 analysed)")},
                  ("outcomes[0].per_arm.probiotic.n: n analysed (25) > n randomised",)),
    validate_case("study-quote-range-not-minus",
                  {"A2020.yaml": study("A2020", m1="-14", quote=QUOTE + "; aged 2-14years")},
                  ("outcomes[0].per_arm.probiotic.mean.value: -14 does not appear in quote",)),
    validate_case("study-quote-thousands",
                  {"A2020.yaml": study("A2020", m1="124", quote=QUOTE + "; of 1,124 screened")},
                  ("mean.value: 124 does not appear in quote",)),
    validate_case("study-quote-real-minus-accepted",
                  {"A2020.yaml": study("A2020", m1="-14", quote=QUOTE + "; change −14 points")},
                  ("files checked, no problems found",), code=0),
    validate_case("study-negative-sd", {"A2020.yaml": study("A2020", sd1="-10.1").replace(
                      "30.5 ± 10.1", "30.5 ± -10.1")},
                  ("outcomes[0].per_arm.probiotic.sd: must be > 0",)),
    validate_case("study-zero-n", {"A2020.yaml": study("A2020", n1="0")},
                  ("outcomes[0].per_arm.probiotic.n: a sample size must be a whole number >= 1",)),
    validate_case("study-fractional-n", {"A2020.yaml": study("A2020", n1="19.5")},
                  ("per_arm.probiotic.n: a sample size must be a whole number",)),
    validate_case("study-huge-number", {"A2020.yaml": study("A2020", m1="1e400")},
                  ("mean.value: must be a finite number",)),
    validate_case("study-nan", {"A2020.yaml": study("A2020", m1=".nan")},
                  ("mean.value: must be a finite number",)),
    validate_case("study-nan-text", {"A2020.yaml": study("A2020", m1="NaN")},
                  ("mean.value: expected a number, got text 'NaN'",)),
    validate_case("study-unicode-minus", {"A2020.yaml": study("A2020", m1="−14")},
                  ("mean.value: expected a number, got text",)),
    validate_case("study-bom-crlf-accepted",
                  {"A2020.yaml": ("\ufeff" + study("A2020")).replace("\n", "\r\n").encode()},
                  ("files checked, no problems found",), code=0),
    validate_case("study-flag-typo", {"A2020.yaml": study("A2020").replace(
                      "flags: []", "flags: [sd_may_be_SE]")},
                  ("flags[0]:", "did you mean 'sd_may_be_se'")),
    # --- study files: files that are not regular files -----------------------
    validate_case("study-fifo-in-folder", {"A2020.yaml": study("A2020")},
                  ("fifo.yaml", "named pipe"), setup=fifo("v/fifo.yaml")),
    validate_case("study-dir-named-yaml", {"A2020.yaml": study("A2020")},
                  ("x.yaml", "is a directory"), setup=mkdir("v/x.yaml")),
    validate_case("study-broken-symlink", {"A2020.yaml": study("A2020")},
                  ("gone.yaml", "broken symbolic link"),
                  setup=symlink("v/gone.yaml", "{T}/does-not-exist.yaml")),
    validate_case("study-symlink-outside", {"A2020.yaml": study("A2020")},
                  ("B2020.yaml", "symbolic link to a file outside the folder"),
                  setup=lambda root: ((root / "B2020.yaml").write_text(study("B2020", pmid="2")),
                                      os.symlink(root / "B2020.yaml", root / "v" / "B2020.yaml"))),
    validate_case("study-symlink-device", {"A2020.yaml": study("A2020")},
                  ("null.yaml", "outside the folder"), setup=symlink("v/null.yaml", "/dev/null")),
    validate_case("study-self-cohort", {"A2020.yaml": study("A2020", parent="A2020")},
                  ("same_cohort_as: a study cannot be a follow-up of itself",)),
    validate_case("study-hidden-lock-file-skipped", {"A2020.yaml": study("A2020")},
                  ("files checked, no problems found",), code=0,
                  setup=symlink("v/.#A2020.yaml", "user@host.1234:1600000000")),
    Case("study-explicit-fifo", ["validate", "{T}/f.yaml"], 1, ("f.yaml", "named pipe"),
         setup=fifo("f.yaml")),
    Case("study-explicit-device", ["validate", "/dev/zero"], 1, ("/dev/zero", "is a device")),

    # --- meta pool -------------------------------------------------------------
    Case("pool-fifo", ["pool", "{T}/f.csv"], 1, ("f.csv", "named pipe"), setup=fifo("f.csv")),
    Case("pool-dev-zero", ["pool", "/dev/zero"], 1, ("/dev/zero", "is a device")),
    Case("pool-symlink-to-device", ["pool", "{T}/z.csv"], 1, ("z.csv", "is a device"),
         setup=symlink("z.csv", "/dev/zero")),
    Case("pool-directory", ["pool", "{T}"], 1, ("is a directory",)),
    pool_case("pool-over-limit", CSV_OK, ("larger than the limit of 20 bytes", "--max-bytes"),
              "--max-bytes", "20"),
    pool_case("pool-limit-raised-accepted", CSV_OK, ("k = 3",), "--measure", "GEN",
              "--max-bytes", "100000", code=0),
    pool_case("pool-duplicate-column", "study,yi,vi,yi\nA,1,1,5\nB,2,1,6\n",
              ("column 'yi': duplicate column name",), "--measure", "GEN"),
    pool_case("pool-duplicate-after-strip", "study,yi,vi, yi\nA,1,1,5\nB,2,1,6\n",
              ("column 'yi': duplicate column name",), "--measure", "GEN"),
    pool_case("pool-empty-column-name", "study,yi,,vi\nA,1,0,1\nB,2,0,1\n",
              ("empty column name",), "--measure", "GEN"),
    pool_case("pool-empty-by", "study,yi,vi,g\nA,1,1,x\nB,2,1,\nC,3,1,x\n",
              ("row 2 (line 3), column 'g': empty subgroup value",), "--measure", "GEN",
              "--by", "g"),
    pool_case("pool-by-missing", CSV_OK, ("column 'g': missing column 'g'",), "--measure",
              "GEN", "--by", "g"),
    pool_case("pool-fractional-n", BIN + "A,3,20.5,4,20\nB,5,30,6,30\n",
              ("row 1 (line 2), column 'n1i': a count must be a whole number",),
              "--measure", "RR"),
    pool_case("pool-fractional-events", BIN + "A,3,20,4,20\nB,5.5,30,6,30\n",
              ("row 2 (line 3), column 'ai': a count must be a whole number",),
              "--measure", "OR"),
    pool_case("pool-fractional-n-continuous", ARMS + "A,1,1,10.5,2,1,10\nB,1,1,10,2,1,10\n",
              ("column 'n1i': a count must be a whole number",)),
    pool_case("pool-events-over-n", BIN + "A,30,20,4,20\nB,5,30,6,30\n",
              ("column 'ai': events exceed the group size",), "--measure", "RR"),
    pool_case("pool-1e308", "study,yi,vi\nA,1e308,1\nB,-1e308,1\nC,1e308,1\n",
              ("the result is not finite", "row 1 (line 2), column 'yi'"), "--measure", "GEN"),
    pool_case("pool-overflow-row", ARMS + "A,1e308,1,10,-1e308,1,10\nB,1,1,10,2,1,10\n",
              ("row 1 (line 2), column 'm1i': the effect size cannot be computed",)),
    pool_case("pool-1e400", "study,yi,vi\nA,1e400,1\nB,2,1\n",
              ("row 1 (line 2), column 'yi': expected a finite number",), "--measure", "GEN"),
    pool_case("pool-inf", "study,yi,vi\nA,inf,1\nB,2,1\n",
              ("row 1 (line 2), column 'yi': expected a finite number",), "--measure", "GEN"),
    pool_case("pool-nan-text", "study,yi,vi\nA,1,NaN\nB,2,1\n",
              ("row 1 (line 2), column 'vi': expected a finite number, got 'NaN'",),
              "--measure", "GEN"),
    pool_case("pool-empty-cell", "study,yi,vi\nA,,1\nB,2,1\n",
              ("row 1 (line 2), column 'yi': empty cell",), "--measure", "GEN"),
    pool_case("pool-na-text", "study,yi,vi\nA,NA,1\nB,2,1\n",
              ("row 1 (line 2), column 'yi': expected a number, got 'NA'",), "--measure", "GEN"),
    pool_case("pool-unicode-minus", "study,yi,vi\nA,\u22121,1\nB,2,1\n",
              ("row 1 (line 2), column 'yi':", "Unicode minus"), "--measure", "GEN"),
    pool_case("pool-negative-sd", ARMS + "A,1,-1,10,2,1,10\nB,1,1,10,2,1,10\n",
              ("row 1 (line 2), column 'sd1i': standard deviation must be > 0",)),
    pool_case("pool-zero-n", ARMS + "A,1,1,0,2,1,10\nB,1,1,10,2,1,10\n",
              ("row 1 (line 2), column 'n1i': sample size must be > 0",)),
    pool_case("pool-zero-variance", "study,yi,vi\nA,1,0\nB,2,1\n",
              ("row 1 (line 2), column 'vi': sampling variance must be > 0",), "--measure", "GEN"),
    pool_case("pool-bom-crlf-accepted", ("\ufeff" + CSV_OK).replace("\n", "\r\n").encode(),
              ("k = 3",), "--measure", "GEN", code=0),
    pool_case("pool-nul-bytes", b"study,yi,vi\nA,1,1\x00\nB,2,1\n", ("NUL bytes",),
              "--measure", "GEN"),
    pool_case("pool-not-utf8", b"study,yi,vi\nA\xff,1,1\nB,2,1\n", ("not UTF-8",),
              "--measure", "GEN"),
    pool_case("pool-header-only", "study,yi,vi\n", ("no rows",), "--measure", "GEN"),
    pool_case("pool-empty-file", "", ("empty file",), "--measure", "GEN"),
    pool_case("pool-blank-by", "study,yi,vi,g\nA,1,1,x\nB,2,1,   \nC,3,1,x\n",
              ("row 2 (line 3), column 'g': empty subgroup value",), "--measure", "GEN",
              "--by", "g"),
    pool_case("pool-missing-column", "study,yi\nA,1\nB,2\n", ("missing column 'vi'",),
              "--measure", "GEN"),
    pool_case("pool-ragged-row", "study,yi,vi\nA,1,1,7,8\nB,2,1\n", ("t.csv",),
              "--measure", "GEN"),
]


# ----------------------------------------------------------------------------
# running the corpus


def _materialise(case: Case, root: Path, studies: Path) -> list[str]:
    for rel, content in case.files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    if case.setup is not None:
        case.setup(root)
    return [a.replace("{T}", str(root)).replace("{S}", str(studies)) for a in case.argv]


def _run(case: Case, root: Path, studies: Path):
    argv = _materialise(case, root, studies)
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200", "NO_COLOR": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "metaanalysis.cli", *argv], cwd=root,
                              capture_output=True, text=True, timeout=HANG_GUARD_S, env=env)
    except subprocess.TimeoutExpired:
        return None, "", f"hung for {HANG_GUARD_S} s"
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def results(tmp_path_factory, request):
    """Run the selected cases (all of them unless ``-k`` picks some)."""
    params = [getattr(getattr(item, "callspec", None), "params", {}).get("case")
              for item in request.session.items]
    chosen = {p.id for p in params if isinstance(p, Case)}
    cases = [c for c in CASES if c.id in chosen] or CASES
    base = tmp_path_factory.mktemp("attack")
    studies = base / "studies"
    shutil.copytree(REPO / "studies", studies)  # never the user's folder in place
    roots = {}
    for case in cases:
        roots[case.id] = base / case.id
        roots[case.id].mkdir()
    # two at a time: the cases are independent and the machine is shared
    with ThreadPoolExecutor(max_workers=2) as ex:
        futures = {c.id: ex.submit(_run, c, roots[c.id], studies) for c in cases}
        return {cid: f.result() for cid, f in futures.items()}


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_attack(case, results):
    code, out, err = results[case.id]
    both = out + err
    assert "Traceback" not in both, both
    assert code == case.code, f"exit {code}, expected {case.code}\nstdout: {out}\nstderr: {err}"
    where = err if case.code else out
    for needle in case.expect:
        assert needle in where, f"{needle!r} not in:\n{where}"
    if case.code:
        # one clean line per problem: it names a file (FILE:LINE: or FILE, row ...)
        assert err.strip(), "an error must say something on stderr"
        assert any(("/" in line or ".csv" in line or ".yaml" in line)
                   for line in err.splitlines()), err


def test_corpus_figures(results):
    """The closing figures of the corpus (shown with ``pytest -s``)."""
    ran = [c for c in CASES if c.id in results]
    tried = len(ran)
    tracebacks = sum("Traceback" in (r[1] + r[2]) for r in results.values())
    hung = sum(r[0] is None for r in results.values())
    expected_errors = [c for c in ran if c.code == 1]
    clean = sum(results[c.id][0] == 1 and "Traceback" not in results[c.id][2]
                for c in expected_errors)
    silent = sum(results[c.id][0] == 0 for c in expected_errors)
    accepted = sum(results[c.id][0] == 0 for c in ran if c.code == 0)
    print(f"\nattack corpus: {tried} inputs tried, {clean} clean errors, {accepted} rightly "
          f"accepted, {silent} silent acceptances, {tracebacks} tracebacks, {hung} hangs")
    assert (silent, tracebacks, hung) == (0, 0, 0)


# ----------------------------------------------------------------------------
# the pieces, in process


@pytest.mark.parametrize("value,text,found", [
    (-14, "aged 2-14years", False),           # a range, not a minus sign
    (14, "aged 2-14years", True),
    (-14, "aged 2 – 14 years", False),
    (-0.03, "95% CI -6.12 to -0.03", True),    # a real minus after a word
    (-0.03, "(-6.12--0.03)", True),            # a minus right after a range dash
    (-13.89, "group (−13.89 ± 10.05)", True),
    (124, "of 1,124 screened", False),         # a thousands separator is no boundary
    (1124, "of 1,124 screened", True),
    (15, "at weeks 14,15", True),              # a list still reads as a list
    (6.4, "6,4 points", True),                 # a decimal comma
])
def test_quote_number_boundaries(value, text, found):
    from metaanalysis.studies.provenance import number_in_text

    assert number_in_text(value, text) is found


def _load(folder: Path):
    from metaanalysis.studies.load import load_studies

    studies, problems = load_studies([folder])
    assert not problems, [str(p) for p in problems]
    return studies


def _registry():
    from metaanalysis.studies.load import load_registry

    reg, problems = load_registry(REPO / "studies" / "strains.yaml")
    assert not problems
    return reg


def _treatment():
    from metaanalysis.analysis.protocol import Protocol
    from ruamel.yaml import YAML

    return Protocol.model_validate(YAML(typ="safe", pure=True).load(TREATMENT))


def test_one_report_per_cohort_keeps_the_main_report(tmp_path):
    from metaanalysis.analysis.selection import select_comparisons

    folder = study_folder(tmp_path, "s", {
        "Synth2020.yaml": study(),
        "Synth2022.yaml": study("Synth2022", parent="Synth2020", m1="35.5"),
        "Other2021.yaml": study("Other2021", doi="10.1000/other", pmid="999"),
    })
    comps, fate = select_comparisons(_treatment(), _load(folder), _registry())
    assert sorted(c.study for c in comps) == ["Other2021", "Synth2020"]
    f = {x["id"]: x for x in fate}
    assert f["Synth2022"]["status"] == "not analysed"
    assert "same cohort as Synth2020" in f["Synth2022"]["reason"]


def test_one_report_per_cohort_uses_the_follow_up_when_the_main_report_has_no_data(tmp_path):
    from metaanalysis.analysis.selection import select_comparisons

    no_scorad = study().replace("outcome: SCORAD", "outcome: EASI")
    folder = study_folder(tmp_path, "s", {
        "Synth2020.yaml": no_scorad,
        "Synth2022.yaml": study("Synth2022", parent="Synth2020"),
    })
    comps, _ = select_comparisons(_treatment(), _load(folder), _registry())
    assert [c.study for c in comps] == ["Synth2022"]


def test_one_report_per_cohort_nearest_time_point(tmp_path):
    """Under ``timepoint: nearest`` the report nearest the target is kept."""
    from metaanalysis.analysis.selection import select_comparisons

    proto = _treatment()
    proto = proto.model_copy(update={"outcome": proto.outcome.model_copy(
        update={"timepoint": "nearest", "target_weeks": 52.0})})
    folder = study_folder(tmp_path, "s", {
        "Synth2020.yaml": study(),  # 8 weeks
        "Synth2022.yaml": study("Synth2022", parent="Synth2020").replace(
            "timepoint_weeks: 8", "timepoint_weeks: 50"),
    })
    comps, _ = select_comparisons(proto, _load(folder), _registry())
    assert [c.study for c in comps] == ["Synth2022"]


def test_bundled_protocols_load_and_keep_their_k(tmp_path):
    """The strict checks accept the bundled protocols, and k is unchanged."""
    from metaanalysis.analysis.selection import select_comparisons
    from metaanalysis.runner import find_protocols, load_inputs

    studies = tmp_path / "studies"
    shutil.copytree(REPO / "studies", studies)
    paths = find_protocols([REPO / "protocols", REPO / "protocols" / "sensitivity"])
    st, reg, protos, _ = load_inputs(paths, studies)
    k = {p.id: len(select_comparisons(p, st, reg)[0]) for _, p in protos}
    # the bundled evidence as of issue 10 (Cochrane prevention rows, Gore2012's
    # two arms, responders): a stricter check must not change any of these
    assert k == {"treatment-scorad": 9, "prevention-eczema": 24, "prevention-eczema-or": 25,
                 "treatment-responder": 3, "treatment-responder-rr": 2}


def test_protocol_with_bom_and_crlf_is_accepted(tmp_path):
    from metaanalysis.analysis.protocol import load_protocol

    p = tmp_path / "treatment-scorad.yaml"
    p.write_bytes(("\ufeff" + TREATMENT).replace("\n", "\r\n").encode())
    proto, problems = load_protocol(p)
    assert not problems and proto.id == "treatment-scorad"


def test_allow_empty_opts_in(tmp_path):
    from metaanalysis.runner import load_inputs

    studies = tmp_path / "studies"
    shutil.copytree(REPO / "studies", studies)
    text = edit(TREATMENT, "designs: [parallel]", "designs: [cluster]\n  allow_empty: true")
    p = tmp_path / "treatment-scorad.yaml"
    p.write_text(text, encoding="utf-8")
    _, _, protos, _ = load_inputs([p], studies)
    assert protos[0][1].eligibility.allow_empty


def test_protocol_vocabularies_follow_the_schema():
    """Vocabularies come from the study schema, so additions there reach protocols."""
    from typing import get_args

    from metaanalysis.analysis import protocol
    from metaanalysis.studies import schema

    elig = protocol.Eligibility.model_fields
    assert get_args(get_args(elig["exclude_flags"].annotation)[0]) == get_args(schema.Flag)
    measures = set().union(*protocol.MEASURES_BY_OUTCOME_TYPE.values())
    assert measures == set(get_args(schema.Measure))
    assert set(protocol.OUTCOME_TYPE_OF_SCALE) == set(get_args(schema.Scale))

