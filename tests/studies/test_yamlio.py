"""The YAML reader (:mod:`metaanalysis.studies.yamlio`): plain data with the
line of every node, problems as ``FILE:LINE: field.path: message``.

Bad files (bombs, tags, duplicate keys, ...) are exercised end to end through
``meta validate`` in test_validate.py; here the reader's own contract.
"""

from pathlib import Path

import pytest

from metaanalysis.studies import yamlio
from metaanalysis.studies.yamlio import Problem, format_path, read_yaml_with_lines

ROOT = Path(__file__).resolve().parents[2]
# names only: the files are read from the session's copy (the `bundled` fixture)
FILES = ([Path("studies", p.name) for p in sorted((ROOT / "studies").glob("*.yaml"))]
         + [Path("protocols", p.name) for p in sorted((ROOT / "protocols").glob("*.yaml"))])


def test_c_parser_is_installed():
    # a declared dependency; without it the fast path silently never runs
    import _ruamel_yaml  # noqa: F401


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_fast_and_pure_parsers_agree(bundled, path):
    path = bundled / path
    fast, pf = yamlio._read_yaml(path, fast=True)
    pure, pp = yamlio._read_yaml(path, fast=False)
    assert not pf and not pp
    assert fast.data == pure.data
    assert dict(fast.lines) == dict(pure.lines)


def test_broken_file_falls_back_to_pure_messages():
    broken = ROOT / "tests" / "data" / "broken" / "yaml_bomb.yaml"
    doc, problems = yamlio.read_yaml_with_lines(broken)
    slow, slow_problems = yamlio._read_yaml(broken, fast=False)
    assert doc is None and problems == slow_problems


# ---------------------------------------------------------------------------
# problems and paths


def test_problem_str():
    assert str(Problem("a.yaml", 3, "arms[0].n", "bad")) == "a.yaml:3: arms[0].n: bad"
    assert str(Problem("a.yaml", 1, "", "empty file")) == "a.yaml:1: empty file"


def test_format_path():
    assert format_path(("arms", 0, "n_randomised")) == "arms[0].n_randomised"
    assert format_path((0, "x")) == "[0].x"
    assert format_path(()) == ""


def test_duplicate_key_and_tag_are_problems_with_lines(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("a: 1\nb: !!python/object:os.system x\na: 2\n", encoding="utf-8")
    doc, problems = read_yaml_with_lines(f)
    assert doc is None
    assert [(p.line, p.path) for p in problems] == [(2, "b"), (3, "a")]
    assert "not allowed" in problems[0].message
    assert problems[1].message == "duplicate key (first at line 1)"


def test_read_yaml_with_lines_for_other_loaders(tmp_path):
    f = tmp_path / "protocol.yaml"
    f.write_text("name: x\nstrata:\n  - by: genus\n    min_k: 2\n", encoding="utf-8")
    doc, problems = read_yaml_with_lines(f)
    assert problems == ()
    assert doc.data == {"name": "x", "strata": [{"by": "genus", "min_k": 2}]}
    assert doc.locate(("strata", 0, "min_k")) == (4, ("strata", 0, "min_k"))
    assert doc.locate(("strata", 0, "missing")) == (3, ("strata", 0, "missing"))
    assert str(doc.problem(("strata", 0, "min_k"), "too small")).endswith(
        "protocol.yaml:4: strata[0].min_k: too small")
