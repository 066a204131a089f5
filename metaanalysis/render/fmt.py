"""The one number formatter: every number that ``meta`` prints goes through here.

Reports, figures, claim sentences and CSV tables all format numbers with
these functions, so one value never prints two ways. The conventions
(RevMan / Cochrane Handbook reporting, metafor for the ``meta pool`` text):

* **Decimals**: fixed decimals (:func:`num`); a value that rounds to zero
  prints without a sign ("0.0", never "-0.0" or "−0.0").
* **Small positive quantities** (tau², :func:`small`): 2 significant digits
  where fixed decimals would print 0.00.
* **Minus sign**: ASCII "-" in text (reports, CSV: copy-pasteable into
  software); figures pass ``minus=MINUS`` for the typographic minus that
  matplotlib's own tick labels use.
* **p-values** (:func:`p_value`): "< 0.001" below 0.001, 3 decimals below
  0.01, else 2 decimals; a p that is not exactly 0.05 but rounds to "0.05"
  keeps 3 decimals (0.0496 -> "0.050"), so the side of 0.05 is never
  ambiguous. Phrases (:func:`p_phrase`): "p = 0.03", "p < 0.001" (forest
  plots use RevMan's capital "P").
* **Ratios** (:func:`ratio`, RR and OR on their natural scale): 2 decimals
  while that keeps at least 2 significant digits (0.81, 34.91); below 0.1
  as many decimals as 2 significant digits need, up to 4 (0.020, 0.0043);
  below 0.001 "<0.001"; from 100 one decimal, from 1000 none, above 10^4
  ">10000". So a ratio bound is never printed as "0.00" (which would read
  as an impossible ratio of zero).
* **Differences** (MD, SMD, RD): fixed decimals (:func:`num`).
* **Intervals** (:func:`interval`): "[lo, hi]".
* **Percentages** (:func:`percent`, I², R²): an integer and "%" ("53%").
* **Inputs as entered** (:func:`data`, extracted and derived values): integers
  plain, else up to 4 decimals with trailing zeros dropped.
* **Counts** (:func:`thousands`): rounded, with thousands separators ("1,234");
  **weeks** and other short values (:func:`compact`): "104", "0.5".
* **Measure names**: :data:`MEASURE_NAMES`, sentence case ("Mean
  difference", "Risk ratio"); lower-case inside a sentence with ``.lower()``.
* **Interval labels from alpha** (:func:`level`, :func:`ci_label`,
  :func:`pi_label`): "95% CI" only when alpha = 0.05; "90% PI" when 0.10.
* **metafor print style** (:func:`metafor_num`, :func:`metafor_p`): the
  ``meta pool`` text output mimics ``print.rma`` (4 decimals, "<.0001") so it
  can be diffed against R line by line; nothing else uses it.
"""

from __future__ import annotations

import math

__all__ = [
    "MINUS", "NA", "RATIO_MEASURES", "MEASURE_NAMES", "is_number", "num", "small", "p_value",
    "p_phrase", "ratio", "effect", "interval", "level", "ci_label", "pi_label",
    "null_value", "excludes_null_phrase", "measure_name", "metafor_num", "metafor_p",
    "percent", "data", "thousands", "compact",
]

MINUS = "\u2212"  # typographic minus, as matplotlib's own tick labels use
NA = "NA"

#: Measures pooled on the log scale and shown exponentiated (no effect = 1):
#: defined once, in the stats core (re-exported here for render/).
from metaanalysis.stats.measures import RATIO_MEASURES  # noqa: E402

#: Display names of effect measures, one house style: sentence case, no
#: abbreviations ("Standardised", British spelling as in the Cochrane Handbook).
MEASURE_NAMES = {
    "MD": "Mean difference",
    "SMD": "Standardised mean difference",
    "RR": "Risk ratio",
    "OR": "Odds ratio",
    "RD": "Risk difference",
    "ROM": "Ratio of means",
    "GEN": "Effect size",
}

#: p-values below this print as "< 0.001" (Cochrane Handbook 15.3.2: exact
#: p-values, with "< 0.001" for very small ones).
P_FLOOR = 0.001
#: Ratios outside [RATIO_FLOOR, RATIO_CEILING] print as "<0.001" / ">10000":
#: more digits would claim a precision no interval that wide has.
RATIO_FLOOR = 0.001
RATIO_CEILING = 10000.0
#: Most decimals a small ratio gets (2 significant digits down to 0.001).
RATIO_MAX_DECIMALS = 4


def is_number(x: object) -> bool:
    """True for a finite int or float (not bool, not None, not NaN/inf)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x: float | None, digits: int = 2, minus: str = "-", na: str = NA) -> str:
    """``x`` with ``digits`` fixed decimals; ``na`` ("NA") when missing or not finite.

    A value that rounds to zero has no sign: ``num(-0.04, 1) == "0.0"``.

    Examples
    --------
    >>> num(-1.234), num(-0.001), num(-0.04, 1), num(None)
    ('-1.23', '0.00', '0.0', 'NA')
    """
    if not is_number(x):
        return na
    s = f"{x:.{digits}f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s.replace("-", minus) if minus != "-" else s


def small(x: float | None, digits: int = 2, minus: str = "-") -> str:
    """Like :func:`num`, but a nonzero value that would print as 0.00 keeps
    two significant digits (tau² = 0.0042, not 0.00; 0.000042, never "4.2e-05").

    Examples
    --------
    >>> small(0.0042), small(0.000042), small(0.04), small(0.0)
    ('0.0042', '0.000042', '0.04', '0.00')
    """
    if is_number(x) and 0 < abs(x) < 0.5 * 10**-digits:
        d = -math.floor(math.log10(abs(x))) + 1  # decimals for 2 significant digits
        if round(abs(x), d) >= 10.0 ** -(d - 2):  # 0.0000995 rounds up to 0.00010
            d -= 1
        return num(x, d, minus)
    return num(x, digits, minus)


def percent(x: float | None, digits: int = 0) -> str:
    """A percentage such as I² or R²: ``digits`` decimals and "%"; "NA" when missing.

    Examples
    --------
    >>> percent(52.83), percent(None)
    ('53%', 'NA')
    """
    return NA if not is_number(x) else f"{num(x, digits)}%"


def data(x: object) -> str:
    """An extracted or derived input as entered: integers plain, else up to
    4 decimals, trailing zeros dropped (large or tiny values in 4 significant
    digits); a list joined with ", "; a bool as "yes"/"no"; text as given.

    Examples
    --------
    >>> data(12.0), data(0.12345), data(2.5e-05), data([1, 2.5]), data(None)
    ('12', '0.1235', '2.5e-05', '1, 2.5', 'NA')
    """
    if x is None:
        return NA
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (list, tuple)):
        return ", ".join(data(v) for v in x)
    if not isinstance(x, (int, float)):
        return str(x)
    if not math.isfinite(x):
        return NA
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.4g}"
    return f"{x:.4f}".rstrip("0").rstrip(".")


def thousands(x: float | None) -> str:
    """A count rounded to an integer, with thousands separators ("1,234").

    Examples
    --------
    >>> thousands(1234.4), thousands(0.6)
    ('1,234', '1')
    """
    return f"{int(round(x)):,}"


def compact(x: float | None) -> str:
    """A short value in the fewest characters (Python's ``g``): "104", "0.5".

    Examples
    --------
    >>> compact(104.0), compact(0.5)
    ('104', '0.5')
    """
    return f"{x:g}"


def p_value(p: float | None) -> str:
    """A p-value: "< 0.001", "0.004", "0.03"; "0.050" for 0.0496.

    Examples
    --------
    >>> p_value(0.0321), p_value(0.0042), p_value(0.0004), p_value(0.0496)
    ('0.03', '0.004', '< 0.001', '0.050')
    """
    if not is_number(p):
        return NA
    if p < P_FLOOR:
        return "< 0.001"
    if p < 0.01:
        return f"{p:.3f}"
    s = f"{p:.2f}"
    if s == "0.05" and p != 0.05:
        s = f"{p:.3f}"  # 0.0496 and 0.0504 are on different sides of 0.05
    return s


def p_phrase(p: float | None, symbol: str = "p") -> str:
    """"p = 0.03" or "p < 0.001" ("P = 0.03" with ``symbol="P"``, RevMan's forest plots)."""
    s = p_value(p)
    return f"{symbol} {s}" if s.startswith("<") else f"{symbol} = {s}"


def ratio(x: float | None, digits: int = 2) -> str:
    """A ratio (RR, OR) on its natural scale, never "0.00".

    ``digits`` decimals while they keep 2 significant digits; smaller ratios
    get up to :data:`RATIO_MAX_DECIMALS` decimals (2 significant digits),
    and below :data:`RATIO_FLOOR` print as "<0.001"; large ratios lose
    decimals (1 from 100, none from 1000) and above :data:`RATIO_CEILING`
    print as ">10000".

    Examples
    --------
    >>> ratio(0.81), ratio(0.0213), ratio(0.0042), ratio(0.0002), ratio(324.21)
    ('0.81', '0.021', '0.0042', '<0.001', '324.2')
    """
    if x is None or isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x) or x < 0:
        return NA
    if x > RATIO_CEILING:  # includes +inf from exp overflow
        return f">{RATIO_CEILING:.0f}"
    if x < RATIO_FLOOR and round(x, RATIO_MAX_DECIMALS) < RATIO_FLOOR:
        return f"<{RATIO_FLOOR:g}"
    if x >= 1000:
        return f"{x:.0f}"
    if x >= 100:
        return f"{x:.1f}"
    d = digits
    # at least 2 significant digits: the rounded value must reach 10^-(d-1)
    while d < RATIO_MAX_DECIMALS and round(x, d) < 10.0 ** -(d - 1):
        d += 1
    return f"{x:.{d}f}"


def effect(x: float | None, is_ratio: bool, digits: int = 2, minus: str = "-") -> str:
    """An effect on the reader's scale, already exponentiated for ratios."""
    return ratio(x, digits) if is_ratio else num(x, digits, minus)


def interval(lo: float | None, hi: float | None, is_ratio: bool = False, digits: int = 2,
             minus: str = "-") -> str:
    """"[lo, hi]"; "NA" when either bound is missing."""
    ok = (lambda v: v is not None and not (isinstance(v, float) and math.isnan(v))) if is_ratio \
        else is_number
    if not (ok(lo) and ok(hi)):
        return NA
    return f"[{effect(lo, is_ratio, digits, minus)}, {effect(hi, is_ratio, digits, minus)}]"


def level(alpha: float | None = 0.05) -> str:
    """The coverage 1 - alpha as a percentage: "95%", "90%", "97.5%"."""
    if alpha is None:
        alpha = 0.05
    if not (is_number(alpha) and 0 < alpha < 1):
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    pct = round(100 * (1 - alpha), 6)
    return f"{pct:g}%"


def ci_label(alpha: float | None = 0.05) -> str:
    """"95% CI" for alpha = 0.05, "90% CI" for 0.10."""
    return f"{level(alpha)} CI"


def pi_label(alpha: float | None = 0.05) -> str:
    """"95% PI" for alpha = 0.05, "90% PI" for 0.10."""
    return f"{level(alpha)} PI"


def null_value(measure_or_ratio: str | bool) -> str:
    """No effect on the display scale: "1" for ratio measures, else "0"."""
    is_ratio = (measure_or_ratio in RATIO_MEASURES if isinstance(measure_or_ratio, str)
                else bool(measure_or_ratio))
    return "1" if is_ratio else "0"


def excludes_null_phrase(alpha: float | None = 0.05, measure_or_ratio: str | bool = "MD",
                         interval_name: str = "CI") -> str:
    """"the 95% CI excludes no effect (0)" (or "(1)" for ratios, the level from alpha).

    Plain "the CI excludes no effect" reads as "excludes nothing".
    """
    return (f"the {level(alpha)} {interval_name} excludes no effect "
            f"({null_value(measure_or_ratio)})")


def measure_name(measure: str, lower: bool = False) -> str:
    """The display name of a measure code ("RR" -> "Risk ratio"); unknown codes as given."""
    name = MEASURE_NAMES.get(measure, measure)
    return name.lower() if lower and name != measure else name


def metafor_num(x: float | None, digits: int = 4) -> str:
    """metafor ``print.rma`` style: fixed decimals, "NA" when missing; no "-0.0000"."""
    return num(x, digits)


def metafor_p(p: float | None, digits: int = 4) -> str:
    """metafor ``print.rma`` p-value: "<.0001" below the printed precision."""
    if not is_number(p):
        return NA
    if p < 10**-digits:
        return "<." + "0" * (digits - 1) + "1"
    return f"{p:.{digits}f}"



# ----------------------------------------------------------------------------
# table cells of the figures (were render/_common.py's fmt_data / fmt_value;
# issue 16: one formatter)

__all__ += ["entered", "cell"]

_SUPERSCRIPT = str.maketrans("0123456789-", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076"
                                            "\u2077\u2078\u2079\u207b")


def entered(x: float | None, digits: int = 2, minus: str = "-") -> str:
    """An extracted value as entered: integers without decimals, otherwise at
    most ``digits`` decimals with trailing zeros dropped; "" when missing.

    Examples
    --------
    >>> entered(20), entered(20.5, 0), entered(-3.25), entered(None)
    ('20', '20.5', '-3.25', '')
    """
    if x is None:
        return ""
    if isinstance(x, str):
        return x
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(x):
        return ""
    if x == int(x) and abs(x) < 1e15:
        s = str(int(x))
    else:
        # never fewer than 1 decimal for a non-integer: a split control's 20.5
        # events printed with 0 decimals (and trailing zeros dropped) read "2"
        s = f"{x:.{max(digits, 1)}f}".rstrip("0").rstrip(".")
    return s.replace("-", minus) if minus != "-" else s


def cell(x: object, minus: str = "-") -> str:
    """A free table cell (strain, dose, severity): numbers >= 10^4 as
    m×10ⁿ (a dose of 1e9 CFU prints as 1×10⁹), other numbers with :g;
    lists joined with " + ".

    Examples
    --------
    >>> cell(1e9), cell(2.5), cell(["LGG", 1e10]), cell(True)
    ('1×10⁹', '2.5', 'LGG + 1×10¹⁰', 'yes')
    """
    if x is None:
        return ""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        if not math.isfinite(x):
            return ""
        if abs(x) >= 1e4:
            e = int(math.floor(math.log10(abs(x))))
            m = x / 10**e
            ms = f"{m:.2g}"
            if ms == "10":
                ms, e = "1", e + 1
            s = f"{ms}\u00d710{str(e).translate(_SUPERSCRIPT)}"
        else:
            s = f"{x:g}"
        return s.replace("-", minus) if minus != "-" else s
    if isinstance(x, (list, tuple)):
        return " + ".join(cell(v, minus) for v in x)
    return str(x)
