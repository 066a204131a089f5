"""YAML with line numbers: one study, registry or protocol file -> plain data,
and the 1-based line of every mapping key and sequence item.

The reader under :mod:`metaanalysis.studies.load` (study and registry files)
and :mod:`metaanalysis.analysis.protocol` (protocol files). It never raises
on bad input: :func:`read_yaml_with_lines` returns the problems it found,
each a :class:`Problem` that prints as ``FILE:LINE: field.path: message``.

Reading YAML safely
-------------------
ruamel.yaml (pure-Python, safe mode) parses the file into an event stream and
a node graph; Python objects are then built here from the nodes, so that

* every mapping key and sequence item keeps its line number;
* only plain data is built: null, bool, int, float, str, mappings and
  sequences. Any other tag (``!!python/object``, ``!custom``, ``!!binary``,
  ``!!set``) and merge keys (``<<``) are problems;
* size (:data:`MAX_BYTES`), nesting depth (:data:`MAX_DEPTH`), alias count
  (:data:`MAX_ALIASES`) and the number of built nodes (:data:`MAX_NODES`) are
  bounded before anything large is built, which defeats YAML bombs ("billion
  laughs") and stack exhaustion;
* duplicate keys are problems (a plain loader keeps the last one silently).

Only regular files are read (:func:`metaanalysis.studies.io.read_regular_file`),
so a FIFO cannot hang a reader.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from metaanalysis.studies.io import read_regular_file

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_ALIASES", "MAX_NODES", "Problem", "YamlDoc",
           "format_path", "read_yaml_with_lines"]

#: Largest file accepted, in bytes. The biggest real extraction file is a few
#: tens of kB; 1 MB leaves room and bounds parse time.
MAX_BYTES = 1_000_000
#: Deepest nesting of mappings/sequences. A study file nests ~8 deep.
MAX_DEPTH = 40
#: Alias (``*name``) uses allowed. Extraction files have no need for them; a
#: few are tolerated, many are the signature of a YAML bomb.
MAX_ALIASES = 16
#: Values (scalars and collections) per file, counting each alias expansion
#: again. A study file has a few hundred.
MAX_NODES = 20_000


# ---------------------------------------------------------------------------
# problems


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in one file.

    ``str(problem)`` is ``FILE:LINE: field.path: message`` (the path part is
    left out for problems about the whole file). ``line`` is 1-based; 0 means
    the file could not be read at all.
    """

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def format_path(path: Iterable[Any]) -> str:
    """A field path as the messages print it: ``('arms', 0, 'n_randomised')`` ->
    ``'arms[0].n_randomised'``.

    Parameters
    ----------
    path : iterable of str or int
        Mapping keys and sequence indices, outermost first.

    Returns
    -------
    str
        Empty for the empty path (the whole file).
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


# ---------------------------------------------------------------------------
# YAML with line numbers


@dataclass(frozen=True)
class YamlDoc:
    """A parsed YAML file: plain Python ``data`` and the 1-based line of every
    mapping key and sequence item, keyed by path (tuple of keys/indices)."""

    file: str
    data: Any
    lines: Mapping[tuple, int] = field(repr=False)

    def locate(self, loc: Iterable[Any]) -> tuple[int, tuple]:
        """Line and clean path for a pydantic-style ``loc``.

        Elements that exist in the file are followed; pydantic's internal
        union/validator tags (``function-after[...]``) are dropped; the first
        element that does not exist (a missing field) and anything after it is
        kept in the path, and the line is that of the deepest node found.
        """
        path: tuple = ()
        line = self.lines.get((), 1)
        missing: list = []
        for el in loc:
            if isinstance(el, str) and ("[" in el or "]" in el):
                continue
            if not missing and (path + (el,)) in self.lines:
                path = path + (el,)
                line = self.lines[path]
            else:
                missing.append(el)
        return line, path + tuple(missing)

    def problem(self, loc: Iterable[Any], message: str) -> Problem:
        """A :class:`Problem` at the line of ``loc`` (see :meth:`locate`)."""
        line, path = self.locate(loc)
        return Problem(self.file, line, format_path(path), message)


class _BuildError(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def _yaml(pure: bool = True):
    from ruamel.yaml import YAML

    # pure=True: the C extension (ruamel.yaml.clib) gives different error
    # types and messages, so every problem is reported from the pure parser.
    # Valid files are composed with the C parser when it is installed (6x
    # faster); their node lines are the same.
    return YAML(typ="safe", pure=pure)


def _fast_compose(text: str):
    """Compose with libyaml when available; None on any trouble (the caller
    then takes the pure-Python path, which reports problems exactly)."""
    try:
        import _ruamel_yaml  # noqa: F401  (the C extension of ruamel.yaml.clib)
    except ImportError:
        return None
    try:
        return _yaml(pure=False).compose(text)
    except Exception:  # noqa: BLE001 - any failure: redo it the slow, precise way
        return None


def read_yaml_with_lines(path: str | os.PathLike) -> tuple[YamlDoc | None, tuple[Problem, ...]]:
    """Read one YAML file safely, keeping line numbers (see :func:`_read_yaml`).

    A file is composed with the C parser when it is installed; if that path
    finds any problem, the file is read again with the pure-Python parser so
    that every message and line is the precise one.

    Parameters
    ----------
    path : str or path-like
        A study, registry or protocol file.

    Returns
    -------
    doc : YamlDoc or None
        ``None`` when the file cannot be read or parsed (see the problems).
    problems : tuple of Problem
        Read, decode, syntax and safety problems; empty when ``doc`` is usable.
    """
    doc, problems = _read_yaml(path, fast=True)
    if problems:
        return _read_yaml(path, fast=False)
    return doc, problems


def _read_yaml(path: str | os.PathLike, *, fast: bool) -> tuple[YamlDoc | None, tuple[Problem, ...]]:
    """Read one YAML file safely, keeping line numbers.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    doc : YamlDoc or None
        ``None`` when the file cannot be read or parsed (see the problems).
    problems : tuple of Problem
        Read, decode, syntax and safety problems. Empty when ``doc`` is usable.

    Notes
    -----
    Reusable by any loader of YAML inputs (protocols as well as studies).
    """
    file = str(path)

    def fail(line: int, message: str):
        return None, (Problem(file, line, "", message),)

    # --- read and decode -------------------------------------------------
    raw, why = read_regular_file(path, MAX_BYTES)
    if raw is None:
        return fail(0, why)
    if len(raw) > MAX_BYTES:
        return fail(1, f"file is larger than {MAX_BYTES // 1000} kB; an extraction file "
                       "should be a few kB")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        return fail(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start}); is this a binary file?")
    if "\x00" in text:
        return fail(text.count("\n", 0, text.index("\x00")) + 1,
                    "contains NUL bytes; is this a binary file?")
    if not text.strip() or all(ln.lstrip().startswith("#") or not ln.strip()
                               for ln in text.splitlines()):
        return fail(1, "empty file (expected a YAML mapping of study fields)")

    # --- compose once, then a safety pass over the node graph -------------
    # Composing is safe even for alias bombs (an alias is a reference to a
    # node already built); the expansion risk is in building plain data,
    # which the limits below stop first. One parse instead of two halves the
    # load time of the bundled studies.
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    node = _fast_compose(text) if fast else None
    yaml = _yaml()
    try:
        if node is None:
            node = yaml.compose(text)
    except MarkedYAMLError as exc:
        msg = _yaml_message(exc)
        if "expected a single document" in msg or "but found another document" in msg:
            return fail(_mark_line(exc), "more than one YAML document in the file")
        return fail(_mark_line(exc), "YAML syntax error: " + msg)
    except YAMLError as exc:
        pos = getattr(exc, "position", None)
        line = text.count("\n", 0, pos) + 1 if isinstance(pos, int) else 1
        return fail(line, "YAML error: " + " ".join(str(exc).split())[:300])
    except RecursionError:
        return fail(1, f"nested more than {MAX_DEPTH} levels deep")
    if node is not None:
        seen: set[int] = set()
        nodes = aliases = 0
        stack = [(node, 1)]
        while stack:
            nd, depth = stack.pop()
            if id(nd) in seen:
                aliases += 1
                if aliases > MAX_ALIASES:
                    return fail(_alias_line(text, MAX_ALIASES + 1),
                                f"more than {MAX_ALIASES} YAML aliases "
                                                "(anchors/aliases are not needed in "
                                                "extraction files)")
                continue
            seen.add(id(nd))
            nodes += 1
            if nodes > MAX_NODES:
                return fail(_mark_line(nd), f"more than {MAX_NODES} values; an extraction "
                                            "file has a few hundred")
            if isinstance(nd, (MappingNode, SequenceNode)):
                if depth > MAX_DEPTH:
                    return fail(_mark_line(nd), f"nested more than {MAX_DEPTH} levels deep")
                children = ([c for kv in nd.value for c in kv] if isinstance(nd, MappingNode)
                            else list(nd.value))
                stack.extend((c, depth + 1) for c in reversed(children))
    if node is None:
        return fail(1, "empty file (expected a YAML mapping of study fields)")

    # --- build plain data -------------------------------------------------
    builder = _Builder()
    try:
        data = builder.build(node, ())
    except _BuildError as exc:
        return fail(exc.line, exc.message)
    if builder.problems:
        return None, tuple(Problem(file, ln, format_path(p), m) for ln, p, m in builder.problems)
    return YamlDoc(file, data, builder.lines), ()


def _alias_line(text: str, nth: int) -> int:
    """Line of the nth alias (the node graph only knows where anchors are);
    parsed again only on this failure path."""
    from ruamel.yaml.events import AliasEvent

    count = 0
    for ev in _yaml().parse(text):
        if isinstance(ev, AliasEvent):
            count += 1
            if count == nth:
                return _mark_line(ev)
    return 1


def _mark_line(obj) -> int:
    for attr in ("problem_mark", "start_mark", "context_mark"):
        mark = getattr(obj, attr, None)
        if mark is not None and getattr(mark, "line", None) is not None:
            return int(mark.line) + 1
    return 1


def _yaml_message(exc) -> str:
    context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
    cmark = getattr(exc, "context_mark", None)
    if context and cmark is not None and getattr(cmark, "line", None) is not None:
        # e.g. an unclosed '[' is noticed lines later: say where it started
        context = f"{context} (started at line {cmark.line + 1})"
    parts = [str(p) for p in (context, problem) if p]
    msg = "; ".join(parts) or (str(exc).splitlines() or ["invalid YAML"])[0]
    return " ".join(msg.split())


_CORE = "tag:yaml.org,2002:"


class _Builder:
    """Builds plain Python data from a ruamel node graph, recording lines."""

    def __init__(self):
        self.lines: dict[tuple, int] = {}
        self.problems: list[tuple[int, tuple, str]] = []
        self.count = 0
        self.active: set[int] = set()

    def build(self, node, path: tuple):
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.count += 1
        if self.count > MAX_NODES:
            raise _BuildError(_mark_line(node), f"more than {MAX_NODES} values after "
                                                "expanding aliases (a YAML bomb?)")
        line = _mark_line(node)
        if path == ():
            self.lines[()] = line
        if id(node) in self.active:
            raise _BuildError(line, "recursive YAML alias")
        tag = str(node.tag)
        if isinstance(node, ScalarNode):
            return self._scalar(node, path, tag)
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if tag != _CORE + "seq":
                    self.problems.append((line, path, f"YAML tag '{tag}' is not allowed"))
                out = []
                for i, item in enumerate(node.value):
                    self.lines[path + (i,)] = _mark_line(item)
                    out.append(self.build(item, path + (i,)))
                return out
            if isinstance(node, MappingNode):
                if tag != _CORE + "map":
                    self.problems.append((line, path, f"YAML tag '{tag}' is not allowed"))
                out: dict = {}
                for knode, vnode in node.value:
                    kline = _mark_line(knode)
                    if not isinstance(knode, ScalarNode):
                        self.problems.append((kline, path, "a mapping key must be plain text"))
                        continue
                    if str(knode.tag) == _CORE + "merge":
                        self.problems.append((kline, path, "merge keys (<<) are not allowed"))
                        continue
                    key = str(knode.value)
                    if key in out:
                        first = self.lines.get(path + (key,), "?")
                        self.problems.append((kline, path + (key,),
                                              f"duplicate key (first at line {first})"))
                        continue
                    self.lines[path + (key,)] = kline
                    out[key] = self.build(vnode, path + (key,))
                return out
        finally:
            self.active.discard(id(node))
        self.problems.append((line, path, "unsupported YAML node"))  # pragma: no cover
        return None  # pragma: no cover

    def _scalar(self, node, path, tag):
        value = str(node.value)
        if tag in (_CORE + "str", _CORE + "timestamp"):
            return value
        if node.style in ("'", '"', "|", ">"):
            # a quoted scalar is text; one with an explicit tag
            # ('!!python/object:x "..."', '!!binary "..."') is refused like
            # any other tag, not silently read as text
            self.problems.append((_mark_line(node), path, f"YAML tag '{tag}' is not allowed"))
            return None
        if tag == _CORE + "null":
            return None
        if tag == _CORE + "bool":
            return value.lower() == "true"
        if tag == _CORE + "int":
            digits = value.replace("_", "")
            if len(digits) > 30:
                self.problems.append((_mark_line(node), path,
                                      f"integer with {len(digits)} digits is too large"))
                return None
            try:
                sign = -1 if digits.startswith("-") else 1
                body = digits.lstrip("+-")
                for prefix, base in (("0x", 16), ("0o", 8), ("0b", 2)):
                    if body.lower().startswith(prefix):
                        return sign * int(body[2:], base)
                return sign * int(body, 10)
            except ValueError:
                return value
        if tag == _CORE + "float":
            v = value.replace("_", "").lower()
            if v.lstrip("+-") in (".inf", "inf"):
                return float("-inf") if v.startswith("-") else float("inf")
            if v in (".nan", "nan"):
                return float("nan")
            try:
                return float(v)
            except ValueError:
                return value
        self.problems.append((_mark_line(node), path, f"YAML tag '{tag}' is not allowed"))
        return None
