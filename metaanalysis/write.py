"""Stage 5 (output): RunResult -> files, written atomically.

Everything goes into a temporary folder beside the target and is moved into
place only when complete, so a failed run leaves the previous outputs intact.
JSON and CSV are deterministic: no timestamps, stable key order, numbers at
full precision (``repr`` of the double), non-finite numbers as null/empty.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import shutil
from pathlib import Path

from metaanalysis.results import _plain
from metaanalysis import claims as claims_mod

DEPENDENCIES = ("numpy", "scipy", "pandas", "matplotlib", "pydantic", "ruamel.yaml", "typer",
                "rich", "jinja2", "pymare")


# ----------------------------------------------------------------------------
# RunResult -> plain dict


def _analysis(a) -> dict:
    return {"name": a.name, "description": a.description, "comparisons": list(a.keys),
            "note": a.note, "result": a.result.to_dict() if a.result is not None else None}


def run_to_dict(run) -> dict:
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
        "claims": [v.to_dict() for v in run.claims],
        # the one verdict rule every claim above was judged by (protocols/README.md)
        "verdict_rule": {"id": claims_mod.RULE_ID, "text": claims_mod.RULE_TEXT},
    }
    return _plain(out)


def dumps(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ----------------------------------------------------------------------------
# CSV tables


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else (repr(r[k]) if isinstance(r[k], float) else r[k]))
                    for k in columns})
    return buf.getvalue()


FIT_COLS = ["k", "estimate", "se", "ci_lb", "ci_ub", "pval", "pi_lb", "pi_ub", "tau2", "tau2_ci_lb",
            "tau2_ci_ub", "I2", "H2", "Q", "Q_df", "Q_p", "method", "test"]


def _fit_row(d: dict) -> dict:
    row = {k: d.get(k) for k in FIT_COLS}
    ci = d.get("tau2_ci") or [None, None]
    row["tau2_ci_lb"], row["tau2_ci_ub"] = ci[0], ci[1]
    return row


def tables(data: dict) -> dict[str, str]:
    """The CSV tables of a run: name -> text."""
    studies = [{**s, "comparisons": ";".join(s.get("comparisons", []) or [])} for s in data["studies"]]
    strata_names = [s["name"] for s in data["protocol"]["strata"]]
    effects = []
    for c in data["comparisons"]:
        row = {k: c[k] for k in ("key", "study", "arm", "outcome", "timepoint_weeks", "scale", "yi",
                                 "vi", "sei", "year", "baseline_score", "log10_dose",
                                 "duration_weeks", "n_total", "rob_overall")}
        row.update({f"stratum_{n}": c["strata"].get(n) for n in strata_names})
        row["flags"] = ";".join(c["flags"])
        row["derivations"] = " | ".join(d["method"] + ": " + d["formula"]
                                        for d in c["extraction"]["derivations"])
        effects.append(row)
    pooled = []
    het = []

    def add(analysis, kind):
        res = analysis["result"]
        if res is None:
            pooled.append({"analysis": analysis["name"], "kind": kind, "level": "", "note": analysis["note"]})
            return
        pooled.append({"analysis": analysis["name"], "kind": kind, "level": "overall",
                       **_fit_row(res)})
        for lvl, sub in (res.get("subgroups") or {}).items():
            pooled.append({"analysis": analysis["name"], "kind": kind, "level": lvl, **_fit_row(sub)})
        if res.get("by"):
            het.append({"analysis": analysis["name"], "by": res["by"], "Q_between": res["Q_between"],
                        "Q_between_df": res["Q_between_df"], "Q_between_p": res["Q_between_p"],
                        "subgroup_test": res["subgroup_test"]})

    add(data["main"], "main")
    for a in data["strata"]:
        add(a, "stratum")
    for a in data["sensitivity"]:
        add(a, "sensitivity")
    heterogeneity = [{"analysis": r["analysis"], "level": r["level"], **{k: r.get(k) for k in (
        "k", "tau2", "tau2_ci_lb", "tau2_ci_ub", "I2", "H2", "Q", "Q_df", "Q_p", "pi_lb", "pi_ub")}}
        for r in pooled if r.get("kind") in ("main", "stratum") and "k" in r]
    sens = [r for r in pooled if r.get("kind") == "sensitivity"]
    claims = [{"id": c["id"], "verdict": c["verdict"], "certainty": c["certainty"],
               "finding": c["finding"], "summary": c["summary"]} for c in data["claims"]]
    return {
        "studies.csv": _csv(studies, ["id", "purpose", "status", "reason", "awaiting_data", "comparisons"]),
        "effects.csv": _csv(effects, list(effects[0].keys()) if effects else ["key"]),
        "pooled.csv": _csv(pooled, ["analysis", "kind", "level", "note"] + FIT_COLS),
        "heterogeneity.csv": _csv(heterogeneity, ["analysis", "level", "k", "tau2", "tau2_ci_lb",
                                                  "tau2_ci_ub", "I2", "H2", "Q", "Q_df", "Q_p",
                                                  "pi_lb", "pi_ub"]),
        "subgroup_tests.csv": _csv(het, ["analysis", "by", "Q_between", "Q_between_df",
                                         "Q_between_p", "subgroup_test"]),
        "sensitivity.csv": _csv(sens, ["analysis", "level", "note"] + FIT_COLS),
        "claims.csv": _csv(claims, ["id", "verdict", "certainty", "finding", "summary"]),
    }


# ----------------------------------------------------------------------------
# claims.md


def claims_markdown(data: dict) -> str:
    from metaanalysis.render.claims_text import claims_markdown as render

    return render(data)


# ----------------------------------------------------------------------------
# manifest


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest(inputs: list[Path], protocol_path: Path, root: Path | None = None) -> dict:
    from importlib import metadata

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
        "protocol": {"file": rel(protocol_path), "sha256": sha256(protocol_path)},
        "inputs": [{"file": rel(p), "sha256": sha256(p)} for p in sorted(inputs, key=lambda q: rel(q))],
        "note": "Same inputs and versions give byte-identical JSON and CSV outputs.",
    }


# ----------------------------------------------------------------------------
# atomic write


def write_atomically(target: Path, files: dict[str, str | bytes], producers=()) -> None:
    """Write ``files`` (relative name -> content) into ``target`` atomically.

    ``producers`` are callables ``f(tmpdir)`` that write more files (figures,
    reports) into the temporary folder. If anything fails, ``target`` is left
    as it was and the temporary folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        for name, content in files.items():
            p = tmp / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        for produce in producers:
            produce(tmp)
        backup = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            os.rename(target, backup)
        os.rename(tmp, target)
        if backup.exists():
            shutil.rmtree(backup)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
