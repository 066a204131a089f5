"""``meta run``: load, validate, run every protocol, write outputs atomically."""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from metaanalysis.errors import MetaError


class ValidationFailed(MetaError):
    """Studies or protocols have problems; ``problems`` lists them all."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the inputs:\n"
                         + "\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class ProtocolOutput:
    protocol_id: str
    out_dir: Path
    claims: tuple[dict, ...]
    k: int


def find_protocols(paths) -> list[Path]:
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


def load_inputs(protocol_paths, studies_dir):
    from metaanalysis.load import find_registry, load_registry, load_studies, study_files
    from metaanalysis.protocol import load_protocol

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
                                     registry=registry if registry is not None else reg_path)
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


def run_all(protocols=("protocols",), studies_dir="studies", out_dir="outputs", *, only=None,
            progress=None, all_formats=False) -> list[ProtocolOutput]:
    """Run every protocol and write ``out_dir/<protocol id>/``.

    ``progress(step_text)`` is called between stages (the CLI shows a bar).
    """
    from metaanalysis import write

    tick = progress or (lambda text: None)
    out_dir = Path(out_dir)
    _check_out(out_dir)
    paths = find_protocols(protocols)
    tick("loading and validating inputs")
    studies, registry, protos, inputs = load_inputs(paths, studies_dir)
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
        global _JOB
        _JOB = (chosen, targets, studies, registry, inputs, out_dir, Path.cwd(), only, tick,
                all_formats)
        workers = min(len(chosen), os.cpu_count() or 1, 4)
        if workers > 1 and "fork" in mp.get_all_start_methods():
            # Figures dominate the run time; protocols are independent, so each
            # gets its own process (forked: the loaded studies are inherited).
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                return list(pool.map(_run_one, range(len(chosen))))
        return [_run_one(i) for i in range(len(chosen))]


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


_JOB = None


def _run_one(i: int) -> ProtocolOutput:
    from metaanalysis import write
    from metaanalysis.pipeline import run_protocol

    chosen, targets, studies, registry, inputs, out_dir, root, only, tick, all_formats = _JOB
    path, proto = chosen[i]
    target = targets[i]
    tick(f"{proto.id}: fitting")
    run = run_protocol(proto, studies, registry, only=only)
    data = write.run_to_dict(run)
    files = {"results.json": write.dumps(data),
             "manifest.json": write.dumps(write.manifest(inputs, path, root)),
             "claims.md": write.claims_markdown(data)}
    files.update(write.tables(data))

    def produce(tmp):
        from metaanalysis.render import figures

        tick(f"{proto.id}: drawing figures")
        index = figures.make_figures(run, tmp, all_formats)
        (Path(tmp) / "figures" / "index.json").write_text(write.dumps(index), encoding="utf-8")
        try:
            from metaanalysis.render import report
        except ImportError:
            return
        tick(f"{proto.id}: writing the report")
        for name, text in report.render_reports(data, index, Path(tmp)).items():
            (Path(tmp) / name).write_text(text, encoding="utf-8")

    write.write_atomically(target, files, producers=(produce,), root=out_dir)
    return ProtocolOutput(proto.id, target, tuple(data["claims"]), len(run.comparisons))
