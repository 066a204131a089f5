"""Planning figures costs no matplotlib import (issue 14).

A rerun whose figures all come from the output cache must not pay for
importing matplotlib (0.35-0.55 s, the largest import after PyMARE's):
:func:`metaanalysis.render.figures.plan_figures` decides what to draw (page
counts, captions, model notes) without it, and the drawing modules import it
only when a figure is drawn. Checked in a fresh interpreter, because this
test process has imported matplotlib long ago (tests/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PLAN = """
import sys
from metaanalysis import runner
from metaanalysis.analysis.pipeline import run_protocol
from metaanalysis.render import figures

paths = runner.find_protocols(["protocols"])
studies, registry, protos, _ = runner.load_inputs(paths, "studies", None)
jobs = []
for _, proto in protos:
    jobs += figures.plan_figures(run_protocol(proto, studies, registry), all_formats=True, pdf=True)
# what fingerprinting a job reads (write.fingerprint hashes fn by module + qualname)
names = sorted({f"{job.fn.__module__}.{job.fn.__qualname__}" for job in jobs})
print(len(jobs), "matplotlib" in sys.modules, *names)
"""

RERUN = """
import sys
from metaanalysis.runner import run_all

run_all(["protocols"], "studies", sys.argv[1])
print("matplotlib" in sys.modules)
"""


def _python(code: str, cwd: Path, *args: str) -> list[str]:
    # this checkout first on the path: the subprocess imports the code under test
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MPLBACKEND", None)
    out = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                         capture_output=True, text=True, check=True, timeout=300)
    return out.stdout.split()


def test_planning_the_bundled_figures_does_not_import_matplotlib(bundled):
    n, imported, *fns = _python(PLAN, bundled)
    assert int(n) > 20  # every figure of the three bundled protocols was planned
    assert imported == "False"
    # the jobs still name the module-level drawing functions (forked workers
    # call them; the cache key hashes them by module and name)
    assert "metaanalysis.render.forest.forest_plot" in fns
    assert "metaanalysis.render.prisma.prisma_flow" in fns


def test_a_rerun_from_the_cache_does_not_import_matplotlib(bundled, bundled_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)  # an earlier complete run, with its cache
    assert _python(RERUN, bundled, str(out)) == ["False"]


DRAW = """
import sys
from metaanalysis.runner import run_all

run_all(["protocols/treatment-responder.yaml"], "studies", sys.argv[1], pdf=sys.argv[2] == "pdf")
print("matplotlib.figure" in sys.modules, "matplotlib.backends.backend_pdf" in sys.modules)
"""


def test_a_run_that_writes_no_pdf_does_not_import_the_pdf_backend(bundled, tmp_path):
    # the PDF backend brings fontTools (~0.2 s of CPU, before every fork)
    assert _python(DRAW, bundled, str(tmp_path / "svg"), "svg") == ["True", "False"]
    assert _python(DRAW, bundled, str(tmp_path / "pdf"), "pdf") == ["True", "True"]
    assert (tmp_path / "pdf" / "treatment-responder" / "figures" / "forest_main.pdf").is_file()
