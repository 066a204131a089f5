"""Attack corpus for the command line and the output folder (issue 12).

Each case is something a user, a typo or a hostile input does: usage errors,
an ``--out`` that cannot be written, ids that are paths, two runs at once,
runs killed at every stage, formula text in CSV cells. The promise checked
every time: a clean one-line error (usage errors: exit 2 with the usage
message; data and I/O errors: exit 1 with ``error: ...``), never a
traceback, and the outputs already on disk never lost or mixed.

CLI cases run the real console entry in a subprocess (``python -m
metaanalysis.cli``) with this checkout first on ``PYTHONPATH``, so what is
tested is what a user gets. Runs that must write use the small sensitivity
protocol (one protocol, a few seconds) on the session's copy of the data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from metaanalysis import write
from metaanalysis.cli import main
from metaanalysis.errors import MetaError
from metaanalysis.render.tables import csv_cell

REPO = Path(__file__).resolve().parents[1]
SENSITIVITY = Path("protocols") / "sensitivity" / "prevention-eczema-or.yaml"
SENS_ID = "prevention-eczema-or"


# ----------------------------------------------------------------------------
# helpers


def meta(*args, cwd, code: str | None = None) -> subprocess.CompletedProcess:
    """Run ``meta ARGS`` (or ``python -c CODE ARGS``) as a user would."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg", "COLUMNS": "100"}
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "metaanalysis.cli"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)


def assert_clean(proc, code: int) -> None:
    """Exit ``code`` with no traceback anywhere; exit 1 is one ``error:`` line."""
    both = proc.stdout + proc.stderr
    assert "Traceback" not in both and 'File "' not in both, both
    assert proc.returncode == code, both
    if code == 1:  # FILE:LINE: lines may come first, as `meta validate` prints them
        assert proc.stderr.splitlines()[-1].startswith("error: "), proc.stderr
    if code == 2:
        assert "Usage: meta" in proc.stderr, proc.stderr


def digest(folder: Path) -> dict:
    """Relative path -> sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def sens_out(bundled, tmp_path):
    """An output folder already holding a complete run of the sensitivity protocol."""
    out = tmp_path / "out"
    proc = meta("run", SENSITIVITY, "--out", out, cwd=bundled)
    assert_clean(proc, 0)
    return out


def _read_only(folder: Path):
    """Make ``folder`` unwritable (chmod; root ignores modes, so chattr +i)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return lambda: folder.chmod(0o755)
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(folder)]).returncode == 0:
        return lambda: subprocess.run(["chattr", "-i", str(folder)], check=True)
    pytest.skip("running as root without chattr: cannot make a folder read-only")


# ----------------------------------------------------------------------------
# the CLI never shows a traceback


def test_version(tmp_path):
    from metaanalysis import __version__

    proc = meta("--version", cwd=tmp_path)
    assert_clean(proc, 0)
    assert proc.stdout.strip() == f"meta {__version__}"


@pytest.mark.parametrize("args, says", [
    (["run", "--bogus"], "No such option"),
    (["frobnicate"], "No such command"),
    (["pool", "x.csv", "--alpha", "abc"], "--alpha"),
    (["explain"], "Missing argument"),
], ids=["unknown-option", "unknown-command", "bad-float", "missing-argument"])
def test_usage_errors_exit_2_with_usage(args, says, tmp_path):
    proc = meta(*args, cwd=tmp_path)
    assert_clean(proc, 2)
    assert says in proc.stderr


def test_no_arguments_shows_help(tmp_path):
    proc = meta(cwd=tmp_path)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.returncode == 2  # click's rule: no_args_is_help is a usage error
    assert "Usage: meta" in proc.stdout + proc.stderr and "validate" in proc.stdout + proc.stderr


def test_out_is_an_existing_file(bundled, tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    proc = meta("run", SENSITIVITY, "--out", f, cwd=bundled)
    assert_clean(proc, 1)
    assert "is a file" in proc.stderr
    assert f.read_text() == "keep me"


def test_out_below_a_file(bundled, tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    proc = meta("run", SENSITIVITY, "--out", f / "sub", cwd=bundled)
    assert_clean(proc, 1)
    assert f"{f}: is a file" in proc.stderr
    assert f.read_text() == "keep me"


def test_protocol_folder_is_a_file(bundled, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / SENS_ID).write_text("not a folder")
    proc = meta("run", SENSITIVITY, "--out", out, cwd=bundled)
    assert_clean(proc, 1)
    assert "exists and is not a folder" in proc.stderr
    assert (out / SENS_ID).read_text() == "not a folder"
    assert sorted(p.name for p in out.iterdir()) == [SENS_ID]


def test_read_only_output_folder(bundled, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    undo = _read_only(out)
    try:
        proc = meta("run", SENSITIVITY, "--out", out, cwd=bundled)
    finally:
        undo()
    assert_clean(proc, 1)
    assert str(out) in proc.stderr
    assert list(out.iterdir()) == []


def test_full_disk(tmp_path):
    # /dev/full answers every write with ENOSPC, as a full disk does
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    proc = meta("new-study", "Doe2030", "--out", "/dev/full", "--force", cwd=tmp_path)
    assert_clean(proc, 1)
    assert "No space left on device" in proc.stderr


def test_internal_error_is_one_line(bundled):
    code = textwrap.dedent("""
        import sys
        import metaanalysis.runner as runner
        def boom(*args, **kwargs):
            raise ZeroDivisionError("simulated bug")
        runner.run_all = boom
        from metaanalysis.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    proc = meta("run", cwd=bundled, code=code)
    assert_clean(proc, 1)
    assert "internal error (ZeroDivisionError: simulated bug)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_data_error_is_one_line(tmp_path):
    proc = meta("explain", "C1", "--out", tmp_path, cwd=tmp_path)
    assert_clean(proc, 1)
    assert "not found" in proc.stderr


# ----------------------------------------------------------------------------
# every path written is inside --out


@pytest.mark.parametrize("name", ["../escape", "..", ".", ".hidden", "a/b", "a\\b", "", "x" * 300,
                                  "/etc", "C1\n"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(MetaError, match="cannot name an output folder"):
        write.check_name(name, "claim id")


def test_new_study_id_cannot_climb_out(tmp_path):
    proc = meta("new-study", "../../evil", cwd=tmp_path)
    assert_clean(proc, 1)
    assert "study id" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_targets_and_files_outside_root(tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("data")
    with pytest.raises(MetaError):
        write.write_atomically(root / ".." / "victim", {"a.txt": "x"}, root=root)
    with pytest.raises(MetaError, match="outside the output folder"):
        write.write_atomically(root / "p", {"../../victim/precious.txt": "x"}, root=root)
    # a symlink planted in --out does not carry the write out either
    (root / "link").symlink_to(victim)
    with pytest.raises(MetaError):
        write.write_atomically(root / "link" / "p", {"a.txt": "x"}, root=root)
    assert (victim / "precious.txt").read_text() == "data"
    assert sorted(p.name for p in victim.iterdir()) == ["precious.txt"]
    assert not any(p.name.startswith(".") for p in root.iterdir())


@pytest.mark.parametrize("field", ["claim", "protocol"])
def test_id_with_dotdot_never_escapes(bundled, tmp_path, field):
    # before: `--only x/../../../victim` replaced T/victim, and a protocol
    # file `...yaml` (id "..") replaced the folder holding --out
    protos = tmp_path / "protocols"
    protos.mkdir()
    text = (bundled / SENSITIVITY).read_text(encoding="utf-8")
    if field == "claim":
        evil = "x/../../../victim"
        text = text.replace("  - id: C12-OR\n", f"  - id: {evil}\n", 1)
        name = f"{SENS_ID}.yaml"
    else:
        evil = ".."
        text = text.replace(f"id: {SENS_ID}\n", f"id: {evil}\n", 1)
        name = "...yaml"  # its stem is ".."
    assert evil in text
    (protos / name).write_text(text, encoding="utf-8")
    out = tmp_path / "a" / "out"
    precious = [tmp_path / "victim" / "precious.txt", tmp_path / "a" / "precious.txt"]
    for f in precious:
        f.parent.mkdir(exist_ok=True)
        f.write_text("data")
    before = digest(tmp_path / "a"), digest(tmp_path / "victim")
    args = ["run", protos / name, "--studies", bundled / "studies", "--out", out]
    proc = meta(*args, *(["--only", evil] if field == "claim" else []), cwd=bundled)
    assert_clean(proc, 1)
    assert "cannot name an output folder" in proc.stderr or "id" in proc.stderr
    assert (digest(tmp_path / "a"), digest(tmp_path / "victim")) == before


# ----------------------------------------------------------------------------
# one run at a time per output folder


def test_second_concurrent_run_refuses(bundled, sens_out):
    before = digest(sens_out)
    with write.OutputLock(sens_out):
        proc = meta("run", SENSITIVITY, "--out", sens_out, cwd=bundled)
    assert_clean(proc, 1)
    assert "another `meta run` is writing to this folder" in proc.stderr
    assert digest(sens_out) == before
    assert not (sens_out / write.LOCK_NAME).exists()  # removed when the holder ends


def test_lock_is_freed_by_a_dead_holder(tmp_path):
    # flock dies with its process: a killed run never blocks the next one
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from metaanalysis.write import OutputLock; "
         "lock = OutputLock(sys.argv[1]).__enter__(); print('held', flush=True); time.sleep(600)",
         str(out)], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MetaError, match="another `meta run`"):
            write.OutputLock(out).__enter__()
    finally:
        holder.kill()
        holder.wait()
    with write.OutputLock(out):
        assert (out / write.LOCK_NAME).exists()
    assert not (out / write.LOCK_NAME).exists()


def test_two_protocols_with_one_id_are_refused(bundled, tmp_path):
    # one file name in two folders: the same id, one outputs folder
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(bundled / SENSITIVITY, tmp_path / folder / f"{SENS_ID}.yaml")
    out = tmp_path / "out"
    proc = meta("run", tmp_path / "a", tmp_path / "b", "--studies", bundled / "studies",
                "--out", out, cwd=bundled)
    assert_clean(proc, 1)
    assert f"protocol id '{SENS_ID}'" in proc.stderr
    assert not out.exists()


# ----------------------------------------------------------------------------
# crashes and kills: the old or the new folder, never neither, never half


def _small_old(out: Path) -> dict:
    (out / "p").mkdir(parents=True)
    (out / "p" / "results.json").write_text('{"old": true}\n')
    return digest(out / "p")


def _crash_script(point: str) -> str:
    """Write ``p`` over an old one in a process that dies (os._exit, as a
    kill -9 would: no handler runs) at ``point``."""
    return textwrap.dedent(f"""
        import os, sys
        from pathlib import Path
        from metaanalysis import write
        point = {point!r}
        real_rename, real_remove = os.rename, write.remove
        calls = []
        if point == "between-renames":
            write._exchange = lambda a, b: False   # a file system without an atomic swap
            def rename(a, b):
                calls.append(a)
                if len(calls) == 2:
                    os._exit(9)
                real_rename(a, b)
            write.os.rename = rename
        elif point == "after-swap":
            def remove(path):
                if str(Path(path).name).startswith(".p.tmp-") and calls:
                    os._exit(9)
                calls.append(path)
                real_remove(path)
            write.remove = remove
        elif point == "while-writing":
            def produce(tmp):
                (Path(tmp) / "figures").mkdir()
                os._exit(9)
        out = Path(sys.argv[1])
        write.write_atomically(out / "p", {{"results.json": '{{"new": true}}\\n'}},
                               producers=[produce] if point == "while-writing" else [], root=out)
    """)


@pytest.mark.parametrize("point", ["while-writing", "between-renames", "after-swap"])
def test_kill_at_each_step_loses_nothing(tmp_path, point):
    out = tmp_path / "out"
    old = _small_old(out)
    proc = meta(out, cwd=tmp_path, code=_crash_script(point))
    assert proc.returncode == 9, proc.stderr
    leftovers = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    assert leftovers, "the crash happened before anything was written: the test tests nothing"
    # what the next run does first, under its lock
    write.recover(out)
    assert sorted(p.name for p in out.iterdir()) == ["p"]
    if point == "after-swap":
        assert json.loads((out / "p" / "results.json").read_text()) == {"new": True}
    else:
        assert digest(out / "p") == old


def test_failed_second_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    old = _small_old(out)
    monkeypatch.setattr(write, "_exchange", lambda a, b: False)
    real, calls = os.rename, []

    def rename(a, b):
        calls.append(a)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(b))
        real(a, b)

    monkeypatch.setattr(write.os, "rename", rename)
    with pytest.raises(OSError):
        write.write_atomically(out / "p", {"results.json": "{}\n"}, root=out)
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["p"]
    assert digest(out / "p") == old


def test_everything_is_fsynced_before_the_swap(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(write.os, "fsync",
                        lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd)))
    out = tmp_path / "out"
    write.write_atomically(out / "p", {"a.csv": "x\n", "figures/b.svg": "<svg/>"}, root=out)
    tmp = [s for s in synced if ".p.tmp-" in s]
    assert {Path(s).name for s in tmp} >= {"a.csv", "b.svg", "figures"}
    assert str(out) in synced  # the folder holding the renamed entry, after the rename


def test_real_kill_mid_run_then_next_run_recovers(bundled, sens_out):
    before = digest(sens_out)
    env = {**os.environ, "PYTHONPATH": str(REPO), "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, "-m", "metaanalysis.cli", "run", str(SENSITIVITY),
                             "--out", str(sens_out)], cwd=bundled, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tmp = None
    while proc.poll() is None and tmp is None:
        time.sleep(0.01)  # polling, not timing: nothing asserts how long anything takes
        tmp = next((p for p in sens_out.glob(f".{SENS_ID}.tmp-*") if (p / "results.json").exists()),
                   None)
    if tmp is None:
        proc.wait()
        pytest.fail("the run ended before its temporary folder was seen: nothing was killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # the visible outputs are the complete previous ones; the half-written
    # folder is there, and `meta explain` does not read it
    visible = {k: v for k, v in digest(sens_out).items() if not k.startswith(".")}
    assert visible == {k: v for k, v in before.items() if not k.startswith(".")}  # not the cache
    assert tmp.exists()
    shown = meta("explain", "C12-OR", "--out", sens_out, cwd=bundled)
    assert_clean(shown, 0)
    assert shown.stdout.count("C12-OR:") == 1
    # the next run removes the leftovers and the lock, and writes the same bytes
    again = meta("run", SENSITIVITY, "--out", sens_out, cwd=bundled)
    assert_clean(again, 0)
    assert digest(sens_out) == before


# ----------------------------------------------------------------------------
# meta explain reads only the current full outputs; --only has its own place


def test_explain_ignores_leftovers_only_and_stale_folders(bundled_run, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    src = out / "treatment-scorad"
    for fake in (".treatment-scorad.tmp-4242", ".treatment-scorad.old-4242",
                 ".only/treatment-scorad-C1", "treatment-scorad.only-C1", "copy-of-scorad"):
        shutil.copytree(src, out / fake)
    assert main(["explain", "C1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    # C1 is judged in two real protocols (SCORAD and responders): once each,
    # never again from the leftover, --only, stale or copied folders
    assert text.count("C1: ") == 2, text
    assert text.count("[treatment-scorad]") == 1 and text.count("[treatment-responder]") == 1, text


def test_only_runs_replace_each_other_and_never_touch_full_outputs(bundled, sens_out):
    before = digest(sens_out)
    for claim in ("C12-OR", "C12-OR-mix-modifier"):
        proc = meta("run", SENSITIVITY, "--only", claim, "--out", sens_out, cwd=bundled)
        assert_clean(proc, 0)
    assert sorted(p.name for p in (sens_out / write.ONLY_DIR).iterdir()) == [
        f"{SENS_ID}-C12-OR-mix-modifier"]
    assert {k: v for k, v in digest(sens_out).items() if not k.startswith(".only/")} == before
    shown = meta("explain", "C12-OR", "--out", sens_out, cwd=bundled)
    assert_clean(shown, 0)
    assert shown.stdout.count("C12-OR:") == 1


# ----------------------------------------------------------------------------
# CSV cells a spreadsheet would run as formulas


@pytest.mark.parametrize("text, written", [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("- bullet", "'- bullet"),
    ("plain text", "plain text"),
    ("a=b", "a=b"),
    ("-1.5", "-1.5"),      # text that is only a number is data
    ("+3e-05", "+3e-05"),
    (-1.5, "-1.5"),        # numbers untouched
    (-7, -7),
    (None, ""),
])
def test_csv_cell(text, written):
    assert csv_cell(text) == written


# test_every_csv_of_a_run_is_escaped moved to tests/render/test_tables.py (the tables take the RunResult)
