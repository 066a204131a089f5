"""``meta run``: load, validate, run every protocol, write outputs atomically."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metaanalysis.errors import MetaError


class ValidationFailed(MetaError):
    """Studies or protocols have problems; ``problems`` lists them all."""

    def __init__(self, problems: Iterable[object]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the inputs:\n"
                         + "\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ProtocolOutput:
    protocol_id: str
    out_dir: Path
    claims: tuple[dict, ...]
    k: int


def find_protocols(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The protocol files named, a folder standing for its ``*.yaml`` files (sorted)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(q for q in p.glob("*.yaml")))
        elif p.exists():
            out.append(p)
        else:
            raise MetaError(f"{p}: protocol file not found")
    if not out:
        raise MetaError("no protocol files found")
    # one file named twice (a folder and a file in it) is run once
    return list({q.resolve(): q for q in out}.values())


def load_inputs(protocol_paths: Iterable[str | os.PathLike], studies_dir: str | os.PathLike,
                cache: Any = None) -> tuple[tuple, Any, list[tuple[Path, Any]], list[Path]]:
    """Studies, registry, protocols and input files; ``cache``: parsed study
    files by content (``write.StudyCache``), or None to parse every file."""
    from metaanalysis.studies.load import find_registry, load_registry, load_studies, study_files
    from metaanalysis.analysis.protocol import load_protocol

    studies_dir = Path(studies_dir)
    if not studies_dir.is_dir():
        raise MetaError(f"{studies_dir}: studies folder not found")
    reg_path = find_registry(studies_dir)
    if reg_path is None:
        raise MetaError(f"{studies_dir}: no strains.yaml registry found")
    # the registry is read once and handed to load_studies; when it is broken,
    # load_studies reads it itself and reports its problems with the studies'
    registry, reg_problems = load_registry(reg_path)
    studies, problems = load_studies([studies_dir],
                                     registry=registry if registry is not None else reg_path,
                                     cache=cache)
    problems = (list(reg_problems) if registry is not None else []) + list(problems)
    protos = []
    for path in protocol_paths:
        proto, probs = load_protocol(path, studies=None if problems else studies, registry=registry)
        problems.extend(probs)
        if proto is not None:
            protos.append((path, proto))
    if problems:
        raise ValidationFailed(problems)
    files, _ = study_files([studies_dir])
    inputs = list(files) + [Path(reg_path)]
    return studies, registry, protos, inputs


def run_all(protocols: Iterable[str | os.PathLike] = ("protocols",),
            studies_dir: str | os.PathLike = "studies", out_dir: str | os.PathLike = "outputs", *,
            only: str | None = None, progress: Callable[[str], object] | None = None,
            all_formats: bool = False, pdf: bool = False) -> list[ProtocolOutput]:
    """Run every protocol and write ``out_dir/<protocol id>/``.

    ``progress(step_text)`` is called between stages (the CLI shows a bar).
    Figures are SVG (the main forest plot also a 300 dpi PNG); ``pdf`` adds
    a PDF of the main forest plot, ``all_formats`` all three of every figure.
    """
    from metaanalysis import write

    tick = progress or (lambda text: None)
    out_dir = Path(out_dir)
    _check_out(out_dir)
    paths = find_protocols(protocols)
    tick("loading and validating inputs")
    # parsed study files come from <out>/.cache when their bytes are unchanged
    parsed = write.StudyCache(out_dir)
    studies, registry, protos, inputs = load_inputs(paths, studies_dir, parsed)
    _refuse_duplicate_ids(protos)
    if only and not any(only in [c.id for c in p.claims] + [c.id for c in p.out_of_scope]
                        for _, p in protos):
        raise MetaError(f"claim '{only}' is not in any protocol")
    chosen = [(path, proto) for path, proto in protos
              if not only or only in [c.id for c in proto.claims] + [c.id for c in proto.out_of_scope]]
    targets = [_target(out_dir, proto.id, only) for _, proto in chosen]
    for t in targets:
        if t.is_symlink() or (t.exists() and not t.is_dir()):
            raise MetaError(f"{t}: exists and is not a folder; move it away first")
    out_dir.mkdir(parents=True, exist_ok=True)
    with write.OutputLock(out_dir):
        # under the lock no other run is writing here: whatever killed runs
        # left is theirs, and the last --only outputs are stale once we write
        write.recover(out_dir)
        write.remove(out_dir / write.ONLY_DIR)
        return _run_chosen(chosen, targets, studies, registry, inputs, out_dir, only, tick,
                           all_formats, pdf, parsed)


#: Largest pool for drawing figures: beyond 4 processes the forks' memory
#: costs more than the few remaining figures gain.
MAX_WORKERS = 4

#: The files of a protocol's reports (render/report.py), cached as one entry.
REPORTS_ENTRY = "reports.json"


def _import_drawing(draw: list) -> None:
    """Import everything the workers use to draw ``draw``, once, before any fork.

    Forked workers inherit the imported modules (and matplotlib's font
    cache) instead of importing them again each (1-3 s a worker). Called
    only when something is to be drawn: a run served from the cache never
    imports the drawing backends, and one that writes no PDF not that one.
    """
    from metaanalysis.render import figures

    figures.preload({f for task in draw for f in task[0].formats})


def _run_chosen(chosen, targets, studies, registry, inputs, out_dir, only, tick, all_formats,
                pdf=False, parsed=None):
    """Fit every protocol, draw all their figures over the cores, then swap in.

    The fits are cheap and run here; the figures are most of a run's CPU and
    are independent, so they (not the protocols) are spread over a pool of
    forked workers, each drawing one figure at a time, the costliest first.
    The first protocol's figures are drawn while the later protocols are
    fitted (``EARLY_MIN_FIGURES``), the rest once all are.
    Every figure and report whose inputs (content hash) match an earlier
    run's is copied from ``<out>/.cache`` instead. Every protocol's folder
    is written complete into a temporary folder and swapped in only when
    all of them are, so a failure anywhere leaves all previous outputs.
    """
    from metaanalysis import write
    from metaanalysis.analysis.pipeline import run_protocol
    from metaanalysis.render import figures
    from metaanalysis.render import tables as render_tables

    root = Path.cwd()
    cache = write.OutputCache(out_dir)
    code = write.code_fingerprint()
    # pure, costly calls (the SWiM Stouffer test and its pymare import) by content
    memo = write.CallCache(out_dir, code, store=not only)
    # one walk of the data the figure jobs share (a figure's pages, a protocol's plots)
    fingerprint = write.Fingerprinter()
    used: list[str | None] = []
    hashes: dict = {}  # input file -> sha256, for every protocol's manifest
    tmps: list[Path] = []
    outputs = []
    early = None  # figures of the first protocols, drawn while the later ones are fitted
    try:
        plans = []
        draw = []
        for n_fitted, ((path, proto), target) in enumerate(zip(chosen, targets), start=1):
            tick(f"{proto.id}: fitting")
            run = run_protocol(proto, studies, registry, only=only, memo=memo)
            data = write.run_to_dict(run)
            results_json = write.dumps(data)
            files = {"results.json": results_json,
                     "manifest.json": write.dumps(write.manifest(inputs, path, root, hashes)),
                     "claims.md": write.claims_markdown(run)}
            files.update(render_tables.tables(run))  # render takes the run, never ``data``
            tmp = write.begin_atomically(target, root=out_dir)
            tmps.append(tmp)
            write.write_files(tmp, files)
            jobs = figures.plan_figures(run, all_formats, pdf)
            if only:
                needed = _figures_for(proto, only)
                jobs = [job for job in jobs if job.base_id in needed]  # pages of a figure too (layout)
            keys = []
            for job in jobs:
                key = fingerprint(code, "figure", job)
                keys.append(key)
                names = [f"{job.id}.{f}" for f in job.formats]
                if not cache.get(key, names, tmp / "figures"):
                    draw.append((job, tmp / "figures", out_dir, key if not only else None))
            plans.append((run, results_json, jobs, keys, tmp))
            outputs.append(ProtocolOutput(proto.id, target, tuple(data["claims"]),
                                          len(run.comparisons)))
            used.extend(keys)
            if (early is None and n_fitted < len(chosen) and len(draw) >= EARLY_MIN_FIGURES
                    and (os.cpu_count() or 1) > 1):
                # the other cores draw these while this one fits the rest (a
                # SWiM block's pymare import among it): one pool at a time
                tick(f"drawing {len(draw)} figures")
                _import_drawing(draw)
                early = _Pool(_draw_task, _costliest_first(draw))
                draw = []
        if early is not None:
            early.wait()
        tick(f"drawing {len(draw)} figures")
        if draw:
            _import_drawing(draw)
        _pool_map(_draw_task, _costliest_first(draw))

        reports = []
        for run, results_json, jobs, keys, tmp in plans:
            index = [job.index_entry() for job in jobs]
            (tmp / "figures").mkdir(parents=True, exist_ok=True)
            (tmp / "figures" / "index.json").write_text(write.dumps(index), encoding="utf-8")
            # the reports read the SVG files: their keys stand for their bytes;
            # results.json's text stands for the run's results (hashed in one go)
            key = (fingerprint(code, "reports", results_json, index, keys)
                   if all(keys) else None)
            used.append(key)
            hit = cache.read(key, [REPORTS_ENTRY])
            texts = _report_texts(hit[REPORTS_ENTRY]) if hit is not None else None
            if texts is not None:
                write.write_files(tmp, texts)
            else:
                # the key stands for the serialized data; the reports take the run itself
                reports.append((run, index, tmp, out_dir, key if not only else None))
        # compiled templates: an entry of their own, kept while the code is the same
        templates_key = fingerprint(code, "report templates") if not only else None
        templates_dir = cache.root / templates_key if templates_key else None
        if templates_dir is not None and (templates_dir.is_symlink() or templates_dir.exists()
                                          and not templates_dir.is_dir()):
            write.remove(templates_dir)  # not our folder: made anew
        if reports and _has_reports(templates_dir):
            tick("writing the reports")
            _pool_map(_report_task, reports)
        for tmp, target in zip(tmps, targets):
            write.finish_atomically(tmp, target)
    except BaseException:
        if early is not None:
            early.abort()  # no worker may write into a folder removed below
        for tmp in tmps:
            if tmp.exists():
                write.remove(tmp)
        raise
    if not only:
        used.append(templates_key)  # kept when no report was due, for the next run that has one
        if parsed is not None:
            parsed.flush()
            used.extend(parsed.used)
        used.extend(memo.used)
        # a full run keeps exactly what it used: the cache never grows past one run
        cache.prune(used)
    return outputs


def _figures_for(proto, claim_id: str) -> set[str]:
    """The figures a ``--only`` run draws: what its one claim is judged on.

    The main forest plot (the pooled estimate every effect claim reads) and,
    for an effect-modification claim, the forest plot of its stratum. A claim
    out of scope is judged on nothing, so it draws nothing.
    """
    claim = next((c for c in proto.claims if c.id == claim_id), None)
    if claim is None:
        return set()
    needed = {"forest_main"}
    if claim.modifier:
        needed.add(f"forest_{claim.modifier}")
    return needed


def _report_texts(raw: bytes) -> dict[str, str] | None:
    """A cached reports entry: {file name: text}, or None when it is not one."""
    import json

    try:
        texts = json.loads(raw)
    except ValueError:
        return None
    if not (isinstance(texts, dict) and all(isinstance(k, str) and isinstance(v, str)
                                            and "/" not in k and not k.startswith(".")
                                            for k, v in texts.items())):
        return None
    return texts


def _has_reports(bytecode_dir: Path | None = None) -> bool:
    """Import the reports and compile their templates (once, before forking
    the workers; from ``bytecode_dir`` when an earlier run kept them there);
    False without the report extra."""
    try:
        from metaanalysis.render import report
    except ImportError:  # the report extra (jinja2) is optional
        return False
    report.preload(bytecode_dir)
    return True


#: Figures a protocol must leave to draw for its pool to start before the
#: next protocol is fitted: a pool of one runs in this process and would
#: hold up the fitting it was to overlap.
EARLY_MIN_FIGURES = 2


def _costliest_first(draw: list) -> list:
    """Draw tasks, more formats then more rows first, so no worker is left
    drawing a big forest plot alone at the end."""
    return sorted(draw, key=lambda t: (-len(t[0].formats), -_rows(t[0])))


def _rows(job) -> int:
    """Rough size of a figure: the length of its longest argument."""
    return max([len(a) for a in job.args if hasattr(a, "__len__") and not isinstance(a, str)]
               + [0])


_TASKS: list = []


class _Pool:
    """``[fn(t) for t in tasks]`` over forked workers, started now and
    collected by :meth:`wait`; run here at once when there is one core, one
    task or no fork.

    Workers are forked when it starts, inheriting ``tasks`` (nothing is
    pickled but an index) and everything imported. Only one pool runs at a
    time: a fork while another pool's threads run could copy a lock they
    hold, so a new pool starts only after :meth:`wait` (or :meth:`abort`)
    has joined the last one's.
    """

    def __init__(self, fn, tasks):
        global _TASKS
        self._pool = None
        self._results: list | None = None
        workers = min(len(tasks), os.cpu_count() or 1, MAX_WORKERS)
        if workers <= 1 or "fork" not in mp.get_all_start_methods():
            self._results = [fn(t) for t in tasks]
            return
        _TASKS = tasks  # inherited by the forks
        try:
            self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("fork"),
                                             initializer=_die_with_parent,
                                             initargs=(os.getpid(),))
            # with fork, every worker is forked at the first submission
            self._it = self._pool.map(_by_index, [(fn, i) for i in range(len(tasks))])
        except BaseException:
            self.abort()
            raise
        finally:
            _TASKS = []

    def wait(self) -> list:
        """The results, in the order of the tasks; a task's exception is raised here."""
        if self._pool is not None:
            try:
                self._results = list(self._it)
            except BaseException:
                self.abort()
                raise
            self._pool.shutdown(wait=True)
            self._pool = None
        return self._results or []

    def abort(self) -> None:
        """Cancel what has not started, wait for what has (a figure at most per worker)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _pool_map(fn, tasks) -> list:
    """``[fn(t) for t in tasks]``, over forked workers when there are cores and tasks to share."""
    return _Pool(fn, tasks).wait()


def _die_with_parent(parent: int) -> None:
    """In a worker: be killed when the run is (Linux PR_SET_PDEATHSIG), and
    leave Ctrl-C to the run.

    A killed run's workers would otherwise go on drawing into its temporary
    folder after the next run has cleaned it up (``write.recover``). Ctrl-C
    reaches every process of the terminal's group: the run stops its pool
    and cleans up, so a worker ignores it rather than print a traceback.
    """
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the run died before the line above
        os._exit(1)


def _by_index(arg):
    fn, i = arg
    return fn(_TASKS[i])


def _draw_task(task) -> None:
    from metaanalysis import write
    from metaanalysis.render import figures

    job, figdir, out_dir, key = task
    paths = figures.draw_figure(job, figdir)
    write.OutputCache(out_dir).put(key, {Path(p).name: Path(p) for p in paths})


def _report_task(task) -> None:
    import json

    from metaanalysis import write
    from metaanalysis.render import report

    run, index, tmp, out_dir, key = task
    texts = report.render_reports(run, index, Path(tmp))
    write.write_files(tmp, texts)
    write.OutputCache(out_dir).put(
        key, {REPORTS_ENTRY: json.dumps(texts, ensure_ascii=False, sort_keys=True).encode()})


def _check_out(out_dir: Path) -> None:
    """Refuse an ``--out`` that can never hold folders, before any work."""
    if out_dir.is_symlink() and not out_dir.exists():
        raise MetaError(f"{out_dir}: --out is a broken symlink")
    if out_dir.exists() and not out_dir.is_dir():
        raise MetaError(f"{out_dir}: --out is a file, expected a folder")
    for parent in out_dir.parents:
        if parent.exists() and not parent.is_dir():
            raise MetaError(f"{parent}: is a file, so --out {out_dir} cannot be created")


def _refuse_duplicate_ids(protos) -> None:
    """Two protocols with one id would write one folder: refuse before writing."""
    seen = {}
    for path, proto in protos:
        if proto.id in seen:
            raise MetaError(f"{path}: protocol id '{proto.id}' is also the id of {seen[proto.id]}; "
                            "each protocol needs its own id (it names its outputs folder)")
        seen[proto.id] = path


def _target(out_dir: Path, protocol_id: str, only: str | None) -> Path:
    """Where a protocol's outputs go; ids are checked as folder names here,
    whatever the protocol loader let through."""
    from metaanalysis import write

    write.check_name(protocol_id, "protocol id")
    if not only:
        return out_dir / protocol_id
    # a single-claim run never touches the full outputs; it replaces the last one
    write.check_name(only, "claim id")
    return out_dir / write.ONLY_DIR / f"{protocol_id}-{only}"
