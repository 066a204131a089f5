"""Stage 1: study and registry files -> validated models, with every problem
located as ``FILE:LINE: field.path: message``.

This is the only module that reads study files. It never raises on bad
input: each public function returns the problems it found next to whatever it
could load. Files are read by :mod:`metaanalysis.studies.yamlio` (YAML with
the line of every node, safely bounded).

Checks done here (they need more than one model)
------------------------------------------------
* pydantic validation of :class:`~metaanalysis.studies.schema.Study`, with each
  error's ``loc`` mapped to the line of its YAML node;
* ``id`` equals the file name stem; study ids are unique across files;
* strain keys exist in the registry (``studies/strains.yaml``);
* ``same_cohort_as`` names a known study and forms no cycle; two files with
  the same DOI, PMID or registration id are one trial twice unless linked
  by ``same_cohort_as`` (see :func:`_cohort_problems`);
* provenance: each quoted number appears in its quote's text
  (:func:`metaanalysis.studies.provenance.number_in_text`).

Only regular files are read (:func:`study_files`,
:func:`metaanalysis.studies.io.read_regular_file`): a FIFO, device, directory named
``*.yaml``, broken symbolic link or link leaving the folder is a problem,
and nothing is opened before its type is known, so a FIFO cannot hang
``meta validate``.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from metaanalysis.studies.io import file_kind
from metaanalysis.studies.provenance import number_in_text
from metaanalysis.studies.schema import (MAX_ABS_VALUE, PLACEHOLDER, FieldIssues, StrainRegistry,
                                 Study)
# the YAML reader lives in yamlio; its names are re-exported for existing callers
from metaanalysis.studies.yamlio import (  # noqa: F401
    MAX_ALIASES, MAX_BYTES, MAX_DEPTH, MAX_NODES, Problem, YamlDoc,
    read_yaml_with_lines,
)

__all__ = [
    "MAX_BYTES", "MAX_DEPTH", "MAX_ALIASES", "MAX_NODES", "Problem", "YamlDoc",
    "read_yaml_with_lines", "load_registry", "load_studies", "find_registry",
    "study_files",
]

#: Problems reported per file; past this a summary line says how many more.
#: A file with thousands of problems is not a study file, and reporting
#: each would only slow the check down.
MAX_PROBLEMS_PER_FILE = 200

REGISTRY_NAME = "strains.yaml"


# ---------------------------------------------------------------------------
# pydantic errors -> problems


def _field_names() -> list[str]:
    names: set[str] = set()
    from metaanalysis.studies import schema

    for obj in vars(schema).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not BaseModel:
            names.update(obj.model_fields)
    return sorted(names)


_FIELD_NAMES: list[str] | None = None


def _suggest(name: Any, names: Iterable[str] | None = None) -> str:
    global _FIELD_NAMES
    if names is None:
        if _FIELD_NAMES is None:
            _FIELD_NAMES = _field_names()
        names = _FIELD_NAMES
    close = difflib.get_close_matches(str(name), list(names), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the choice closest to ``value``, or "".

    Case is ignored first (``sd_may_be_SE`` -> ``sd_may_be_se``), then
    :func:`difflib.get_close_matches` finds near spellings (``child`` ->
    ``children``).

    Parameters
    ----------
    value : Any
        What the file says.
    choices : iterable of str
        What it may say.

    Returns
    -------
    str
        A suffix for an error message, with its leading space; "" when
        nothing is close.
    """
    choices = [str(c) for c in choices]
    text = str(value)
    def fold(x: str) -> str:
        return x.lower().replace("-", "_")

    for c in choices:
        if fold(c) == fold(text):
            return f" (did you mean '{c}'?)"
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(text.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[close[0]]}'?)" if close else ""


#: Longest list of choices an error message spells out; past it, it gives
#: the count (a list of every study id helps nobody).
MAX_CHOICES_SHOWN = 20


def one_of(value: Any, choices: Iterable[str], what: str | None = None) -> str:
    """``"unknown flag 'x' (did you mean 'y'?); expected one of a, b, c"``.

    Parameters
    ----------
    value : Any
        What the file says (text is cut at 60 characters).
    choices : iterable of str
        What it may say; more than :data:`MAX_CHOICES_SHOWN` are counted,
        not listed.
    what : str, optional
        The kind of name ("flag", "study"); without it the message says
        "'x' is not allowed".

    Returns
    -------
    str
        The error message.
    """
    choices = [str(c) for c in choices]
    shown = value if not isinstance(value, str) else value[:60]
    head = f"unknown {what} {shown!r}" if what else f"{shown!r} is not allowed"
    tail = (f"expected one of {', '.join(choices)}" if len(choices) <= MAX_CHOICES_SHOWN
            else f"not among the {len(choices)} known {(what + 's') if what else 'values'}")
    return f"{head}{did_you_mean(value, choices)}; {tail}"


def _typename(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the text {v[:40]!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a mapping"
    return type(v).__name__


def _message(err: dict, names: Iterable[str] | None = None) -> str:
    typ = err.get("type", "")
    inp = err.get("input")
    loc = err.get("loc", ())
    if isinstance(inp, str) and PLACEHOLDER in inp:
        return "unfilled template placeholder"
    if typ == "missing":
        return "required field is missing"
    if typ == "extra_forbidden":
        return "unknown field" + _suggest(loc[-1] if loc else "", names)
    bounds = {"greater_than": ("gt", ">"), "greater_than_equal": ("ge", ">="),
              "less_than": ("lt", "<"), "less_than_equal": ("le", "<=")}
    if typ in bounds:
        key, op = bounds[typ]
        bound = (err.get("ctx") or {}).get(key)
        return f"must be {op} {bound}, got {inp!r}"
    if typ == "literal_error":
        ctx = err.get("ctx") or {}
        expected = re.findall(r"'((?:[^'\\]|\\.)*)'", str(ctx.get("expected", "")))
        if expected and isinstance(inp, str):
            return one_of(inp, expected)
        if expected:
            return f"expected one of {', '.join(expected)}, got {_typename(inp)}"
    if typ in ("model_type", "model_attributes_type", "dict_type", "mapping_type"):
        return f"expected a mapping (key: value pairs), got {_typename(inp)}"
    if typ in ("tuple_type", "list_type", "sequence_type"):
        return f"expected a list, got {_typename(inp)}"
    if typ in ("float_type", "float_parsing", "int_type", "int_parsing", "int_from_float"):
        what = "a whole number" if typ.startswith("int") else "a number"
        return f"expected {what}, got {_typename(inp)}"
    if typ in ("string_type",):
        return f"expected text, got {_typename(inp)}"
    if typ in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_typename(inp)}"
    if typ == "finite_number":
        return "must be a finite number (not .inf or .nan)"
    if typ == "string_pattern_mismatch" and isinstance(inp, str):
        return (f"{inp[:40]!r} is not a valid identifier (start with a letter; letters, "
                "digits, '_', '-', '.' only; at most 80 characters)")
    msg = str(err.get("msg", "invalid value"))
    return msg[len("Value error, "):] if msg.startswith("Value error, ") else msg


def validation_problems(doc: YamlDoc, exc: ValidationError,
                        limit: int = MAX_PROBLEMS_PER_FILE, *,
                        field_names: Iterable[str] | None = None) -> list[Problem]:
    """Turn a pydantic ``ValidationError`` into located problems.

    Parameters
    ----------
    doc : YamlDoc
        The file the model was validated from (for the lines).
    exc : pydantic.ValidationError
    limit : int
        At most this many errors are turned into problems.
    field_names : iterable of str, optional
        The names an unknown key is compared with for a did-you-mean
        (default: the study schema's).

    Returns
    -------
    list of Problem
    """
    if field_names is not None:
        field_names = list(field_names)
    out = []
    errors = exc.errors()[:limit]
    locs = [tuple(e.get("loc", ())) for e in errors]
    for err in errors:
        loc = tuple(err.get("loc", ()))
        # pydantic also reports "too short" for a list whose only items are
        # invalid; the item errors already say what is wrong.
        if err.get("type") == "too_short" and any(
                len(o) > len(loc) and o[:len(loc)] == loc for o in locs):
            continue
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, FieldIssues):
            for sub, msg in ctx_err.issues:
                out.append(doc.problem(loc + sub, msg))
        else:
            out.append(doc.problem(loc, _message(err, field_names)))
    return out


# ---------------------------------------------------------------------------
# registry


def load_registry(path: str | os.PathLike) -> tuple[StrainRegistry | None, tuple[Problem, ...]]:
    """Read ``studies/strains.yaml``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    registry : StrainRegistry or None
    problems : tuple of Problem
    """
    doc, problems = read_yaml_with_lines(path)
    if doc is None:
        return None, problems
    if not isinstance(doc.data, dict):
        return None, (Problem(doc.file, 1, "", "expected a mapping with a 'strains' key"),)
    try:
        return StrainRegistry.model_validate(doc.data), ()
    except ValidationError as exc:
        return None, tuple(validation_problems(doc, exc))


def find_registry(folder: str | os.PathLike) -> Path | None:
    """The registry that applies to study files in ``folder``.

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    Path or None
        ``strains.yaml`` in the same folder, else ``studies/strains.yaml``
        under the working directory, else the one in the source tree next
        to this package; None when there is none.
    """
    candidates = [Path(folder) / REGISTRY_NAME, Path.cwd() / "studies" / REGISTRY_NAME,
                  Path(__file__).resolve().parent.parent / "studies" / REGISTRY_NAME]
    for cand in candidates:
        if cand.is_file():
            return cand
    return None


# ---------------------------------------------------------------------------
# studies


def study_files(paths: Iterable[str | os.PathLike]) -> tuple[list[Path], list[Problem]]:
    """Expand files and directories into study files.

    A directory contributes its ``*.yaml``/``*.yml`` files (not recursively),
    except the registry ``strains.yaml`` and hidden files (names starting
    with ``.``, such as editors' lock files). Only regular files inside the
    folder are read: a directory named ``*.yaml``, a FIFO, a device, a
    broken symbolic link or a link to a file outside the folder is a problem,
    never skipped silently and never opened (see :func:`folder_entry_problem`).
    A file named explicitly must be a regular file too (it may be a link to
    anywhere: the user named it).

    Parameters
    ----------
    paths : iterable of str or path-like
        Study files and/or folders of study files.

    Returns
    -------
    files : list of Path
        In the order given; a folder's files sorted by name.
    problems : list of Problem
        One per path that gives no study file (line 0: about the whole file).
    """
    files: list[Path] = []
    problems: list[Problem] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found, bad = [], []
            for f in sorted(path.iterdir()):
                if (f.suffix not in (".yaml", ".yml") or f.name == REGISTRY_NAME
                        or f.name.startswith(".")):
                    continue
                why = folder_entry_problem(path, f)
                if why:
                    bad.append(Problem(str(f), 0, "", why))
                else:
                    found.append(f)
            if not found and not bad:
                problems.append(Problem(str(path), 0, "", "no *.yaml study files in this folder"))
            files.extend(found)
            problems.extend(bad)
        elif path.exists() or path.is_symlink():
            try:
                mode = path.stat().st_mode
            except OSError:
                problems.append(Problem(str(path), 0, "", "broken symbolic link (its target "
                                                          "does not exist)"))
                continue
            if stat.S_ISREG(mode):
                files.append(path)
            else:
                problems.append(Problem(str(path), 0, "", f"is {file_kind(mode)}, expected a "
                                                          "YAML file or a folder"))
        else:
            problems.append(Problem(str(path), 0, "", "no such file or directory"))
    return files, problems


def folder_entry_problem(folder: Path, entry: Path) -> str | None:
    """Why ``entry`` (found in ``folder``) is not a study file to read, or None.

    Uses ``lstat``/``stat`` only: nothing is opened, so a FIFO cannot block.
    A symbolic link is followed only when it stays inside ``folder`` (after
    resolving both), so a study set cannot pull in files from elsewhere.

    Parameters
    ----------
    folder : Path
    entry : Path
        A name found in ``folder``.

    Returns
    -------
    str or None
        The reason, worded for a problem message; None for a regular file.
    """
    try:
        lst = os.lstat(entry)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if stat.S_ISLNK(lst.st_mode):
        try:
            target = entry.resolve(strict=True)
        except (OSError, RuntimeError):
            return "broken symbolic link (its target does not exist)"
        root = folder.resolve()
        if target.parent != root and root not in target.parents:
            return (f"symbolic link to a file outside the folder ({target}); copy the file "
                    "into the folder instead")
        try:
            mode = os.stat(entry).st_mode
        except OSError as exc:
            return f"cannot read: {exc.strerror or exc}"
    else:
        mode = lst.st_mode
    if not stat.S_ISREG(mode):
        return f"is {file_kind(mode)}, expected a YAML study file"
    return None


def load_studies(paths: Iterable[str | os.PathLike], *,
                 registry: StrainRegistry | str | os.PathLike | None = None,
                 cache: Any = None) -> tuple[tuple[Study, ...], tuple[Problem, ...]]:
    """Load and check study files.

    Parameters
    ----------
    paths : iterable of str or path-like
        Study files and/or folders of study files.
    registry : StrainRegistry, path or None
        The strain registry. ``None`` finds one per folder with
        :func:`find_registry`; its own problems are reported too.
    cache : object, optional
        Parsed files by content (``meta run`` passes ``write.StudyCache``):
        ``cache.get(file, registry, registry_path)`` returns ``(doc, study)``
        or None; ``cache.put(file, registry, registry_path, (doc, study))``
        is offered every file that has no problem of its own.

    Returns
    -------
    studies : tuple of Study
        The studies whose files have no problems, in file order.
    problems : tuple of Problem
        Every problem in every file, sorted by file and line.
    """
    files, problems = study_files(paths)
    registries: dict[Path | None, StrainRegistry | None] = {}
    fixed: tuple[StrainRegistry | None, str] | None = None
    if isinstance(registry, StrainRegistry):
        fixed = (registry, "")
    elif registry is not None:
        reg, reg_problems = load_registry(registry)
        problems.extend(reg_problems)
        fixed = (reg, str(registry))

    def registry_for(folder: Path) -> tuple[StrainRegistry | None, str]:
        if fixed is not None:
            return fixed
        where = find_registry(folder)
        if where is not None:
            where = where.resolve()
        if where not in registries:
            reg, probs = load_registry(where) if where is not None else (None, ())
            registries[where] = reg
            problems.extend(probs)
        return registries[where], str(where) if where else ""

    loaded: list[tuple[Path, YamlDoc | None, Study | None, list[Problem]]] = []
    jobs = [(f, *registry_for(f.parent)) for f in files]
    for (f, _, _), (doc, study, probs) in zip(jobs, _load_all(jobs, cache)):
        loaded.append((f, doc, study, probs))

    # --- checks across files ---------------------------------------------
    seen: dict[str, tuple[str, int]] = {}
    for f, doc, study, probs in loaded:
        if doc is None or not isinstance(doc.data, dict):
            continue
        sid = doc.data.get("id")
        if isinstance(sid, str):
            line, _ = doc.locate(("id",))
            if sid in seen:
                other_file, other_line = seen[sid]
                probs.append(Problem(doc.file, line, "id",
                                     f"duplicate study id '{sid}' "
                                     f"(also in {other_file}:{other_line})"))
            else:
                seen[sid] = (doc.file, line)
    _cohort_problems(loaded)

    studies = []
    for f, doc, study, probs in loaded:
        problems.extend(probs)
        if study is not None and not probs:
            studies.append(study)
    return tuple(studies), tuple(sorted(set(problems), key=_sort_key))


#: Below this many files parsing in one process is quicker than starting
#: workers (about 6 ms a file against ~0.1 s for a pool).
PARALLEL_MIN_FILES = 200

_JOBS: list = []


def _load_all(jobs, cache=None) -> list:
    """``_load_one`` of every ``(file, registry, registry path)``, in order.

    Files in ``cache`` (same name, bytes and registry as a file parsed
    before) are taken from it; the rest are parsed and offered to it.
    Many files are parsed by forked workers, one chunk of files each: each
    file is independent, and parsing is ~6 ms of CPU a file (16 s for
    1,000 files before the C parser). Forked, the workers inherit the
    registry and the imported models; only the results are pickled back.
    """
    if cache is not None:
        out = [cache.get(*job) for job in jobs]
        missed = [i for i, hit in enumerate(out) if hit is None]
        for i, res in zip(missed, _load_all([jobs[i] for i in missed])):
            out[i] = res
            doc, study, probs = res
            if study is not None and not probs:
                cache.put(*jobs[i], (doc, study))
        # a fresh problem list per file: the checks across files append to it
        return [(r[0], r[1], []) if len(r) == 2 else r for r in out]
    global _JOBS
    import multiprocessing as mp

    workers = min(os.cpu_count() or 1, 4)
    if len(jobs) < PARALLEL_MIN_FILES or workers < 2 or "fork" not in mp.get_all_start_methods():
        return [_load_one(*job) for job in jobs]
    from concurrent.futures import ProcessPoolExecutor

    _JOBS = jobs
    try:
        chunk = -(-len(jobs) // (workers * 4))
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"),
                                 initializer=_leave_interrupt_to_parent) as pool:
            return list(pool.map(_load_index, range(len(jobs)), chunksize=chunk))
    finally:
        _JOBS = []


def _leave_interrupt_to_parent() -> None:
    """In a worker: ignore Ctrl-C (the parent stops the pool; no traceback per worker)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _load_index(i: int):
    """One file's ``_load_one`` in a worker."""
    import copyreg
    from types import MappingProxyType

    # the models freeze their mappings as mappingproxy, which does not pickle:
    # in this (forked, throw-away) worker it is sent as the dict it wraps
    copyreg.pickle(MappingProxyType, lambda m: (_proxy, (dict(m),)))
    return _load_one(*_JOBS[i])


def _proxy(d: dict):
    from types import MappingProxyType

    return MappingProxyType(d)


#: Fields that identify a trial report; two files sharing one are the same
#: report (or the same cohort) unless linked with ``same_cohort_as``.
TRIAL_IDENTIFIERS = ("doi", "pmid", "registration")


def _identifier_keys(field_name: str, value: Any) -> list[str]:
    """Normalised forms of a DOI, PMID or registration id, for comparison."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or PLACEHOLDER in value:
        return []
    v = value.strip()
    if field_name == "doi":
        v = v.lower()
        for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/",
                       "http://dx.doi.org/", "doi:"):
            if v.startswith(prefix):
                v = v[len(prefix):].strip()
        return [v] if v else []
    if field_name == "pmid":
        v = v.lstrip("0")
        return [v] if v else []
    # a registration field may list several ids ("NCT0123; ISRCTN456")
    parts = re.split(r"[;,|/]", v)
    return [re.sub(r"\s+", "", part).upper() for part in parts if part.strip()]


def _cohort_problems(loaded) -> None:
    """``same_cohort_as`` names a study, has no cycle; one trial is one file.

    Two files that share a DOI, PMID or registration id are the same trial
    twice (pooling both counts its patients twice) unless they are reports
    of one cohort linked by ``same_cohort_as`` (directly or through a chain);
    the pipeline then uses one report per cohort in any one analysis.
    Problems are appended to each file's list in ``loaded``.
    """
    docs = {}
    for f, doc, _study, probs in loaded:
        if doc is not None and isinstance(doc.data, dict) and isinstance(doc.data.get("id"), str):
            docs.setdefault(doc.data["id"], (f, doc, probs))
    parent = {sid: d.data.get("same_cohort_as") for sid, (_f, d, _p) in docs.items()
              if isinstance(d.data.get("same_cohort_as"), str)}

    # existence: a loaded study, or (when checking single files) a study file
    # next to this one
    for sid, par in parent.items():
        f, doc, probs = docs[sid]
        if par in docs or par == sid:
            continue
        sibling = f.parent / f"{par}.yaml"
        if par != Path(REGISTRY_NAME).stem and folder_entry_problem(f.parent, sibling) is None:
            continue
        probs.append(doc.problem(("same_cohort_as",),
                                 f"unknown study '{par}' (no such study file)"))

    # cycles: follow each chain; a chain that comes back is reported once
    # per file in the cycle
    root: dict[str, str | None] = {}
    for sid in docs:
        chain, cur = [], sid
        while cur in parent and cur not in chain:
            chain.append(cur)
            cur = parent[cur]
        if cur in chain:
            # the chain from sid runs into a loop; sid reports it when it is
            # on the loop itself (a self-link is reported by the schema)
            cycle = chain[chain.index(cur):]
            if sid in cycle and parent[sid] != sid:
                f, doc, probs = docs[sid]
                loop = cycle[cycle.index(sid):] + cycle[:cycle.index(sid)] + [sid]
                probs.append(doc.problem(("same_cohort_as",),
                                         "same_cohort_as forms a cycle (" + " -> ".join(loop)
                                         + "); the first report of the cohort must have "
                                         "same_cohort_as: null"))
            root[sid] = None
        else:
            root[sid] = cur

    # the same trial twice
    first: dict[tuple[str, str], str] = {}
    for sid, (f, doc, probs) in docs.items():
        for name in TRIAL_IDENTIFIERS:
            for key in _identifier_keys(name, doc.data.get(name)):
                other = first.setdefault((name, key), sid)
                if other == sid:
                    continue
                if root.get(sid) is not None and root.get(sid) == root.get(other):
                    continue
                of, odoc, _ = docs[other]
                oline, _ = odoc.locate((name,))
                probs.append(doc.problem(
                    (name,), f"same {name} as {odoc.file}:{oline} ({other}): one trial in two "
                             f"files would be pooled twice; delete the copy, or if this is "
                             f"another report of the same cohort say so with "
                             f"same_cohort_as: {root.get(other) or other}"))


def _sort_key(p: Problem):
    return (p.file, p.line, p.path, p.message)


def _load_one(file: Path, registry: StrainRegistry | None, registry_path: str
              ) -> tuple[YamlDoc | None, Study | None, list[Problem]]:
    doc, problems = read_yaml_with_lines(file)
    probs = list(problems)
    if doc is None:
        return None, None, probs
    if not isinstance(doc.data, dict):
        probs.append(Problem(doc.file, doc.lines.get((), 1), "",
                             f"expected a mapping of study fields at the top level, got "
                             f"{_typename(doc.data)}"))
        return doc, None, probs
    study = None
    hidden = 0
    try:
        study = Study.model_validate(doc.data)
    except ValidationError as exc:
        probs.extend(validation_problems(doc, exc))
        hidden += max(0, exc.error_count() - MAX_PROBLEMS_PER_FILE)
    # The checks below read the raw data so they also run (and report) when
    # the model did not validate: one `meta validate` shows everything.
    sid = doc.data.get("id")
    if isinstance(sid, str) and sid != file.stem:
        probs.append(doc.problem(("id",), f"id '{sid}' does not match the file name "
                                          f"'{file.name}' (expected id: {file.stem})"))
    probs.extend(_registry_problems(doc, registry, registry_path))
    probs.extend(_provenance_problems(doc))
    if len(probs) > MAX_PROBLEMS_PER_FILE:
        probs.sort(key=_sort_key)
        hidden += len(probs) - MAX_PROBLEMS_PER_FILE
        probs = probs[:MAX_PROBLEMS_PER_FILE]
    if hidden:
        probs.append(Problem(doc.file, max(p.line for p in probs), "",
                             f"{hidden} more problems not shown; fix these first"))
    return doc, study, probs


def _strain_refs(data: dict):
    arms = data.get("arms")
    if not isinstance(arms, list):
        return
    for i, arm in enumerate(arms):
        inter = arm.get("intervention") if isinstance(arm, dict) else None
        strains = inter.get("strains") if isinstance(inter, dict) else None
        if not isinstance(strains, list):
            continue
        for j, ref in enumerate(strains):
            if isinstance(ref, dict) and isinstance(ref.get("registry"), str):
                yield ("arms", i, "intervention", "strains", j, "registry"), ref["registry"]


def _registry_problems(doc: YamlDoc, registry: StrainRegistry | None, registry_path: str):
    refs = list(_strain_refs(doc.data))
    if not refs:
        return []
    if registry is None:
        where = registry_path or (f"{Path(doc.file).parent / REGISTRY_NAME} or "
                                  f"studies/{REGISTRY_NAME}")
        return [doc.problem(refs[0][0], f"cannot check strain keys: no valid strain registry "
                                        f"({where})")]
    out = []
    for path, key in refs:
        if PLACEHOLDER in key:
            continue  # reported by the schema
        if key not in registry.strains:
            close = difflib.get_close_matches(key, list(registry.strains), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else " (add it to strains.yaml)"
            out.append(doc.problem(path, f"unknown strain '{key}': not in the strain "
                                         f"registry{hint}"))
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _provenance_problems(doc: YamlDoc) -> list[Problem]:
    quotes = doc.data.get("quotes")
    if not isinstance(quotes, dict):
        return []
    out: list[Problem] = []

    def check(path: tuple, value: Any, qid: Any, vpath: tuple):
        if not (_is_number(value) and isinstance(qid, str)):
            return
        if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
            return  # the schema reports it; no quote can print it
        q = quotes.get(qid)
        text = q.get("text") if isinstance(q, dict) else None
        if not isinstance(text, str):
            return
        try:
            ok = number_in_text(value, text)
        except (OverflowError, ValueError):
            ok = False
        if not ok:
            where = q.get("location") if isinstance(q.get("location"), str) else qid
            out.append(doc.problem(vpath, f"{value!r} does not appear in quote '{qid}' "
                                          f"({where}); if it was computed, record it as "
                                          "'derived' with method, formula and inputs"))

    def walk(node: Any, path: tuple):
        if isinstance(node, dict):
            if "value" in node and ("quote" in node or "derived" in node):
                if not node.get("from_figure") is True and "quote" in node:
                    check(path, node.get("value"), node.get("quote"), path + ("value",))
            der = node.get("derived") if "value" in node else None
            if isinstance(der, dict) and isinstance(der.get("inputs"), dict):
                for k, v in der["inputs"].items():
                    if _is_number(v):
                        check(path, v, der.get("quote"), path + ("derived", "inputs", k))
            for k, v in node.items():
                if k != "quotes":
                    walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, path + (i,))

    walk(doc.data, ())
    return out
