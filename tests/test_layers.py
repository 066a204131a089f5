"""The four layers and their one-way imports, read from the source.

``metaanalysis`` is built in layers (see each subpackage's docstring and the
README's layout section)::

    errors  <-  stats  <-  studies  <-  analysis  <-  render  <-  runner, write, api, cli

A module may import its own layer and the layers below it, never one above;
the modules of a package may not import one another in a circle (counting
imports inside functions and type-only imports: an import hidden in a
function is still a dependency). ``stats`` imports numpy, scipy and pymare
only; ``cli.py`` is the only typer user. Every import statement of every
module is read with :mod:`ast`, so nothing is imported to check it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "metaanalysis"

#: layer of each subpackage or top-level module (higher imports lower)
LAYERS = {"errors": 0, "stats": 1, "studies": 2, "analysis": 3, "render": 4,
          "runner": 5, "write": 5, "api": 5, "cli": 6, "__init__": 6, "__main__": 6}

#: what the statistical core may import besides the standard library
STATS_THIRD_PARTY = {"numpy", "scipy", "pymare"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:  # the package itself (its __init__)
        return LAYERS["__init__"]
    return LAYERS[parts[1]]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from metaanalysis.stats import fit` imports the module metaanalysis.stats.fit
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.append((node.lineno, sub if _is_module(sub) else mod))
    return out


def _is_module(name: str) -> bool:
    if not name.startswith("metaanalysis"):
        return False
    p = PKG.parent.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _sources() -> list[Path]:
    return sorted(PKG.rglob("*.py"))


def _graph() -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for p in _sources():
        me = _module_name(p)
        g[me] = {m for _, m in _imports(p) if m.startswith("metaanalysis.") and m != me}
    return g


def test_every_module_has_a_layer():
    unknown = [_module_name(p) for p in _sources()
               if len(_module_name(p).split(".")) > 1 and _module_name(p).split(".")[1] not in LAYERS]
    assert not unknown, f"modules outside the layer table (add them to LAYERS or move them): {unknown}"


def test_no_upward_import():
    bad = []
    for p in _sources():
        me = _module_name(p)
        for line, m in _imports(p):
            if m.startswith("metaanalysis.") and _layer(m) > _layer(me):
                bad.append(f"{p.relative_to(PKG.parent)}:{line}: {me} imports {m} (a higher layer)")
    assert not bad, "\n".join(bad)


def test_no_import_circle():
    g = _graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if m not in g:
                continue
            if state.get(m) == 1:
                cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(g):
        if n not in state:
            visit(n)
    # a package's __init__ may name its own modules lazily; that is not a circle of logic
    cycles = [c for c in cycles if not c.startswith("metaanalysis -> ")]
    assert not cycles, "import circles:\n" + "\n".join(cycles)


def test_stats_imports_numpy_scipy_pymare_only():
    std = sys.stdlib_module_names
    bad = []
    for p in (PKG / "stats").rglob("*.py"):
        for line, m in _imports(p):
            top = m.split(".")[0]
            if top in std or top in STATS_THIRD_PARTY or top == "__future__":
                continue
            if m.startswith("metaanalysis.stats") or m == "metaanalysis.errors":
                continue
            bad.append(f"{p.relative_to(PKG.parent)}:{line}: imports {m}")
    assert not bad, "\n".join(bad)


def test_matplotlib_is_imported_only_by_render():
    offenders = [f"{p.relative_to(PKG.parent)}:{line}: {m}" for p in _sources()
                 if "render" not in p.relative_to(PKG).parts
                 for line, m in _imports(p) if m.split(".")[0] == "matplotlib"]
    assert offenders == []


def test_cli_is_the_only_typer_user():
    users = [str(p.relative_to(PKG.parent)) for p in _sources()
             if any(m.split(".")[0] in ("typer", "click") for _, m in _imports(p))]
    assert users == ["metaanalysis/cli.py"], users


@pytest.mark.parametrize("upper,lower", [("render", "analysis"), ("analysis", "studies"),
                                         ("studies", "stats")])
def test_the_checker_sees_an_upward_import(tmp_path, upper, lower):
    """The rule can fail: an import of a higher layer, written the three ways, is caught."""
    for text in (f"from metaanalysis.{upper} import x\n",
                 f"def f():\n    from metaanalysis import {upper}\n",
                 f"import metaanalysis.{upper}\n"):
        src = tmp_path / "metaanalysis" / lower / "probe.py"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(text)
        global PKG
        saved, PKG = PKG, tmp_path / "metaanalysis"
        try:
            (PKG / upper).mkdir(exist_ok=True)
            (PKG / upper / "__init__.py").write_text("")
            (PKG / upper / "x.py").write_text("")
            found = [m for _, m in _imports(src)]
            assert any(m.startswith(f"metaanalysis.{upper}") for m in found), (text, found)
            assert _layer(found[0]) > _layer("metaanalysis." + lower + ".probe")
        finally:
            PKG = saved
