#!/usr/bin/env python3
"""Benchmark of ``meta revman``: reproduce and re-analyse Cochrane reviews.

Workloads (issue 13):

(a) the 24 reviews in ../shared/cochrane (1,006 analyses): read, infer
    measure and model, reproduce, re-analyse under the 2025 defaults;
(b) the same corpus replicated 20 times (each review's analyses copied 20
    times under new analysis group numbers, so one file holds 20x the
    analyses and every batched call gets 20x wider arrays).

Reported: analyses per second (median of 3 runs after a warm-up). Speed is
reported, never asserted. R's meta/metafor are not compared here when
``Rscript`` is missing (this script says so); the numbers are this engine's.

Usage: ``python3 benchmarks/revman_bench.py [--dir ../shared/cochrane] [--copies 20]``
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metaanalysis import revman  # noqa: E402


def replicate(src: Path, dst: Path, copies: int) -> None:
    """Write src's rows ``copies`` times, group g of copy c renumbered g + 1000 c."""
    text = src.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    head, body = rows[0], rows[1:]
    gi = head.index("Analysis group")
    with dst.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(head)
        for c in range(copies):
            for r in body:
                r2 = list(r)
                r2[gi] = str(int(float(r[gi])) + 1000 * c)
                w.writerow(r2)


def run_corpus(files) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for f in files:
        rev = revman.reproduce(f)
        revman.reanalyse(rev)
        n += len(rev.analyses)
    return time.perf_counter() - t0, n


def timed(files, repeats=3):
    run_corpus(files)  # warm-up
    times = []
    for _ in range(repeats):
        t, n = run_corpus(files)
        times.append(t)
    return statistics.median(times), n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "cochrane")
    ap.add_argument("--copies", type=int, default=20)
    args = ap.parse_args()
    files = sorted(args.dir.glob("*.csv"))
    if not files:
        print(f"no RevMan exports in {args.dir}")
        return 1
    t, n = timed(files)
    print(f"(a) {len(files)} reviews, {n} analyses: {t:.2f} s, {n / t:.0f} analyses/s")
    with tempfile.TemporaryDirectory() as tmp:
        rep = []
        for f in files:
            dst = Path(tmp) / f.name
            replicate(f, dst, args.copies)
            rep.append(dst)
        t2, n2 = timed(rep)
    print(f"(b) {args.copies}x replicated: {n2} analyses: {t2:.2f} s, {n2 / t2:.0f} analyses/s")
    if shutil.which("Rscript") is None:
        print("R (meta/metafor) not compared: Rscript is not installed here")
    return 0


if __name__ == "__main__":
    sys.exit(main())
