"""Shared test setup.

The Agg backend is selected before anything imports pyplot, so plot tests
run headless (as pingouin's conftest does).
"""

import matplotlib

matplotlib.use("Agg")


# ----------------------------------------------------------------------------
# reading figures back (used by tests/test_render*.py)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.text import Text  # noqa: E402


def drawn_texts(fig):
    """Every non-empty visible Text the figure draws.

    Tick labels are taken only for the ticks inside the view limits: an Axis
    keeps spare Tick objects whose labels are never drawn.
    """
    fig.canvas.draw()
    spare = set()
    drawn_ticks = []
    for ax in fig.axes:
        for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            lo, hi = sorted(lim)
            eps = 1e-9 * (hi - lo)
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                spare.update(id(t) for t in (tick.label1, tick.label2))
            locs = axis.get_majorticklocs()
            for loc, tick in zip(locs, axis.get_major_ticks(len(locs))):
                if lo - eps <= loc <= hi + eps:
                    drawn_ticks += [t for t in (tick.label1, tick.label2) if t.get_visible()]
    out = [t for t in fig.findobj(Text) if id(t) not in spare] + drawn_ticks
    return [t for t in out if t.get_visible() and t.get_text().strip()]


def text_boxes(fig):
    texts = drawn_texts(fig)
    renderer = fig.canvas.get_renderer()
    return texts, np.array([list(t.get_window_extent(renderer).extents) for t in texts])


def overlapping_pairs(fig, tol_px=0.5):
    """Pairs of drawn texts whose bounding boxes overlap by more than
    ``tol_px`` pixels in both directions."""
    texts, b = text_boxes(fig)
    ox = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0])
    oy = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1])
    hit = (ox > tol_px) & (oy > tol_px)
    np.fill_diagonal(hit, False)
    i, j = np.nonzero(np.triu(hit))
    return [(texts[a].get_text(), texts[c].get_text()) for a, c in zip(i, j)]


def texts_outside(fig, tol_px=0.5):
    """Drawn texts that stick out of the figure (would be clipped)."""
    texts, b = text_boxes(fig)
    w, h = fig.bbox.width, fig.bbox.height
    bad = (b[:, 0] < -tol_px) | (b[:, 1] < -tol_px) | (b[:, 2] > w + tol_px) | (b[:, 3] > h + tol_px)
    return [t.get_text() for t, x in zip(texts, bad) if x]


@pytest.fixture
def figure_reader():
    """Helpers that read a rendered figure back."""

    class Reader:
        texts = staticmethod(lambda fig: [t.get_text() for t in drawn_texts(fig)])
        text_objects = staticmethod(drawn_texts)
        overlaps = staticmethod(overlapping_pairs)
        outside = staticmethod(texts_outside)

    return Reader


# ----------------------------------------------------------------------------
# the bundled studies and protocols, copied once
#
# Tests never read the user's studies/ or protocols/ in place: a file being
# edited while the suite runs cannot break them, and no test can write there.

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def bundled(tmp_path_factory) -> Path:
    """A folder holding copies of the repo's ``studies/`` and ``protocols/``."""
    root = tmp_path_factory.mktemp("bundled")
    for name in ("studies", "protocols"):
        shutil.copytree(REPO / name, root / name, symlinks=True)
    return root


@pytest.fixture(scope="session")
def bundled_run(bundled, tmp_path_factory):
    """One full ``meta run`` of the bundled copy, shared by the whole suite.

    Returns ``(outputs, out)``: the list of ProtocolOutput and the output
    folder. Read it only; a test that changes outputs works on a copy
    (``shutil.copytree(out, tmp_path / "out")``).
    """
    from metaanalysis.runner import run_all

    out = tmp_path_factory.mktemp("bundled_run") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(bundled)  # as every test runs (manifest paths are relative to it)
        done = run_all([bundled / "protocols"], bundled / "studies", out)
    return done, out


@pytest.fixture(autouse=True)
def _cwd_is_a_copy(bundled, monkeypatch):
    """Every test runs in the copy, so a default path (``studies/``, ``outputs/``,
    the registry found from the working directory) never reaches the user's
    files."""
    monkeypatch.chdir(bundled)
