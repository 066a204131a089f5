"""``meta validate`` (validate_paths), ``meta new-study`` (new_study_template)
and the loader behind them.

* The broken corpus (tests/data/broken/, made by _generate.py from the valid
  fictional fixture) has one file per failure class; each test asserts the
  exact ``FILE:LINE: path`` of the problems it produces, and nothing else.
* A hypothesis fuzz test mutates the valid fixture (drops, retypes, corrupts
  fields, truncates text, inserts junk bytes) and asserts that validation
  returns clean problems and never raises.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaanalysis.studies.load import MAX_PROBLEMS_PER_FILE, load_studies
from metaanalysis.studies.yamlio import MAX_BYTES, MAX_NODES, Problem, read_yaml_with_lines
from metaanalysis.studies.validate import new_study_template, validate_paths, write_new_study

DATA = Path(__file__).resolve().parents[1] / "data"
OK = DATA / "studies_ok"
BROKEN = DATA / "broken"
REPO = Path(__file__).resolve().parents[2]
PROBLEM_RE = re.compile(r"^.+:\d+: (?:[^:]+: )?\S.*$", re.S)


def where(problems: list[Problem]) -> list[str]:
    """``FILE:LINE: path`` (or ``FILE:LINE``) of each problem, file name only."""
    return [f"{Path(p.file).name}:{p.line}" + (f": {p.path}" if p.path else "") for p in problems]


def test_fixture_is_valid():
    assert validate_paths([OK]) == []
    studies, problems = load_studies([OK])
    assert problems == () and [s.id for s in studies] == ["Fictional2024"]


def test_bundled_studies_validate(bundled):
    """The study files shipped in studies/ are valid (exit code 0)."""
    problems = validate_paths([bundled / "studies"])
    assert problems == [], "\n".join(map(str, problems))


# ---------------------------------------------------------------------------
# one broken file per failure class: exact location and message


BROKEN_CASES = {
    # YAML level
    "empty": (["empty.yaml:1"], "empty file"),
    "comments_only": (["comments_only.yaml:1"], "empty file"),
    "binary_junk": (["binary_junk.yaml:2"], "not UTF-8 text (byte 0x80"),
    "not_utf8": (["not_utf8.yaml:42"], "not UTF-8 text (byte 0xef"),
    "yaml_syntax": (["yaml_syntax.yaml:20"], "started at line 19"),
    "yaml_bomb": (["yaml_bomb.yaml:3"], "more than 16 YAML aliases"),
    "deep_nesting": (["deep_nesting.yaml:3"], "nested more than 40 levels"),
    "two_documents": (["two_documents.yaml:140"], "more than one YAML document"),
    "duplicate_key": (["duplicate_key.yaml:11: country"], "duplicate key (first at line 9)"),
    "python_tag": (["python_tag.yaml:13: funding"], "python/object/apply:os.system' is not allowed"),
    "merge_key": (["merge_key.yaml:133: rob"], "merge keys (<<) are not allowed"),
    "huge_integer": (["huge_integer.yaml:8: year"], "integer with 33 digits is too large"),
    "top_level_list": (["top_level_list.yaml:1"], "expected a mapping of study fields"),
    # fields and types
    "unknown_field": (["unknown_field.yaml:59: arms[0].n_randomized"],
                      "unknown field (did you mean 'n_randomised'?)"),
    "missing_field": (["missing_field.yaml:79: arms[1].role"], "required field is missing"),
    "wrong_type": (["wrong_type.yaml:88: outcomes[0].timepoint_weeks"],
                   "expected a number, got text 'eight'"),
    "bare_number": (["bare_number.yaml:83: arms[1].n_randomised"], "has no provenance"),
    "nonfinite": (["nonfinite.yaml:96: outcomes[0].per_arm.probiotic.sd.value"],
                  "must be a finite number"),
    "huge_number": (["huge_number.yaml:71: arms[0].intervention.dose_cfu_per_day.value"],
                    "1e+300 is implausibly large"),
    "placeholder": (["placeholder.yaml:5: citation"], "unfilled template placeholder"),
    # impossible values
    "sd_zero": (["sd_zero.yaml:100: outcomes[0].per_arm.control.sd"], "must be > 0, got 0"),
    "n_zero": (["n_zero.yaml:98: outcomes[0].per_arm.control.n"],
               "a sample size must be a whole number >= 1, got 0"),
    "events_gt_n": (["events_gt_n.yaml:116: outcomes[1].per_arm.control.events"],
                    "events (28) > n (27)"),
    "n_analysed_gt_randomised": (["n_analysed_gt_randomised.yaml:84: arms[1].n_analysed"],
                                 "n analysed (31) > n randomised (30)"),
    "ci_excludes_estimate": (["ci_excludes_estimate.yaml:125: outcomes[2].between.estimate"],
                             "the CI [2.1, 16.9] does not contain the estimate 20"),
    "percent_out_of_range": (["percent_out_of_range.yaml:117: outcomes[1].per_arm.control.percent"],
                             "a percentage must be between 0 and 100, got 130"),
    "p_out_of_range": (["p_out_of_range.yaml:103: outcomes[0].between.p"],
                       "a p-value must be in (0, 1], got 1.5"),
    "ci_level_percent": (["ci_level_percent.yaml:128: outcomes[2].between.ci_level"],
                         "ci_level is a proportion"),
    # cross-field and cross-reference rules
    "excluded_no_reason": (["excluded_no_reason.yaml:16: excluded"], "needs the reason"),
    "unknown_arm": (["unknown_arm.yaml:93: outcomes[0].per_arm.probiotc"],
                    "unknown arm 'probiotc' (defined: control, probiotic)"),
    "unknown_quote": (["unknown_quote.yaml:59: arms[0].n_randomised.quote"],
                      "unknown quote 'q9' (defined: q1, q2, q3)"),
    "unknown_strain": (["unknown_strain.yaml:70: arms[0].intervention.strains[0].registry"],
                       "unknown strain 'LGGG': not in the strain registry (did you mean 'LGG'?)"),
    "id_mismatch": (["id_mismatch.yaml:4: id"], "does not match the file name"),
    "no_provenance": (["no_provenance.yaml:95: outcomes[0].per_arm.probiotic.mean.value"],
                      "27.5 does not appear in quote 'q1'"),
    "missing_flag": (["missing_flag.yaml:19: flags"], "add flag 'crossover'"),
    "secondary_mismatch": (["secondary_mismatch.yaml:25: sources.s1.secondary"],
                           "set secondary: true"),
    "events_in_final_scale": (["events_in_final_scale.yaml:112: outcomes[1].per_arm.probiotic",
                               "events_in_final_scale.yaml:115: outcomes[1].per_arm.control"],
                              "scale is 'final' but this arm has events"),
}


def test_broken_corpus_is_complete():
    files = {p.stem for p in BROKEN.glob("*.yaml")} - {"strains"}
    assert files == set(BROKEN_CASES)


@pytest.mark.parametrize("name", sorted(BROKEN_CASES))
def test_broken_file(name):
    expected, message = BROKEN_CASES[name]
    problems = validate_paths([BROKEN / f"{name}.yaml"])
    assert where(problems) == expected, "\n".join(map(str, problems))
    assert all(message in p.message for p in problems), "\n".join(map(str, problems))
    assert all(PROBLEM_RE.match(str(p)) for p in problems)


def test_whole_broken_folder_reports_every_file():
    problems = validate_paths([BROKEN])
    files = {Path(p.file).stem for p in problems}
    assert files == set(BROKEN_CASES)
    assert problems == sorted(problems, key=lambda p: (p.file, p.line, p.path, p.message))


# ---------------------------------------------------------------------------
# things that need a temporary folder


def test_duplicate_ids_across_folders(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        shutil.copy(OK / "Fictional2024.yaml", tmp_path / sub)
        shutil.copy(OK / "strains.yaml", tmp_path / sub)
    problems = validate_paths([tmp_path / "a", tmp_path / "b"])
    assert [str(p).replace(str(tmp_path), "T") for p in problems] == [
        "T/b/Fictional2024.yaml:4: id: duplicate study id 'Fictional2024' "
        "(also in T/a/Fictional2024.yaml:4)"]


def test_too_large(tmp_path):
    f = tmp_path / "big.yaml"
    f.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n")
    assert where(validate_paths([f])) == ["big.yaml:1"]


def test_too_many_values_and_problems(tmp_path):
    f = tmp_path / "wide.yaml"
    f.write_text("x: [" + ", ".join(["1"] * (MAX_NODES + 10)) + "]\n", encoding="utf-8")
    assert [p.message for p in validate_paths([f])] == [
        f"more than {MAX_NODES} values; an extraction file has a few hundred"]
    g = tmp_path / "many.yaml"
    g.write_text("".join(f"k{i}: {i}\n" for i in range(500)), encoding="utf-8")
    problems = validate_paths([g])
    assert len(problems) == MAX_PROBLEMS_PER_FILE + 1
    # 500 unknown fields + 8 missing required fields, 200 shown
    assert sum(p.message == "308 more problems not shown; fix these first" for p in problems) == 1


def test_missing_paths_and_empty_folder(tmp_path):
    problems = validate_paths([tmp_path / "nope.yaml", tmp_path])
    assert sorted(p.message for p in problems) == ["no *.yaml study files in this folder",
                                                   "no such file or directory"]
    assert validate_paths([]) and all(isinstance(p, Problem) for p in validate_paths([]))


def test_missing_registry_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(OK / "Fictional2024.yaml", tmp_path)
    # studies/strains.yaml of this repository is the last fallback: hide it
    monkeypatch.setattr("metaanalysis.studies.load.find_registry", lambda folder: None)
    assert where(validate_paths([tmp_path])) == [
        "Fictional2024.yaml:70: arms[0].intervention.strains[0].registry"]


def test_broken_registry_is_reported(tmp_path):
    shutil.copy(OK / "Fictional2024.yaml", tmp_path)
    (tmp_path / "strains.yaml").write_text(
        "strains:\n  LGG: {genus: Lacticaseibacillus, species: rhamnosus, aliases: [LGG]}\n"
        "  X: {genus: G, species: x, aliases: [L.G.G.]}\n", encoding="utf-8")
    problems = validate_paths([tmp_path])
    assert "strains.yaml:3: strains.X.aliases[0]" in where(problems)
    assert any("no valid strain registry" in p.message for p in problems)
    # a registry file given explicitly is checked as a registry
    assert where(validate_paths([tmp_path / "strains.yaml"])) == ["strains.yaml:3: strains.X.aliases[0]"]


def test_same_cohort_as_must_exist(tmp_path):
    shutil.copy(OK / "strains.yaml", tmp_path)
    text = (OK / "Fictional2024.yaml").read_text(encoding="utf-8")
    (tmp_path / "Fictional2024.yaml").write_text(
        text.replace("same_cohort_as: null", "same_cohort_as: Parent2020"), encoding="utf-8")
    assert [str(p).split(": ", 1)[1] for p in validate_paths([tmp_path])] == [
        "same_cohort_as: unknown study 'Parent2020' (no such study file)"]


# ---------------------------------------------------------------------------
# the template


def fill_template(study_id: str) -> str:
    values = {
        "Authors. Title. Journal. Year;Vol(Issue):pages.": '"Roe R. A fictional trial. Nowhere J. 2025;1:1."',
        "year": "2025",
        "where the text was read, e.g. PubMed abstract, PMID ...": '"fictional abstract"',
        "verbatim quote containing the numbers below":
            '"Forty children (20 per group) ... SCORAD at 8 weeks was 21.5 ± 9.1 with the '
            'probiotic and 26.0 ± 10.3 with placebo."',
        "product as named in the paper": '"LGG capsules"',
        "n randomised": "20",
        "strain as written": '"Lactobacillus GG"',
        "key in studies/strains.yaml": "LGG",
        "weeks from randomisation": "8",
        "n": "20",
    }
    text = new_study_template(study_id)
    for key, val in values.items():
        text = text.replace(f'"<<FILL: {key}>>"', val)
    means = iter(["21.5", "9.1", "26.0", "10.3"])
    text = re.sub(r'"<<FILL: (?:mean|SD)>>"', lambda m: next(means), text)
    assert all("<<FILL" not in line.split("#")[0] for line in text.splitlines())
    return text


def test_filled_template_validates(tmp_path):
    shutil.copy(OK / "strains.yaml", tmp_path)
    (tmp_path / "New2025.yaml").write_text(fill_template("New2025"), encoding="utf-8")
    assert validate_paths([tmp_path]) == []


def test_unfilled_template_lists_placeholders(tmp_path):
    shutil.copy(OK / "strains.yaml", tmp_path)
    path = write_new_study("New2025", tmp_path)
    problems = validate_paths([path])
    assert problems and all(p.message == "unfilled template placeholder" for p in problems)
    assert {"citation", "year", "quotes.q1.text", "arms[0].n_randomised.value"} <= {
        p.path for p in problems}


def test_template_rejects_bad_ids(tmp_path):
    from metaanalysis.errors import InputError

    for bad in ("", "1abc", "a b", "../x", "x" * 81):
        with pytest.raises(InputError):
            new_study_template(bad)
    write_new_study("Once2025", tmp_path)
    with pytest.raises(InputError, match="already exists"):
        write_new_study("Once2025", tmp_path)


# ---------------------------------------------------------------------------
# fuzzing: never an exception, always clean problems

FIXTURE_TEXT = (OK / "Fictional2024.yaml").read_text(encoding="utf-8")
FIXTURE_DATA = read_yaml_with_lines(OK / "Fictional2024.yaml")[0].data


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


ALL_PATHS = [p for p in _paths(FIXTURE_DATA) if p]

junk_values = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10 ** 40, max_value=10 ** 40),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.sampled_from(["<<FILL: x>>", "q9", "LGGG", "-1", "1e999", ".nan", "probiotc"]),
)


def _check(text_or_bytes) -> list[Problem]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        shutil.copy(OK / "strains.yaml", tmp)
        f = tmp / "Fictional2024.yaml"
        if isinstance(text_or_bytes, bytes):
            f.write_bytes(text_or_bytes)
        else:
            f.write_text(text_or_bytes, encoding="utf-8", errors="surrogatepass")
        problems = validate_paths([tmp])
        lines = max(1, len(f.read_bytes().splitlines())) + 1
    assert isinstance(problems, list)
    for p in problems:
        assert isinstance(p, Problem)
        assert PROBLEM_RE.match(str(p)), str(p)
        assert "internal error" not in p.message, str(p)
        assert 0 <= p.line <= lines, str(p)
    return problems


def _set(data, path, value, op):
    node = data
    for k in path[:-1]:
        node = node[k]
    key = path[-1]
    if op == "drop":
        del node[key]
    elif op == "retype":
        node[key] = value
    elif op == "wrap":
        node[key] = [node[key]]


#: Examples per fuzz test: moderate by default (the CI machine is shared);
#: raise it for a deeper run, e.g. META_FUZZ_EXAMPLES=2000.
FUZZ_EXAMPLES = int(os.environ.get("META_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.sampled_from(ALL_PATHS), st.sampled_from(["drop", "retype", "wrap"]), junk_values)
def test_fuzz_structure(path, op, value):
    data = json.loads(json.dumps(FIXTURE_DATA))
    _set(data, path, value, op)
    # JSON is YAML; non-finite floats become the YAML-illegal NaN/Infinity text
    text = json.dumps(data, ensure_ascii=False, allow_nan=True)
    problems = _check(text)
    if op in ("drop", "wrap") and path == ("id",):
        assert problems


@FUZZ
@given(st.data())
def test_fuzz_text(data):
    raw = FIXTURE_TEXT.encode("utf-8")
    op = data.draw(st.sampled_from(["truncate", "insert", "replace", "dup_line"]))
    pos = data.draw(st.integers(0, len(raw)))
    if op == "truncate":
        out = raw[:pos]
    elif op == "insert":
        out = raw[:pos] + data.draw(st.binary(min_size=1, max_size=20)) + raw[pos:]
    elif op == "replace":
        end = data.draw(st.integers(pos, min(len(raw), pos + 40)))
        out = raw[:pos] + data.draw(st.text(max_size=20)).encode("utf-8", "surrogatepass") + raw[end:]
    else:
        lines = raw.splitlines(keepends=True)
        i = data.draw(st.integers(0, len(lines) - 1))
        out = b"".join(lines[:i + 1] + lines[i:])
    problems = _check(out)
    if out == raw:
        assert problems == []


@settings(max_examples=max(1, FUZZ_EXAMPLES // 3), deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_binary(junk):
    assert _check(junk)  # junk is never a valid study
