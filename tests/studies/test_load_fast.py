"""The C-parser fast path of the YAML loader must give exactly what the
pure-Python parser gives (data and every line number) on valid files."""

from pathlib import Path

import pytest

from metaanalysis.studies import load

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
    fast, pf = load._read_yaml(path, fast=True)
    pure, pp = load._read_yaml(path, fast=False)
    assert not pf and not pp
    assert fast.data == pure.data
    assert dict(fast.lines) == dict(pure.lines)


def test_broken_file_falls_back_to_pure_messages():
    broken = ROOT / "tests" / "data" / "broken" / "yaml_bomb.yaml"
    doc, problems = load.read_yaml_with_lines(broken)
    slow, slow_problems = load._read_yaml(broken, fast=False)
    assert doc is None and problems == slow_problems
