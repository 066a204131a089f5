"""Analysis protocols (``protocols/*.yaml``): pydantic models and loader.

A protocol pre-specifies one analysis: the question (PICO), which studies are
eligible, which outcome and time point each contributes, the effect measure
and model, how severity is assigned, the strata, the meta-regression, the
sensitivity analyses and the claims to test. ``protocols/README.md``
documents every field.

Protocols are validated as strictly as study files: unknown keys are refused
everywhere (nested mappings included), every vocabulary comes from the study
schema's ``Literal`` types (flags, comparators, age groups, outcome kinds,
scales, severity labels) with a did-you-mean, numbers have ranges, and
:func:`check_against_studies` checks what needs the loaded studies (overrides
that name no study, a filter that selects no trial). Every problem is
``FILE:LINE: field: message``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError,
                      model_validator)

from metaanalysis.analysis import selection
from metaanalysis.studies import schema
from metaanalysis.studies.load import (Problem, did_you_mean, one_of, read_yaml_with_lines,
                               validation_problems)
from metaanalysis.studies.schema import (AgeGroup, Comparator, FieldIssues, Flag, OutcomeKind, Scale,
                                 Severity)


class _F(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------
# vocabularies and ranges (derived from the study schema where one exists)

#: The outcome type of each study ``scale`` (``schema.Scale``).
OUTCOME_TYPE_OF_SCALE: dict[str, str] = {"final": "continuous", "change": "continuous",
                                         "events": "events"}
#: The effect measures each outcome type can be pooled on. The one place to
#: extend: a new continuous measure (e.g. ROM, the ratio of means) joins
#: ``schema.CONTINUOUS_MEASURES``, a new binary one ``schema.BINARY_MEASURES``.
MEASURES_BY_OUTCOME_TYPE: dict[str, frozenset[str]] = {
    "continuous": schema.CONTINUOUS_MEASURES,
    "events": schema.BINARY_MEASURES,
}
#: Pooling methods that need arm-level counts, and the measures they take.
METHOD_MEASURES: dict[str, frozenset[str]] = {"MH": frozenset({"RR", "OR", "RD"}),
                                              "PETO": frozenset({"OR"})}
#: Range of each severity scale a protocol can band (its published maximum):
#: SCORAD 0-103 (Kunz 1997), objective SCORAD 0-83, EASI 0-72 (Hanifin 2001).
SCALE_RANGES: dict[str, tuple[float, float]] = {"SCORAD": (0.0, 103.0), "oSCORAD": (0.0, 83.0),
                                                 "EASI": (0.0, 72.0)}
SEVERITY_LEVELS: tuple[str, ...] = get_args(Severity)
#: Smallest alpha a protocol may use (intervals covering 99.9999%).
MIN_ALPHA = 1e-6
#: Values ``selection.mix_type`` gives (the ``mix_type`` stratum).
MIX_TYPES = ("Lactobacillus+Bifidobacterium", "Lactobacillus+Bifidobacterium (+other)",
             "Lactobacillus only", "Bifidobacterium only", "other", "unknown",
             # no organism named (strains.UNSPECIFIED): e.g. a review's data row only
             "unspecified")
#: The levels a stratum of each field can take (``selection.stratum_attrs`` makes
#: them), for claim targets and expected strata; ``None`` = open (strain
#: names come from the registry, countries are free text) and checked
#: against the loaded studies instead. ``severity`` levels are the
#: protocol's own group labels (plus ``unclassified``).
STRATUM_LEVELS: dict[str, tuple[str, ...] | None] = {
    "severity": None,
    "strain": None,
    "mix_type": MIX_TYPES,
    "age_group": get_args(AgeGroup) + ("unknown",),
    "comparator": get_args(Comparator) + ("unknown",),
    "viability": get_args(schema.Viability) + ("unknown",),
    "synbiotic": ("synbiotic", "probiotic only"),
    "timing": get_args(schema.Timing) + ("unknown",),
    "family_risk": get_args(schema.FamilyRisk) + ("unknown",),
    "country": None,
    "design": get_args(schema.Design),
}
UNCLASSIFIED = "unclassified"

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def _ident(v: str) -> str:
    # ids become file and folder names (outputs/<protocol>/, --only CLAIM):
    # no path separators, no leading dot
    if not _ID_RE.match(v):
        raise ValueError(f"{v[:60]!r} is not a valid id: start with a letter or digit; use "
                         "letters, digits, '.', '_' and '-' only (at most 80 characters)")
    return v


Id = Annotated[str, AfterValidator(_ident)]
# strict, as in the study schema: "0.05" (text) or true is not a number, and
# "yes" is not a boolean; a typo must not be coerced into a value
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Correlation = Annotated[float, Field(strict=True, ge=-1, le=1, allow_inf_nan=False)]


Method = Literal["FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML", "MH", "PETO"]
Test = Literal["z", "knha", "adhoc"]
Finding = Literal["benefit", "no_effect", "harm", "not_robust", "heterogeneity",
                  "effect_modification", "benefit_in_strata", "harms"]


class Question(_F):
    population: str
    intervention: str
    comparator: str
    outcome: str


class Eligibility(_F):
    purpose: Literal["treatment", "prevention"]
    designs: Annotated[tuple[Literal["parallel", "crossover", "cluster", "unclear"], ...],
                       Field(min_length=1)] = ("parallel",)
    age_groups: tuple[AgeGroup, ...] | None = None
    comparators: tuple[Comparator, ...] | None = None
    exclude_flags: tuple[Flag, ...] = ()
    # a protocol whose eligibility selects no study file is refused unless
    # it says that an empty analysis is intended
    allow_empty: StrictBool = False


class OutcomeRule(_F):
    kinds: Annotated[tuple[OutcomeKind, ...], Field(min_length=1)]
    label: str
    unit: str = ""
    timepoint: Literal["end_of_treatment", "nearest"] = "end_of_treatment"
    target_weeks: Annotated[float, Field(gt=0, le=2000, strict=True,
                                         allow_inf_nan=False)] | None = None
    scales: Annotated[tuple[Scale, ...], Field(min_length=1)] = ("final", "change")
    lower_is_better: StrictBool = True
    # study id -> outcome id, where the time-point rule alone would be ambiguous
    overrides: dict[Id, Id] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _target(self):
        if self.timepoint == "nearest" and self.target_weeks is None:
            raise ValueError("timepoint 'nearest' needs target_weeks")
        types = {OUTCOME_TYPE_OF_SCALE.get(sc, sc) for sc in self.scales}
        if len(types) > 1:
            raise FieldIssues([(("scales",), "event counts and continuous scales cannot be "
                                             "pooled together; list either [events] or final "
                                             "and/or change")])
        return self

    @property
    def outcome_type(self) -> str:
        """``continuous`` or ``events`` (see :data:`OUTCOME_TYPE_OF_SCALE`)."""
        return OUTCOME_TYPE_OF_SCALE.get(self.scales[0], self.scales[0])


class Model(_F):
    measure: Literal["MD", "SMD", "RR", "OR", "RD"]
    method: Method = "REML"
    test: Test = "knha"
    # intervals cover 1 - alpha: at 0.5 or above they would cover half the
    # time or less, and below MIN_ALPHA the value is a typo (1e-300 was
    # accepted); no analysis pre-specifies either
    alpha: Annotated[float, Field(ge=MIN_ALPHA, lt=0.5, strict=True, allow_inf_nan=False)] = 0.05
    prediction_interval: StrictBool = True
    pi_df: Literal["metafor", "k-1", "k-2", "z"] = "metafor"
    change_score_correlation: Correlation = 0.5
    multi_arm: Literal["split_control"] = "split_control"


class Band(_F):
    name: Severity
    lower: Finite
    upper: Finite


class SeverityRule(_F):
    source: Literal["stated", "baseline", "stated_then_baseline"] = "stated_then_baseline"
    scale: Literal["SCORAD", "oSCORAD", "EASI"] = "SCORAD"
    bands_source: str
    bands: Annotated[tuple[Band, ...], Field(min_length=2)]
    # How a trial whose population spans categories ("moderate to severe") is
    # grouped: a map from the joined category set (e.g. "moderate+severe") to
    # a stratum label. A set not listed goes to the stratum "unclassified",
    # which is reported, never dropped.
    groups: dict[str, str]

    @model_validator(mode="after")
    def _bands(self):
        issues = []
        # a scale added without a known range is only checked for order
        lo_scale, hi_scale = SCALE_RANGES.get(self.scale, (-math.inf, math.inf))
        names = [b.name for b in self.bands]
        for i, b in enumerate(self.bands):
            if not b.lower < b.upper:
                issues.append((("bands", i, "upper"), f"upper {b.upper:g} is not above lower "
                                                      f"{b.lower:g}"))
            if b.lower < lo_scale or b.upper > hi_scale:
                issues.append((("bands", i), f"band {b.lower:g}-{b.upper:g} is outside the "
                                             f"{self.scale} range {lo_scale:g}-{hi_scale:g}"))
            if names.count(b.name) > 1 and names.index(b.name) != i:
                issues.append((("bands", i, "name"), f"band '{b.name}' is listed twice"))
        for i in range(1, len(self.bands)):
            a, b = self.bands[i - 1], self.bands[i]
            if SEVERITY_LEVELS.index(b.name) <= SEVERITY_LEVELS.index(a.name):
                issues.append((("bands", i, "name"), f"bands must be in the order "
                                                     f"{', '.join(SEVERITY_LEVELS)}"))
            elif b.lower < a.upper:
                issues.append((("bands", i, "lower"), f"band '{b.name}' starts at {b.lower:g}, "
                                                      f"inside '{a.name}' (which ends at "
                                                      f"{a.upper:g}): bands must not overlap"))
        for key, label in self.groups.items():
            parts = key.split("+")
            bad = [p for p in parts if p not in SEVERITY_LEVELS]
            if bad:
                issues.append((("groups", key), one_of(bad[0], SEVERITY_LEVELS,
                                                       "severity category")))
                continue
            canonical = "+".join(sorted(set(parts), key=SEVERITY_LEVELS.index))
            if canonical != key:
                issues.append((("groups", key), f"write the category set as '{canonical}' "
                                                "(each category once, mild to severe); "
                                                "otherwise it never matches"))
            if not label.strip():
                issues.append((("groups", key), "empty stratum label"))
        if issues:
            raise FieldIssues(issues)
        return self


class Stratum(_F):
    name: Id
    field: Literal["severity", "strain", "mix_type", "age_group", "comparator", "viability",
                   "synbiotic", "timing", "family_risk", "country", "design"]
    level: Literal["strain", "species", "genus", "mixture"] | None = None

    @model_validator(mode="after")
    def _level(self):
        if self.field == "strain" and self.level is None:
            raise ValueError("a strain stratum needs level: strain | species | genus | mixture")
        return self


class MetaRegression(_F):
    moderator: Literal["baseline_score", "log10_dose", "duration_weeks"]
    label: str


class Sensitivity(_F):
    leave_one_out: StrictBool = True
    exclude_high_rob: StrictBool = True
    methods: tuple[Method, ...] = ("DL", "PM")
    tests: tuple[Test, ...] = ("z",)
    correlations: tuple[Correlation, ...] = (0.2, 0.5, 0.8)
    fixed_effect: StrictBool = True
    exclude_flags: dict[str, Annotated[tuple[Flag, ...], Field(min_length=1)]] = Field(
        default_factory=dict)
    # trials with means but no SDs, the SD borrowed from the other trials (Furukawa 2006)
    impute_missing_sd: StrictBool = False
    # the same outcome as a log ratio of means (metafor ROM), never pooled with MDs
    ratio_of_means: StrictBool = False
    # label -> trials the main analysis leaves out by design or flag, added back
    add_trials: dict[str, "AddTrials"] = Field(default_factory=dict)


class AddTrials(_F):
    """Designs and flags that a sensitivity analysis lets in (e.g. doubtful randomisation)."""

    designs: tuple[Literal["parallel", "crossover", "cluster", "unclear"], ...] = ()
    flags: tuple[Flag, ...] = ()


class Swim(_F):
    """Synthesis without meta-analysis over every eligible trial (Handbook ch. 12)."""

    # outcome kinds besides the protocol's whose quoted direction also counts
    # (e.g. a symptom-load score that contains the total SCORAD)
    direction_kinds: tuple[OutcomeKind, ...] = ()


class Target(_F):
    # stratum name -> allowed levels (checked against the protocol's strata)
    subset: dict[str, Annotated[tuple[str, ...], Field(min_length=1)]] = Field(
        default_factory=dict)
    # a target that selects no eligible trial is refused unless this says
    # that an empty target is intended
    allow_empty: StrictBool = False


class Claim(_F):
    id: Id
    wording: str
    source: str
    finding: Finding
    target: Target = Target()
    operational: str
    threshold: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)] | None = None
    modifier: str | None = None  # a stratum name, for effect modification
    expected_benefit_in: tuple[str, ...] = ()
    expected_no_effect_in: tuple[str, ...] = ()
    direction_a_priori: StrictBool = True
    language: str | None = None      # see OutOfScope: original language, project's translation
    translation: str | None = None

    @model_validator(mode="after")
    def _mod(self):
        if self.finding == "effect_modification" and not self.modifier:
            raise ValueError("an effect-modification claim needs 'modifier' (a stratum name)")
        if self.finding == "benefit_in_strata" and not (self.modifier and self.expected_benefit_in):
            raise ValueError("a benefit_in_strata claim needs 'modifier' (a stratum name) and "
                             "'expected_benefit_in' (its levels)")
        return self


class OutOfScope(_F):
    id: Id
    wording: str
    source: str
    reason: str
    # a claim worded in another language: the project's English translation,
    # shown beside the original (which stays the quoted claim)
    language: str | None = None
    translation: str | None = None


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def _number_word(n: int) -> str:
    """English words for 0-99 ('Thirteen studies', 'Twenty-five trials')."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t - 2] + (f"-{_ONES[o]}" if o else "")
    return ""


class Recomputed(_F):
    """Where a published analysis's pooled numbers were recomputed, not quoted.

    For a review whose pooled total is not in any stored source but whose own
    data table is (a RevMan export): ``meta revman reproduce`` reproduces the
    review's printed per-study rows and recomputes the pooled value under the
    model it infers. The numbers are then ours, from their data: never a quote.
    ``tests/analysis/test_published_recomputed.py`` reruns the recomputation and checks
    every number when the export is at hand.
    """

    review: str                     # the export's name, e.g. "CD006475.pub3" (CD006475.pub3.csv)
    analysis: str                   # the review's analysis number, e.g. "1.2"
    method: str                     # the model inferred from the printed weights
    note: str = ""                  # what was reproduced, and to what precision


#: Fields of a published entry that a ``recomputed_from`` entry supplies
#: instead of the quote.
RECOMPUTED_FIELDS = ("estimate", "ci_lb", "ci_ub", "k")


class Published(_F):
    """A published meta-analysis to set beside ours (issue 10, item 5).

    Every number is in ``quote`` (checked), read from ``source``, except the
    pooled estimate, CI and k of an entry with ``recomputed_from``: those were
    recomputed from the review's own data table and are labelled so.
    """

    id: str
    citation: str
    source: str                     # URL / DOI / PMID
    quote: str                      # verbatim
    analysis: str                   # which of its analyses
    population: str
    year: int | None = None
    measure: Literal["MD", "SMD", "RR", "OR", "ROM"]
    estimate: float | None = None   # None: not in the quote we hold
    ci_lb: float | None = None
    ci_ub: float | None = None
    k: int | None = None
    n: int | None = None
    trials: tuple[str, ...] = ()    # as the source lists them ("Author YEAR")
    notes: str = ""                 # what the source says about its methods or data
    recomputed_from: Recomputed | None = None   # estimate/CI/k recomputed, not quoted

    @model_validator(mode="after")
    def _quoted(self):
        text = self.quote.replace("\u2212", "-").replace("\u2013", "-")
        for name in ("estimate", "ci_lb", "ci_ub", "k", "n"):
            v = getattr(self, name)
            if v is None:
                continue
            if self.recomputed_from is not None and name in RECOMPUTED_FIELDS:
                continue  # checked against the recomputation by a test, not by the quote
            forms = {f"{abs(v):g}", f"{abs(v):.2f}", f"{abs(v):,}" if float(v).is_integer() else ""}
            if name in ("k", "n") and float(v).is_integer():
                forms.add(_number_word(int(v)))
            if not any(f and f.lower() in text.lower() for f in forms):
                raise ValueError(f"published '{self.id}': {name} {v:g} does not appear in its quote")
        return self


class Protocol(_F):
    schema_version: Literal[1]
    id: Id
    title: str
    question: Question
    eligibility: Eligibility
    outcome: OutcomeRule
    model: Model
    severity: SeverityRule | None = None
    strata: tuple[Stratum, ...] = ()
    meta_regression: tuple[MetaRegression, ...] = ()
    sensitivity: Sensitivity = Sensitivity()
    # funnel-plot asymmetry tests need at least 3 points to fit a line
    small_study_min_k: Annotated[int, Field(strict=True, ge=3)] = 10
    mcid: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)] | None = None
    mcid_source: str | None = None
    min_k_per_stratum: Annotated[int, Field(strict=True, ge=1)] = 2
    swim: Swim | None = None
    published: tuple[Published, ...] = ()
    claims: tuple[Claim, ...] = ()
    out_of_scope: tuple[OutOfScope, ...] = ()

    @model_validator(mode="after")
    def _refs(self):
        issues: list[tuple[tuple, str]] = []
        names = {s.name for s in self.strata}
        seen_strata: set[str] = set()
        for i, st in enumerate(self.strata):
            if st.name in seen_strata:
                issues.append((("strata", i, "name"), f"stratum name '{st.name}' is used twice"))
            seen_strata.add(st.name)
        seen: set[str] = set()
        for group in ("claims", "out_of_scope"):
            for i, c in enumerate(getattr(self, group)):
                if c.id in seen:
                    issues.append(((group, i, "id"), f"claim id '{c.id}' is used twice "
                                                      "(claim ids must be unique)"))
                seen.add(c.id)
        for i, c in enumerate(self.claims):
            if c.modifier and c.modifier not in names:
                issues.append((("claims", i, "modifier"),
                               f"claim {c.id}: " + one_of(c.modifier, sorted(names),
                                                          "stratum name")))
            self._claim_levels(i, c, issues)
            if c.finding == "no_effect" and c.threshold is None and self.mcid is None:
                issues.append((("claims", i, "threshold"), "a no_effect claim needs 'threshold' "
                                                           "(or the protocol's mcid)"))
        if any(s.field == "severity" for s in self.strata) and self.severity is None:
            issues.append((("strata",), "a severity stratum needs the 'severity' rule"))
        self._measure(issues)
        if issues:
            raise FieldIssues(issues)
        return self

    def _measure(self, issues) -> None:
        """The measure fits the outcome type; MH/Peto only where they apply."""
        otype = self.outcome.outcome_type
        m = self.model.measure
        allowed = MEASURES_BY_OUTCOME_TYPE.get(otype, frozenset())
        if m not in allowed:
            issues.append((("model", "measure"),
                           f"{m} cannot be computed from {otype} outcomes (scales "
                           f"{', '.join(self.outcome.scales)}); use "
                           f"{' or '.join(sorted(allowed))}"))
            return
        if m == "SMD" and set(self.outcome.scales) == {"final", "change"}:
            issues.append((("outcome", "scales"), "final values and change scores may be mixed "
                                                  "for MD only, never for SMD (Cochrane "
                                                  "Handbook 10.5.2)"))
        for path, meth in [(("model", "method"), self.model.method)] + [
                (("sensitivity", "methods", j), x) for j, x in enumerate(self.sensitivity.methods)]:
            if meth in METHOD_MEASURES and m not in METHOD_MEASURES[meth]:
                issues.append((path, f"method {meth} needs measure "
                                     f"{' or '.join(sorted(METHOD_MEASURES[meth]))}, not {m}"))

    def stratum_levels(self, name: str) -> tuple[str, ...] | None:
        """The levels stratum ``name`` can take, or None when open (or unknown)."""
        st = next((s for s in self.strata if s.name == name), None)
        if st is None:
            return None
        if st.field == "severity":
            if self.severity is None:
                return None
            return tuple(dict.fromkeys(self.severity.groups.values())) + (UNCLASSIFIED,)
        return STRATUM_LEVELS.get(st.field)

    def _claim_levels(self, i: int, c: "Claim", issues) -> None:
        names = [s.name for s in self.strata]
        for attr, allowed in c.target.subset.items():
            path = ("claims", i, "target", "subset", attr)
            if attr not in names:
                issues.append((path, "a claim target filters on the protocol's strata: "
                                     + one_of(attr, names or ["(no strata defined)"],
                                              "stratum name")))
                continue
            levels = self.stratum_levels(attr)
            for j, lvl in enumerate(allowed):
                if levels is not None and lvl not in levels:
                    issues.append((path + (j,), one_of(lvl, levels, f"{attr} level")))
        if c.modifier:
            levels = self.stratum_levels(c.modifier)
            for key in ("expected_benefit_in", "expected_no_effect_in"):
                for j, lvl in enumerate(getattr(c, key)):
                    if levels is not None and lvl not in levels:
                        issues.append((("claims", i, key, j),
                                       one_of(lvl, levels, f"{c.modifier} level")))


def _field_names() -> list[str]:
    names: set[str] = set()
    for obj in globals().values():
        if isinstance(obj, type) and issubclass(obj, _F) and obj is not _F:
            names.update(obj.model_fields)
    return sorted(names)


def load_protocol(path: str | os.PathLike, *, studies: Sequence | None = None,
                  registry: Any = None) -> tuple[Protocol | None, tuple[Problem, ...]]:
    """Read and validate one protocol file; problems carry file and line.

    Parameters
    ----------
    path : str or path-like
    studies : sequence of Study, optional
        The loaded studies. When given, :func:`check_against_studies` also
        runs (overrides name a study; filters select a trial).
    registry : StrainRegistry, optional
        Needed by that check for strain and mixture strata.

    Returns
    -------
    (protocol, problems) : tuple[Protocol or None, tuple of Problem]
        None with at least one problem when the file does not validate.
    """
    doc, problems = read_yaml_with_lines(path)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, (Problem(str(path), 1, "", "expected a mapping at the top level"),)
    try:
        proto = Protocol.model_validate(doc.data)
    except ValidationError as exc:
        return None, tuple(validation_problems(doc, exc, field_names=_field_names()))
    stem = os.path.splitext(os.path.basename(str(path)))[0]
    if proto.id != stem:
        return None, (doc.problem(("id",), f"must equal the file name '{stem}', got '{proto.id}'"),)
    if studies is not None:
        probs = check_against_studies(proto, studies, registry, doc)
        if probs:
            return None, tuple(probs)
    return proto, ()


Sensitivity.model_rebuild()


def check_against_studies(proto: Protocol, studies: Sequence, registry: Any,
                          doc: Any) -> list[Problem]:
    """What a protocol can only be checked on with the studies loaded.

    * ``outcome.overrides``: each names a study, and an outcome of that study
      the protocol's outcome rule can use (else the override would be
      ignored silently);
    * ``eligibility`` selects at least one study file, and each claim's
      ``target`` at least one eligible trial, unless ``allow_empty: true``
      says an empty selection is intended. A filter that silently selects
      nothing turns a typo into "insufficient evidence".

    Parameters
    ----------
    proto : Protocol
    studies : sequence of Study
    registry : StrainRegistry or None
    doc : YamlDoc
        The protocol file, for line numbers.

    Returns
    -------
    list of Problem
    """
    out: list[Problem] = []
    by_id = {st.id: st for st in studies}
    rule = proto.outcome
    for sid, oid in rule.overrides.items():
        path = ("outcome", "overrides", sid)
        st = by_id.get(sid)
        if st is None:
            out.append(doc.problem(path, "override names no study: "
                                         + one_of(sid, sorted(by_id) or ["(none loaded)"],
                                                  "study id")))
            continue
        outcomes = {o.id: o for o in st.outcomes}
        o = outcomes.get(oid)
        if o is None:
            out.append(doc.problem(path, f"study {sid} has no outcome '{oid}'"
                                         f"{did_you_mean(oid, outcomes)}; its outcomes: "
                                         f"{', '.join(outcomes) or 'none'}"))
        elif o.outcome not in rule.kinds or o.scale not in rule.scales:
            out.append(doc.problem(path, f"outcome '{oid}' of {sid} is {o.outcome} on the "
                                         f"{o.scale} scale, which this protocol does not use "
                                         f"(kinds {', '.join(rule.kinds)}; scales "
                                         f"{', '.join(rule.scales)}): the override would be "
                                         "ignored"))

    eligible = []
    for st in studies:
        if selection.eligible(st, proto) is not None:
            continue
        controls = [a for a in st.arms if a.role == "control"]
        ints = [a for a in st.arms if a.role == "intervention"]
        if not controls or not ints:
            continue
        comps = proto.eligibility.comparators
        if comps is not None and controls[0].comparator not in comps:
            continue
        eligible.append((st, ints, controls[0]))
    if not eligible and not proto.eligibility.allow_empty:
        out.append(doc.problem(("eligibility",),
                               f"selects no trial among the {len(studies)} study files (purpose, "
                               "designs, age groups, comparators and excluded flags together); "
                               "if that is intended, add allow_empty: true"))
        return out
    if not eligible or registry is None:
        return out
    attrs = []
    for st, ints, control in eligible:
        baseline = selection.baseline_score(st, proto.severity.scale if proto.severity else "SCORAD")
        for arm in ints:
            attrs.append(selection.stratum_attrs(st, arm, control, proto, registry, baseline)[0])
    for i, c in enumerate(proto.claims):
        spec = c.target.subset
        if not spec or c.target.allow_empty:
            continue
        if not any(all(a.get(k) in v for k, v in spec.items()) for a in attrs):
            seen = {k: sorted({str(a.get(k)) for a in attrs}) for k in spec}
            out.append(doc.problem(("claims", i, "target", "subset"),
                                   f"claim {c.id}: the target selects none of the "
                                   f"{len(eligible)} eligible trials (levels present: "
                                   + "; ".join(f"{k}: {', '.join(v)}" for k, v in seen.items())
                                   + "); if that is intended, add allow_empty: true to target"))
    return out
