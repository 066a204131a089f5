"""`meta pool` end to end: output, JSON = to_dict(), and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from metaanalysis import pool
from metaanalysis.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "normand1999.csv"


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_pool_prints_metafor_style_summary(capsys):
    code, out, err = run(["pool", str(EXAMPLE), "--measure", "MD", "--method", "REML"], capsys)
    assert code == 0, err
    assert "Random-effects model (k = 9; tau^2 estimator: REML)" in out
    # metafor: rma(measure="MD", ...) on dat.normand1999 gives -15.1060 and tau2 684.6462
    assert "-15.1060" in out
    assert "684.6462" in out


def test_pool_json_is_exactly_to_dict(capsys):
    code, out, err = run(["pool", str(EXAMPLE), "--measure", "MD", "--method", "DL",
                          "--test", "knha", "--json"], capsys)
    assert code == 0, err
    got = json.loads(out)
    expected = pool(pd.read_csv(EXAMPLE), "MD", "DL", "knha").to_dict()
    assert got == json.loads(json.dumps(expected))
    for key in ("k", "measure", "method", "test", "estimate", "se", "ci_lb", "ci_ub", "pval",
                "tau2", "tau2_ci", "I2", "H2", "Q", "Q_df", "Q_p", "pi_lb", "pi_ub", "conventions"):
        assert key in got
    assert got["conventions"]["prediction_interval"] == "t(k-1)"


def test_pool_by_subgroup_json(tmp_path, capsys):
    df = pd.read_csv(EXAMPLE)
    df["grp"] = ["a", "a", "b", "b", "b", "c", "a", "b", "b"]
    f = tmp_path / "g.csv"
    df.to_csv(f, index=False)
    code, out, err = run(["pool", str(f), "--by", "grp", "--json"], capsys)
    assert code == 0, err
    got = json.loads(out)
    assert set(got["subgroups"]) == {"a", "b", "c"}
    assert got["subgroups"]["c"]["k"] == 1
    assert got["Q_between_df"] == 2
    assert 0 <= got["Q_between_p"] <= 1


@pytest.mark.parametrize("content,needle", [
    ("study,m1i,sd1i,n1i,m2i,sd2i\nA,1,1,10,2,1\n", "missing column 'n2i'"),
    ("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,1,1,10,2,1,10\nB,x,1,10,2,1,10\n", "row 2 (line 3), column 'm1i': expected a number"),
    ("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,1,-1,10,2,1,10\n", "row 1 (line 2), column 'sd1i': standard deviation must be > 0"),
    ("study,m1i,sd1i,n1i,m2i,sd2i,n2i\nA,1,1,0,2,1,10\n", "column 'n1i': sample size must be > 0"),
    ("", "empty file"),
])
def test_bad_input_gives_one_line_error(tmp_path, capsys, content, needle):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    code, out, err = run(["pool", str(f), "--measure", "MD"], capsys)
    assert code == 1
    assert needle in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_events_exceeding_n(tmp_path, capsys):
    f = tmp_path / "bin.csv"
    f.write_text("study,ai,n1i,ci,n2i\nA,5,10,3,10\nB,12,10,3,10\n")
    code, _, err = run(["pool", str(f), "--measure", "RR"], capsys)
    assert code == 1
    assert "row 2 (line 3), column 'ai': events exceed the group size n1i" in err


@pytest.mark.parametrize("args,needle", [
    (["--measure", "XX"], "unknown measure 'XX'"),
    (["--method", "FOO"], "unknown method 'FOO'"),
    (["--test", "t"], "unknown test 't'"),
    (["--measure", "MD", "--method", "MH"], "MH needs a binary measure"),
])
def test_unknown_options(capsys, args, needle):
    code, _, err = run(["pool", str(EXAMPLE)] + args, capsys)
    assert code == 1
    assert needle in err


def test_missing_file(capsys):
    code, _, err = run(["pool", "/nonexistent/x.csv"], capsys)
    assert code == 1
    assert "file not found" in err


def test_console_script_never_shows_traceback(tmp_path):
    f = tmp_path / "junk.csv"
    f.write_bytes(b"\x00\xff\xfe garbage \x00")
    proc = subprocess.run([sys.executable, "-m", "metaanalysis.cli", "pool", str(f)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:")


def test_validate_cli_exit_codes(bundled, tmp_path, capsys):
    root = Path(__file__).resolve().parents[1]
    code, out, err = run(["validate", str(bundled / "studies")], capsys)
    assert code == 0, err
    n_files = len(list((bundled / "studies").glob("*.yaml")))  # the studies and strains.yaml
    assert out.strip() == f"ok: {n_files} files checked, no problems found"
    broken = root / "tests" / "data" / "broken" / "sd_zero.yaml"
    code, out, err = run(["validate", str(broken)], capsys)
    assert code == 1
    assert "sd_zero.yaml:" in err and "must be > 0" in err


def test_new_study_template_validates_once_written(tmp_path, capsys):
    target = tmp_path / "Doe2030.yaml"
    code, out, err = run(["new-study", "Doe2030", "--out", str(target)], capsys)
    assert code == 0, err
    assert target.exists()
    code, _, err = run(["new-study", "Doe2030", "--out", str(target)], capsys)
    assert code == 1 and "exists" in err


def test_explain_unknown_claim(tmp_path, capsys):
    code, _, err = run(["explain", "NOPE", "--out", str(tmp_path)], capsys)
    assert code == 1
    assert "not found" in err


def test_explain_shows_the_translation_beside_the_original(bundled_run, capsys):
    """C6 is worded in Swedish: `meta explain` reads the protocol's English
    translation, says it is the project's, and keeps the original."""
    code, out, err = run(["explain", "C6", "--out", str(bundled_run[1])], capsys)
    assert code == 0, err
    assert "the project's translation from Swedish" in out
    assert 'Original: "Viktiga skyddande bakterier' in out
