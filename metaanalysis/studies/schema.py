"""Input models for study extraction files (``studies/*.yaml``) and the strain
registry (``studies/strains.yaml``).

The format is documented in ``studies/README.md``; this module is its
executable form. Every model is frozen, forbids unknown keys and stores
sequences as tuples and mappings as read-only ``MappingProxyType`` (frozen is
shallow, so a ``dict`` field would stay mutable).

Validation happens in two layers:

* single-field rules are reusable annotated types (``Count``, ``PositiveNumber``,
  ``FiniteFloat`` ...);
* cross-field rules are ``model_validator(mode="after")`` methods. They collect
  *all* issues of one model and raise one :class:`FieldIssues` (a
  ``ValueError``) that carries a sub-path for each, so that ``load.py`` can
  report each problem at its exact ``FILE:LINE: field.path``.

Checks that need something outside one file (the strain registry, the file
name, other studies, the provenance of quoted numbers against their quote
text) live in :mod:`metaanalysis.studies.load`.

This module imports only pydantic, the standard library, the measure codes
of :mod:`metaanalysis.stats.measures` and the path formatter of
:mod:`metaanalysis.studies.yamlio`; it never reads files.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    model_validator,
)

from metaanalysis.stats.measures import BINARY, CONTINUOUS, RATIO_MEASURES, STUDY_MEASURES
from metaanalysis.studies.yamlio import format_path as _dotted  # one path formatter for both

SCHEMA_VERSION = 1

#: Largest magnitude accepted for any number. Doses reach ~1e11 CFU/day; a
#: larger value is a typo (or an attempt to overflow downstream arithmetic).
MAX_ABS_VALUE = 1e15

#: Marker that ``meta new-study`` writes where a value must be filled in.
PLACEHOLDER = "<<FILL"

# ---------------------------------------------------------------------------
# controlled vocabularies (kept in sync with studies/README.md)

Design = Literal["parallel", "crossover", "cluster", "unclear"]
Purpose = Literal["treatment", "prevention"]
Status = Literal["included", "excluded"]
Flag = Literal[
    "secondary_source", "news_report", "derived_n", "sd_may_be_se",
    "active_comparator", "non_placebo_control", "heat_killed", "crossover",
    "non_standard_outcome", "follow_up_same_cohort", "shared_control_arm",
    "doubtful_randomisation", "conference_abstract", "from_figure",
    "derived_from_p", "source_conflict",
]
SourceKind = Literal[
    "primary abstract", "primary full text", "trial registry",
    "secondary review table", "secondary review text", "news report",
    "conference abstract", "evidence pack",
]
SECONDARY_KINDS = frozenset({"secondary review table", "secondary review text", "news report"})
PRIMARY_KINDS = frozenset({"primary abstract", "primary full text", "trial registry",
                           "conference abstract"})
AgeGroup = Literal["infants", "children", "adults", "mixed"]
Severity = Literal["mild", "moderate", "severe"]
FamilyRisk = Literal["high", "unselected"]
Role = Literal["intervention", "control"]
Comparator = Literal["placebo", "prebiotic", "none", "usual_care", "active"]
Viability = Literal["viable", "heat-killed", "unclear"]
Timing = Literal["prenatal", "postnatal", "both"]
OutcomeKind = Literal[
    "SCORAD", "oSCORAD", "EASI", "POEM", "IGA", "itch", "sleep", "DLQI",
    "eczema_incidence", "treatment_response", "symptom_load", "SCORAD_subscore",
    "other",
]
Scale = Literal["final", "change", "events"]
# ROM: a ratio of means (e.g. of geometric means), on the ratio scale (> 0)
# (the codes are defined once, in metaanalysis.stats.measures)
Measure = Literal[STUDY_MEASURES]
CONTINUOUS_MEASURES = frozenset(CONTINUOUS)
BINARY_MEASURES = frozenset(BINARY)
Direction = Literal["probiotic_minus_control", "control_minus_probiotic"]
PQualifier = Literal["=", "<", "<=", ">", "NS"]
Judgement = Literal["low", "some_concerns", "high", "unclear", "not_assessed"]
RobTool = Literal["RoB2", "RoB1"]
ROB2_DOMAINS = ("randomisation", "deviations", "missing_data", "measurement", "selection")
ROB1_DOMAINS = ("sequence_generation", "allocation_concealment", "blinding_participants",
                "blinding_outcome", "incomplete_data", "selective_reporting", "other_bias")
DerivationMethod = Literal[
    "denominator", "sum_of_arms", "difference_of_arms", "sd_from_se", "sd_from_ci",
    "se_from_ci", "se_from_p", "sd_change_from_correlation", "mean_sd_from_median_iqr",
    "mean_sd_from_median_range", "combine_arms", "split_control", "unit_conversion",
    "percent_of_n", "other",
]


# ---------------------------------------------------------------------------
# error carrier


class FieldIssues(ValueError):
    """One or more cross-field problems found by a model validator.

    Parameters
    ----------
    issues : sequence of (path, message)
        ``path`` is a tuple of keys/indices *relative to the model that
        raised*; ``load.py`` appends it to pydantic's ``loc`` so each issue is
        reported at its own line.

    Notes
    -----
    pydantic keeps the raised exception in ``error["ctx"]["error"]``, which is
    how the loader recovers the sub-paths. ``str()`` stays readable for
    callers who build models directly in Python.
    """

    def __init__(self, issues: Iterable[tuple[Iterable[str | int], str]]) -> None:
        self.issues = tuple((tuple(p), str(m)) for p, m in issues)
        super().__init__("; ".join(
            (f"{_dotted(p)}: {m}" if p else m) for p, m in self.issues))


class _Issues:
    """Collects issues inside a validator; ``raise_if_any()`` at the end."""

    def __init__(self):
        self.items: list[tuple[tuple, str]] = []

    def add(self, path, message: str) -> None:
        self.items.append((tuple(path) if isinstance(path, (tuple, list)) else (path,), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise FieldIssues(self.items)


# ---------------------------------------------------------------------------
# reusable annotated types

K = TypeVar("K")
V = TypeVar("V")


def _freeze(d: dict) -> Mapping:
    return MappingProxyType(dict(d))


#: A read-only mapping. Validated as a dict (so error paths use the keys),
#: stored as ``MappingProxyType``, serialised back to a dict.
FrozenMap = Annotated[dict[K, V], AfterValidator(_freeze), PlainSerializer(lambda m: dict(m))]


def _reject_placeholder(v: Any) -> Any:
    if isinstance(v, str) and PLACEHOLDER in v:
        raise ValueError("unfilled template placeholder")
    return v


def _number_input(v: Any) -> Any:
    # Friendlier messages than pydantic's for the mistakes people make.
    if isinstance(v, str):
        if PLACEHOLDER in v:
            raise ValueError("unfilled template placeholder")
        raise ValueError(f"expected a number, got text {v[:40]!r}")
    if isinstance(v, bool):
        raise ValueError(f"expected a number, got {str(v).lower()}")
    return v


def _not_huge(v: float) -> float:
    if abs(v) > MAX_ABS_VALUE:
        raise ValueError(f"{v:g} is implausibly large (limit {MAX_ABS_VALUE:g})")
    return v


#: A finite float of sane magnitude; ints are accepted, strings and bools are not.
FiniteFloat = Annotated[
    float,
    BeforeValidator(_number_input),
    Field(strict=True, allow_inf_nan=False),
    AfterValidator(_not_huge),
]

Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000),
                 AfterValidator(_reject_placeholder)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=2_000),
                      AfterValidator(_reject_placeholder)]
#: Identifiers: study ids (= file stems), arm/outcome/quote/source ids, registry keys.
Ident = Annotated[str, BeforeValidator(_reject_placeholder),
                  StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]{0,79}$")]


def _id_from_int(v: Any) -> Any:
    # PMIDs are digits; YAML reads an unquoted 21895621 as an int.
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return v


PMID = Annotated[str, BeforeValidator(_id_from_int), StringConstraints(pattern=r"^[0-9]{1,9}$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)


# ---------------------------------------------------------------------------
# numbers with provenance


class Derived(_Frozen):
    """How a number that is not printed in a quote was obtained."""

    method: DerivationMethod
    formula: Text
    inputs: FrozenMap[str, "Number"] = Field(default_factory=dict)
    quote: Ident | None = None
    reference: ShortText | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_inputs(cls, data: Any) -> Any:
        # Inputs may be written bare (``inputs: {events: 14, total: 27}``); a
        # bare input inherits the derivation's quote, so it is still checked
        # against quoted text. Without a quote it fails as a bare number.
        if isinstance(data, dict) and isinstance(data.get("inputs"), dict):
            q = data.get("quote")
            inputs = {}
            for k, v in data["inputs"].items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and q is not None:
                    v = {"value": v, "quote": q}
                inputs[k] = v
            data = {**data, "inputs": inputs}
        return data


class Number(_Frozen):
    """A number with its provenance: quoted (``quote``) or ``derived``.

    ``from_figure: true`` marks a value read off a figure; its quote then
    describes the figure and the literal-text check is skipped.
    """

    value: FiniteFloat
    quote: Ident | None = None
    derived: Derived | None = None
    from_figure: StrictBool = False
    note: ShortText | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_bare(cls, data: Any) -> Any:
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            raise ValueError(
                f"a bare number ({data!r}) has no provenance: write "
                f"{{value: {data!r}, quote: <quote id>}} or {{value: {data!r}, derived: {{...}}}}")
        if isinstance(data, str) and PLACEHOLDER in data:
            raise ValueError("unfilled template placeholder")
        return data

    @model_validator(mode="after")
    def _one_provenance(self) -> "Number":
        if (self.quote is None) == (self.derived is None):
            raise ValueError("a number needs exactly one of 'quote' or 'derived'")
        return self

    @property
    def is_integer(self) -> bool:
        """Whether the value is a whole number (a count must be)."""
        return float(self.value).is_integer()


Derived.model_rebuild()


def _count(n: Number) -> Number:
    if not n.is_integer or n.value < 1:
        raise ValueError(f"a sample size must be a whole number >= 1, got {n.value:g}")
    return n


def _count0(n: Number) -> Number:
    if not n.is_integer or n.value < 0:
        raise ValueError(f"a count must be a whole number >= 0, got {n.value:g}")
    return n


def _positive(n: Number) -> Number:
    if not n.value > 0:
        raise ValueError(f"must be > 0, got {n.value:g}")
    return n


def _percent(n: Number) -> Number:
    if not 0 <= n.value <= 100:
        raise ValueError(f"a percentage must be between 0 and 100, got {n.value:g}")
    return n


def _pvalue(n: Number) -> Number:
    if not 0 < n.value <= 1:
        raise ValueError(f"a p-value must be in (0, 1], got {n.value:g}")
    return n


Count = Annotated[Number, AfterValidator(_count)]
Count0 = Annotated[Number, AfterValidator(_count0)]
PositiveNumber = Annotated[Number, AfterValidator(_positive)]
Percent = Annotated[Number, AfterValidator(_percent)]
PValue = Annotated[Number, AfterValidator(_pvalue)]


def _level(v: float) -> float:
    if not 0 < v < 1:
        raise ValueError(f"ci_level is a proportion in (0, 1) such as 0.95, got {v:g}")
    return v


Level = Annotated[FiniteFloat, AfterValidator(_level)]
Weeks = Annotated[FiniteFloat, Field(gt=0, le=2000)]


# ---------------------------------------------------------------------------
# sources and quotes


class Source(_Frozen):
    citation: Text
    url: ShortText | None = None
    kind: SourceKind
    secondary: StrictBool

    @model_validator(mode="after")
    def _kind_matches(self) -> "Source":
        if self.kind in SECONDARY_KINDS and not self.secondary:
            raise FieldIssues([(("secondary",), f"kind '{self.kind}' is a secondary source: "
                                                "set secondary: true")])
        if self.kind in PRIMARY_KINDS and self.secondary:
            raise FieldIssues([(("secondary",), f"kind '{self.kind}' is a primary source: "
                                                "set secondary: false")])
        return self


class Quote(_Frozen):
    source: Ident
    location: ShortText
    text: Text
    note: ShortText | None = None


# ---------------------------------------------------------------------------
# summary statistics (shared by baseline and per-arm outcome data)


#: The statistics a summary may carry besides ``n``.
SUMMARY_STATS = ("mean", "sd", "se", "ci_lb", "ci_ub", "median", "q1", "q3", "min", "max")


class _Summary(_Frozen):
    n: Count | None = None
    mean: Number | None = None
    sd: PositiveNumber | None = None
    se: PositiveNumber | None = None
    ci_lb: Number | None = None
    ci_ub: Number | None = None
    ci_level: Level = 0.95
    median: Number | None = None
    q1: Number | None = None
    q3: Number | None = None
    min: Number | None = None
    max: Number | None = None

    def _check_summary(self, iss: _Issues) -> None:
        v = {k: (getattr(self, k).value if getattr(self, k) is not None else None)
             for k in SUMMARY_STATS}
        for a, b in (("ci_lb", "ci_ub"), ("q1", "q3"), ("min", "max")):
            if (v[a] is None) != (v[b] is None):
                missing = b if v[b] is None else a
                iss.add((missing,), f"'{a}' and '{b}' go together; '{missing}' is missing")
        if v["ci_lb"] is not None and v["ci_ub"] is not None:
            if v["ci_lb"] >= v["ci_ub"]:
                iss.add(("ci_lb",), f"CI lower bound {v['ci_lb']:g} is not below the upper "
                                    f"bound {v['ci_ub']:g}")
            elif v["mean"] is not None and not v["ci_lb"] <= v["mean"] <= v["ci_ub"]:
                iss.add(("mean",), f"the CI [{v['ci_lb']:g}, {v['ci_ub']:g}] does not contain "
                                   f"the mean {v['mean']:g}")
        order = [(k, v[k]) for k in ("min", "q1", "median", "q3", "max") if v[k] is not None]
        for (ka, a), (kb, b) in zip(order, order[1:]):
            if a > b:
                iss.add((kb,), f"{kb} {b:g} is below {ka} {a:g} (expected min <= q1 <= median "
                               f"<= q3 <= max)")
        if "ci_level" in self.model_fields_set and v["ci_lb"] is None:
            iss.add(("ci_level",), "ci_level given without ci_lb/ci_ub")


class Baseline(_Summary):
    """Baseline severity score of one arm (or ``arm: all``)."""

    scale: OutcomeKind
    arm: Ident

    @model_validator(mode="after")
    def _check(self) -> "Baseline":
        iss = _Issues()
        if all(getattr(self, k) is None for k in SUMMARY_STATS):
            iss.add((), "a baseline entry needs at least a mean or a median")
        self._check_summary(iss)
        iss.raise_if_any()
        return self


class ArmOutcome(_Summary):
    """One arm's result for one outcome, in whatever form the paper prints.

    Continuous forms: mean with sd | se | ci_lb+ci_ub; median with q1+q3
    and/or min+max; a mean alone (usable with a between-group exact p).
    Binary form: events (and/or percent) with n.
    """

    events: Count0 | None = None
    percent: Percent | None = None

    @model_validator(mode="after")
    def _check(self) -> "ArmOutcome":
        iss = _Issues()
        stats_given = [k for k in SUMMARY_STATS if getattr(self, k) is not None]
        binary = self.events is not None or self.percent is not None
        if not stats_given and not binary and self.n is None:
            iss.add((), "no data: give n with mean/sd (or se, ci_lb/ci_ub, median with q1/q3 "
                        "or min/max), or events/percent with n")
        if binary and stats_given:
            iss.add(("events" if self.events is not None else "percent",),
                    f"binary data (events/percent) mixed with continuous data "
                    f"({', '.join(stats_given)})")
        self._check_summary(iss)
        if self.events is not None and self.n is not None and self.events.value > self.n.value:
            iss.add(("events",), f"events ({self.events.value:g}) > n ({self.n.value:g})")
        if self.percent is not None and self.events is not None and self.n is not None:
            implied = 100 * self.events.value / self.n.value
            # printed percentages are rounded (or truncated): allow 1 point
            if abs(implied - self.percent.value) > 1.0:
                iss.add(("percent",), f"percent {self.percent.value:g} does not match events/n "
                                      f"= {self.events.value:g}/{self.n.value:g} "
                                      f"= {implied:.1f}%")
        iss.raise_if_any()
        return self


class Comparison(_Frozen):
    """The two arms a between-group result compares (needed with > 2 arms)."""

    intervention: Ident
    control: Ident


class Between(_Frozen):
    """A between-group effect as the paper reports it."""

    measure: Measure
    direction: Direction | None = None
    comparison: Comparison | None = None
    estimate: Number | None = None
    ci_lb: Number | None = None
    ci_ub: Number | None = None
    ci_level: Level = 0.95
    se: PositiveNumber | None = None
    p: PValue | None = None
    p_qualifier: PQualifier | None = None

    @model_validator(mode="after")
    def _check(self) -> "Between":
        iss = _Issues()
        est = self.estimate.value if self.estimate is not None else None
        lb = self.ci_lb.value if self.ci_lb is not None else None
        ub = self.ci_ub.value if self.ci_ub is not None else None
        if est is None and lb is None and self.p is None and self.p_qualifier is None:
            iss.add((), "a between-group result needs an estimate, a CI, or a p-value")
        if (lb is None) != (ub is None):
            missing = "ci_ub" if ub is None else "ci_lb"
            iss.add((missing,), f"'ci_lb' and 'ci_ub' go together; '{missing}' is missing")
        if (est is not None or lb is not None) and self.direction is None:
            iss.add(("direction",), "give the direction of the printed estimate "
                                    "(probiotic_minus_control or control_minus_probiotic)")
        if self.measure in RATIO_MEASURES:
            for name, val in (("estimate", est), ("ci_lb", lb), ("ci_ub", ub)):
                if val is not None and val <= 0:
                    iss.add((name,), f"a {self.measure} must be > 0 (on the ratio scale), "
                                     f"got {val:g}")
        if lb is not None and ub is not None:
            if lb >= ub:
                iss.add(("ci_lb",), f"CI lower bound {lb:g} is not below the upper bound {ub:g}")
            elif est is not None and not lb <= est <= ub:
                iss.add(("estimate",), f"the CI [{lb:g}, {ub:g}] does not contain the "
                                       f"estimate {est:g}")
        if self.p is not None and self.p_qualifier is None:
            iss.add(("p_qualifier",), "say whether the p-value is exact ('=') or a bound "
                                      "('<', '<=', '>')")
        if self.p_qualifier == "NS" and self.p is not None:
            iss.add(("p_qualifier",), "'NS' means no p-value was printed; use '>' with p")
        if self.p_qualifier in ("=", "<", "<=", ">") and self.p is None:
            iss.add(("p",), f"p_qualifier '{self.p_qualifier}' needs p")
        if "ci_level" in self.model_fields_set and lb is None:
            iss.add(("ci_level",), "ci_level given without ci_lb/ci_ub")
        iss.raise_if_any()
        return self


class Outcome(_Frozen):
    """One outcome at one time point, as reported."""

    id: Ident
    outcome: OutcomeKind
    outcome_label: ShortText | None = None
    timepoint_weeks: Annotated[FiniteFloat, Field(ge=0, le=2000)] | None = None
    timepoint_label: ShortText | None = None
    end_of_treatment: StrictBool | None = None
    scale: Scale
    per_arm: FrozenMap[Ident, ArmOutcome] | None = None
    between: Between | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _check(self) -> "Outcome":
        iss = _Issues()
        if not self.per_arm and self.between is None:
            iss.add((), "an outcome needs per_arm data or a between-group result")
        if self.outcome == "other" and self.outcome_label is None:
            iss.add(("outcome_label",), "outcome 'other' needs an outcome_label")
        for arm, d in (self.per_arm or {}).items():
            binary = d.events is not None or d.percent is not None
            continuous = d.mean is not None or d.median is not None
            if self.scale == "events" and not binary and continuous:
                iss.add(("per_arm", arm), "scale is 'events' but this arm has continuous data")
            if self.scale != "events" and binary:
                iss.add(("per_arm", arm), f"scale is '{self.scale}' but this arm has "
                                          "events/percent (use scale: events)")
        if self.between is not None:
            if self.scale == "events" and self.between.measure in CONTINUOUS_MEASURES:
                iss.add(("between", "measure"), f"scale is 'events' but measure is "
                                                f"{self.between.measure}")
            if self.scale != "events" and self.between.measure in BINARY_MEASURES:
                iss.add(("between", "measure"), f"scale is '{self.scale}' but measure is "
                                                f"{self.between.measure} (use scale: events)")
        iss.raise_if_any()
        return self


# ---------------------------------------------------------------------------
# arms


class StrainRef(_Frozen):
    as_written: Text
    #: key in studies/strains.yaml; null when the paper does not name the
    #: organism precisely enough (e.g. "7-strain probiotic")
    registry: Ident | None = None
    note: ShortText | None = None


class Intervention(_Frozen):
    strains: Annotated[tuple[StrainRef, ...], Field(min_length=1)]
    #: number of organisms in the product, when not every one is listed
    n_strains: Annotated[int, Field(strict=True, ge=1, le=100)] | None = None
    dose_cfu_per_day: PositiveNumber | None = None
    dose_as_written: Text | None = None
    viability: Viability = "viable"
    vehicle: ShortText | None = None
    duration_weeks: Weeks | None = None
    co_interventions: tuple[ShortText, ...] = ()
    synbiotic: StrictBool = False
    timing: Timing | None = None

    @model_validator(mode="after")
    def _check(self) -> "Intervention":
        iss = _Issues()
        if self.n_strains is not None and self.n_strains < len(self.strains):
            iss.add(("n_strains",), f"n_strains ({self.n_strains}) is smaller than the "
                                    f"{len(self.strains)} strains listed")
        iss.raise_if_any()
        return self

    @property
    def strain_count(self) -> int:
        """Organisms in the product: ``n_strains`` when given, else the strains listed."""
        return self.n_strains if self.n_strains is not None else len(self.strains)


class Arm(_Frozen):
    id: Ident
    role: Role
    name: ShortText
    n_randomised: Count | None = None
    n_analysed: Count | None = None
    intervention: Intervention | None = None
    comparator: Comparator | None = None

    @model_validator(mode="after")
    def _check(self) -> "Arm":
        iss = _Issues()
        if (self.n_randomised is not None and self.n_analysed is not None
                and self.n_analysed.value > self.n_randomised.value):
            iss.add(("n_analysed",), f"n analysed ({self.n_analysed.value:g}) > n randomised "
                                     f"({self.n_randomised.value:g})")
        if self.role == "intervention":
            if self.intervention is None:
                iss.add(("intervention",), "an intervention arm needs 'intervention' "
                                           "(strains, dose, ...)")
            if self.comparator is not None:
                iss.add(("comparator",), "'comparator' belongs on the control arm")
        else:
            if self.intervention is not None:
                iss.add(("intervention",), "a control arm has no 'intervention'; describe it "
                                           "with 'name' and 'comparator'")
            if self.comparator is None:
                iss.add(("comparator",), "a control arm needs 'comparator' (placebo, prebiotic, "
                                         "none, usual_care or active)")
        iss.raise_if_any()
        return self


# ---------------------------------------------------------------------------
# population, adverse events, risk of bias, conflicts


class Population(_Frozen):
    age_group: AgeGroup | None = None
    age_range: ShortText | None = None
    diagnosis: ShortText | None = None
    severity_stated: ShortText | None = None
    severity_categories: tuple[Severity, ...] = ()
    family_risk: FamilyRisk | None = None
    baseline: tuple[Baseline, ...] | None = None


class EventCount(_Frozen):
    events: Count0
    n: Count | None = None

    @model_validator(mode="after")
    def _check(self) -> "EventCount":
        if self.n is not None and self.events.value > self.n.value:
            raise FieldIssues([(("events",), f"events ({self.events.value:g}) > n "
                                             f"({self.n.value:g})")])
        return self


class AdverseEvent(_Frozen):
    description: ShortText
    per_arm: FrozenMap[Ident, EventCount] | None = None
    statement: Ident | None = None  # a quote id, when only words are given

    @model_validator(mode="after")
    def _check(self) -> "AdverseEvent":
        if not self.per_arm and self.statement is None:
            raise ValueError("an adverse-event entry needs per_arm counts or a statement quote")
        return self


class RobJudgement(_Frozen):
    judgement: Judgement
    note: Text | None = None


class RoB(_Frozen):
    tool: RobTool = "RoB2"
    source: ShortText
    domains: FrozenMap[str, RobJudgement] = Field(default_factory=dict)
    overall: RobJudgement | None = None

    @model_validator(mode="after")
    def _check(self) -> "RoB":
        iss = _Issues()
        allowed = ROB2_DOMAINS if self.tool == "RoB2" else ROB1_DOMAINS
        for key, j in self.domains.items():
            if key not in allowed:
                iss.add(("domains", key), f"unknown {self.tool} domain; expected one of "
                                          f"{', '.join(allowed)}")
            if self.tool == "RoB2" and j.judgement == "unclear":
                iss.add(("domains", key, "judgement"),
                        "'unclear' is a RoB 1 judgement; RoB 2 uses some_concerns")
        iss.raise_if_any()
        return self


def _scalar_to_text(v: Any) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return repr(v)
    return v


class ConflictValue(_Frozen):
    value: Annotated[Text, BeforeValidator(_scalar_to_text)]
    quote: Ident | None = None
    note: ShortText | None = None


class Conflict(_Frozen):
    field: ShortText
    values: Annotated[tuple[ConflictValue, ...], Field(min_length=2)]
    chosen: Annotated[Text, BeforeValidator(_scalar_to_text)]
    reason: Text


class DirectionOfEffect(_Frozen):
    """Which way a trial's result points on one outcome, as its quote shows.

    For synthesis without meta-analysis (vote counting on the direction of
    effect, Cochrane Handbook 12.2.2.1): recorded only where a quote supports
    it (e.g. arm means 23.6 vs 23.1, or "significantly lower in the probiotic
    group"); the direction of the point estimate counts, significant or not.
    """

    outcome: OutcomeKind
    favours: Literal["probiotic", "control", "neither"]
    quote: Ident
    basis: Text


class TrialTotal(_Frozen):
    """A trial's total sample size, for trials that do not report n per arm.

    Used only to count participants (availability of evidence, GRADE
    imprecision, the square-root-of-n weights of the Stouffer combination),
    never to compute a variance: a total cannot be split by arm. ``spans``
    says which arms it counts: ``listed_arms`` (exactly the arms in ``arms``)
    or ``more_arms`` (it also counts arms this file does not list, e.g. a
    vitamin D3 arm); a ``more_arms`` total is recorded but not used, since
    the participants of the listed arms cannot be read from it.
    """

    n_randomised: Count | None = None
    n_analysed: Count | None = None
    spans: Literal["listed_arms", "more_arms"]
    note: Text | None = None

    @model_validator(mode="after")
    def _check(self) -> "TrialTotal":
        if self.n_randomised is None and self.n_analysed is None:
            raise ValueError("give n_randomised, n_analysed or both")
        if (self.n_randomised is not None and self.n_analysed is not None
                and self.n_analysed.value > self.n_randomised.value):
            raise ValueError(f"n_analysed ({self.n_analysed.value:g}) exceeds n_randomised "
                             f"({self.n_randomised.value:g})")
        return self


# ---------------------------------------------------------------------------
# the study


class Study(_Frozen):
    """One trial's extraction file."""

    schema_version: Literal[1]
    id: Ident
    citation: Text
    doi: ShortText | None = None
    pmid: PMID | None = None
    year: Annotated[int, Field(strict=True, ge=1900, le=2100)]
    country: ShortText | None = None
    design: Design = "parallel"
    blinding: ShortText | None = None
    purpose: Purpose
    funding: ShortText | None = None
    registration: ShortText | None = None
    status: Status
    excluded: Text | None = None
    awaiting_data: Text | None = None
    same_cohort_as: Ident | None = None
    flags: tuple[Flag, ...] = ()
    sources: FrozenMap[Ident, Source]
    quotes: FrozenMap[Ident, Quote]
    population: Population | None = None
    arms: tuple[Arm, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    adverse_events: tuple[AdverseEvent, ...] | None = None
    rob: RoB | None = None
    conflicts: tuple[Conflict, ...] = ()
    direction_of_effect: tuple[DirectionOfEffect, ...] = ()
    trial_total: TrialTotal | None = None

    @model_validator(mode="after")
    def _check(self) -> "Study":
        iss = _Issues()
        self._check_trial_total(iss)
        for i, d in enumerate(self.direction_of_effect):
            if d.quote not in self.quotes:
                iss.add(("direction_of_effect", i, "quote"), f"unknown quote '{d.quote}'")
        self._check_status(iss)
        arm_ids = self._check_arms(iss)
        self._check_outcomes(iss, arm_ids)
        self._check_quotes(iss)
        self._check_flags(iss)
        self._check_arm_sizes(iss)
        iss.raise_if_any()
        return self

    # -- pieces of the study validator ------------------------------------

    def _check_trial_total(self, iss: _Issues) -> None:
        # A total over the listed arms must agree with their n where every arm has one.
        tot = self.trial_total
        if tot is None or tot.spans != "listed_arms":
            return
        for attr in ("n_randomised", "n_analysed"):
            given = getattr(tot, attr)
            vals = [getattr(a, attr) for a in self.arms]
            if given is not None and vals and all(v is not None for v in vals):
                s = sum(v.value for v in vals)
                if s != given.value:
                    iss.add(("trial_total", attr), f"{given.value:g} differs from the sum of "
                                                   f"the arms' {attr} ({s:g})")

    def _check_status(self, iss: _Issues) -> None:
        if self.status == "excluded" and not self.excluded:
            iss.add(("excluded",), "an excluded study needs the reason in 'excluded'")
        if self.status == "included" and self.excluded:
            iss.add(("excluded",), "status is 'included' but 'excluded' gives a reason; "
                                   "set status: excluded or excluded: null")
        if self.status == "included":
            roles = {a.role for a in self.arms}
            if "intervention" not in roles or "control" not in roles:
                iss.add(("arms",), "an included study needs an intervention arm and a control arm")
            if not self.outcomes:
                iss.add(("outcomes",), "an included study needs at least one outcome")
        if self.same_cohort_as is not None and self.same_cohort_as == self.id:
            iss.add(("same_cohort_as",), "a study cannot be a follow-up of itself")

    def _check_arms(self, iss: _Issues) -> dict[str, str]:
        arm_ids: dict[str, str] = {}
        for i, arm in enumerate(self.arms):
            if arm.id in arm_ids:
                iss.add(("arms", i, "id"), f"duplicate arm id '{arm.id}'")
            arm_ids[arm.id] = arm.role
        if self.population is not None:
            for i, b in enumerate(self.population.baseline or ()):
                if b.arm != "all" and b.arm not in arm_ids:
                    iss.add(("population", "baseline", i, "arm"), _unknown_arm(b.arm, arm_ids))
        for i, ae in enumerate(self.adverse_events or ()):
            for key in ae.per_arm or {}:
                if key not in arm_ids:
                    iss.add(("adverse_events", i, "per_arm", key), _unknown_arm(key, arm_ids))
        return arm_ids

    def _check_outcomes(self, iss: _Issues, arm_ids: dict[str, str]) -> None:
        seen: set[str] = set()
        for i, out in enumerate(self.outcomes):
            if out.id in seen:
                iss.add(("outcomes", i, "id"), f"duplicate outcome id '{out.id}'")
            seen.add(out.id)
            for key in out.per_arm or {}:
                if key not in arm_ids:
                    iss.add(("outcomes", i, "per_arm", key), _unknown_arm(key, arm_ids))
            b = out.between
            if b is None:
                continue
            if b.comparison is not None:
                for role, key in (("intervention", b.comparison.intervention),
                                  ("control", b.comparison.control)):
                    path = ("outcomes", i, "between", "comparison", role)
                    if key not in arm_ids:
                        iss.add(path, _unknown_arm(key, arm_ids))
                    elif arm_ids[key] != role:
                        iss.add(path, f"arm '{key}' has role '{arm_ids[key]}', not '{role}'")
            else:
                roles = list(arm_ids.values())
                if roles.count("intervention") > 1 or roles.count("control") > 1:
                    iss.add(("outcomes", i, "between"),
                            "with more than two arms, say which arms the result compares: "
                            "comparison: {intervention: <arm id>, control: <arm id>}")

    def _check_arm_sizes(self, iss: _Issues) -> None:
        # An arm cannot analyse (or count events among) more people than were
        # randomised to it; a larger n is a transcription error, and it would
        # inflate the trial's weight.
        randomised = {a.id: a.n_randomised.value for a in self.arms if a.n_randomised is not None}

        def check(path, arm, n, what):
            if n is not None and arm in randomised and n.value > randomised[arm]:
                iss.add(path, f"{what} ({n.value:g}) > n randomised to arm '{arm}' "
                              f"({randomised[arm]:g})")

        for i, out in enumerate(self.outcomes):
            for arm, d in (out.per_arm or {}).items():
                check(("outcomes", i, "per_arm", arm, "n"), arm, d.n, "n analysed")
        for i, ae in enumerate(self.adverse_events or ()):
            for arm, d in (ae.per_arm or {}).items():
                check(("adverse_events", i, "per_arm", arm, "n"), arm, d.n, "n")
        if self.population is not None:
            for i, b in enumerate(self.population.baseline or ()):
                check(("population", "baseline", i, "n"), b.arm, b.n, "n at baseline")

    def _check_quotes(self, iss: _Issues) -> None:
        for qid, q in self.quotes.items():
            if q.source not in self.sources:
                iss.add(("quotes", qid, "source"), _unknown(q.source, self.sources, "source"))
        for path, qid in iter_quote_refs(self):
            if qid not in self.quotes:
                iss.add(path, _unknown(qid, self.quotes, "quote"))

    def _check_flags(self, iss: _Issues) -> None:
        flags = set(self.flags)
        if len(flags) != len(self.flags):
            iss.add(("flags",), "duplicate flag")
        need: dict[str, str] = {}
        if self.design == "crossover":
            need["crossover"] = "design is crossover"
        for path, num in iter_numbers(self):
            if num.from_figure:
                need.setdefault("from_figure", f"{_dotted(path)} is read from a figure")
            if num.derived is not None and path and path[-1] in ("n", "n_randomised", "n_analysed"):
                need.setdefault("derived_n", f"{_dotted(path)} is derived")
            if path and path[0] == "outcomes" and num.quote in self.quotes:
                src = self.sources.get(self.quotes[num.quote].source)
                if src is not None and src.secondary:
                    need.setdefault("secondary_source",
                                    f"{_dotted(path)} comes from a secondary source")
                if src is not None and src.kind == "news report":
                    need.setdefault("news_report", f"{_dotted(path)} comes from a news report")
        for arm in self.arms:
            if arm.intervention is not None and arm.intervention.viability == "heat-killed":
                need.setdefault("heat_killed", f"arm '{arm.id}' is heat-killed")
            if arm.comparator in ("prebiotic", "active"):
                need.setdefault("active_comparator", f"arm '{arm.id}' is an active comparator")
        for flag, why in need.items():
            if flag not in flags:
                iss.add(("flags",), f"add flag '{flag}' ({why})")


def _unknown(key: str, known, what: str) -> str:
    names = ", ".join(sorted(known)) or "none defined"
    return f"unknown {what} '{key}' (defined: {names})"


def _unknown_arm(key: str, arm_ids) -> str:
    return _unknown(key, arm_ids, "arm")


# ---------------------------------------------------------------------------
# traversal helpers (used by the validators above and by load.py)


def iter_models(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Yield ``(path, value)`` for every model, tuple item and mapping value,
    depth first, with paths in the same keys as the YAML file.

    Parameters
    ----------
    obj : Any
        A model (usually a :class:`Study`), tuple or mapping.
    path : tuple
        The path of ``obj`` itself.

    Yields
    ------
    path : tuple of str or int
    value : Any
    """
    yield path, obj
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            val = getattr(obj, name)
            if val is not None:
                yield from iter_models(val, path + (name,))
    elif isinstance(obj, tuple):
        for i, val in enumerate(obj):
            yield from iter_models(val, path + (i,))
    elif isinstance(obj, Mapping):
        for key, val in obj.items():
            yield from iter_models(val, path + (key,))


def iter_numbers(obj: Any) -> Iterator[tuple[tuple, Number]]:
    """Every :class:`Number` inside ``obj`` (including derivation inputs).

    Parameters
    ----------
    obj : Any
        A model, tuple or mapping.

    Yields
    ------
    path : tuple of str or int
    number : Number
    """
    for path, val in iter_models(obj):
        if isinstance(val, Number):
            yield path, val


def iter_quote_refs(study: Study) -> Iterator[tuple[tuple, str]]:
    """Every reference to a quote id, with the path of the referring key.

    Parameters
    ----------
    study : Study

    Yields
    ------
    path : tuple of str or int
        Ends with ``"quote"`` or ``"statement"``.
    quote_id : str
    """
    for path, val in iter_models(study):
        if isinstance(val, (Number, Derived, ConflictValue)) and val.quote is not None:
            yield path + ("quote",), val.quote
        elif isinstance(val, AdverseEvent) and val.statement is not None:
            yield path + ("statement",), val.statement


# ---------------------------------------------------------------------------
# the strain registry


class StrainEntry(_Frozen):
    """One organism in the registry, under its current (2020) name."""

    genus: ShortText
    species: ShortText | None = None          # null for a genus-level entry
    subspecies: ShortText | None = None       # e.g. lactis in B. animalis subsp. lactis
    strain: ShortText | None = None           # null for a species-level entry
    former_genus: ShortText | None = None     # e.g. Lactobacillus (Zheng et al. 2020)
    former_species: ShortText | None = None   # e.g. lactis for "B. lactis"
    #: another key naming the same organism (e.g. a strain printed under an
    #: older species name); grouping resolves to that entry
    same_as: Ident | None = None
    aliases: tuple[ShortText, ...] = ()
    note: Text | None = None

    @property
    def species_name(self) -> str:
        """``Genus species`` (current names); the genus alone for genus-level entries."""
        return f"{self.genus} {self.species}" if self.species else self.genus


#: Letters that NFKD does not decompose (Polish L-stroke in "ŁOCK 0900").
_TRANSLITERATE = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss"})


def normalise_name(name: str) -> str:
    """Case-, accent-, space- and punctuation-insensitive form of a name.

    Parameters
    ----------
    name : str
        A strain name or alias as written.

    Returns
    -------
    str
        Lower-case letters and digits only (the key of alias lookups).

    Examples
    --------
    >>> normalise_name("L. rhamnosus GG (ATCC 53103)")
    'lrhamnosusggatcc53103'
    >>> normalise_name("ŁOCK 0900") == normalise_name("LOCK-0900")
    True
    """
    s = unicodedata.normalize("NFKD", str(name).translate(_TRANSLITERATE))
    s = "".join(ch for ch in s if not unicodedata.combining(ch))
    return re.sub(r"[\W_]+", "", s.casefold())



class StrainRegistry(_Frozen):
    schema_version: Literal[1] = 1
    strains: FrozenMap[Ident, StrainEntry]

    def resolve(self, key: str) -> str:
        """The canonical key for ``key`` (follows ``same_as``)."""
        entry = self.strains.get(key)
        return entry.same_as if entry is not None and entry.same_as else key

    @model_validator(mode="after")
    def _check(self) -> "StrainRegistry":
        iss = _Issues()
        for key, entry in self.strains.items():
            target = self.strains.get(entry.same_as) if entry.same_as else None
            if entry.same_as is not None and target is None:
                iss.add(("strains", key, "same_as"),
                        _unknown(entry.same_as, self.strains, "strain"))
            elif target is not None and (target.same_as is not None or entry.same_as == key):
                iss.add(("strains", key, "same_as"), "same_as must name an entry that has no "
                                                     "same_as itself")
        seen: dict[str, str] = {}
        for key, entry in self.strains.items():
            names = [(("strains", key), key)] + [(("strains", key, "aliases", i), a)
                                                 for i, a in enumerate(entry.aliases)]
            for path, name in names:
                norm = normalise_name(name)
                if not norm:
                    iss.add(path, f"alias {name!r} has no letters or digits")
                    continue
                other = seen.get(norm)
                if other is not None and other != key:
                    iss.add(path, f"alias {name!r} also names '{other}'")
                seen[norm] = key
        iss.raise_if_any()
        return self
