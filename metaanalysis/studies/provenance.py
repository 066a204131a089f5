"""Does a number appear in a verbatim quote?

Pure text logic used by :mod:`metaanalysis.studies.load` for the provenance check: a
quoted number must be printed in its quote. Papers and the web pages they are
copied from print numbers in many typographic forms, so the quote is first
normalised and then every number it can be read as is collected:

* decimal separators: ``27.4``, ``27·4`` (Lancet-style middle dot), ``6,4``
  (decimal comma), ``.001``; trailing zeros (``27.40``) compare equal;
* thousands separators: ``1,124``;
* signs: ``-``, Unicode minus ``−``, en/em dashes. A hyphen or dash may also
  be a range separator, so it makes a number *possibly* negative; only ``−``
  and the word "minus" make it certainly negative. Between two numbers
  (``aged 2-14years``, ``10 – 20``) a hyphen or dash is a range and the
  second number is positive only;
* number boundaries: a thousands separator does not split a number
  (``1,124`` is 1124, never 1 and 124); a comma that is not a thousands
  separator may be a decimal comma or a list (``14,15``);
* powers of ten: ``1 x 10^9``, ``1.0 × 10⁹``, ``1.0 × 10 10`` and ``5 × 109``
  (superscripts lost in copying), ``10(9)``, ``10¹º``, ``2e10``, ``10^10 CFU``,
  ``4 billion``, ``6 million``;
* small English number words: ``Fifty-four infants``, ``Twelve patients``.

The matcher is deliberately lenient (it accepts any reading of an ambiguous
form); it exists to catch numbers that are simply not in their quote, not to
parse the quote.
"""

from __future__ import annotations

import math
import re

__all__ = ["normalise_quote", "numbers_in_text", "number_in_text"]

_SUPERSCRIPTS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5",
                 "⁶": "6", "⁷": "7", "⁸": "8", "⁹": "9", "⁻": "-", "⁺": "+"}
_SPACES = ("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
           "\u202f\u205f\u3000")
_STRONG_MINUS = "\u2212\ufe63\uff0d"          # − ﹣ －
_WEAK_MINUS = "-\u2010\u2011\u2012\u2013\u2014\u2015"  # hyphen, dashes
_TIMES = r"[x×X\*·⋅]"

_WORDS_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_WORDS_TENS = {w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())}
_MULTIPLIERS = {"thousand": 1e3, "million": 1e6, "mln": 1e6, "billion": 1e9, "bn": 1e9}


def normalise_quote(text: str) -> str:
    """Rewrite typographic variants into plain ASCII-ish forms.

    Superscript exponents become ``^`` exponents (``10⁹`` -> ``10^9``), the
    middle dot between digits becomes a decimal point, exotic spaces become
    plain spaces and zero-width characters disappear. Minus signs are kept
    (their strength matters, see module notes).

    Parameters
    ----------
    text : str
        A verbatim quote.

    Returns
    -------
    str
    """
    s = text.replace("\u200b", "").replace("\ufeff", "")
    s = s.translate({ord(c): " " for c in _SPACES})
    # '10¹º' prints 10^10 with a masculine ordinal (or degree sign) as the
    # superscript zero: fold it into the superscript run first.
    s = re.sub(r"(?<=[⁰¹²³⁴⁵⁶⁷⁸⁹])[º°]", "⁰", s)
    s = re.sub(r"[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+",
               lambda m: "^" + "".join(_SUPERSCRIPTS[c] for c in m.group()), s)
    s = re.sub(r"(?<=\d)[·⋅](?=\d)", ".", s)
    return s


# A number token: optional sign, digits with optional separators, or a
# leading-dot decimal.
_NUM = re.compile(
    r"(?P<sign>(?:minus\s+)|[" + re.escape(_STRONG_MINUS + _WEAK_MINUS) + r"]\s?)?"
    r"(?P<num>\d+(?:[.,]\d+)*|(?<![\d.])\.\d+)",
    re.IGNORECASE,
)
# what precedes a weak minus that makes it a range separator: a digit,
# optionally followed by one space ('2-14', '2 -14', '2 – 14')
_RANGE_BEFORE = re.compile(r"\d\s?$")
_SCI = re.compile(r"(?P<m>\d+(?:\.\d+)?)\s?[eE](?P<e>[-+]?\d{1,3})\b")
# mantissa x 10^exp, with the exponent's superscript lost in several ways
_POW = re.compile(
    r"(?P<m>\d+(?:[.,]\d+)?)\s*" + _TIMES + r"\s*10\s*"
    r"(?:\^\s*(?P<e1>[-+−]?\d{1,2})|\(\s*(?P<e2>[-+−]?\d{1,2})\s*\)|\s(?P<e3>\d{1,2})\b"
    r"|(?P<e4>\d{1,2})(?!\d))"
)
# a bare power of ten ('10^9 CFU', '10(9) total', '109 colony-forming units')
_BARE_POW = re.compile(
    r"(?<![\d.,])10\s*(?:\^\s*(?P<e1>[-+−]?\d{1,2})|\(\s*(?P<e2>[-+−]?\d{1,2})\s*\)"
    r"|(?P<e3>\d{1,2})(?=\s*(?:cfu|cpu|colony|organisms|bacteria|viable|cells)))",
    re.IGNORECASE,
)
_WORD_MULT = re.compile(r"(?P<m>\d+(?:\.\d+)?)\s*(?P<w>thousand|million|mln|billion|bn)\b",
                        re.IGNORECASE)


def _parse_digits(raw: str) -> set[float]:
    """All readings of a digit string with ``.``/``,`` separators."""
    out: set[float] = set()
    try:
        if "," in raw:
            if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", raw):
                # thousands: 1,124 is 1124 (or, with a decimal comma, 1.124),
                # never the list "1, 124": the comma is not a number boundary
                out.add(float(raw.replace(",", "")))
                if raw.count(",") == 1 and "." not in raw:
                    out.add(float(raw.replace(",", ".")))
                return out
            if raw.count(",") == 1 and "." not in raw:
                out.add(float(raw.replace(",", ".")))         # decimal comma: 6,4
            for part in raw.split(","):                       # a list: 14,15
                if part:
                    out |= _parse_digits(part)
        elif raw.count(".") <= 1:
            out.add(float(raw))
        else:                                                 # 1.2.3: read pieces
            for part in raw.split("."):
                if part:
                    out.add(float(part))
    except ValueError:  # pragma: no cover - the regexes only pass digits
        pass
    return out


def _exp(groups: dict) -> int | None:
    for key in ("e1", "e2", "e3", "e4"):
        val = groups.get(key)
        if val:
            return int(val.replace("−", "-"))
    return None


def _word_numbers(text: str) -> set[float]:
    """Numbers written as English words up to 999 ('Fifty-four', 'one hundred and two').

    Every prefix of a run is also collected ('Fifty-four' gives 50 and 54):
    harmless for a lenient matcher.
    """
    out: set[float] = set()
    words = re.findall(r"[a-z]+", text.lower())
    i = 0
    while i < len(words):
        val: int | None = None
        j = i
        while j < len(words):
            w = words[j]
            hundreds = val is not None and val >= 100 and val % 100 == 0
            if w in _WORDS_UNITS and (val is None or hundreds or (
                    val % 100 >= 20 and val % 10 == 0 and 0 < _WORDS_UNITS[w] < 10)):
                val = (val or 0) + _WORDS_UNITS[w]
            elif w in _WORDS_TENS and (val is None or hundreds):
                val = (val or 0) + _WORDS_TENS[w]
            elif w == "hundred" and val is not None and 1 <= val <= 9:
                val *= 100
            elif w == "and" and hundreds:
                pass
            else:
                break
            out.add(float(val))
            j += 1
        i = j if j > i else i + 1
    return out


def numbers_in_text(text: str) -> list[tuple[float, bool, bool]]:
    """Every number a quote can be read as.

    Parameters
    ----------
    text : str
        A verbatim quote.

    Returns
    -------
    list of (magnitude, may_be_positive, may_be_negative)
        ``magnitude`` is non-negative; the flags say which signs the printed
        form allows.
    """
    s = normalise_quote(text)
    out: list[tuple[float, bool, bool]] = []

    def add(values, pos=True, neg=False):
        for v in values:
            if math.isfinite(v):
                out.append((abs(v), pos, neg))

    for m in _NUM.finditer(s):
        sign = (m.group("sign") or "").strip().lower()
        strong = sign == "minus" or (sign != "" and sign[0] in _STRONG_MINUS)
        weak = sign != "" and not strong
        if weak and _RANGE_BEFORE.search(s, 0, m.start()):
            # a hyphen or dash between two numbers is a range ('aged
            # 2-14years', '10 – 20'): the second number is not negative
            weak = False
        add(_parse_digits(m.group("num")), pos=not strong, neg=strong or weak)
    for m in _SCI.finditer(s):
        add([float(m.group("m")) * 10.0 ** int(m.group("e"))])
    for m in _POW.finditer(s):
        e = _exp(m.groupdict())
        if e is not None:
            add([x * 10.0 ** e for x in _parse_digits(m.group("m"))])
    for m in _BARE_POW.finditer(s):
        e = _exp(m.groupdict())
        if e is not None:
            add([10.0 ** e])
    for m in _WORD_MULT.finditer(s):
        add([float(m.group("m")) * _MULTIPLIERS[m.group("w").lower()]])
    add(_word_numbers(s))
    return out


def number_in_text(value: float, text: str, *, rel_tol: float = 1e-9) -> bool:
    """Whether ``value`` is printed in ``text`` (in any accepted form).

    Parameters
    ----------
    value : float
    text : str
    rel_tol : float
        Relative tolerance for the float comparison; it only absorbs binary
        rounding (``1.2 * 10**9`` vs ``1.2e9``), never a printed rounding.

    Returns
    -------
    bool

    Examples
    --------
    >>> number_in_text(27.4, "SCORAD scores (27·4±12·7)")
    True
    >>> number_in_text(1e10, "at a dose of 1.0 × 10 10 CPU/d")
    True
    >>> number_in_text(-13.89, "RHT3201 group (−13.89 ± 10.05)")
    True
    >>> number_in_text(27.3, "SCORAD scores (27·4±12·7)")
    False
    """
    target = abs(float(value))
    negative = value < 0
    for mag, pos, neg in numbers_in_text(text):
        if math.isclose(mag, target, rel_tol=rel_tol, abs_tol=1e-12):
            if (negative and neg) or (not negative and pos):
                return True
    return False
