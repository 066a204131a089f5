#!/usr/bin/env python3
"""Benchmark of ``meta revman``: reproduce and re-analyse Cochrane reviews.

Workloads (issue 13):

(a) the 24 reviews in ../shared/cochrane (1,006 analyses): read, infer
    measure and model, reproduce, re-analyse under the 2025 defaults;
(b) the same corpus replicated 20 times (each review's analyses copied 20
    times under new analysis group numbers, so one file holds 20x the
    analyses and every batched call gets 20x wider arrays).

Reported: analyses per second (median of 3 runs after a warm-up). Speed is
reported, never asserted.

metafor (R's ``meta`` package is not installed here; metafor does the same
computations): when ``Rscript`` with metafor is found, the settings meta
inferred for every pooled unit (measure, method, model, confidence level)
and the unit's study rows are exported to a CSV, and
``benchmarks/revman_metafor.R`` does per unit what meta does after the
inference: per-study escalc, the review's pooled model (rma.mh / rma.peto /
rma FE|DL|REML) and the 2025 re-analysis (rma REML + knha, confint for the
tau2 CI, predict for the PI), timed in-process (``system.time`` around the
loop; R start-up and package load are reported separately). meta's time
includes the inference, which R does not do; the inference alone is timed
too. Runs of meta and R alternate; medians of 3. R's pooled results are
compared with meta's (relative deviation) so that it is the same work.
Without ``Rscript`` the script says so and reports meta's numbers only.

Usage: ``python3 benchmarks/revman_bench.py [--dir ../shared/cochrane] [--copies 20] [--r-copies 1] [--no-r]``
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from metaanalysis.analysis import revman  # noqa: E402


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


def run_inference(files) -> float:
    """Time only the inference (read, split, measures, models) of reproduce()."""
    t0 = time.perf_counter()
    for f in files:
        ex = revman.read_export(f)
        ans = revman.split_analyses(ex)
        revman.infer_measures(ex, ans)
        for an in ans:
            if an.measure == "unknown":
                an.effect = an.ci_lb = an.ci_ub = [math.nan] * len(an.rows)
        revman.infer_models(ex, ans)
    return time.perf_counter() - t0


def timed(files, repeats=3):
    run_corpus(files)  # warm-up
    times = []
    for _ in range(repeats):
        t, n = run_corpus(files)
        times.append(t)
    return statistics.median(times), n


R_SCRIPT = Path(__file__).resolve().parent / "revman_metafor.R"
#: the issue's "same work" check: R's pooled estimates equal meta's
SAME_RTOL = 1e-8
UNIT_COLS = ("unit", "measure", "data_type", "method", "model", "alpha", "yi", "vi",
             "ai", "n1i", "ci", "n2i", "m1i", "sd1i", "m2i", "sd2i")


def export_units(files, path: Path) -> dict:
    """Write every pooled unit's inferred settings and study rows for R.

    The units are exactly those ``revman.reanalyse`` fits: the analysis when
    RevMan's weights are per analysis, else each subgroup. Returns meta's
    results per unit id (printed scale) for the comparison.
    """
    ref = {}
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(UNIT_COLS)
        for f in files:
            rev = revman.reproduce(f)
            new = iter(revman.reanalyse(rev))
            ex = rev.export
            for an in rev.analyses:
                p = an.pooled
                if not p.get("shown"):
                    continue
                units = revman._units_for(0, an, an.weight_scope)
                summ = [p["overall"]] if an.weight_scope == "overall" else p["subgroups"]
                for j, (u, sm) in enumerate(zip(units, summ)):
                    uid = f"{Path(f).stem}/{an.group}.{an.number}/{j}"
                    r = an.rows[u.pos]
                    num = ex.num
                    for i, row in enumerate(r):
                        def g(col):
                            x = float(num[col][row]) if col in num else math.nan
                            return repr(x) if math.isfinite(x) else "NA"
                        w.writerow([uid, an.measure, an.data_type, p["method"], p["model"], an.alpha,
                                    repr(float(an.yi[u.pos[i]])), repr(float(an.vi[u.pos[i]])),
                                    g("Experimental cases"), g("Experimental N"), g("Control cases"),
                                    g("Control N"), g("Experimental mean"), g("Experimental SD"),
                                    g("Control mean"), g("Control SD")])
                    rec = {"measure": an.measure, "k": len(u.pos), "est": sm["estimate"],
                           "ci_lb": sm["ci_lb"], "ci_ub": sm["ci_ub"], "tau2": sm["tau2"]}
                    if len(u.pos) >= 2:
                        c = next(new).cochrane2025
                        rec.update({"new_est": c["estimate"], "new_ci_lb": c["ci_lb"],
                                    "new_ci_ub": c["ci_ub"], "new_tau2": c["tau2"],
                                    "new_tau2_lb": c["tau2_ci_lb"], "new_tau2_ub": c["tau2_ci_ub"],
                                    "pi_lb": c["pi_lb"], "pi_ub": c["pi_ub"]})
                    ref[uid] = rec
            assert next(new, None) is None, "units and re-analysis rows out of step"
    return ref


def run_r(units_csv: Path, out_csv: Path, copies: int = 1) -> tuple[float, int, int]:
    """One Rscript run; returns (in-process seconds, units, failed units)."""
    res = subprocess.run(["Rscript", str(R_SCRIPT), str(units_csv), str(out_csv), str(copies)],
                         capture_output=True, text=True, check=True)
    tok = res.stdout.split()
    i = tok.index("ELAPSED")
    return float(tok[i + 1]), int(tok[i + 3]), int(tok[i + 5])


def compare(ref: dict, out_csv: Path) -> dict:
    """Max relative deviation of R's results from meta's, per quantity (printed scale)."""
    ratio = revman.RATIO
    dev: dict = {}
    where: dict = {}
    with out_csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            m = ref[row["unit"]]
            for key in ("est", "ci_lb", "ci_ub", "tau2", "new_est", "new_ci_lb", "new_ci_ub",
                        "new_tau2", "new_tau2_lb", "new_tau2_ub", "pi_lb", "pi_ub"):
                a, b = row.get(key, "NA"), m.get(key)
                if b is None or a in ("NA", "") or not math.isfinite(b):
                    continue
                a = float(a)
                if m["measure"] in ratio and key not in ("tau2", "new_tau2", "new_tau2_lb", "new_tau2_ub"):
                    a = math.exp(a)
                d = abs(a - b) / max(abs(b), 1e-300) if b != 0 else abs(a)
                if d > dev.get(key, -1.0):
                    dev[key], where[key] = d, row["unit"]
    return {k: (dev[k], where[k]) for k in dev}


def r_startup(repeats=3) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(["Rscript", "-e", "suppressMessages(library(metafor))"], check=True,
                       capture_output=True)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def have_metafor() -> bool:
    if shutil.which("Rscript") is None:
        return False
    r = subprocess.run(["Rscript", "-e", "quit(status = !requireNamespace('metafor', quietly = TRUE))"],
                       capture_output=True)
    return r.returncode == 0


def main() -> int:
    ap = argparse.ArgumentParser()
    # ../shared/cochrane beside the repository (or beside a worktree's parent)
    here = Path(__file__).resolve().parents[1]
    default = next((p / "shared" / "cochrane" for p in here.parents
                    if (p / "shared" / "cochrane").is_dir()), here.parent / "shared" / "cochrane")
    ap.add_argument("--dir", type=Path, default=default)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--r-copies", type=int, default=1,
                    help="R repeats its loop this many times on the 24 reviews' units (1: the (b) "
                         "time for R is scaled linearly from (a); --copies: measured)")
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args()
    files = sorted(args.dir.glob("*.csv"))
    if not files:
        print(f"no RevMan exports in {args.dir}")
        return 1
    use_r = not args.no_r and have_metafor()
    if not use_r:
        t, n = timed(files)
        t_inf = statistics.median(run_inference(files) for _ in range(3))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            units_csv, out_csv = Path(tmp) / "units.csv", Path(tmp) / "r.csv"
            ref = export_units(files, units_csv)
            run_corpus(files)  # warm-up
            mt, rt, it = [], [], []
            for _ in range(3):  # alternating meta, meta's inference alone, R
                t1, n = run_corpus(files)
                mt.append(t1)
                it.append(run_inference(files))
                t2, nu, failed = run_r(units_csv, out_csv)
                rt.append(t2)
            t = statistics.median(mt)
            t_r = statistics.median(rt)
            t_inf = statistics.median(it)
            dev = compare(ref, out_csv)
            t_start = r_startup()
            t_r20 = None
            if args.r_copies > 1:
                t_r20, nu20, _ = run_r(units_csv, out_csv, args.r_copies)
    print(f"(a) {len(files)} reviews, {n} analyses: meta {t:.3f} s, {n / t:.0f} analyses/s "
          f"(of which inference {t_inf:.3f} s, {100 * t_inf / t:.0f}%)")
    if use_r:
        print(f"    metafor {t_r:.3f} s for the same {n} analyses ({nu} pooled units, "
              f"{failed} failed), {n / t_r:.0f} analyses/s; metafor/meta {t_r / t:.1f}x "
              f"(meta without its inference: {t_r / (t - t_inf):.1f}x)")
        print(f"    R start-up + library(metafor): {t_start:.2f} s (not in the R times)")
        print("    max relative deviation of metafor from meta (printed scale; tau2 as is):")
        for k, (d, u) in dev.items():
            flag = "" if d <= SAME_RTOL else "  > 1e-8"
            print(f"      {k:12s} {d:.2e}  ({u}){flag}")
    with tempfile.TemporaryDirectory() as tmp:
        rep = []
        for f in files:
            dst = Path(tmp) / f.name
            replicate(f, dst, args.copies)
            rep.append(dst)
        t2, n2 = timed(rep)
    print(f"(b) {args.copies}x replicated: {n2} analyses: meta {t2:.2f} s, {n2 / t2:.0f} analyses/s")
    if use_r:
        if t_r20 is not None:
            r20 = t_r20 * args.copies / args.r_copies
            how = f"measured over {args.r_copies} passes of the 24 reviews' units"
        else:
            r20, how = t_r * args.copies, f"scaled linearly from (a), x{args.copies}"
        print(f"    metafor {r20:.1f} s ({how}), {n2 / r20:.0f} analyses/s; metafor/meta {r20 / t2:.0f}x")
    else:
        print("R (meta/metafor) not compared: Rscript with metafor is not installed here "
              "(R's meta package is not available on this machine in any case)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
