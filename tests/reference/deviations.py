"""Largest deviation from metafor 3.8-1, per quantity, over every core case.

Runs the comparisons of tests/stats/test_core_vs_metafor.py (groups escalc, rma,
mh, subgroup, metareg of tests/data/metafor_reference.json) and prints, for
each group and quantity, the largest relative deviation separately for
closed-form fits (escalc, FE, DL, HE, SJ, MH, Peto) and iterative ones (ML,
REML, PM, EB), the largest absolute deviation, the named tolerance(s) it is
tested with and the case of the largest relative deviation. Relative deviations are taken only where metafor's value is not 0;
None/NA pairs and strings (coefficient names, levels) are not counted here
(the test checks them exactly).

Usage, from the repository root::

    python tests/reference/deviations.py            # the table
    python tests/reference/deviations.py --markdown # as a markdown table
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.test_core_vs_metafor import GROUPS, ITERATIVE, REF, checks  # noqa: E402

#: subgroup level prefixes ("random.tau2") are folded into one quantity
LEVEL = re.compile(r"^(alternate|random|systematic)\.")


def quantity(group, key):
    if group == "subgroup":
        key = LEVEL.sub("level.", key)
    return key


def _family(case):
    """'iter' for an iterative tau2 estimator (ML, REML, PM, EB), else 'closed'."""
    return "iter" if case["args"].get("method", "").upper() in ITERATIVE else "closed"


def collect():
    """{(group, quantity): row} with the largest deviations and where they occur.

    ``rel[family]`` is the largest relative deviation over cases whose tau2
    estimator is closed-form (FE, DL, HE, SJ, MH, Peto, escalc) or iterative.
    """
    table = {}
    for group in GROUPS:
        for case in REF[group]:
            fam = _family(case)
            for c in checks(group, case):
                a, b = c.flat()
                row = table.setdefault((group, quantity(group, c.key)), dict(
                    n=0, rel={"closed": None, "iter": None}, abs=None, tols=set(), failures=0))
                row["tols"].add(c.tol[0])
                if c.problem():
                    row["failures"] += 1
                for x, y in zip(a, b):
                    if x is None or y is None or isinstance(x, (str, bool)) or isinstance(y, str):
                        continue
                    row["n"] += 1
                    d = abs(x - y)
                    if row["abs"] is None or d > row["abs"][0]:
                        row["abs"] = (d, case["id"])
                    if y != 0:
                        r = d / abs(y)
                        if row["rel"][fam] is None or r > row["rel"][fam][0]:
                            row["rel"][fam] = (r, case["id"])
    return table


def _fmt(entry):
    return "-" if entry is None else f"{entry[0]:.1e}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    md = "--markdown" in argv
    table = collect()
    head = ("group", "quantity", "n", "rel closed", "rel iter", "max abs", "tolerance",
            "case of the largest rel")
    rows = []
    for (g, q), r in table.items():
        if not r["n"]:
            continue
        worst = max((e for e in r["rel"].values() if e), default=None)
        rows.append((g, q, str(r["n"]), _fmt(r["rel"]["closed"]), _fmt(r["rel"]["iter"]),
                     _fmt(r["abs"]), "/".join(sorted(r["tols"])), worst[1] if worst else "-"))
    if md:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        w = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        print("  ".join(h.ljust(w[i]) for i, h in enumerate(head)).rstrip())
        for row in rows:
            print("  ".join(v.ljust(w[i]) for i, v in enumerate(row)).rstrip())
    fails = sum(r["failures"] for r in table.values())
    worst = {f: max((r["rel"][f] for r in table.values() if r["rel"][f]), default=None)
             for f in ("closed", "iter")}
    print(f"\n{sum(r['n'] for r in table.values())} numbers compared. Largest relative deviation: "
          f"closed forms {_fmt(worst['closed'])} ({worst['closed'][1]}), "
          f"iterative {_fmt(worst['iter'])} ({worst['iter'][1]}). "
          f"{fails} comparison(s) outside tolerance.")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
