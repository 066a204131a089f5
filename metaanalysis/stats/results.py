"""Frozen result containers shared by every stage.

Each stage of the pipeline (load -> effects -> fit -> claims -> render) is a
pure function that returns one of these objects. They hold numbers at full
precision; only ``render/`` rounds or formats them.

Names follow metafor: ``yi``/``vi`` per-study, ``tau2``, ``ci_lb``/``ci_ub``,
``pi_lb``/``pi_ub``, ``Q``/``Q_df``/``Q_p``, ``I2`` in percent, ``H2``.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, fields
from typing import Any

from metaanalysis.stats.measures import RATIO_MEASURES  # noqa: F401  (re-exported)


def _read_only(value: Any) -> Any:
    """``value`` with every ndarray in it (itself, or the items of a tuple)
    replaced by a read-only copy that nobody else holds."""
    np = sys.modules.get("numpy")
    if np is None:  # numpy never imported: there can be no array
        return value
    if isinstance(value, np.ndarray):
        if not value.flags.writeable and value.flags.owndata:
            return value  # already a frozen array of its own (e.g. from another result)
        out = value.copy()
        out.flags.writeable = False
        return out
    if isinstance(value, tuple) and any(isinstance(v, np.ndarray) for v in value):
        return tuple(_read_only(v) for v in value)
    return value


class ReadOnlyArrays:
    """Mixin for the frozen result dataclasses that hold numpy arrays.

    ``frozen=True`` only stops rebinding a field; the array it holds could
    still be written in place (``res.tau2[0] = 0``), silently changing a
    result that other figures and tables share. After ``__init__`` every
    array field (and every array inside a tuple field) is replaced by a
    read-only copy owned by the result, so writing raises ``ValueError``
    and the caller's own arrays stay writeable.
    """

    __slots__ = ()

    def __post_init__(self) -> None:
        for f in fields(self):
            old = getattr(self, f.name)
            new = _read_only(old)
            if new is not old:
                object.__setattr__(self, f.name, new)


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples into JSON-ready Python values.

    Non-finite floats become ``None`` so that JSON stays standard.
    """
    # numpy is imported lazily so that this module stays cheap to import
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a hard dependency
        np = None
    if np is not None and isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value


@dataclass(frozen=True)
class StudyRow(ReadOnlyArrays):
    """One study's effect inside a fit.

    ``weight`` is the percentage weight in the pooled estimate (sums to 100
    over the studies of one fit).
    """

    study: str
    yi: float
    vi: float
    sei: float
    ci_lb: float
    ci_ub: float
    weight: float

    def to_dict(self) -> dict:
        """Every field as plain Python values (non-finite floats as None), ready for JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class FitResult(ReadOnlyArrays):
    """One fitted meta-analysis (common-effect or random-effects).

    All values are on the analysis scale (log scale for RR/OR). ``None`` marks
    a quantity that is not defined (e.g. ``Q_p`` when k = 1).
    """

    k: int
    measure: str
    method: str
    test: str
    estimate: float
    se: float
    stat: float  # z or t statistic
    df: float | None  # t degrees of freedom under knha, else None
    ci_lb: float
    ci_ub: float
    pval: float
    tau2: float
    tau2_ci: tuple[float | None, float | None]
    tau: float
    I2: float | None
    H2: float | None
    Q: float | None
    Q_df: int
    Q_p: float | None
    pi_lb: float | None
    pi_ub: float | None
    alpha: float
    conventions: dict = field(default_factory=dict)
    studies: tuple[StudyRow, ...] = ()
    warnings: tuple[str, ...] = ()
    converged: bool = True
    iterations: int | None = None

    KEYS = (
        "k", "measure", "method", "test", "estimate", "se", "ci_lb", "ci_ub",
        "pval", "tau2", "tau2_ci", "I2", "H2", "Q", "Q_df", "Q_p", "pi_lb",
        "pi_ub", "conventions",
    )

    def to_dict(self) -> dict:
        """Plain Python values for results.json; ratio measures also get
        ``*_exp`` (the estimate and intervals on the ratio scale)."""
        out = {key: _plain(getattr(self, key)) for key in self.KEYS}
        out["tau"] = _plain(self.tau)
        out["stat"] = _plain(self.stat)
        out["df"] = _plain(self.df)
        out["alpha"] = self.alpha
        if self.measure in RATIO_MEASURES:
            for key in ("estimate", "ci_lb", "ci_ub", "pi_lb", "pi_ub"):
                val = getattr(self, key)
                out[f"{key}_exp"] = None if val is None else _plain(math.exp(val))
        out["converged"] = self.converged
        out["warnings"] = list(self.warnings)
        out["studies"] = [s.to_dict() for s in self.studies]
        return out


@dataclass(frozen=True)
class PoolResult(ReadOnlyArrays):
    """What :func:`metaanalysis.pool` returns: an overall fit, optionally with
    subgroup fits and the test for subgroup differences."""

    overall: FitResult
    by: str | None = None
    subgroups: tuple[tuple[str, FitResult], ...] = ()
    Q_between: float | None = None
    Q_between_df: int | None = None
    Q_between_p: float | None = None
    subgroup_test: str | None = None  # "separate-tau2" or "common-tau2 (QM)"

    def __getattr__(self, name: str) -> Any:
        # Delegate estimate, se, ... to the overall fit for convenience.
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.overall, name)

    def to_dict(self) -> dict:
        """The overall fit's :meth:`FitResult.to_dict`, plus the subgroups and
        the test for subgroup differences when ``by`` is set."""
        out = self.overall.to_dict()
        if self.by is not None:
            out["by"] = self.by
            out["subgroups"] = {lvl: fit.to_dict() for lvl, fit in self.subgroups}
            out["Q_between"] = _plain(self.Q_between)
            out["Q_between_df"] = self.Q_between_df
            out["Q_between_p"] = _plain(self.Q_between_p)
            out["subgroup_test"] = self.subgroup_test
        return out


@dataclass(frozen=True)
class RegressionResult(ReadOnlyArrays):
    """A mixed-effects meta-regression (metafor's ``rma(yi, vi, mods=...)``)."""

    k: int
    method: str
    test: str
    coef_names: tuple[str, ...]
    beta: tuple[float, ...]
    se: tuple[float, ...]
    stat: tuple[float, ...]
    pval: tuple[float, ...]
    ci_lb: tuple[float, ...]
    ci_ub: tuple[float, ...]
    df: float | None
    tau2: float
    I2: float | None
    H2: float | None
    R2: float | None  # percent of tau2 explained, metafor's pseudo-R2
    QE: float
    QE_df: int
    QE_p: float | None
    QM: float
    QM_df: int | tuple[int, int]
    QM_p: float
    alpha: float
    conventions: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Every field as plain Python values (non-finite floats as None), ready for JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
