"""``meta validate`` and ``meta new-study``, without the CLI.

``cli.py`` wires these two functions to typer; they print nothing and never
raise on bad input:

* :func:`validate_paths` returns every problem as a :class:`~metaanalysis.studies.load.Problem`
  (``str()`` gives ``FILE:LINE: field.path: message``); the exit code is 0 when
  the list is empty, 1 otherwise;
* :func:`new_study_template` returns a commented YAML template;
  :func:`write_new_study` writes it to ``studies/<id>.yaml``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from metaanalysis.errors import InputError
from metaanalysis.studies.load import REGISTRY_NAME, Problem, load_registry, load_studies

__all__ = ["validate_paths", "new_study_template", "write_new_study"]

_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]{0,79}$")


def validate_paths(paths: Iterable[str | os.PathLike]) -> list[Problem]:
    """Check study files and report all problems.

    Parameters
    ----------
    paths : iterable of str or path-like
        Study files and/or folders. A folder means every ``*.yaml`` in it
        except ``strains.yaml``; the registry is taken from the study file's
        folder, else ``studies/strains.yaml``. A file named ``strains.yaml``
        given explicitly is checked as a registry.

    Returns
    -------
    list of Problem
        Sorted by file and line; empty when everything is valid.

    Notes
    -----
    Never raises: an unexpected internal error becomes a problem too, so the
    CLI can always print the list and exit 1.
    """
    try:
        paths = [Path(p) for p in (paths if not isinstance(paths, (str, os.PathLike))
                                   else [paths])]
        if not paths:
            return [Problem(".", 0, "", "no files given")]
        registries = [p for p in paths if p.name == REGISTRY_NAME and p.is_file()]
        studies = [p for p in paths if p not in registries]
        problems: list[Problem] = []
        for reg in registries:
            problems.extend(_guard(str(reg), lambda reg=reg: list(load_registry(reg)[1])))
        if studies:
            problems.extend(_guard(" ".join(map(str, studies)),
                                   lambda: list(load_studies(studies)[1])))
        return sorted(set(problems), key=lambda p: (p.file, p.line, p.path, p.message))
    except BaseException as exc:  # noqa: BLE001 - the boundary: never a traceback
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return [Problem(".", 0, "", f"internal error: {type(exc).__name__}: {exc}")]


def _guard(where: str, fn) -> list[Problem]:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return [Problem(where, 0, "", f"internal error while checking: "
                                      f"{type(exc).__name__}: {exc}")]


# ---------------------------------------------------------------------------
# template

_TEMPLATE = '''\
# Extraction file for one trial. Format: studies/README.md (schema_version 1).
# Replace every "<<FILL: ...>>" placeholder, quotes included (meta validate
# reports any that are left), and delete the optional blocks you do not need.
# Every number is written {value: X, quote: <quote id>} and X must appear in
# that quote's text, or {value: X, derived: {method, formula, inputs, quote}}
# when it was computed.
schema_version: 1
id: __ID__                             # must equal the file name stem
citation: "<<FILL: Authors. Title. Journal. Year;Vol(Issue):pages.>>"
doi: null                              # e.g. 10.1111/j.1365-2133.2011.10596.x
pmid: null                             # e.g. "21895621"
year: "<<FILL: year>>"
country: null
design: parallel                       # parallel | crossover | cluster | unclear
blinding: null                         # e.g. double-blind
purpose: treatment                     # treatment | prevention
funding: null                          # null = not read
registration: null                     # trial registry id
status: included                       # included | excluded
excluded: null                         # the reason, required when status is excluded
awaiting_data: null                    # excluded trials: data that would make it usable
same_cohort_as: null                   # parent trial id for follow-up reports
flags: []                              # controlled vocabulary, see studies/README.md

sources:
  s1:
    citation: "<<FILL: where the text was read, e.g. PubMed abstract, PMID ...>>"
    url: null
    kind: primary abstract             # primary abstract | primary full text | trial registry |
                                       # secondary review table | secondary review text |
                                       # news report | conference abstract | evidence pack
    secondary: false

quotes:                                # verbatim text; '...' marks an elision, nothing else changes
  q1:
    source: s1
    location: abstract                 # page, table, figure, or abstract
    text: "<<FILL: verbatim quote containing the numbers below>>"

population:
  age_group: children                  # infants | children | adults | mixed
  age_range: null                      # as written, e.g. "2-14 y"
  diagnosis: null                      # e.g. Hanifin and Rajka
  severity_stated: null                # as the authors state it
  severity_categories: []              # mild | moderate | severe
  family_risk: null                    # prevention: high | unselected
  baseline: []                         # [{scale: SCORAD, arm: <arm id>|all, mean: {...}, sd: {...}}]

arms:
  - id: probiotic                      # referenced by outcomes
    role: intervention
    name: "<<FILL: product as named in the paper>>"
    n_randomised: {value: "<<FILL: n randomised>>", quote: q1}
    n_analysed: null
    intervention:
      strains:
        - as_written: "<<FILL: strain as written>>"
          registry: "<<FILL: key in studies/strains.yaml>>"   # or null when not named
      dose_cfu_per_day: null           # {value: 1.0e+10, quote: q1}
      dose_as_written: null
      viability: viable                # viable | heat-killed | unclear
      vehicle: null
      duration_weeks: null
      co_interventions: []             # e.g. [fructo-oligosaccharide]
      synbiotic: false
      timing: null                     # prevention: prenatal | postnatal | both
  - id: control
    role: control
    name: placebo
    comparator: placebo                # placebo | prebiotic | none | usual_care | active
    n_randomised: {value: "<<FILL: n randomised>>", quote: q1}
    n_analysed: null

outcomes:
  - id: scorad_end
    outcome: SCORAD                    # SCORAD | oSCORAD | EASI | POEM | IGA | itch | sleep | DLQI |
                                       # eczema_incidence | treatment_response | symptom_load |
                                       # SCORAD_subscore | other (+ outcome_label)
    timepoint_weeks: "<<FILL: weeks from randomisation>>"
    timepoint_label: null
    end_of_treatment: true
    scale: final                       # final | change | events
    per_arm:                           # alternatives to sd: se | ci_lb+ci_ub | median+q1+q3 |
                                       # median+min+max; binary: events (+ n)
      probiotic:
        n: {value: "<<FILL: n>>", quote: q1}
        mean: {value: "<<FILL: mean>>", quote: q1}
        sd: {value: "<<FILL: SD>>", quote: q1}
      control:
        n: {value: "<<FILL: n>>", quote: q1}
        mean: {value: "<<FILL: mean>>", quote: q1}
        sd: {value: "<<FILL: SD>>", quote: q1}
    between: null                      # {measure: MD, direction: probiotic_minus_control,
                                       #  estimate: {...}, ci_lb: {...}, ci_ub: {...},
                                       #  p: {...}, p_qualifier: "="}
    note: null

adverse_events: null                   # or [{description: ..., per_arm: {...}}] / [{..., statement: q1}]
rob: null                              # {tool: RoB2, source: ..., domains: {...}, overall: {...}}
conflicts: []                          # [{field: ..., values: [...], chosen: ..., reason: ...}]
'''


def new_study_template(study_id: str) -> str:
    """A commented YAML template for a new extraction file.

    Parameters
    ----------
    study_id : str
        The study id, which is also the file name stem (``Wu2012``).

    Returns
    -------
    str
        YAML text. It does not validate until every ``"<<FILL: ...>>"``
        placeholder is replaced.

    Raises
    ------
    InputError
        If ``study_id`` is not a valid identifier.
    """
    if not isinstance(study_id, str) or not _ID_RE.match(study_id):
        raise InputError(f"invalid study id {study_id!r}: start with a letter; use letters, "
                         "digits, '_', '-' or '.' only (at most 80 characters)")
    return _TEMPLATE.replace("__ID__", study_id)


def write_new_study(study_id: str, directory: str | os.PathLike = "studies", *,
                    overwrite: bool = False) -> Path:
    """Write :func:`new_study_template` to ``<directory>/<study_id>.yaml``.

    Parameters
    ----------
    study_id : str
        The new study's id (also its file name).
    directory : str or path-like
        Created if missing.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        Invalid id, or the file exists and ``overwrite`` is false.
    """
    text = new_study_template(study_id)
    path = Path(directory) / f"{study_id}.yaml"
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; not overwriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
