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

``python benchmarks/scaling.py`` runs 7, 50, 200 and 1,000 trials;
``--quick`` runs 7 and 50 trials once each (CI). ``--sizes`` picks others.
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
    for i in range(n):
        p = files[i % len(files)]
        copy = i // len(files)
        if copy == 0:
            shutil.copy(p, dest / p.name)
            continue
        new_id = f"{p.stem}_r{copy}"
        text = p.read_text(encoding="utf-8")
        text = re.sub(r"(?m)^id: .*$", f"id: {new_id}", text, count=1)
        text = re.sub(r"(?m)^same_cohort_as: (\S+)$",
                      lambda m: m[0] if m[1] == "null" else f"same_cohort_as: {m[1]}_r{copy}", text)
        # a copy is another trial: its own DOI, no PMID or registration (two
        # files sharing one are refused as one trial pooled twice)
        text = re.sub(r"(?m)^doi: (\S.*)$",
                      lambda m: m[0] if m[1] == "null" else f"doi: {m[1]}-r{copy}", text)
        text = re.sub(r"(?m)^(pmid|registration): .*$", r"\1: null", text)
        (dest / f"{new_id}.yaml").write_text(text, encoding="utf-8")
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


def measure(n: int, reps: int, modes=("cold", "warm", "one-file")) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory(prefix="meta-scale-") as tmp:
        tmp = Path(tmp)
        studies = make_studies(n, tmp / "studies")
        for mode in modes:
            floor, run = [], []
            for r in range(reps):
                out = tmp / (f"out-cold-{r}" if mode == "cold" else "out-inc")
                if mode != "cold" and not out.exists():
                    timed(META + ["run", "--studies", str(studies), "--out", str(out)])
                if mode == "one-file":
                    edit_one(studies)
                floor.append(timed(FLOOR))
                res = timed(META + ["run", "--studies", str(studies), "--out", str(out)])
                if res[3] not in (0, 1):  # 1: some claim judged against (a verdict, not a failure)
                    print(f"  n={n} {mode}: meta run exited {res[3]}", file=sys.stderr)
                run.append(res)
                if mode == "cold":
                    shutil.rmtree(out, ignore_errors=True)
            fw = statistics.median(f[0] for f in floor)
            rows[mode] = {
                "wall": statistics.median(x[0] for x in run),
                "cpu": statistics.median(x[1] for x in run),
                "mem": max(x[2] for x in run),
                "floor": fw,
                # the median of the paired ratios: each run against the floor next to it
                "ratio": statistics.median(x[0] / f[0] for x, f in zip(run, floor)),
            }
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="7 and 50 trials, once each (CI)")
    ap.add_argument("--sizes", type=int, nargs="*", help="numbers of trials (default 7 50 200 1000)")
    ap.add_argument("--reps", type=int, help="alternating pairs per size (default 5; 1 at 1,000+)")
    ap.add_argument("--modes", nargs="*", default=["cold", "warm", "one-file"])
    args = ap.parse_args(argv)
    sizes = args.sizes or ([7, 50] if args.quick else [7, 50, 200, 1000])
    print(f"| trials | mode | wall | CPU | peak MB | floor | wall/floor |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        reps = args.reps or (1 if args.quick or n >= 1000 else (3 if n >= 200 else 5))
        rows = measure(n, reps, args.modes)
        for mode, r in rows.items():
            print(f"| {n:,} | {mode} | {r['wall']:.2f} s | {r['cpu']:.2f} s | {r['mem']:.0f} | "
                  f"{r['floor']:.2f} s | {r['ratio']:.1f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
