"""What makes `meta run` fast must not change a byte (issue 14).

- the incremental run (parsed study files, figures and reports from
  ``<out>/.cache``) writes exactly what a clean run writes;
- the content hash that keys the cache changes with every input and is
  None for anything it cannot hash (such a job is drawn, never cached);
- the replacement of scipy.stats.kendalltau (which saved its import) gives
  the same bits;
- PyMARE's Stouffer test (the SWiM block) is kept by content
  (``write.CallCache``): a rerun whose z-scores and weights are unchanged
  never imports pymare, and gets the very bits a call returns.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from metaanalysis.stats import bias, swim
from metaanalysis import runner, write
from metaanalysis.render import figures
from metaanalysis.runner import ValidationFailed, run_all
from metaanalysis.studies import load


def _digest(folder: Path) -> dict:
    """Every output file but the cache: relative path -> sha256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).parts[0] == write.CACHE_DIR}


def test_incremental_run_equals_clean_run(bundled, bundled_run, tmp_path, monkeypatch):
    studies = tmp_path / "studies"
    shutil.copytree(bundled / "studies", studies)
    out = tmp_path / "inc"
    shutil.copytree(bundled_run[1], out)  # a complete earlier run, with its cache
    assert (out / write.CACHE_DIR).is_dir()
    # one study file edited: the prevention protocol's cumulative order changes
    f = studies / "Kalliomaki2001.yaml"
    text = f.read_text(encoding="utf-8")
    assert re.search(r"(?m)^year: 2001$", text)
    f.write_text(re.sub(r"(?m)^year: 2001$", "year: 2002", text), encoding="utf-8")

    drawn = []
    real = figures.draw_figure

    def counting(job, figdir):
        drawn.append(job.id)
        return real(job, figdir)

    parsed = []
    real_load = load._load_one

    def counting_load(file, *args):
        parsed.append(file.name)
        return real_load(file, *args)

    monkeypatch.setattr(figures, "draw_figure", counting)
    monkeypatch.setattr(load, "_load_one", counting_load)
    monkeypatch.setattr(runner, "MAX_WORKERS", 1)  # drawn here, so counted here
    run_all([bundled / "protocols"], studies, out)
    n_incremental, parsed_incremental = len(drawn), list(parsed)
    clean = tmp_path / "clean"
    drawn.clear()
    parsed.clear()
    run_all([bundled / "protocols"], studies, clean)
    n_clean = len(drawn)

    assert _digest(out) == _digest(clean)
    # the two treatment protocols do not read Kalliomaki2001: their figures came from the cache
    assert 0 < n_incremental < n_clean
    # only the edited file was parsed again (the others' bytes are unchanged,
    # though they now sit in another folder); the clean run parsed them all
    assert parsed_incremental == ["Kalliomaki2001.yaml"]
    assert len(parsed) == len(list(studies.glob("*.yaml"))) - 1  # all but strains.yaml
    # the cache holds exactly what the last full run used
    assert sorted(p.name for p in (out / write.CACHE_DIR).iterdir()) == \
        sorted(p.name for p in (clean / write.CACHE_DIR).iterdir())


def test_the_first_protocols_figures_are_drawn_while_the_rest_are_fitted(bundled, tmp_path,
                                                                          monkeypatch):
    import os

    from metaanalysis.analysis import pipeline

    events = []
    real_fit = pipeline.run_protocol
    monkeypatch.setattr(pipeline, "run_protocol",
                        lambda proto, *a, **k: events.append(("fit", proto.id)) or
                        real_fit(proto, *a, **k))
    monkeypatch.setattr(figures, "draw_figure",
                        lambda job, figdir: events.append(("draw", figdir.parent.name)) or [])
    monkeypatch.setattr(runner, "MAX_WORKERS", 1)  # in this process, so the order is seen
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    run_all([bundled / "protocols"], bundled / "studies", tmp_path / "out")
    fits = [i for i, e in enumerate(events) if e[0] == "fit"]
    assert len(fits) == 3
    first = events[fits[0]][1]
    # the first protocol's figures, all of them, between its fit and the second's
    assert all(e == ("draw", events[fits[0]][1]) or e[0] == "draw" and first in e[1]
               for e in events[fits[0] + 1:fits[1]])
    assert fits[1] - fits[0] - 1 >= runner.EARLY_MIN_FIGURES
    assert not any(first in e[1] for e in events[fits[1]:] if e[0] == "draw")
    # the others' after every fit
    assert events[fits[2] + 1:] and all(e[0] == "draw" for e in events[fits[2] + 1:])
    # one core: nothing to overlap, every figure after every fit (the test can fail)
    events.clear()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    run_all([bundled / "protocols"], bundled / "studies", tmp_path / "out1")
    fits = [i for i, e in enumerate(events) if e[0] == "fit"]
    assert fits == [0, 1, 2]


def test_a_failure_while_figures_are_drawn_leaves_no_half_written_folder(bundled, tmp_path,
                                                                          monkeypatch):
    import os

    from metaanalysis.analysis import pipeline

    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # two workers, on any machine

    real_fit = pipeline.run_protocol
    fitted = []

    def second_fails(proto, *a, **k):
        fitted.append(proto.id)
        if len(fitted) == 2:
            raise RuntimeError("the second protocol's fit failed")
        return real_fit(proto, *a, **k)

    monkeypatch.setattr(pipeline, "run_protocol", second_fails)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="second protocol"):
        run_all([bundled / "protocols"], bundled / "studies", out)
    # the first protocol's figures were being drawn by forked workers: they
    # were stopped before its temporary folder was removed, and none remains
    left = sorted(p.name for p in out.iterdir() if p.name != write.CACHE_DIR)
    assert all(name.startswith(".") and "lock" in name for name in left), left
    assert not [p for p in out.rglob("*.svg") if write.CACHE_DIR not in p.parts]
    # (they had started: what they finished is in the cache, content-keyed)
    assert list((out / write.CACHE_DIR).glob("*/*.svg"))


def test_ctrl_c_while_figures_are_drawn_is_one_line_and_leaves_nothing(bundled, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "metaanalysis.cli", "run", "--out", str(out)],
                            cwd=bundled, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # its own group, as a terminal's
    deadline = time.monotonic() + 120
    # the workers are drawing once the first figure is in the cache
    while not list((out / write.CACHE_DIR).glob("*/*.svg")) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the run and its workers
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) <= 1, stderr
    assert not [p for p in out.iterdir() if not p.name.startswith(".")]  # no protocol folder
    assert not [p for p in out.iterdir() if ".tmp" in p.name or ".old" in p.name]


def test_workers_leave_ctrl_c_to_the_run():
    # an idle worker hit by Ctrl-C (sent to the whole group) would print a
    # traceback of its own; the run stops its pools itself
    import subprocess
    import sys

    probe = ("import os, signal; from metaanalysis import runner; from metaanalysis.studies "
             "import load; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN); "
             "runner._die_with_parent(os.getppid()); "
             "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN); "
             "signal.signal(signal.SIGINT, signal.default_int_handler); "
             "load._leave_interrupt_to_parent(); "
             "print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "True", "True"]


def test_rerun_with_nothing_changed_draws_nothing(bundled, bundled_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    before = _digest(out)

    def boom(job, figdir):
        raise AssertionError(f"{job.id} was drawn again")

    monkeypatch.setattr(figures, "draw_figure", boom)
    monkeypatch.setattr(runner, "MAX_WORKERS", 1)
    run_all([bundled / "protocols"], bundled / "studies", out)
    assert _digest(out) == before


def test_a_corrupt_cache_entry_is_a_miss_not_an_output(bundled, bundled_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    before = _digest(out)
    entries = sorted((out / write.CACHE_DIR).iterdir())
    # a missing file in an entry: the figure is drawn again
    victim = next(e for e in entries if any(p.suffix == ".svg" for p in e.iterdir()))
    next(p for p in victim.iterdir() if p.suffix == ".svg").unlink()
    monkeypatch.setattr(runner, "MAX_WORKERS", 1)
    run_all([bundled / "protocols"], bundled / "studies", out)
    assert _digest(out) == before


def test_damaged_cache_entries_are_misses_and_are_written_anew(bundled, bundled_run, tmp_path,
                                                              monkeypatch):
    import pickle

    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    studies = tmp_path / "studies"
    shutil.copytree(bundled / "studies", studies)
    cache = out / write.CACHE_DIR
    # a figure changed (it would otherwise be copied into the outputs), a kept
    # call's result of another type, a report entry of junk, and the compiled
    # templates with jinja2's header but a damaged checksum
    svg = next(p for p in sorted(cache.glob("*/forest_main.svg")))
    svg.write_bytes(svg.read_bytes() + b"<!-- changed -->")
    value = next(iter(sorted(cache.glob(f"*/{write.CallCache.ENTRY}"))))
    value.write_bytes(pickle.dumps(1))
    reports = next(iter(sorted(cache.glob(f"*/{runner.REPORTS_ENTRY}"))))
    reports.write_bytes(b"{not json")
    templates = sorted(cache.glob("*/__jinja2_*.cache"))
    assert templates
    for t in templates:
        t.write_bytes(t.read_bytes()[:15] + b"\x80junk")
    f = studies / "Kalliomaki2001.yaml"  # a report is due: the templates are read
    f.write_text(re.sub(r"(?m)^year: 2001$", "year: 2002", f.read_text(encoding="utf-8")),
                 encoding="utf-8")
    monkeypatch.setattr(runner, "MAX_WORKERS", 1)
    run_all([bundled / "protocols"], studies, out)
    clean = tmp_path / "clean"
    run_all([bundled / "protocols"], studies, clean)
    assert _digest(out) == _digest(clean)
    # each damaged entry was written anew: the next run draws and calls nothing
    calls = _counting_stouffer(monkeypatch)
    monkeypatch.setattr(figures, "draw_figure",
                        lambda job, figdir: (_ for _ in ()).throw(AssertionError(job.id)))
    run_all([bundled / "protocols"], studies, out)
    assert calls == [] and _digest(out) == _digest(clean)
    # the templates' folder replaced by a file: compiled, and the folder made anew
    templates_dir = templates[0].parent
    shutil.rmtree(templates_dir)
    templates_dir.write_bytes(b"not a folder")
    f.write_text(f.read_text(encoding="utf-8").replace("year: 2002", "year: 2001"),
                 encoding="utf-8")
    monkeypatch.undo()
    monkeypatch.setattr(runner, "MAX_WORKERS", 1)
    run_all([bundled / "protocols"], studies, out)
    assert templates_dir.is_dir() and list(templates_dir.glob("__jinja2_*.cache"))
    # the bundled outputs again (their manifests name the other studies folder)
    def but_manifests(folder):
        return {k: v for k, v in _digest(folder).items() if not k.endswith("manifest.json")}

    assert but_manifests(out) == but_manifests(bundled_run[1])


def test_a_cache_entry_is_never_read_through_a_symlink(tmp_path):
    cache = write.OutputCache(tmp_path)
    key = "a" * 64
    cache.put(key, {"f.svg": b"<svg/>"})
    assert cache.read(key, ["f.svg"]) == {"f.svg": b"<svg/>"}
    elsewhere = tmp_path / "elsewhere"
    shutil.move(cache.root / key, elsewhere)  # the same, verified files, reached by a link
    (cache.root / key).symlink_to(elsewhere, target_is_directory=True)
    assert cache.read(key, ["f.svg"]) is None
    assert not (cache.root / key).is_symlink() and (elsewhere / "f.svg").is_file()
    cache.put(key, {"f.svg": b"<svg/>"})  # written anew, as a folder of its own
    assert (cache.root / key).is_dir() and not (cache.root / key).is_symlink()


def test_a_damaged_parsed_study_is_parsed_again(bundled, bundled_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    before = _digest(out)
    pickles = sorted((out / write.CACHE_DIR).glob(f"*/{write.StudyCache.ENTRY}"))
    assert pickles
    pickles[0].write_bytes(pickles[0].read_bytes()[:100])  # cut short
    pickles[1].write_bytes(b"not a pickle")
    parsed = []
    real_load = load._load_one
    monkeypatch.setattr(load, "_load_one", lambda f, *a: parsed.append(f) or real_load(f, *a))
    run_all([bundled / "protocols"], bundled / "studies", out)
    assert len(parsed) == 2
    assert _digest(out) == before


def test_a_refused_run_stores_no_parsed_study(bundled, tmp_path):
    studies = tmp_path / "studies"
    shutil.copytree(bundled / "studies", studies)
    f = studies / "Kalliomaki2001.yaml"
    f.write_text(f.read_text(encoding="utf-8").replace("\nyear: 2001\n", "\nyear: [2001\n"),
                 encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(ValidationFailed):
        run_all([bundled / "protocols"], studies, out)
    # the valid files were parsed, but a refused run writes nothing at all
    assert not out.exists()


def test_fingerprint_follows_content():
    a = {"x": np.array([1.0, 2.0]), "y": [1, "a", None], "z": (0.1, {3})}
    same = {"x": np.array([1.0, 2.0]), "y": [1, "a", None], "z": (0.1, {3})}
    assert write.fingerprint(a) == write.fingerprint(same)
    for changed in ({**a, "x": np.array([1.0, 2.0 + 1e-15])},
                    {**a, "x": np.array([1.0, 2.0], dtype=np.float32)},
                    {**a, "y": [1, "b", None]},
                    {"y": a["y"], "x": a["x"], "z": a["z"]},  # order can change a drawing
                    {**a, "z": (0.1, {4})}):
        assert write.fingerprint(changed) != write.fingerprint(a)
    assert write.fingerprint(1) != write.fingerprint(1.0) != write.fingerprint("1")
    # the frozen models' mappings hash by content
    from types import MappingProxyType

    assert write.fingerprint(MappingProxyType({"a": 1})) == write.fingerprint({"a": 1})
    assert write.fingerprint(MappingProxyType({"a": 1})) != write.fingerprint({"a": 2})
    assert write.fingerprint(object()) is None  # no stable content: never cached
    cyc = []
    cyc.append(cyc)
    assert write.fingerprint(cyc) is None
    # a closure's or lambda's name does not say what it computes: no key
    def make(n):
        def add(x):
            return x + n
        return add

    assert write.fingerprint(make(1)) is None and write.fingerprint(lambda x: x) is None
    assert write.fingerprint(swim.stouffer) is not None  # a module's function has one


def test_a_fingerprinter_gives_fingerprints_keys_and_walks_shared_data_once(bundled_run,
                                                                           monkeypatch):
    rows = [{"id": f"S{i}", "yi": float(i), "notes": ("a", i)} for i in range(50)]
    pages = [("figure", rows, {"page": p}) for p in range(1, 6)]
    fp = write.Fingerprinter()
    walked = []
    real = write.Fingerprinter._feed_container
    monkeypatch.setattr(write.Fingerprinter, "_feed_container",
                        lambda self, h, obj, path: walked.append(id(obj)) or real(self, h, obj, path))
    keys = [fp(*page) for page in pages]
    # the same keys as fresh walks, one key per page
    assert keys == [write.Fingerprinter()(*page) for page in pages]
    assert keys == [write.fingerprint(*page) for page in pages]
    assert len(set(keys)) == len(pages)
    # the shared rows were walked once by ``fp`` (each row, and the list)
    assert walked.count(id(rows)) == 1 + len(pages) * 2  # fp once; two fresh walks a page
    # content, not identity: an equal copy has the same key, a changed one another
    import copy

    assert fp("figure", copy.deepcopy(rows), {"page": 1}) == keys[0]
    changed = copy.deepcopy(rows)  # (objects are not changed while one instance is in use)
    changed[7]["yi"] = 7.5
    assert fp("figure", changed, {"page": 1}) != keys[0]
    # the bundled run's keys are unchanged by sharing one instance across its jobs
    from metaanalysis.analysis.pipeline import run_protocol
    from metaanalysis.runner import find_protocols, load_inputs

    paths = find_protocols(["protocols"])
    studies, registry, protos, _ = load_inputs(paths, "studies", None)
    run = run_protocol(protos[0][1], studies, registry)
    jobs = figures.plan_figures(run)
    shared = write.Fingerprinter()
    assert [shared("figure", j) for j in jobs] == [write.fingerprint("figure", j) for j in jobs]


def test_a_rerun_loads_the_report_templates_compiled(bundled, bundled_run, tmp_path, monkeypatch):
    import jinja2

    from metaanalysis.render import report

    compiled = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, source, name=None, *a, **k: compiled.append(name)
                        or real(self, source, name, *a, **k))
    monkeypatch.setattr(runner, "MAX_WORKERS", 1)
    monkeypatch.setattr(report, "_ENVIRONMENTS", {})  # as in a new process
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    studies = tmp_path / "studies"
    shutil.copytree(bundled / "studies", studies)
    f = studies / "Kalliomaki2001.yaml"  # the prevention protocol's report is due again
    f.write_text(re.sub(r"(?m)^year: 2001$", "year: 2002", f.read_text(encoding="utf-8")),
                 encoding="utf-8")
    before = (out / "prevention-eczema" / "report.md").read_bytes()
    run_all([bundled / "protocols"], studies, out)
    assert (out / "prevention-eczema" / "report.md").read_bytes() != before  # rendered again
    assert compiled == []
    # without the kept bytecode both templates are compiled (the test can fail)
    for entry in (out / write.CACHE_DIR).glob("*/__jinja2_*.cache"):
        shutil.rmtree(entry.parent)
        break
    monkeypatch.setattr(report, "_ENVIRONMENTS", {})
    f.write_text(f.read_text(encoding="utf-8").replace("year: 2002", "year: 2003"), encoding="utf-8")
    run_all([bundled / "protocols"], studies, out)
    assert sorted(compiled) == sorted(report.TEMPLATE_NAMES.values())


def test_every_bundled_figure_has_a_key(bundled_run):
    # a figure without a key would be drawn on every run: all of them hash
    cache = bundled_run[1] / write.CACHE_DIR
    n_figures = sum(len(__import__("json").loads((d / "figures" / "index.json").read_text()))
                    for d in bundled_run[1].iterdir() if not d.name.startswith("."))
    n_reports = sum(1 for d in bundled_run[1].iterdir() if not d.name.startswith("."))
    n_studies = len(list((bundled_run[1] / write.CACHE_DIR).glob(f"*/{write.StudyCache.ENTRY}")))
    assert n_studies > 60  # every valid study file, parsed once
    # the Stouffer tests (weighted and unweighted) of the protocols with a SWiM block
    n_calls = len(list(cache.glob(f"*/{write.CallCache.ENTRY}")))
    assert n_calls >= 2
    n_templates = len({p.parent for p in cache.glob("*/__jinja2_*.cache")})
    assert n_templates == 1  # the reports' compiled templates
    assert len(list(cache.iterdir())) == n_figures + n_reports + n_studies + n_calls + n_templates


@pytest.mark.parametrize("n", [3, 4, 7, 23, 150, 1100])
def test_kendall_tau_b_is_scipys_bit_for_bit(n):
    from scipy import stats

    rng = np.random.default_rng(n)
    for rep in range(20):
        x, y = rng.normal(size=n), rng.uniform(size=n)
        if rep % 3 == 0:
            x = np.round(x, 1)  # ties in x
        if rep % 4 == 0:
            y = np.round(y, 1)  # ties in y
        assert bias.kendall_tau_b(x, y) == float(stats.kendalltau(x, y).statistic)


def test_kendall_tau_b_all_tied_is_nan():
    assert np.isnan(bias.kendall_tau_b([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


@pytest.mark.parametrize("seed", range(3))
def test_a_kept_stouffer_result_is_the_calls_bits(seed, tmp_path):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 40))
    z = list(rng.normal(0.5, 2, k))
    w = list(np.sqrt(rng.integers(10, 500, k).astype(float)))
    memo = write.CallCache(tmp_path, code="c")
    first = memo(swim.stouffer, z, w)
    again = write.CallCache(tmp_path, code="c")(swim.stouffer, z, w)  # a new run, from disk
    direct = swim.stouffer(z, w)
    assert (first.z, first.pval, first.k, first.weights) == (direct.z, direct.pval, direct.k,
                                                             direct.weights)
    assert (again.z, again.pval) == (direct.z, direct.pval)
    assert again.z.hex() == direct.z.hex() and again.pval.hex() == direct.pval.hex()
    # other weights are another key: never the kept result
    other = write.CallCache(tmp_path, code="c")(swim.stouffer, z, [1.0] * k)
    assert other.z == swim.stouffer(z).z


def _counting_stouffer(monkeypatch) -> list:
    """Count calls of swim.stouffer; the stand-in keeps its name, and with it its cache key."""
    calls: list = []
    real = swim.stouffer

    def counting(*args, _calls=calls, _real=real):  # defaults, not a closure: it keeps a key
        _calls.append(args)
        return _real(*args)

    counting.__module__, counting.__qualname__ = real.__module__, real.__qualname__
    monkeypatch.setattr(swim, "stouffer", counting)
    return calls


def test_stouffer_is_called_again_only_when_its_inputs_change(bundled, bundled_run, tmp_path,
                                                              monkeypatch):
    calls = _counting_stouffer(monkeypatch)
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    studies = tmp_path / "studies"
    shutil.copytree(bundled / "studies", studies)
    run_all([bundled / "protocols"], studies, out)
    assert calls == []  # nothing changed
    # a year feeds the cumulative plot, not the SWiM z-scores or weights
    f = studies / "Kalliomaki2001.yaml"
    f.write_text(re.sub(r"(?m)^year: 2001$", "year: 2002", f.read_text(encoding="utf-8")),
                 encoding="utf-8")
    run_all([bundled / "protocols"], studies, out)
    assert calls == []
    run_all([bundled / "protocols"], studies, tmp_path / "clean")
    assert len(calls) >= 2  # a clean run calls it (weighted and unweighted, per SWiM block)
    # and the cache keeps exactly what the last run used
    assert sorted(p.name for p in (out / write.CACHE_DIR).iterdir()) == \
        sorted(p.name for p in (tmp_path / "clean" / write.CACHE_DIR).iterdir())


def test_a_rerun_never_imports_pymare(bundled, bundled_run, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    probe = ("import sys; from metaanalysis.runner import run_all; "
             f"run_all([{str(bundled / 'protocols')!r}], {str(bundled / 'studies')!r}, {{out!r}}); "
             "print('pymare' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", probe.format(out=str(out))], capture_output=True,
                         text=True, cwd=bundled, check=True)
    assert res.stdout.split() == ["False"]
    # the same probe sees the import when the results are not kept (the test can fail)
    shutil.rmtree(out / write.CACHE_DIR)
    res = subprocess.run([sys.executable, "-c", probe.format(out=str(out))], capture_output=True,
                         text=True, cwd=bundled, check=True)
    assert res.stdout.split() == ["True"]


def test_stouffer_refuses_non_positive_weights():
    with pytest.raises(ValueError):
        swim.stouffer([1.0, 2.0], [1.0, 0.0])


def test_pdf_only_when_asked(bundled, bundled_run, tmp_path):
    # PDF font subsetting is the costliest save: a default run writes none
    assert not list(bundled_run[1].rglob("*.pdf"))
    for d in bundled_run[1].iterdir():
        if not d.name.startswith("."):
            index = __import__("json").loads((d / "figures" / "index.json").read_text())
            main = next(f for f in index if f["id"] == "forest_main")
            assert main["files"] == ["figures/forest_main.svg", "figures/forest_main.png"]
    out = tmp_path / "out"
    done = run_all([bundled / "protocols"], bundled / "studies", out, only="C1", pdf=True)
    pdfs = [p.name for o in done for p in (o.out_dir / "figures").glob("*.pdf")]
    assert pdfs and set(pdfs) == {"forest_main.pdf"}
