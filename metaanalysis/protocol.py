"""Analysis protocols (``protocols/*.yaml``): pydantic models and loader.

A protocol pre-specifies one analysis: the question (PICO), which studies are
eligible, which outcome and time point each contributes, the effect measure
and model, how severity is assigned, the strata, the meta-regression, the
sensitivity analyses and the claims to test. ``protocols/README.md``
documents every field.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from metaanalysis.load import Problem, read_yaml_with_lines, validation_problems


class _F(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Method = Literal["FE", "DL", "HE", "SJ", "PM", "EB", "ML", "REML", "MH", "PETO"]
Test = Literal["z", "knha", "adhoc"]
Severity = Literal["mild", "moderate", "severe"]
Finding = Literal["benefit", "no_effect", "harm", "not_robust", "heterogeneity",
                  "effect_modification", "benefit_in_strata", "harms"]


class Question(_F):
    population: str
    intervention: str
    comparator: str
    outcome: str


class Eligibility(_F):
    purpose: Literal["treatment", "prevention"]
    designs: tuple[Literal["parallel", "crossover", "cluster", "unclear"], ...] = ("parallel",)
    age_groups: tuple[str, ...] | None = None
    comparators: tuple[str, ...] | None = None
    exclude_flags: tuple[str, ...] = ()


class OutcomeRule(_F):
    kinds: Annotated[tuple[str, ...], Field(min_length=1)]
    label: str
    unit: str = ""
    timepoint: Literal["end_of_treatment", "nearest"] = "end_of_treatment"
    target_weeks: float | None = None
    scales: tuple[Literal["final", "change", "events"], ...] = ("final", "change")
    lower_is_better: bool = True
    # study id -> outcome id, where the time-point rule alone would be ambiguous
    overrides: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _target(self):
        if self.timepoint == "nearest" and self.target_weeks is None:
            raise ValueError("timepoint 'nearest' needs target_weeks")
        return self


class Model(_F):
    measure: Literal["MD", "SMD", "RR", "OR", "RD"]
    method: Method = "REML"
    test: Test = "knha"
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    prediction_interval: bool = True
    pi_df: Literal["metafor", "k-1", "k-2", "z"] = "metafor"
    change_score_correlation: Annotated[float, Field(ge=-1, le=1)] = 0.5
    multi_arm: Literal["split_control"] = "split_control"


class Band(_F):
    name: Severity
    lower: float
    upper: float


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


class Stratum(_F):
    name: str
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
    leave_one_out: bool = True
    exclude_high_rob: bool = True
    methods: tuple[Method, ...] = ("DL", "PM")
    tests: tuple[Test, ...] = ("z",)
    correlations: tuple[float, ...] = (0.2, 0.5, 0.8)
    fixed_effect: bool = True
    exclude_flags: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # trials with means but no SDs, the SD borrowed from the other trials (Furukawa 2006)
    impute_missing_sd: bool = False
    # the same outcome as a log ratio of means (metafor ROM), never pooled with MDs
    ratio_of_means: bool = False
    # label -> trials the main analysis leaves out by design or flag, added back
    add_trials: dict[str, "AddTrials"] = Field(default_factory=dict)


class AddTrials(_F):
    """Designs and flags that a sensitivity analysis lets in (e.g. doubtful randomisation)."""

    designs: tuple[Literal["parallel", "crossover", "cluster", "unclear"], ...] = ()
    flags: tuple[str, ...] = ()


class Swim(_F):
    """Synthesis without meta-analysis over every eligible trial (Handbook ch. 12)."""

    # outcome kinds besides the protocol's whose quoted direction also counts
    # (e.g. a symptom-load score that contains the total SCORAD)
    direction_kinds: tuple[str, ...] = ()


class Target(_F):
    subset: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class Claim(_F):
    id: str
    wording: str
    source: str
    finding: Finding
    target: Target = Target()
    operational: str
    threshold: float | None = None
    modifier: str | None = None  # a stratum name, for effect modification
    expected_benefit_in: tuple[str, ...] = ()
    expected_no_effect_in: tuple[str, ...] = ()
    direction_a_priori: bool = True
    language: str | None = None      # see OutOfScope: original language, project's translation
    translation: str | None = None

    @model_validator(mode="after")
    def _mod(self):
        if self.finding == "effect_modification" and not self.modifier:
            raise ValueError("an effect-modification claim needs 'modifier' (a stratum name)")
        return self


class OutOfScope(_F):
    id: str
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


class Published(_F):
    """A published meta-analysis to set beside ours (issue 10, item 5).

    Every number is in ``quote`` (checked), read from ``source``.
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

    @model_validator(mode="after")
    def _quoted(self):
        text = self.quote.replace("\u2212", "-").replace("\u2013", "-")
        for name in ("estimate", "ci_lb", "ci_ub", "k", "n"):
            v = getattr(self, name)
            if v is None:
                continue
            forms = {f"{abs(v):g}", f"{abs(v):.2f}", f"{abs(v):,}" if float(v).is_integer() else ""}
            if name in ("k", "n") and float(v).is_integer():
                forms.add(_number_word(int(v)))
            if not any(f and f.lower() in text.lower() for f in forms):
                raise ValueError(f"published '{self.id}': {name} {v:g} does not appear in its quote")
        return self


class Protocol(_F):
    schema_version: Literal[1]
    id: str
    title: str
    question: Question
    eligibility: Eligibility
    outcome: OutcomeRule
    model: Model
    severity: SeverityRule | None = None
    strata: tuple[Stratum, ...] = ()
    meta_regression: tuple[MetaRegression, ...] = ()
    sensitivity: Sensitivity = Sensitivity()
    small_study_min_k: int = 10
    mcid: float | None = None
    mcid_source: str | None = None
    min_k_per_stratum: int = 2
    swim: Swim | None = None
    published: tuple[Published, ...] = ()
    claims: tuple[Claim, ...] = ()
    out_of_scope: tuple[OutOfScope, ...] = ()

    @model_validator(mode="after")
    def _refs(self):
        names = {s.name for s in self.strata}
        ids = [c.id for c in self.claims] + [c.id for c in self.out_of_scope]
        if len(ids) != len(set(ids)):
            raise ValueError("claim ids must be unique")
        for c in self.claims:
            if c.modifier and c.modifier not in names:
                raise ValueError(f"claim {c.id}: modifier '{c.modifier}' is not a stratum name "
                                 f"({', '.join(sorted(names))})")
        if any(s.field == "severity" for s in self.strata) and self.severity is None:
            raise ValueError("a severity stratum needs the 'severity' rule")
        return self


def load_protocol(path: str | os.PathLike) -> tuple[Protocol | None, tuple[Problem, ...]]:
    """Read and validate one protocol file; problems carry file and line."""
    doc, problems = read_yaml_with_lines(path)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, (Problem(str(path), 1, "", "expected a mapping at the top level"),)
    try:
        proto = Protocol.model_validate(doc.data)
    except ValidationError as exc:
        return None, tuple(validation_problems(doc, exc))
    stem = os.path.splitext(os.path.basename(str(path)))[0]
    if proto.id != stem:
        return None, (doc.problem(("id",), f"must equal the file name '{stem}', got '{proto.id}'"),)
    return proto, ()


Sensitivity.model_rebuild()
