"""The statistical core, through the public API, against metafor 3.8-1.

Every case of the groups ``escalc``, ``rma``, ``mh``, ``subgroup`` and
``metareg`` in tests/data/metafor_reference.json (written by
tests/reference/run_metafor.R; the R call is in each case's ``call``) is fed
through ``metaanalysis.pool`` / ``metaanalysis.regress`` on a DataFrame built
from the case input, and every output key the engine produces is compared
with metafor's value. The lower-level functions are used only for what the
API does not expose (the Q-profile CI of a meta-regression, FE with knha).

One test per group, parametrized by case id. The comparisons themselves are
built by ``checks(group, case)``, which tests/reference/deviations.py reuses
to print the largest deviation per quantity.

Tolerances (tests/tolerances.py): closed forms (escalc, FE, DL, HE, SJ, MH,
Peto) ``RTOL_CLOSED``; iterative tau2 (ML, REML, PM, EB) and everything that
depends on it ``RTOL_ITER``; Q-profile bounds ``RTOL_QPROFILE``; I2 under an
iterative estimator ``ATOL_I2_ITER``; the ill-conditioned ``~ablat + year``
design ``RTOL_ILLCOND``.

Deliberate differences from metafor, each asserted (not skipped):

* FE with ``test="knha"``: ``pool`` rejects it with a clear InputError
  (metafor runs it but warns that KH "is not meant to be used in the context
  of FE models"). The numbers are still checked through ``fit.rma``.
* FE has no prediction interval in ``pool`` (metafor's ``predict`` gives NA
  too; the hand-made t(k-2) interval of the reference is not offered for FE).
* A subgroup with k = 1: ``I2``, ``H2``, ``Q``, ``Q_p`` and the prediction
  interval are None (not defined), where metafor prints 0, 1, 0, 1 and the CI.
* ``rma.mh(correct=FALSE)``: the engine reports only the continuity-corrected
  CMH test (metafor's default), so ``MH``/``MHp`` are compared only for the
  ``correct=TRUE`` cases; everything else in the ``correct=FALSE`` cases is
  compared.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import metaanalysis
from metaanalysis.stats import effects, fit
from metaanalysis.errors import InputError
from tests import tolerances as T

REF = json.loads((Path(__file__).resolve().parents[1] / "data" / "metafor_reference.json").read_text())
GROUPS = ("escalc", "rma", "mh", "subgroup", "metareg")
ITERATIVE = {"PM", "EB", "ML", "REML"}

#: (name, rtol, atol) of the named tolerances used here
CLOSED = ("CLOSED", T.RTOL_CLOSED, T.ATOL_CLOSED)
ITER = ("ITER", T.RTOL_ITER, T.ATOL_ITER)
I2_ITER = ("I2_ITER", T.RTOL_ITER, T.ATOL_I2_ITER)
QPROFILE = ("QPROFILE", T.RTOL_QPROFILE, T.ATOL_QPROFILE)
ILLCOND = ("ILLCOND", T.RTOL_ILLCOND, T.ATOL_ITER)
EXACT = ("EXACT", 0.0, 0.0)


@dataclass(frozen=True)
class Check:
    """One comparison: our value against metafor's, with a named tolerance.

    ``ours``/``ref`` are numbers, None, strings or (nested) lists of them.
    None (metafor's NA) must meet None (or NaN) on our side, and vice versa.
    """

    key: str
    ours: object
    ref: object
    tol: tuple = CLOSED

    def flat(self):
        a = _flatten(self.ours)
        b = _flatten(self.ref)
        return a, b

    def problem(self):
        """None if the values agree, else a one-line description."""
        a, b = self.flat()
        if len(a) != len(b):
            return f"{self.key}: length {len(a)} != metafor's {len(b)} ({self.ours!r} vs {self.ref!r})"
        name, rtol, atol = self.tol
        for i, (x, y) in enumerate(zip(a, b)):
            where = f"{self.key}[{i}]" if len(a) > 1 else self.key
            if y is None or x is None:
                if (x is None) != (y is None):
                    return f"{where}: ours {x!r}, metafor {y!r}"
            elif isinstance(x, str) or isinstance(y, str) or isinstance(x, bool):
                if x != y:
                    return f"{where}: ours {x!r}, metafor {y!r}"
            elif not abs(x - y) <= atol + rtol * abs(y):
                return (f"{where}: ours {x!r}, metafor {y!r} (abs {abs(x - y):.3g}, "
                        f"rel {abs(x - y) / abs(y) if y else math.inf:.3g}; tol {name})")
        return None


def _flatten(v):
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [x for item in v for x in _flatten(item)]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return [None]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return [float(v)]
    return [v]


def _cases(group):
    cases = REF[group]
    assert cases, f"no metafor reference cases for {group}"
    return cases


def _tol(method, key):
    """The named tolerance for ``key`` of a fit with tau2 estimator ``method``."""
    if key in ("tau2_ci",):
        return QPROFILE
    if method.upper() in ITERATIVE:
        return I2_ITER if key == "I2" else ITER
    return CLOSED


def _binary_frame(inp):
    """``ai n1i ci n2i`` (the API's binary columns) from either input layout."""
    ai, ci = np.asarray(inp["ai"]), np.asarray(inp["ci"])
    n1i = np.asarray(inp["n1i"]) if "n1i" in inp else ai + np.asarray(inp["bi"])
    n2i = np.asarray(inp["n2i"]) if "n2i" in inp else ci + np.asarray(inp["di"])
    return pd.DataFrame({"ai": ai, "n1i": n1i, "ci": ci, "n2i": n2i})


# ----------------------------------------------------------------------------
# escalc


def escalc_checks(case):
    inp, args = case["input"], case["args"]
    measure = args["measure"]
    zero = dict(add=args.get("add", 0.5), to=args.get("to", "only0"),
                drop00=args.get("drop00", False))
    if measure in ("MD", "SMD"):
        df = pd.DataFrame({c: inp[c] for c in ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")})
    else:
        df = _binary_frame(inp)
    # FE: the per-study yi/vi do not depend on the model; a dropped double
    # zero (drop00=True) must come back as None and be left out of the fit
    res = metaanalysis.pool(df, measure, "FE", **zero).to_dict()
    studies = res["studies"]
    out = case["output"]
    checks = [Check("yi", [s["yi"] for s in studies], out["yi"]),
              Check("vi", [s["vi"] for s in studies], out["vi"]),
              Check("k", res["k"], sum(y is not None for y in out["yi"]), EXACT)]
    if "bi" in inp:
        # the bi/di form of effects.escalc (the API always passes totals)
        yi, vi = effects.escalc(measure, ai=inp["ai"], bi=inp["bi"], ci=inp["ci"], di=inp["di"],
                                **zero)
        checks += [Check("yi (escalc bi/di)", yi, out["yi"]),
                   Check("vi (escalc bi/di)", vi, out["vi"])]
    return checks


# ----------------------------------------------------------------------------
# rma (and the per-level fits of the separate-tau2 subgroups)

RMA_KEYS = ("estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "df", "tau2", "tau2_ci",
            "I2", "H2", "Q", "Q_df", "Q_p", "pi_lb", "pi_ub", "k")


def fit_checks(ours, ours_k2, ref, method, prefix=""):
    """Compare one ``FitResult.to_dict()`` (and its ``pi_df="k-2"`` twin)
    with one metafor rma output."""
    checks = []
    k = ref["k"]
    for key in RMA_KEYS:
        want = ref[key]
        if key == "tau2_ci" and want is None:
            # metafor's NA interval (FE; confint() stops at k = 1) is
            # [None, None] on our side
            want = [None, None]
        if k == 1 and key in ("I2", "H2", "Q", "Q_p", "pi_lb", "pi_ub"):
            # not defined for a single study: the engine says None where
            # metafor prints I2=0, H2=1, Q=0, Q_p=1 and pi = ci
            want = None
        checks.append(Check(prefix + key, ours[key], want, _tol(method, key)))
    for key in ("pi_lb", "pi_ub"):
        want = ref[key + "_tk2"]
        if method == "FE":
            # the engine gives no prediction interval for a common-effect model
            want = None
        checks.append(Check(prefix + key + "_tk2", ours_k2[key], want, _tol(method, key)))
    checks.append(Check(prefix + "weights", [s["weight"] for s in ours["studies"]], ref["weights"],
                        _tol(method, "weights")))
    return checks


def rma_checks(case):
    inp, args, out = case["input"], case["args"], case["output"]
    method, test = args["method"], args["test"]
    df = pd.DataFrame({"yi": inp["yi"], "vi": inp["vi"]})
    if method == "FE" and test != "z":
        # pool rejects a t-test for a common-effect model (metafor warns
        # "Knapp & Hartung method is not meant to be used in the context of FE
        # models"); the numbers are still checked through fit.rma below.
        try:
            metaanalysis.pool(df, "GEN", method, test)
            err = "no error"
        except InputError as e:
            err = str(e)
        checks = [Check("pool rejects FE + knha", "'knha'" in err and "FE" in err, True, EXACT)]
        bf = fit.rma(np.array(inp["yi"]), np.array(inp["vi"]), method, test)
        pi_lb, pi_ub = fit.prediction_interval(bf)
        ours = {"estimate": bf.beta[0, 0], "se": bf.se[0, 0], "stat": bf.stat[0, 0],
                "pval": bf.pval[0, 0], "ci_lb": bf.ci_lb[0, 0], "ci_ub": bf.ci_ub[0, 0],
                "df": bf.df[0], "tau2": bf.tau2[0], "I2": bf.I2[0], "H2": bf.H2[0],
                "Q": bf.Q[0], "Q_df": bf.Q_df[0], "Q_p": bf.Q_p[0], "k": bf.k[0]}
        checks += [Check(key, val, out[key], CLOSED) for key, val in ours.items()]
        # metafor's predict() for FE gives NA; ours is est +/- t(k-1) se (= the CI)
        checks += [Check("pi_lb (fit.prediction_interval)", pi_lb[0], out["ci_lb"]),
                   Check("pi_ub (fit.prediction_interval)", pi_ub[0], out["ci_ub"]),
                   Check("weights", bf.weights[:, 0], out["weights"])]
        return checks
    ours = metaanalysis.pool(df, "GEN", method, test).to_dict()
    ours_k2 = metaanalysis.pool(df, "GEN", method, test, pi_df="k-2").to_dict()
    return fit_checks(ours, ours_k2, out, method)


# ----------------------------------------------------------------------------
# Mantel-Haenszel and Peto

MH_KEYS = ("estimate", "se", "stat", "pval", "ci_lb", "ci_ub", "Q", "Q_df", "Q_p", "I2", "H2", "k")
#: metafor's extra tests, which the engine reports in ``conventions``
MH_EXTRAS = ("MH", "MHp", "TA", "TAp", "BD", "BDp")


def mh_checks(case):
    args, out = case["args"], case["output"]
    df = _binary_frame(case["input"])
    if args["fun"] == "rma.peto":
        measure, method = "OR", "PETO"
    else:
        measure, method = args["measure"], "MH"
    ours = metaanalysis.pool(df, measure, method).to_dict()
    checks = [Check(key, ours[key], out[key]) for key in MH_KEYS]
    checks.append(Check("weights", [s["weight"] for s in ours["studies"]], out["weights"]))
    conv = ours["conventions"]
    for key in MH_EXTRAS:
        if key in ("MH", "MHp") and not args.get("correct", True):
            # only the continuity-corrected CMH test (metafor's default) is
            # reported; it is compared in the correct=TRUE cases
            continue
        checks.append(Check(key, conv.get(key), out[key]))
    if out["MH"] is not None or out["BD"] is not None:
        # k_pos (tables entering Tarone/Breslow-Day) is reported with the tests
        checks.append(Check("k_pos", conv.get("k_pos"), out["k_pos"], EXACT))
    return checks


# ----------------------------------------------------------------------------
# subgroups

REG_KEYS = ("coef_names", "beta", "se", "stat", "pval", "ci_lb", "ci_ub", "df", "tau2", "I2",
            "H2", "R2", "QE", "QE_df", "QE_p", "QM", "QM_df", "QM_p", "k")


def reg_checks(ours, out, method, *, tol=None, prefix=""):
    checks = []
    for key in REG_KEYS:
        t = tol or _tol(method, key)
        checks.append(Check(prefix + key, ours[key], out[key], EXACT if key == "coef_names" else t))
    return checks


def subgroup_checks(case):
    inp, args, out = case["input"], case["args"], case["output"]
    method, test = args["method"], args["test"]
    df = pd.DataFrame({"yi": inp["yi"], "vi": inp["vi"], "alloc": inp["alloc"]})
    if args["kind"] == "separate_tau2":
        ours = metaanalysis.pool(df, "GEN", method, test, by="alloc").to_dict()
        ours_k2 = metaanalysis.pool(df, "GEN", method, test, by="alloc", pi_df="k-2").to_dict()
        checks = [Check("levels", sorted(ours["subgroups"]), out["levels"], EXACT)]
        for ref_fit in out["fits"]:
            lvl = ref_fit["level"]
            checks += fit_checks(ours["subgroups"][lvl], ours_k2["subgroups"][lvl], ref_fit,
                                 method, prefix=f"{lvl}.")
        checks += [Check(key, ours[key], out[key], _tol(method, key))
                   for key in ("Q_between", "Q_between_df", "Q_between_p")]
        return checks
    # common tau2: pool's test for subgroup differences is metafor's QM ...
    ours = metaanalysis.pool(df, "GEN", method, test, by="alloc", subgroup_tau2="common").to_dict()
    qm_df = out["QM_df"] if test == "z" else out["QM_df"][0]
    checks = [Check("Q_between (QM)", ours["Q_between"], out["QM"], _tol(method, "QM")),
              Check("Q_between_df (QM_df)", ours["Q_between_df"], qm_df, EXACT),
              Check("Q_between_p (QM_p)", ours["Q_between_p"], out["QM_p"], _tol(method, "QM_p"))]
    # the subgroup rows under the common tau2 are metafor's no-intercept model
    # (res0: mods = ~ factor(alloc) - 1)
    for key, ref_key in (("estimate", "level_estimates"), ("se", "level_ses"),
                         ("ci_lb", "level_ci_lb"), ("ci_ub", "level_ci_ub")):
        got = [ours["subgroups"][lvl][key] for lvl in out["levels"]]
        checks.append(Check(f"common-tau2 level {key}", got, out[ref_key], _tol(method, key)))
    # ... and the model itself (tau2, coefficients, QE, R2) is regress() with
    # the categorical moderator. metafor's factor() takes the sorted levels,
    # the engine the order of appearance: sorting the rows (which does not
    # change the fit) makes "alternate" the reference level in both.
    reg = metaanalysis.regress(df.sort_values("alloc", kind="stable"), ["alloc"], "GEN",
                               method, test).to_dict()
    reg["coef_names"] = [n.replace("alloc", "factor(alloc)", 1) if n != "intrcpt" else n
                         for n in reg["coef_names"]]
    return checks + reg_checks(reg, out, method, prefix="regress.")


# ----------------------------------------------------------------------------
# meta-regression


def metareg_checks(case):
    inp, args, out = case["input"], case["args"], case["output"]
    method, test = args["method"], args["test"]
    mods = list(inp["mods"])
    df = pd.DataFrame({"yi": inp["yi"], "vi": inp["vi"], **inp["mods"]})
    ours = metaanalysis.regress(df, mods, "GEN", method, test).to_dict()
    # cond(X'WX) ~ 3e11 for ~ablat + year (see tests/tolerances.py)
    tol = ILLCOND if len(mods) > 1 else None
    checks = reg_checks(ours, out, method, tol=tol)
    if method != "FE":
        # regress() does not report the Q-profile CI of tau2: fit.q_profile_ci
        X = np.column_stack([np.ones(len(df))] + [df[m].to_numpy(float) for m in mods])
        lb, ub = fit.q_profile_ci(df["yi"].to_numpy(), df["vi"].to_numpy(), X=X)
        checks.append(Check("tau2_ci (fit.q_profile_ci)", [lb[0], ub[0]], out["tau2_ci"],
                            ILLCOND if tol else QPROFILE))
    return checks


BUILDERS = {"escalc": escalc_checks, "rma": rma_checks, "mh": mh_checks,
            "subgroup": subgroup_checks, "metareg": metareg_checks}


def checks(group, case):
    """All comparisons for one reference case of ``group``."""
    return BUILDERS[group](case)


def _assert_all(group, case):
    cs = checks(group, case)
    assert cs, f"{case['id']}: nothing compared"
    problems = [p for p in (c.problem() for c in cs) if p]
    assert not problems, f"{case['id']} ({case['call'].splitlines()[-1]}):\n" + "\n".join(problems)


def _params(group):
    return pytest.mark.parametrize("case", _cases(group), ids=lambda c: c["id"])


@_params("escalc")
def test_escalc(case):
    _assert_all("escalc", case)


@_params("rma")
def test_rma(case):
    _assert_all("rma", case)


@_params("mh")
def test_mh_peto(case):
    _assert_all("mh", case)


@_params("subgroup")
def test_subgroup(case):
    _assert_all("subgroup", case)


@_params("metareg")
def test_metareg(case):
    _assert_all("metareg", case)


def test_checks_can_fail():
    """The comparison helper itself: a perturbed value, a missing value and a
    None against a number are all reported."""
    case = _cases("rma")[0]
    good = checks("rma", case)
    assert all(c.problem() is None for c in good)
    c = next(c for c in good if c.key == "estimate")
    assert Check("x", c.ref * (1 + 1e-9), c.ref).problem()
    assert Check("x", None, c.ref).problem()
    assert Check("x", c.ref, None).problem()
    assert Check("x", [1.0, 2.0], [1.0]).problem()
