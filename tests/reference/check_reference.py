"""Sanity checks on tests/data/metafor_reference.json (not a pytest module).

1. The file is strict JSON (no NaN/Infinity) and every case id is unique.
2. For every intercept-only `rma` case under test="z", metafor's pinned tau2,
   estimate, se and Q-profile CI bounds are compared with an independent
   50-digit recomputation (mpmath) for FE, DL, REML, ML, PM and EB.
   This prints the largest relative error per method and quantity. That is
   how accurate the pinned values are (see README.md, "How accurate the
   pinned values are").

Run: python tests/reference/check_reference.py   (needs mpmath and scipy)
"""

import json
import pathlib

import mpmath as mp
from scipy.stats import chi2

mp.mp.dps = 50
REF = pathlib.Path(__file__).resolve().parents[1] / "data" / "metafor_reference.json"


def _reject(token):
    raise ValueError(f"non-standard JSON constant {token}")


def weighted(y, v, tau2):
    w = [1 / (vi + tau2) for vi in v]
    sw = sum(w)
    mu = sum(wi * yi for wi, yi in zip(w, y)) / sw
    q = sum(wi * (yi - mu) ** 2 for wi, yi in zip(w, y))
    return mu, sw, q, w


def reml_score(y, v, tau2):
    mu, sw, _, w = weighted(y, v, tau2)
    return (-sum(w) + sum(wi**2 * (yi - mu) ** 2 for wi, yi in zip(w, y))
            + sum(wi**2 for wi in w) / sw)


def ml_score(y, v, tau2):
    mu, _, _, w = weighted(y, v, tau2)
    return -sum(w) + sum(wi**2 * (yi - mu) ** 2 for wi, yi in zip(w, y))


def bisect(f, lo=0, hi=1e7):
    return mp.findroot(f, (mp.mpf(lo), mp.mpf(hi)), solver="bisect",
                       tol=mp.mpf(10) ** -40, maxsteps=400)


def root_or_zero(f):
    return mp.mpf(0) if f(mp.mpf(0)) <= 0 else bisect(f)


def tau2_exact(method, y, v):
    k = len(y)
    if method == "FE":
        return mp.mpf(0)
    if method == "DL":
        _, sw, q, w = weighted(y, v, 0)
        return max(mp.mpf(0), (q - (k - 1)) / (sw - sum(wi**2 for wi in w) / sw))
    if method in ("PM", "EB"):
        return root_or_zero(lambda t: weighted(y, v, t)[2] - (k - 1))
    if method == "REML":
        return root_or_zero(lambda t: reml_score(y, v, t))
    if method == "ML":
        return root_or_zero(lambda t: ml_score(y, v, t))
    return None  # HE, SJ: closed forms, not rechecked here


def rel(pinned, exact):
    pinned = mp.mpf(pinned)
    return float(abs(pinned - exact) / abs(exact)) if exact != 0 else float(abs(pinned))


def main():
    ref = json.loads(REF.read_text(), parse_constant=_reject)
    ids = [c["id"] for g, cases in ref.items() if g != "provenance" for c in cases]
    assert len(ids) == len(set(ids)), "duplicate ids"
    print(f"{len(ids)} cases, ids unique, strict JSON")

    worst = {}
    for case in ref["rma"]:
        if case["args"]["test"] != "z":
            continue
        out, method = case["output"], case["args"]["method"]
        y = [mp.mpf(x) for x in case["input"]["yi"]]
        v = [mp.mpf(x) for x in case["input"]["vi"]]
        k = len(y)
        tau2 = tau2_exact(method, y, v)
        if tau2 is None:
            continue
        mu, sw, _, _ = weighted(y, v, tau2)
        err = {"tau2": rel(out["tau2"], tau2), "estimate": rel(out["estimate"], mu),
               "se": rel(out["se"], 1 / mp.sqrt(sw))}
        ci = out.get("tau2_ci")
        if ci and ci[1] > 0:
            err["ci_ub"] = rel(ci[1], bisect(lambda t: weighted(y, v, t)[2] - mp.mpf(chi2.ppf(0.025, k - 1))))
            if ci[0] > 0:
                err["ci_lb"] = rel(ci[0], bisect(lambda t: weighted(y, v, t)[2] - mp.mpf(chi2.ppf(0.975, k - 1))))
        for name, e in err.items():
            if e > worst.get((method, name), (-1, ""))[0]:
                worst[(method, name)] = (e, case["id"])
    for (method, name), (e, cid) in sorted(worst.items()):
        print(f"{method:5s} {name:9s} max rel err {e:.1e}  ({cid})")


if __name__ == "__main__":
    main()
