"""Every public function and method of ``metaanalysis`` has type hints.

Issue 16: "type hints on every public function". Read with :mod:`ast` (nothing
is imported): every parameter except ``self``/``cls`` is annotated, ``*args``
and ``**kwargs`` included, and every public function says what it returns
(``__init__`` excepted). Public means: a name without a leading underscore,
at module level or in a public class.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "metaanalysis"


def missing_hints(source: str) -> list[str]:
    """``name(param, ...)`` / ``name -> ?`` for each public function lacking a hint."""
    out = []

    def visit(node: ast.AST, owner: str = "") -> None:
        for n in ast.iter_child_nodes(node):
            if isinstance(n, ast.ClassDef) and not n.name.startswith("_"):
                visit(n, f"{owner}{n.name}.")
            elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if n.name.startswith("_") and n.name != "__init__":
                    continue
                a = n.args
                params = [p for p in a.posonlyargs + a.args + a.kwonlyargs
                          if p.arg not in ("self", "cls")]
                params += [p for p in (a.vararg, a.kwarg) if p is not None]
                bare = [p.arg for p in params if p.annotation is None]
                if bare:
                    out.append(f"{owner}{n.name}({', '.join(bare)})")
                if n.returns is None and n.name != "__init__":
                    out.append(f"{owner}{n.name} -> ?")

    visit(ast.parse(source))
    return out


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_public_functions_have_type_hints(path):
    assert missing_hints(path.read_text(encoding="utf-8")) == []


def test_the_check_sees_a_missing_hint():
    src = ("def f(x, y: int) -> int: ...\n"
           "def g(a: int): ...\n"
           "def _private(x): ...\n"
           "class C:\n    def m(self, *args, **kw: int) -> None: ...\n"
           "class _Hidden:\n    def m(self, x): ...\n")
    assert missing_hints(src) == ["f(x)", "g -> ?", "C.m(args)"]
