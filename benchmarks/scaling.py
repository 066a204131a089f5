#!/usr/bin/env python3
"""`meta run` against the import floor, and how it scales with the number of trials.

Every time is a ratio against the import floor (``python -c 'import numpy,
scipy, matplotlib, pandas'``) measured in the same run, the two commands
alternating (floor, run, floor, run, ...), so a busy shared machine slows
both alike. Reported per size: median wall time, median CPU time (user +
sys of the process and its workers), the largest resident set of any one
process (peak memory), and wall/floor.

Synthetic study sets are made here, never committed: the bundled study
files are copied round-robin under new ids (``<id>_r<copy>``) until there
are N of them, so every copy is a valid, quoted file and the protocols
select from them as from the originals.

Modes:

- cold: a fresh ``--out`` each time (no cache);
- warm: rerun into the same ``--out`` with nothing changed (every figure,
  table and report from ``<out>/.cache``);
- one-file: rerun after editing one study file (a number changed; the
  figures it feeds are redrawn, the rest come from the cache).

``python benchmarks/scaling.py --csv benchmarks/scaling.csv --plot
benchmarks/scaling.png`` runs 7, 50, 200, 1,000 and 10,000 trials and
writes the committed table and plot; ``--quick`` runs 7 and 50 trials once
each (CI). ``--sizes`` picks others.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = [sys.executable, "-c", "import numpy, scipy, matplotlib, pandas"]
META = [sys.executable, "-m", "metaanalysis.cli"]


def make_studies(n: int, dest: Path) -> Path:
    """``n`` study files in ``dest`` (plus the strain registry), copied round-robin."""
    src = ROOT / "studies"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "strains.yaml", dest / "strains.yaml")
    files = sorted(p for p in src.glob("*.yaml") if p.name != "strains.yaml")
    # the study ids the protocols name as keys (outcome overrides) come first:
    # a protocol naming a study that is not there is refused, so a small set
    # must hold them
    named = set()
    for proto in (ROOT / "protocols").glob("*.yaml"):
        named.update(re.findall(r"(?m)^\s+([A-Z][A-Za-z]+\d{4}[a-z]?):", proto.read_text("utf-8")))
    files.sort(key=lambda p: p.stem not in named)
    ids = set()
    for i in range(n):
        p = files[i % len(files)]
        copy = i // len(files)
        if copy == 0:
            shutil.copy(p, dest / p.name)
            ids.add(p.stem)
            continue
        text = replica(p.read_text(encoding="utf-8"), p.stem, copy)
        (dest / f"{p.stem}_r{copy}.yaml").write_text(text, encoding="utf-8")
    make_protocols(ids, dest.parent / "protocols")
    return dest


def replica(text: str, stem: str, copy: int) -> str:
    """The text of study file ``<stem>.yaml`` as its ``copy``-th replica:
    another trial, id ``<stem>_r<copy>`` (and ``_r<copy>`` on the study it
    shares a cohort with), its
    own DOI and no PMID or registration (two files sharing one are refused
    as one trial pooled twice). tests/render/test_subgroup_summary.py makes
    its many trials with it too."""
    text = re.sub(r"(?m)^id: .*$", f"id: {stem}_r{copy}", text, count=1)
    text = re.sub(r"(?m)^same_cohort_as: (\S+)$",
                  lambda m: m[0] if m[1] == "null" else f"same_cohort_as: {m[1]}_r{copy}", text)
    text = re.sub(r"(?m)^doi: (\S.*)$",
                  lambda m: m[0] if m[1] == "null" else f"doi: {m[1]}-r{copy}", text)
    return re.sub(r"(?m)^(pmid|registration): .*$", r"\1: null", text)


def make_protocols(ids: set[str], dest: Path) -> Path:
    """The bundled protocols for a set of study files that may lack some.

    Fewer files than the bundled ones (the 7-trial set): an outcome override
    naming a study that is not there is dropped, and selecting no trial is
    allowed (``allow_empty: true``), so the run measures what there is
    instead of refusing the protocol. Larger sets get the protocols as they are.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for proto in sorted((ROOT / "protocols").glob("*.yaml")):
        text = proto.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^    ([A-Z][A-Za-z]+\d{4}[a-z]?): \S+\n",
                      lambda m: m[0] if m[1] in ids else "", text)
        text = re.sub(r"(?m)^  overrides:\n(?=\S|  \S)", "  overrides: {}\n", text)  # all dropped
        text = re.sub(r"(?m)^eligibility:\n", "eligibility:\n  allow_empty: true\n", text)
        text = re.sub(r"(?m)^(\s+target: \{)", r"\1allow_empty: true, ", text)
        (dest / proto.name).write_text(text, encoding="utf-8")
    return dest


def timed(cmd, cwd=ROOT) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MB, exit code) of one command and its workers."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        sys.stderr.write(err[-2000:])
    # ru covers the child and every worker it waited for; maxrss is the
    # largest single process (kB on Linux)
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, proc.returncode


def edit_one(studies: Path) -> None:
    """Edit one included study file as a correction would: its year, one later.

    (A number of participants would need its quote changed too: the strict
    file checks compare values with their quotes.) The year feeds results,
    the cumulative plot and the forest plots' labels of that study's protocol.
    """
    for p in sorted(studies.glob("*.yaml")):
        text = p.read_text(encoding="utf-8")
        m = re.search(r"(?m)^year: (\d{4})$", text)
        if "status: included" in text and m:
            p.write_text(text[:m.start(1)] + str(int(m[1]) + 1) + text[m.end(1):], encoding="utf-8")
            return


def measure(n: int, reps: int, modes=("cold", "warm", "one-file"), extra=()) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory(prefix="meta-scale-") as tmp:
        tmp = Path(tmp)
        studies = make_studies(n, tmp / "studies")
        cmd = META + ["run", str(tmp / "protocols"), "--studies", str(studies)] + list(extra)
        inc = tmp / "out-inc"
        for mode in modes:
            floor, run = [], []
            for r in range(reps):
                out = tmp / f"out-cold-{r}" if mode == "cold" else inc
                if mode != "cold" and not out.exists():
                    timed(cmd + ["--out", str(out)])
                if mode == "one-file":
                    edit_one(studies)
                floor.append(timed(FLOOR))
                res = timed(cmd + ["--out", str(out)])
                if res[3] not in (0, 1):  # 1: some claim judged against (a verdict, not a failure)
                    print(f"  n={n} {mode}: meta run exited {res[3]}", file=sys.stderr)
                run.append(res)
                if mode == "cold" and r == reps - 1 and not inc.exists() and out.exists():
                    out.rename(inc)  # the last cold run seeds warm and one-file (saves a run)
                elif mode == "cold":
                    shutil.rmtree(out, ignore_errors=True)
            fw = statistics.median(f[0] for f in floor)
            rows[mode] = {
                "wall": statistics.median(x[0] for x in run),
                "cpu": statistics.median(x[1] for x in run),
                "mem": max(x[2] for x in run),
                "floor": fw,
                "floor_cpu": statistics.median(f[1] for f in floor),
                # the median of the paired ratios: each run against the floor next to it
                "ratio": statistics.median(x[0] / f[0] for x, f in zip(run, floor)),
                "cpu_ratio": statistics.median(x[1] / f[1] for x, f in zip(run, floor)),
                "reps": reps,
            }
    return rows


COLUMNS = ("trials", "mode", "reps", "wall_s", "cpu_s", "peak_mb", "floor_wall_s", "floor_cpu_s",
           "wall_ratio", "cpu_ratio")


def write_csv(path: Path, table: list[dict]) -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in table:
            w.writerow([r["trials"], r["mode"], r["reps"], f"{r['wall']:.2f}", f"{r['cpu']:.2f}",
                        f"{r['mem']:.0f}", f"{r['floor']:.2f}", f"{r['floor_cpu']:.2f}",
                        f"{r['ratio']:.2f}", f"{r['cpu_ratio']:.2f}"])


def read_csv(path: Path) -> list[dict]:
    import csv

    with open(path, encoding="utf-8") as fh:
        return [{"trials": int(r["trials"]), "mode": r["mode"], "wall": float(r["wall_s"]),
                 "cpu": float(r["cpu_s"]), "mem": float(r["peak_mb"])}
                for r in csv.DictReader(fh)]


def plot(path: Path, table: list[dict], title: str) -> None:
    """Wall time, CPU time and peak memory against the number of trials (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=120)
    axes = fig.subplots(1, 3)
    styles = {"cold": "o-", "warm": "s--", "one-file": "^:"}
    for ax, (key, label) in zip(axes, [("wall", "wall time (s)"), ("cpu", "CPU time (s)"),
                                       ("mem", "peak memory, one process (MB)")]):
        for mode, style in styles.items():
            pts = sorted((r["trials"], r[key]) for r in table if r["mode"] == mode)
            if pts:
                ax.plot(*zip(*pts), style, label=mode)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("trials (study files)")
        ax.set_title(label, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    axes[0].axhline(20, color="grey", lw=0.8)  # issue 14: 1,000 trials in under 20 s
    axes[0].axhline(180, color="grey", lw=0.8)  # 10,000 in under 3 minutes
    axes[2].axhline(2048, color="grey", lw=0.8)  # under 2 GB
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="7 and 50 trials, once each (CI)")
    ap.add_argument("--sizes", type=int, nargs="*",
                    help="numbers of trials (default 7 50 200 1000 10000)")
    ap.add_argument("--reps", type=int,
                    help="alternating pairs per size (default 5; 3 at 200+; 1 at 1,000+)")
    ap.add_argument("--modes", nargs="*", default=["cold", "warm", "one-file"])
    ap.add_argument("--csv", type=Path, help="also write the table as CSV (the committed "
                    "benchmarks/scaling.csv)")
    ap.add_argument("--plot", type=Path, help="draw the curve as PNG (benchmarks/scaling.png); "
                    "with no size to measure, from --csv")
    ap.add_argument("--title", default="meta run against the number of trials",
                    help="the plot's title")
    ap.add_argument("run_args", nargs="*", help="extra arguments of meta run (after --)")
    args = ap.parse_args(argv)
    if args.plot and args.csv and args.sizes == []:  # redraw the plot from a table
        plot(args.plot, read_csv(args.csv), args.title)
        return 0
    sizes = args.sizes or ([7, 50] if args.quick else [7, 50, 200, 1000, 10000])
    print("| trials | mode | wall | CPU | peak MB | floor | wall/floor | CPU/floor CPU |")
    print("|---|---|---|---|---|---|---|---|")
    table = []
    for n in sizes:
        reps = args.reps or (1 if args.quick or n >= 1000 else (3 if n >= 200 else 5))
        rows = measure(n, reps, args.modes, args.run_args)
        for mode, r in rows.items():
            table.append(dict(r, trials=n, mode=mode))
            print(f"| {n:,} | {mode} | {r['wall']:.2f} s | {r['cpu']:.2f} s | {r['mem']:.0f} | "
                  f"{r['floor']:.2f} s | {r['ratio']:.1f}x | {r['cpu_ratio']:.1f}x |", flush=True)
        if args.csv:  # after every size: a long run interrupted keeps what it measured
            write_csv(args.csv, table)
    if args.plot:
        plot(args.plot, table, args.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
