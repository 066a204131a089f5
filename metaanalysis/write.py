"""Stage 5 (output): RunResult -> files, written atomically.

Everything goes into a temporary folder beside the target and is moved into
place only when complete, so a failed run leaves the previous outputs intact.
JSON and CSV are deterministic: no timestamps, stable key order, numbers at
full precision (``repr`` of the double), non-finite numbers as null/empty.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import hashlib
import json
import os
import platform
import re
import shutil
import types
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from metaanalysis.stats.results import _plain
from metaanalysis.analysis import claims as claims_mod
# claims judge, render writes the sentences results.json keeps (issue 16)
from metaanalysis.render import claims_text

if TYPE_CHECKING:
    from metaanalysis.analysis.pipeline import RunResult

DEPENDENCIES = ("numpy", "scipy", "pandas", "matplotlib", "pydantic", "ruamel.yaml", "typer",
                "rich", "jinja2", "pymare")


# ----------------------------------------------------------------------------
# RunResult -> plain dict


def _analysis(a) -> dict:
    out = {"name": a.name, "description": a.description, "comparisons": list(a.keys),
           "note": a.note, "result": a.result.to_dict() if a.result is not None else None}
    if getattr(a, "added", ()):
        # comparisons only this sensitivity analysis uses (imputed SDs, another measure)
        out["added_comparisons"] = [c.to_dict() for c in a.added]
    return out


def run_to_dict(run: RunResult) -> dict:
    """Every number of a run, JSON-ready (the content of results.json)."""
    proto = run.protocol
    loo = None
    if run.leave_one_out is not None:
        L = run.leave_one_out
        loo = {"omitted": [c.key for c in run.comparisons]}
        for k in ("estimate", "se", "ci_lb", "ci_ub", "pval", "tau2", "I2", "Q", "Q_p"):
            loo[k] = _plain(getattr(L, k))
    cum = None
    if run.cumulative is not None:
        C = run.cumulative
        order = [int(i) for i in C.order]
        cum = {"added": [run.comparisons[i].key for i in order],
               "year": [run.comparisons[i].year for i in order]}
        for k in ("estimate", "se", "ci_lb", "ci_ub", "pval", "tau2", "I2", "Q", "Q_p"):
            cum[k] = _plain(getattr(C, k))
    small = dict(run.small_study)
    if small.get("assessed"):
        eg, tf = small.pop("egger"), small.pop("trimfill")
        small["egger"] = {"test": "Egger regression (metafor regtest model='lm', predictor sei)",
                          "stat": eg.stat, "pval": eg.pval, "df": eg.df,
                          "intercept": float(eg.beta[0]), "slope": float(eg.beta[1])}
        small["trimfill"] = {"estimator": tf.estimator, "side": tf.side, "k0": tf.k0,
                             "yi_fill": _plain(tf.yi_fill), "vi_fill": _plain(tf.vi_fill),
                             "estimate": float(tf.fit.beta[0, 0]),
                             "ci_lb": float(tf.fit.ci_lb[0, 0]),
                             "ci_ub": float(tf.fit.ci_ub[0, 0])}
    out = {
        "protocol": proto.model_dump(mode="json"),
        "conventions": run.main.result.overall.conventions if run.main.result else {},
        "studies": list(run.studies),
        "comparisons": [c.to_dict() for c in run.comparisons],
        "main": _analysis(run.main),
        "strata": [_analysis(a) for a in run.strata],
        "meta_regression": [{"moderator": name, "note": note, "comparisons": list(keys),
                             "result": reg.to_dict() if reg is not None else None}
                            for name, reg, note, keys in run.regressions],
        "sensitivity": [_analysis(a) for a in run.sensitivity],
        "leave_one_out": loo,
        "cumulative": cum,
        "small_study": small,
        "adverse_events": _analysis(run.adverse_events) if run.adverse_events else None,
        "claims": [claims_text.verdict_dict(v) for v in run.claims],
        # the one verdict rule every claim above was judged by (protocols/README.md)
        "verdict_rule": {"id": claims_mod.RULE_ID, "text": claims_text.RULE_TEXT},
    }
    if getattr(run, "swim", None) is not None:
        out["swim"] = run.swim
    return _plain(out)


def dumps(obj: Any) -> str:
    """JSON text as every output file writes it: indented, UTF-8, no NaN, a final newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ----------------------------------------------------------------------------
# claims.md


def claims_markdown(run: RunResult) -> str:
    """claims.md of one run (the RunResult's protocol and verdicts)."""
    return claims_text.claims_markdown(run.protocol, run.claims)


# ----------------------------------------------------------------------------
# manifest


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(inputs: list[Path], protocol_path: Path, root: Path | None = None,
             hashes: dict | None = None) -> dict:
    """The manifest of one protocol's outputs.

    ``hashes`` (path -> sha256), when given, is filled and reused: one run
    writes a manifest per protocol over the same input files, which are
    hashed once (1,000 study files: ~0.3 s each time).
    """
    from importlib import metadata

    if hashes is None:
        hashes = {}

    def digest(p):
        if p not in hashes:
            hashes[p] = sha256(p)
        return hashes[p]

    import metaanalysis

    versions = {}
    for dep in DEPENDENCIES:
        try:
            versions[dep] = metadata.version(dep)
        except metadata.PackageNotFoundError:
            versions[dep] = None

    def rel(p):
        p = Path(p).resolve()
        try:
            return str(p.relative_to(root.resolve())) if root else p.name
        except ValueError:
            return p.name

    return {
        "package": {"name": "meta", "version": metaanalysis.__version__},
        "python": platform.python_version(),
        "dependencies": versions,
        "protocol": {"file": rel(protocol_path), "sha256": digest(protocol_path)},
        "inputs": [{"file": rel(p), "sha256": digest(p)} for p in sorted(inputs, key=lambda q: rel(q))],
        "note": "Same inputs and versions give byte-identical JSON and CSV outputs.",
    }


# ----------------------------------------------------------------------------
# the output folder: safe names, one writer at a time, atomic replacement
#
# Layout of ``--out``: ``<protocol id>/`` per protocol (the current full
# outputs), ``.only/<protocol id>-<claim id>/`` for the last ``--only`` run,
# and, while a run is writing, ``.meta-run.lock`` plus ``.<name>.tmp-<pid>/``
# folders. Everything whose name starts with "." is the run's own bookkeeping:
# never read as outputs, removed (or recovered) by the next run.

#: Ids that become folder names: no "/", no leading "." (so no "..").
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: Longest id used as a folder name (file systems allow 255 bytes; the
#: temporary names add a prefix and a pid).
MAX_NAME = 200

LOCK_NAME = ".meta-run.lock"
ONLY_DIR = ".only"

#: What a killed run can leave beside a target: its temporary folder or, when
#: it died between the two renames of a non-atomic swap, the previous folder.
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-\d+")


def check_name(name: str, what: str) -> str:
    """``name`` if it is safe as one folder name inside ``--out``, else MetaError."""
    from metaanalysis.errors import MetaError

    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise MetaError(f"{what} {name!r} cannot name an output folder: use letters, digits, "
                        f"'.', '_' and '-', starting with a letter or digit (at most {MAX_NAME})")
    return name


def check_inside(root: Path, path: Path) -> Path:
    """``path`` resolved; MetaError unless it lies inside ``root`` (resolved)."""
    from metaanalysis.errors import MetaError

    r, q = Path(root).resolve(), Path(path).resolve()
    if q != r and r not in q.parents:
        raise MetaError(f"{path}: refused to write outside the output folder {root}")
    return q


def remove(path: Path) -> None:
    """Remove a file, symlink or folder tree (never following a symlink)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _fsync_path(path: Path, directory: bool) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # e.g. a directory cannot be opened on this platform
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file, then every folder (deepest first), under ``root``."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = Path(dirpath) / name
            if not p.is_symlink():
                _fsync_path(p, directory=False)
        _fsync_path(Path(dirpath), directory=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE).

    False when the platform or file system cannot; the caller then falls back
    to two renames.
    """
    import errno
    import sys

    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    AT_FDCWD, RENAME_EXCHANGE = -100, 2  # from <fcntl.h> and <linux/fs.h>
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, target: Path) -> None:
    """Put the complete folder ``tmp`` at ``target``; the old one is removed.

    At every instant either the old or the new folder is at ``target`` when
    the exchange is atomic. Otherwise the old folder is first renamed to
    ``.<name>.old-<pid>``; a crash between the two renames leaves it there,
    and the next run puts it back (:func:`recover`).
    """
    from metaanalysis.errors import MetaError

    parent = target.parent
    if not target.exists() and not target.is_symlink():
        os.rename(tmp, target)
        _fsync_path(parent, directory=True)
        return
    if target.is_symlink() or not target.is_dir():
        raise MetaError(f"{target}: exists and is not a folder; move it away first")
    if _exchange(tmp, target):
        _fsync_path(parent, directory=True)
        remove(tmp)  # now the old folder
        return
    backup = parent / f".{target.name}.old-{os.getpid()}"
    remove(backup)
    os.rename(target, backup)
    try:
        os.rename(tmp, target)
    except BaseException:
        if not target.exists():
            os.rename(backup, target)
        raise
    _fsync_path(parent, directory=True)
    remove(backup)


def write_atomically(target: Path, files: dict[str, str | bytes],
                     producers: Iterable[Callable[[Path], object]] = (), *,
                     root: Path | None = None) -> None:
    """Write ``files`` (relative name -> content) into ``target`` atomically.

    ``producers`` are callables ``f(tmpdir)`` that write more files (figures,
    reports) into the temporary folder. Everything is fsynced before the
    folder replaces ``target``. If anything fails, ``target`` is left as it
    was and the temporary folder is removed. ``root`` (default: the parent)
    is the output folder: every path written must resolve inside it.
    """
    target = Path(target)
    tmp = begin_atomically(target, root=root)
    try:
        write_files(tmp, files)
        for produce in producers:
            produce(tmp)
        finish_atomically(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def begin_atomically(target: Path, *, root: Path | None = None) -> Path:
    """The empty temporary folder that :func:`finish_atomically` will put at ``target``.

    The two halves of :func:`write_atomically`, for a caller that fills
    several folders at once (``meta run`` draws every protocol's figures in
    one pool): on failure it must remove the temporary folders itself.
    """
    target = Path(target)
    root = Path(root) if root is not None else target.parent
    check_name(target.name, "output folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    check_inside(root, target)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    remove(tmp)
    tmp.mkdir()
    return tmp


def write_files(folder: Path, files: dict[str, str | bytes | Path]) -> None:
    """Write ``files`` (relative name -> text, bytes, or a file to copy) into
    ``folder``, never outside it."""
    folder = Path(folder)
    for name, content in files.items():
        p = folder / name
        check_inside(folder, p)
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        elif isinstance(content, Path):
            shutil.copyfile(content, p)
        else:
            p.write_text(content, encoding="utf-8")


def finish_atomically(tmp: Path, target: Path) -> None:
    """fsync the complete folder ``tmp`` and swap it in at ``target``."""
    fsync_tree(tmp)
    _swap_in(Path(tmp), Path(target))


def recover(folder: Path) -> None:
    """Clean what killed runs left in ``folder`` (call it holding the lock).

    A ``.<name>.old-<pid>`` folder whose ``<name>`` is missing is the previous
    outputs of a run killed between two renames: it goes back in place.
    Every other leftover (temporary folders, old folders already replaced) is
    removed, so nothing half-written is ever read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        m = _LEFTOVER.fullmatch(entry.name)
        if not m:
            continue
        target = folder / m["name"]
        if (m["kind"] == "old" and entry.is_dir() and not entry.is_symlink()
                and not target.exists() and not target.is_symlink()):
            os.rename(entry, target)
        else:
            remove(entry)
    _fsync_path(folder, directory=True)


class OutputLock:
    """An exclusive lock on one output folder, held for a whole ``meta run``.

    ``fcntl.flock`` on ``<out>/.meta-run.lock``: the kernel releases it when
    the process dies, so a killed run never blocks the next one. A second
    run refuses at once (MetaError) instead of mixing its folders with the
    first run's. The lock file is removed when the run ends, so it never
    shows among the outputs.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.fd: int | None = None

    def __enter__(self) -> "OutputLock":
        from metaanalysis.errors import MetaError

        try:
            import fcntl
        except ImportError:  # not a POSIX system: no lock, as before
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise MetaError(f"{self.out}: another `meta run` is writing to this folder; "
                                "wait for it to finish, or pass another --out") from None
            # the run that held the lock may have removed the file meanwhile:
            # then this lock is on a name nobody else will open; start again
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                return self
            os.close(fd)

    def __exit__(self, *exc) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)  # still holding the lock: see __enter__
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


# ----------------------------------------------------------------------------
# the output cache: files of earlier runs, keyed by the content of their inputs
#
# ``<out>/.cache/<key>/`` holds the files one job (a figure, the reports of a
# protocol) wrote, where ``<key>`` is the SHA-256 of everything the job's
# output is a function of: its arguments (:func:`fingerprint`), the source
# of this package and the versions of the libraries that draw. Never a
# timestamp: a file edited back to what it was hits the cache again. The
# folder's name starts with "." so it is the run's own bookkeeping (never
# read as outputs, ignored by git as ``/outputs/.*``) and it sits beside the
# protocol folders, so it survives their atomic swap.

CACHE_DIR = ".cache"

#: A cache entry's folder name: a SHA-256 in hex.
_KEY = re.compile(r"[0-9a-f]{64}")


class _Unhashable(TypeError):
    pass


def fingerprint(*objs: Any) -> str | None:
    """SHA-256 (hex) of the content of ``objs``, or None when some part has no stable content.

    Walks numbers, text, arrays, containers, dataclasses and plain objects;
    floats by their exact bits, arrays by dtype, shape and bytes, dicts in
    their order (which can change a drawing), sets sorted. Functions by
    module and name (their code is in :func:`code_fingerprint`); a closure
    or lambda, whose name does not say what it computes, makes it None, as
    does anything else without stable content (a file handle, a random
    generator): such a job is never cached, rather than cached under a key
    that misses an input.
    Many keys over shared objects: :class:`Fingerprinter`.
    """
    return Fingerprinter()(*objs)


def _tag(h, t: str, payload: bytes = b"") -> None:
    """Feed ``h`` one value: its kind ``t``, its length and its bytes."""
    h.update(t.encode() + b":" + str(len(payload)).encode() + b":" + payload)


class Fingerprinter:
    """:func:`fingerprint`, remembering the digest of every container it has walked.

    Every container (list, tuple, dict, dataclass, object) enters its
    parent's hash as its own SHA-256, so a container walked before can
    enter as the digest remembered, and the key is the same either way.
    The pages of a figure share their data (one forest plot of 1,000 trials
    is 15 jobs over the same rows): walked once, not once a page, which
    made keying quadratic in the number of trials (5.8 s of CPU at 1,000).

    Use one instance while the objects it has seen are not changed (one
    planning pass of ``meta run``): it remembers them by identity, and
    holds them so no identity is reused.
    """

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, bytes]] = {}

    def __call__(self, *objs: Any) -> str | None:
        h = hashlib.sha256()
        try:
            for obj in objs:
                self._feed(h, obj, set())
        except (_Unhashable, RecursionError):
            return None
        return h.hexdigest()

    def _feed(self, h, obj, path: set) -> None:  # noqa: C901 (one case per kind of value)
        tag = functools.partial(_tag, h)
        if obj is None or isinstance(obj, (bool, np.bool_)):
            tag("b", repr(None if obj is None else bool(obj)).encode())
        elif isinstance(obj, (int, np.integer)) and not isinstance(obj, enum.Enum):
            tag("i", str(int(obj)).encode())
        elif isinstance(obj, (float, np.floating)):
            tag("f", float(obj).hex().encode())
        elif isinstance(obj, complex):
            tag("c", f"{obj.real.hex()},{obj.imag.hex()}".encode())
        elif isinstance(obj, str):
            tag("s", obj.encode("utf-8", "surrogatepass"))
        elif isinstance(obj, bytes):
            tag("y", obj)
        elif isinstance(obj, enum.Enum):
            tag("e", f"{type(obj).__module__}.{type(obj).__qualname__}".encode())
            self._feed(h, obj.value, path)
        elif isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type)):
            if getattr(obj, "__closure__", None) or "<" in obj.__qualname__:
                # a closure or lambda: its name does not say what it computes
                raise _Unhashable(obj.__qualname__)
            tag("F", f"{obj.__module__}.{obj.__qualname__}".encode())
        elif isinstance(obj, np.ndarray):
            tag("a", f"{obj.dtype.str}{obj.shape}".encode())
            if obj.dtype.hasobject:
                for x in obj.ravel():
                    self._feed(h, x, path)
            else:
                h.update(np.ascontiguousarray(obj).tobytes())
        elif isinstance(obj, (list, tuple)) and obj and all(type(x) is float for x in obj):
            # a column of numbers (per-study values): its bits in one go
            tag("L" if isinstance(obj, list) else "T", np.array(obj, dtype=float).tobytes())
        elif isinstance(obj, (set, frozenset)):
            parts = sorted(self(x) or "" for x in obj)
            if "" in parts:
                raise _Unhashable("set member")
            tag("S", ",".join(parts).encode())
        else:
            seen = self._seen.get(id(obj))
            if seen is None:
                if id(obj) in path:
                    raise _Unhashable("cycle")
                path.add(id(obj))
                try:
                    sub = hashlib.sha256()
                    self._feed_container(sub, obj, path)
                finally:
                    path.discard(id(obj))
                seen = self._seen[id(obj)] = (obj, sub.digest())
            tag("H", seen[1])

    def _feed_container(self, h, obj, path: set) -> None:
        tag = functools.partial(_tag, h)
        if isinstance(obj, (list, tuple)):
            tag("l" if isinstance(obj, list) else "t", str(len(obj)).encode())
            for x in obj:
                self._feed(h, x, path)
        elif isinstance(obj, (dict, types.MappingProxyType)):  # the models' frozen mappings
            tag("d", str(len(obj)).encode())
            for k, v in obj.items():
                self._feed(h, k, path)
                self._feed(h, v, path)
        elif dataclasses.is_dataclass(obj):
            tag("D", f"{type(obj).__module__}.{type(obj).__qualname__}".encode())
            for f in dataclasses.fields(obj):
                self._feed(h, f.name, path)
                self._feed(h, getattr(obj, f.name), path)
        elif hasattr(obj, "__dict__") and type(obj).__module__.startswith("metaanalysis"):
            # this package's plain classes and pydantic models: their attributes
            tag("O", f"{type(obj).__module__}.{type(obj).__qualname__}".encode())
            self._feed(h, dict(vars(obj)), path)
        else:
            raise _Unhashable(type(obj).__qualname__)


_CODE: str | None = None


def code_fingerprint() -> str:
    """SHA-256 of this package's source and templates, and of what computes, draws and renders.

    Part of every cache key: a new version of any of them redraws everything.
    """
    global _CODE
    if _CODE is None:
        from importlib import metadata

        import metaanalysis

        h = hashlib.sha256()
        pkg = Path(metaanalysis.__file__).resolve().parent
        for p in sorted(pkg.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".j2", ".css", ".js", ".json", ".yaml", ".ttf"):
                h.update(str(p.relative_to(pkg)).encode() + b"\0" + p.read_bytes() + b"\0")
        h.update(platform.python_version().encode())
        for dep in ("numpy", "scipy", "pymare", "matplotlib", "fonttools", "jinja2", "markupsafe"):
            try:
                h.update(f"{dep}={metadata.version(dep)}".encode())
            except metadata.PackageNotFoundError:  # the name alone
                h.update(dep.encode())
        _CODE = h.hexdigest()
    return _CODE


class OutputCache:
    """``<out>/.cache``: files written by earlier runs, by content key.

    Use it holding the output lock (:class:`OutputLock`). Workers may
    :meth:`put` concurrently: each entry is written into its own temporary
    folder and renamed into place, so a reader never sees half an entry.
    Each entry lists the SHA-256 of its files (:data:`SUMS`); an entry whose
    files are missing, changed or damaged is a miss, removed so that the
    next :meth:`put` writes it anew (a damaged cache never reaches the
    outputs, nor fails a run twice).
    """

    #: The file of an entry that lists its files' SHA-256.
    SUMS = ".sha256.json"

    def __init__(self, out: Path):
        self.root = Path(out) / CACHE_DIR

    def _entry(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / key

    def _verified(self, entry: Path, names: Iterable[str]) -> dict[str, bytes] | None:
        """The files ``names`` of ``entry`` as bytes when each matches its listed SHA-256
        (never through a symlink: an entry is a folder of files this cache wrote)."""
        if entry.is_symlink():
            return None
        try:
            sums = json.loads((entry / self.SUMS).read_text(encoding="utf-8"))
            out = {}
            for n in names:
                p = entry / n
                if p.is_symlink():
                    return None
                data = p.read_bytes()
                if not isinstance(sums, dict) or sums.get(n) != hashlib.sha256(data).hexdigest():
                    return None
                out[n] = data
        except (OSError, ValueError):
            return None
        return out

    def read(self, key: str | None, names: Iterable[str]) -> dict[str, bytes] | None:
        """The entry's files as bytes, or None on a miss (a damaged entry is removed)."""
        if key is None:
            return None
        entry = self._entry(key)
        out = self._verified(entry, list(names))
        if out is None:
            if entry.exists() or entry.is_symlink():
                remove(entry)
            return None
        os.utime(entry)  # recently used: kept by prune
        return out

    def get(self, key: str | None, names: Iterable[str], dest: Path) -> bool:
        """Copy the entry's files ``names`` into ``dest``; False (nothing copied) on a miss."""
        files = self.read(key, names)
        if files is None:
            return False
        for n, data in files.items():
            d = Path(dest) / n
            check_inside(dest, d)
            d.parent.mkdir(parents=True, exist_ok=True)
            d.write_bytes(data)
        return True

    def put(self, key: str | None, files: dict[str, bytes | Path]) -> None:
        """Store ``files`` (name -> bytes, or a path to copy) under ``key``."""
        if key is None:
            return
        entry = self._entry(key)
        if self._verified(entry, list(files)) is not None:
            return  # another worker stored the same key first
        if entry.exists() or entry.is_symlink():
            remove(entry)  # damaged: written anew
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{key}.tmp-{os.getpid()}"
        remove(tmp)
        tmp.mkdir()
        try:
            data = {n: (c.read_bytes() if isinstance(c, Path) else c) for n, c in files.items()}
            sums = {n: hashlib.sha256(b).hexdigest() for n, b in data.items()}
            write_files(tmp, {**data, self.SUMS: json.dumps(sums, sort_keys=True).encode()})
            try:
                os.rename(tmp, entry)
            except OSError:  # another worker stored the same key first
                pass
        finally:
            remove(tmp)

    def prune(self, keep: Iterable[str | None]) -> None:
        """Remove every entry not in ``keep`` (the keys this run used) and any leftover."""
        if not self.root.is_dir():
            return
        keep = set(k for k in keep if k)
        for entry in self.root.iterdir():
            if entry.name not in keep:
                remove(entry)


class CallCache:
    """Results of pure functions by content, in ``<out>/.cache``: an
    :data:`metaanalysis.analysis.pipeline.Memo`.

    ``cache(fn, *args)`` returns ``fn(*args)``, from an earlier run when the
    code (:func:`code_fingerprint`), the function and the arguments' content
    (:func:`fingerprint`) match. The SWiM Stouffer test goes through it: its
    pymare import (pandas, sympy, scipy.stats) costs more than the rest of a
    rerun, and its inputs rarely change. Results are pickled floats, so a
    hit is the very value the call returned. With ``store=False`` (``--only``
    runs) it reads but never writes. :attr:`used` lists the keys of this run,
    for :meth:`OutputCache.prune`.
    """

    ENTRY = "value.pickle"
    #: Stored with the key beside the value: a pickle that is not this call's is a miss.
    TAG = "metaanalysis.write.CallCache"

    def __init__(self, out: Path, code: str | None = None, store: bool = True):
        self.cache = OutputCache(out)
        self.code = code or code_fingerprint()
        self.store = store
        self.used: list[str] = []

    def __call__(self, fn: Any, *args: Any) -> Any:
        import pickle

        key = fingerprint(self.code, "call", fn, args)
        hit = self.cache.read(key, [self.ENTRY])
        if hit is not None:
            try:
                tag, stored_key, value = pickle.loads(hit[self.ENTRY])
            except Exception:  # noqa: BLE001 - a damaged or foreign entry is a miss
                tag = stored_key = None
            if tag == self.TAG and stored_key == key:  # this call's own result, nothing else
                self.used.append(key)
                return value
        value = fn(*args)
        if key is not None and self.store:
            try:
                data = pickle.dumps((self.TAG, key, value), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - not picklable: called again next time
                return value
            self.cache.put(key, {self.ENTRY: data})  # a damaged entry is replaced
            self.used.append(key)
        return value


class StudyCache:
    """Parsed, valid study files by content, for ``load_studies(cache=...)``.

    A file's key is the SHA-256 of the package's code (:func:`code_fingerprint`),
    its name (a study's id must match it), its bytes and the strain registry
    it is checked against, never a timestamp. A hit skips YAML parsing and model
    validation (~10 ms a file; 1 s for the bundled data, most of a rerun's
    loading). Entries are :class:`OutputCache` entries (``study.pickle``)
    of the user's own earlier runs in the output folder.

    Stores are held back until :meth:`flush` (``meta run`` calls it holding
    the output lock once every input is valid): a run refused for bad input
    writes nothing. :attr:`used` lists the keys of every valid file seen, for
    :meth:`OutputCache.prune`.
    """

    ENTRY = "study.pickle"

    def __init__(self, out: Path, code: str | None = None):
        self.cache = OutputCache(out)
        self.code = code or code_fingerprint()
        self.used: list[str] = []
        self._pending: dict[str, bytes] = {}
        self._registries: dict[int, tuple[object, str | None]] = {}

    def key(self, file: Path, registry: Any, registry_path: str) -> str | None:
        try:
            raw = Path(file).read_bytes()
        except OSError:
            return None
        reg = self._registries.get(id(registry))
        if reg is None or reg[0] is not registry:
            # one registry for thousands of files: hashed once
            reg = self._registries[id(registry)] = (registry, fingerprint(registry))
        if reg[1] is None:
            return None
        # the file's name, not its folder: its id must match the name, and
        # problems name the whole path, which get() puts back on a hit
        return fingerprint(self.code, "study", Path(file).name, raw, reg[1], registry_path)

    def get(self, file: Path, registry: Any, registry_path: str) -> tuple[Any, Any] | None:
        """``(doc, study)`` of an earlier parse of these bytes, or None."""
        import pickle

        key = self.key(file, registry, registry_path)
        hit = self.cache.read(key, [self.ENTRY])
        if hit is None:
            return None
        try:
            doc, study = pickle.loads(hit[self.ENTRY])
        except Exception:  # noqa: BLE001 - a damaged or foreign entry is a miss
            return None
        self.used.append(key)
        if doc.file != str(file):  # the same bytes in another folder
            doc = dataclasses.replace(doc, file=str(file))
        return doc, study

    def put(self, file: Path, registry: Any, registry_path: str, parsed: tuple[Any, Any]) -> None:
        """Hold ``parsed`` = ``(doc, study)`` for :meth:`flush`."""
        import copyreg
        import io
        import pickle
        from types import MappingProxyType

        key = self.key(file, registry, registry_path)
        if key is None:
            return
        buf = io.BytesIO()
        pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
        # the frozen models hold mappingproxy views, which do not pickle: as the dict they wrap
        pickler.dispatch_table = copyreg.dispatch_table.copy()
        pickler.dispatch_table[MappingProxyType] = lambda m: (_mapping_proxy, (dict(m),))
        try:
            pickler.dump(parsed)
        except Exception:  # noqa: BLE001 - not picklable: parsed again next time
            return
        self._pending[key] = buf.getvalue()
        self.used.append(key)

    def flush(self) -> None:
        """Store what :meth:`put` held back (call it holding the output lock)."""
        for key, blob in self._pending.items():
            self.cache.put(key, {self.ENTRY: blob})
        self._pending.clear()


def _mapping_proxy(d: dict):
    from types import MappingProxyType

    return MappingProxyType(d)
