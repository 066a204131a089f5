#!/usr/bin/env python3
"""Benchmarks: this engine against metafor (through Rscript) and PyMARE.

Workloads (issue 7):

(a) 10,000 meta-analyses of k = 20 with REML, and how far each tool's tau2
    is from metafor's converged value;
(b) leave-one-out plus influence diagnostics at k = 100 (REML);
(c) a permutation test with 10,000 permutations, k = 40, 2 moderators (REML);
(d) GOSH at k = 16 with REML (all 65,535 subsets);
(e) ``meta run`` end to end on the bundled data, cold start included.

Run ``python3 benchmarks/run.py`` for the full sizes (a few minutes, mostly
metafor) or ``--quick`` for small sizes (well under a minute; CI runs this
so the script cannot rot). metafor is skipped with a note when Rscript or
metafor is missing, PyMARE when it is not installed, and (e) when ``meta
run`` does not exist yet. Timings are medians of repeated in-process runs
(after one warm-up); where metafor is too slow for the full size it runs a
smaller count and the time is scaled up linearly, which the table says.
Speed is reported, never asserted: the script exits 0 unless this engine
itself fails.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from metaanalysis.stats import diagnostics, fit  # noqa: E402

SEED = 20261124

#: sizes per mode. r_* are metafor's (smaller where metafor is slow; the
#: time is then scaled to the full count).
SIZES = {
    "full": dict(a_d=10_000, b_k=100, c_perm=10_000, d_k=16, reps=7, slow_reps=3, e_reps=3,
                 r_a_time=1_000, r_a_ref=10_000, r_b_reps=3, r_c_perm=1_000, r_d_subsets=2_000),
    "quick": dict(a_d=1_000, b_k=30, c_perm=500, d_k=10, reps=3, slow_reps=2, e_reps=1,
                  r_a_time=40, r_a_ref=200, r_b_reps=1, r_c_perm=40, r_d_subsets=40),
}
A_K, C_K = 20, 40


# ----------------------------------------------------------------------------
# data (all seeded; written to disk for R as little-endian doubles)


def data_a(d):
    # the design of tests/reference/run_metafor_diagnostics.R: ~2% of these
    # datasets make metafor's default Fisher scoring oscillate
    rng = np.random.default_rng(SEED)
    v = rng.uniform(0.01, 0.5, (A_K, d))
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    return y, v


def data_b(k):
    rng = np.random.default_rng(SEED + 1)
    v = rng.uniform(0.01, 0.3, k)
    return rng.normal(0.2, np.sqrt(v + 0.04)), v


def data_c():
    rng = np.random.default_rng(SEED + 2)
    v = rng.uniform(0.02, 0.3, C_K)
    mods = rng.normal(size=(C_K, 2))
    y = rng.normal(0.2 + 0.1 * mods[:, 0], np.sqrt(v + 0.05))
    return y, v, np.column_stack([np.ones(C_K), mods])


def data_d(k):
    rng = np.random.default_rng(SEED + 3)
    v = rng.uniform(0.02, 0.3, k)
    return rng.normal(0.2, np.sqrt(v + 0.05)), v


# ----------------------------------------------------------------------------
# timing helpers


def median_time(fn, reps):
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def peak_mb(fn):
    """Peak traced allocation of one call (numpy reports to tracemalloc)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# ----------------------------------------------------------------------------
# metafor through Rscript

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly=TRUE)
dir <- args[1]; S <- as.list(jsonlite::fromJSON(file.path(dir, "sizes.json")))
rd <- function(name, n) readBin(file.path(dir, name), "double", n=n, endian="little")
out <- list(r_version=R.version.string, metafor_version=as.character(packageVersion("metafor")))
el <- function(expr) { t <- proc.time()[["elapsed"]]; force(expr); proc.time()[["elapsed"]] - t }
conv <- list(threshold=1e-12, tol=1e-12, maxiter=10000)

## (a) a loop of rma(method="REML") at metafor's defaults, timed on the first
## r_a_time datasets; the converged tau2 (reference) for the first r_a_ref
k <- 20; d <- S$a_d
Y <- matrix(rd("a_y.bin", k * d), k, d); V <- matrix(rd("a_v.bin", k * d), k, d)
fails <- 0
out$a_time_n <- S$r_a_time
out$a_time <- el(for (j in seq_len(S$r_a_time)) {
   r <- tryCatch(rma(Y[, j], V[, j], method="REML"), error=function(e) NULL)
   if (is.null(r)) fails <- fails + 1
})
out$a_default_failures <- fails
ref <- numeric(S$r_a_ref)
for (j in seq_len(S$r_a_ref)) {
   r <- tryCatch(rma(Y[, j], V[, j], method="REML", control=conv), error=function(e) NULL)
   if (is.null(r)) r <- rma(Y[, j], V[, j], method="REML", control=c(conv, list(stepadj=0.5)))
   ref[j] <- r$tau2
}
writeBin(ref, file.path(dir, "a_ref.bin"), endian="little")

## (b) leave1out + influence, k = b_k
kb <- S$b_k; yb <- rd("b_y.bin", kb); vb <- rd("b_v.bin", kb)
res <- rma(yb, vb, method="REML")
out$b_time <- median(replicate(S$r_b_reps, el({ leave1out(res); influence(res) })))

## (c) permutest with r_c_perm permutations, k = 40, 2 moderators
yc <- rd("c_y.bin", 40); vc <- rd("c_v.bin", 40); Xc <- matrix(rd("c_x.bin", 80), 40, 2)
res <- rma(yc, vc, mods=Xc, method="REML")
out$c_time_n <- S$r_c_perm
out$c_time <- el(permutest(res, iter=S$r_c_perm, progbar=FALSE, seed=1))

## (d) gosh with r_d_subsets random subsets, k = d_k
kd <- S$d_k; yd <- rd("d_y.bin", kd); vd <- rd("d_v.bin", kd)
res <- rma(yd, vd, method="REML")
out$d_time_n <- S$r_d_subsets
out$d_time <- el(gosh(res, subsets=S$r_d_subsets, progbar=FALSE, seed=1))

writeLines(jsonlite::toJSON(out, auto_unbox=TRUE, digits=NA), file.path(dir, "r_out.json"))
"""


def run_metafor(sz, tmp: Path, notes: list[str]):
    if shutil.which("Rscript") is None:
        notes.append("metafor: skipped (Rscript not found)")
        return None
    ok = subprocess.run(["Rscript", "-e", "library(metafor); library(jsonlite)"],
                        capture_output=True, text=True)
    if ok.returncode != 0:
        notes.append("metafor: skipped (R packages metafor/jsonlite not installed)")
        return None
    (tmp / "bench.R").write_text(R_SCRIPT)
    (tmp / "sizes.json").write_text(json.dumps(sz))
    proc = subprocess.run(["Rscript", "--vanilla", str(tmp / "bench.R"), str(tmp)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        notes.append("metafor: failed: " + proc.stderr.strip().splitlines()[-1][:200])
        return None
    out = json.loads((tmp / "r_out.json").read_text())
    out["a_ref"] = np.fromfile(tmp / "a_ref.bin", dtype="<f8")
    return out


def r_cold_start(notes):
    """Rscript start + library(metafor) + escalc + one rma on the bundled CSV."""
    if shutil.which("Rscript") is None:
        return None
    code = ('suppressPackageStartupMessages(library(metafor)); '
            f'd <- read.csv("{ROOT / "examples" / "normand1999.csv"}"); '
            'd <- escalc("MD", m1i=m1i, sd1i=sd1i, n1i=n1i, m2i=m2i, sd2i=sd2i, n2i=n2i, data=d); '
            'invisible(rma(yi, vi, data=d))')
    t = time.perf_counter()
    proc = subprocess.run(["Rscript", "--vanilla", "-e", code], capture_output=True, text=True)
    if proc.returncode != 0:
        notes.append("metafor cold start: failed")
        return None
    return time.perf_counter() - t


# ----------------------------------------------------------------------------
# PyMARE


def pymare_workloads(sz, ya, va, yb, vb, yc, vc, Xc, notes):
    try:
        import pymare
        from pymare import Dataset
        from pymare.estimators import VarianceBasedLikelihoodEstimator
    except ImportError:
        notes.append("PyMARE: skipped (not installed)")
        return {}
    out = {"version": pymare.__version__}
    warnings.simplefilter("ignore")
    # metafor's default inference is z; PyMARE's default is Knapp-Hartung
    est = VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="wald")
    ones = np.ones((A_K, 1))
    out["a_time"] = median_time(lambda: est.fit(y=ya, v=va, X=ones), sz["slow_reps"])
    out["a_tau2"] = np.asarray(est.params_["tau2"]).reshape(-1)

    # (b) no leave-one-out or influence in PyMARE: the k leave-one-out REML
    # fits as (k-1, k) arrays (estimates and tau2 only)
    k = yb.size
    keep = ~np.eye(k, dtype=bool)

    def loo():
        Y = yb[:, None].repeat(k, 1).T[keep].reshape(k, k - 1).T
        V = vb[:, None].repeat(k, 1).T[keep].reshape(k, k - 1).T
        VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="wald").fit(
            y=Y, v=V, X=np.ones((k - 1, 1)))
    out["b_time"] = median_time(loo, sz["reps"])

    # (c) its permutation test (z statistics, REML)
    def perm():
        e = VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="wald")
        e.fit_dataset(Dataset(y=yc, v=vc, X=Xc[:, 1:]))
        e.summary().permutation_test(n_perm=sz["c_perm"])
    out["c_time"] = median_time(perm, sz["slow_reps"])
    return out


# ----------------------------------------------------------------------------
# `meta run`


def meta_run(sz, notes):
    exe = shutil.which("meta")
    cmd = [exe] if exe else [sys.executable, "-m", "metaanalysis.cli"]
    probe = subprocess.run(cmd + ["run", "--help"], capture_output=True, text=True, cwd=ROOT)
    if probe.returncode != 0 or "No such command" in probe.stdout + probe.stderr:
        notes.append("(e) `meta run`: skipped (the command does not exist yet)")
        return None
    times, floors = [], []
    floor_cmd = [sys.executable, "-c", "import numpy, scipy, matplotlib, pandas"]
    for _ in range(sz["e_reps"]):
        # alternating with the import floor, so both see the same machine load
        t = time.perf_counter()
        subprocess.run(floor_cmd, capture_output=True, cwd=ROOT)
        floors.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            proc = subprocess.run(cmd + ["run", "--out", out], capture_output=True, text=True,
                                  cwd=ROOT)
            times.append(time.perf_counter() - t)
        if proc.returncode != 0:
            msg = (proc.stderr.strip().splitlines() or ["?"])[-1][:200]
            notes.append(f"(e) `meta run` exited {proc.returncode}: {msg}")
            return None
    notes.append(f"(e) `meta run` / import floor (python -c 'import numpy, scipy, matplotlib, "
                 f"pandas', alternating): {statistics.median(t / f for t, f in zip(times, floors)):.1f}x "
                 f"(floor {statistics.median(floors):.2f} s); scaling and incremental runs: "
                 "benchmarks/scaling.py")
    return statistics.median(times)


# ----------------------------------------------------------------------------
# main


def fmt_t(t):
    if t is None:
        return "n/a"
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return ""
    return f"{a / b:,.0f}x" if a / b >= 10 else f"{a / b:.1f}x"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI)")
    ap.add_argument("--no-r", action="store_true", help="skip metafor")
    ap.add_argument("--no-pymare", action="store_true", help="skip PyMARE")
    args = ap.parse_args(argv)
    mode = "quick" if args.quick else "full"
    sz = dict(SIZES[mode])
    notes: list[str] = []

    ya, va = data_a(sz["a_d"])
    yb, vb = data_b(sz["b_k"])
    yc, vc, Xc = data_c()
    yd, vd = data_d(sz["d_k"])

    ### this engine
    ours = {}
    ours["a"] = median_time(lambda: fit.rma(ya, va, "REML"), sz["reps"])
    fa = fit.rma(ya, va, "REML")
    ours["b"] = median_time(lambda: (diagnostics.leave_one_out(yb, vb, "REML"),
                                     diagnostics.influence(yb, vb, "REML")), sz["reps"])
    ours["c"] = median_time(lambda: diagnostics.permutation_test(
        yc, vc, Xc, "REML", n_perm=sz["c_perm"], seed=1), sz["slow_reps"])
    ours["d"] = median_time(lambda: diagnostics.gosh(yd, vd, "REML"), sz["slow_reps"])
    mem = {
        "a": peak_mb(lambda: fit.rma(ya, va, "REML")),
        "b": peak_mb(lambda: (diagnostics.leave_one_out(yb, vb, "REML"),
                              diagnostics.influence(yb, vb, "REML"))),
        "c": peak_mb(lambda: diagnostics.permutation_test(yc, vc, Xc, "REML",
                                                          n_perm=sz["c_perm"], seed=1)),
        "d": peak_mb(lambda: diagnostics.gosh(yd, vd, "REML")),
    }
    ours["e"] = meta_run(sz, notes)

    ### PyMARE
    pm = {} if args.no_pymare else pymare_workloads(sz, ya, va, yb, vb, yc, vc, Xc, notes)
    if args.no_pymare:
        notes.append("PyMARE: skipped (--no-pymare)")

    ### metafor
    r = None
    r_cold = None
    if args.no_r:
        notes.append("metafor: skipped (--no-r)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for name, arr in (("a_y", ya), ("a_v", va), ("b_y", yb), ("b_v", vb), ("c_y", yc),
                              ("c_v", vc), ("c_x", Xc[:, 1:]), ("d_y", yd), ("d_v", vd)):
                # column-major, as R's matrix() reads it
                np.asarray(arr, dtype="<f8").ravel(order="F").tofile(tmp / f"{name}.bin")
            r = run_metafor(sz, tmp, notes)
        r_cold = r_cold_start(notes) if r is not None else None

    ### accuracy of (a) against metafor's converged tau2
    acc = {}
    if r is not None:
        n = r["a_ref"].size
        ref = r["a_ref"]
        acc["ours"] = float(np.max(np.abs(fa.tau2[:n] - ref)))
        if "a_tau2" in pm:
            acc["pymare"] = float(np.max(np.abs(pm["a_tau2"][:n] - ref)))
        acc["n"] = n

    ### table
    n_perm, n_sub = sz["c_perm"], 2 ** sz["d_k"] - 1
    rows = []
    if r is not None:
        r_a = r["a_time"] / r["a_time_n"] * sz["a_d"]
        r_c = r["c_time"] / r["c_time_n"] * n_perm
        r_d = r["d_time"] / r["d_time_n"] * n_sub
    else:
        r_a = r_c = r_d = None
    rows.append((f"(a) {sz['a_d']:,} x k={A_K} REML", ours["a"], r_a, pm.get("a_time"), "<= PyMARE",
                 f"(a) metafor: {r['a_time_n']:,} fits timed, scaled to {sz['a_d']:,}"
                 if r else ""))
    rows.append((f"(b) leave1out+influence k={sz['b_k']}", ours["b"], r["b_time"] if r else None,
                 pm.get("b_time"), "< 20 ms",
                 "(b) PyMARE: the leave-one-out REML fits only, as (k-1, k) arrays (no influence)"
                 if pm else ""))
    rows.append((f"(c) permutest {n_perm:,} perms k={C_K} p=3", ours["c"], r_c, pm.get("c_time"),
                 "< 1 s", f"(c) metafor: {r['c_time_n']:,} permutations timed, scaled to {n_perm:,}"
                 if r else ""))
    rows.append((f"(d) GOSH k={sz['d_k']} REML ({n_sub:,} subsets)", ours["d"], r_d, None, "< 5 s",
                 f"(d) metafor: {r['d_time_n']:,} random subsets timed, scaled to {n_sub:,}; "
                 "PyMARE has no GOSH" if r else "(d) PyMARE has no GOSH"))
    rows.append(("(e) meta run, cold start", ours["e"], r_cold, None, "< 3 s",
                 "(e) metafor column: Rscript start + library(metafor) + escalc + one rma on "
                 "examples/normand1999.csv (a reference point, not the same work)"
                 if r_cold else ""))

    print(f"\nbenchmarks ({mode} mode), {time.strftime('%Y-%m-%d')}")
    print(f"machine: {platform.platform()}, {_cpu()}, {os.cpu_count()} cores")
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"scipy {__import__('scipy').__version__}"
          + (f", pymare {pm['version']}" if pm.get("version") else "")
          + (f"; {r['r_version']}, metafor {r['metafor_version']}" if r else ""))
    head = ("workload", "meta", "metafor", "PyMARE", "metafor/meta", "PyMARE/meta", "target",
            "peak MB")
    table = [head]
    for key, (name, t_ours, t_r, t_pm, target, _) in zip("abcde", rows):
        table.append((name, fmt_t(t_ours), fmt_t(t_r), fmt_t(t_pm), fmt_ratio(t_r, t_ours),
                      fmt_ratio(t_pm, t_ours), target,
                      f"{mem[key]:.0f}" if key in mem else ""))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print()
    n_bad = int((~fa.converged).sum())
    print(f"(a) this engine: {n_bad} of {fa.tau2.size:,} datasets not converged")
    if acc:
        line = (f"(a) max |tau2 - metafor converged| over {acc['n']:,} datasets: "
                f"meta {acc['ours']:.1e}")
        if "pymare" in acc:
            line += f", PyMARE {acc['pymare']:.1e}"
        print(line)
        print(f"(a) metafor at its defaults: {r['a_default_failures']} of {r['a_time_n']:,} "
              "timed fits stopped with 'did not converge'")
    for _, _, _, _, _, note in rows:
        if note:
            print("note:", note)
    for note in notes:
        print("note:", note)
    print("timings: medians of repeated runs after a warm-up; peak MB: traced numpy "
          "allocations of one run of this engine")
    return 0


def _cpu():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
