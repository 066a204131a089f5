"""End-to-end `meta run` on synthetic study sets whose right verdict is known by
construction, plus determinism and atomic writes.

The synthetic trials are FICTIONAL (written into a temporary folder, never
into studies/); each carries its own invented quote so that it passes the
provenance check like a real extraction file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from metaanalysis.cli import main
from metaanalysis.runner import run_all

ROOT = Path(__file__).resolve().parents[2]


def _study(sid, m1, sd1, n1, m2, sd2, n2, severity, age="children", strain="LGG"):
    quote = (f"FICTIONAL: SCORAD at 8 weeks was {m1:.1f} ± {sd1:.1f} with probiotic (n = {n1}) "
             f"and {m2:.1f} ± {sd2:.1f} with placebo (n = {n2}).")
    cats = "[" + ", ".join(severity) + "]"
    return f"""# FICTIONAL synthetic trial for tests
schema_version: 1
id: {sid}
citation: "Fictional trial {sid} (test fixture)"
year: 2020
design: parallel
purpose: treatment
status: included
sources:
  s1: {{citation: "fictional", url: null, kind: primary abstract, secondary: false}}
quotes:
  q1: {{source: s1, location: abstract, text: "{quote}"}}
population:
  age_group: {age}
  severity_categories: {cats}
arms:
  - id: probiotic
    role: intervention
    name: probiotic
    n_randomised: {{value: {n1}, quote: q1}}
    intervention:
      strains: [{{as_written: "LGG", registry: {strain}}}]
      duration_weeks: 8
  - id: control
    role: control
    name: placebo
    comparator: placebo
    n_randomised: {{value: {n2}, quote: q1}}
outcomes:
  - id: scorad_8wk
    outcome: SCORAD
    timepoint_weeks: 8
    end_of_treatment: true
    scale: final
    per_arm:
      probiotic:
        n: {{value: {n1}, quote: q1}}
        mean: {{value: {m1:.1f}, quote: q1}}
        sd: {{value: {sd1:.1f}, quote: q1}}
      control:
        n: {{value: {n2}, quote: q1}}
        mean: {{value: {m2:.1f}, quote: q1}}
        sd: {{value: {sd2:.1f}, quote: q1}}
"""


PROTOCOL = """schema_version: 1
id: synthetic
title: "Synthetic test protocol"
question: {population: p, intervention: i, comparator: c, outcome: o}
eligibility: {purpose: treatment, designs: [parallel]}
outcome: {kinds: [SCORAD], label: SCORAD, unit: points, scales: [final, change]}
model: {measure: MD, method: REML, test: knha}
severity:
  source: stated
  bands_source: "test bands"
  bands: [{name: mild, lower: 0, upper: 25}, {name: moderate, lower: 25, upper: 50}, {name: severe, lower: 50, upper: 103}]
  groups: {mild: mild, moderate: moderate-severe, severe: moderate-severe, moderate+severe: moderate-severe}
strata:
  - {name: severity, field: severity}
mcid: 8.7
claims:
  - id: BEN
    wording: "probiotics help"
    source: test
    finding: benefit
    operational: "CI excludes 0 in favour of probiotic"
  - id: HARM
    wording: "probiotics make eczema worse"
    source: test
    finding: harm
    operational: "CI excludes 0 in favour of control"
  - id: SEV
    wording: "only in moderate to severe"
    source: test
    finding: effect_modification
    modifier: severity
    expected_benefit_in: [moderate-severe]
    expected_no_effect_in: [mild]
    operational: "interaction test"
"""


def _setup(tmp_path, trials):
    studies = tmp_path / "studies"
    studies.mkdir()
    shutil.copy(ROOT / "studies" / "strains.yaml", studies / "strains.yaml")
    for args in trials:
        (studies / f"{args[0]}.yaml").write_text(_study(*args), encoding="utf-8")
    protos = tmp_path / "protocols"
    protos.mkdir()
    (protos / "synthetic.yaml").write_text(PROTOCOL, encoding="utf-8")
    return studies, protos


def _verdicts(tmp_path, trials):
    studies, protos = _setup(tmp_path, trials)
    out = run_all([protos], studies, tmp_path / "out")
    return {c["id"]: c for c in out[0].claims}


MILD = ["mild"]
MODSEV = ["moderate", "severe"]

#: Known-truth scenarios (study, m1, sd1, n1, m2, sd2, n2, severity), shared
#: with test_claims.py. A true interaction: 6 mild trials with no effect, 6
#: moderate-to-severe ones with a large benefit.
TRUE_INTERACTION = (
    [(f"Mild{i}", 30.0 + d, 10.0, 100, 30.0, 10.0, 100, MILD)
     for i, d in enumerate([-1, 1, 0, -0.5, 0.5, 0])]
    + [(f"Sev{i}", 28.0 + d, 10.0, 100, 40.0, 10.0, 100, MODSEV)
       for i, d in enumerate([-1, 1, 0, -0.5, 0.5, 0])])
#: Significance in one stratum only: moderate-to-severe significant, mild not,
#: but the strata do not differ.
ONE_STRATUM_ONLY = [("Mild0", 26.0, 12.0, 20, 30.0, 12.0, 20, MILD),
                    ("Mild1", 32.0, 12.0, 20, 30.0, 12.0, 20, MILD),
                    ("Mild2", 24.0, 12.0, 20, 30.0, 12.0, 20, MILD),
                    ("Sev0", 25.0, 10.0, 150, 30.0, 10.0, 150, MODSEV),
                    ("Sev1", 24.0, 10.0, 150, 30.0, 10.0, 150, MODSEV),
                    ("Sev2", 26.0, 10.0, 150, 30.0, 10.0, 150, MODSEV)]


def test_true_severity_interaction_is_supported(tmp_path):
    v = _verdicts(tmp_path, TRUE_INTERACTION)
    sev = v["SEV"]
    assert sev["verdict"] == "supported", sev["summary"]
    assert sev["figures"]["Q_between_p"] < 0.001
    assert sev["iceman"]["rating"] == "moderate"


def test_spurious_interaction_significant_in_one_stratum_only(tmp_path):
    v = _verdicts(tmp_path, ONE_STRATUM_ONLY)
    sev = v["SEV"]
    subs = sev["figures"]["subgroups"]
    assert subs["moderate-severe"]["ci_ub"] < 0  # "significant" within the stratum
    assert subs["mild"]["ci_ub"] > 0              # "not significant" within the stratum
    assert sev["figures"]["Q_between_p"] > 0.2
    assert sev["verdict"] == "inconclusive"


def test_too_few_trials_gives_insufficient_evidence(tmp_path):
    trials = [("Mild0", 30.0, 10.0, 50, 30.0, 10.0, 50, MILD)]
    trials += [(f"Sev{i}", 25.0, 10.0, 50, 35.0, 10.0, 50, MODSEV) for i in range(3)]
    v = _verdicts(tmp_path, trials)
    assert v["SEV"]["verdict"] == "insufficient evidence"
    assert "mild" in v["SEV"]["missing"]


def test_harmful_effect(tmp_path):
    trials = [(f"T{i}", 40.0 + d, 10.0, 120, 30.0, 10.0, 120, MODSEV)
              for i, d in enumerate([-1, 1, 0, 0.5, -0.5, 0])]
    v = _verdicts(tmp_path, trials)
    assert v["HARM"]["verdict"] == "supported"
    assert v["BEN"]["verdict"] == "contradicted"
    assert v["BEN"]["certainty"] in ("moderate", "high")


def test_invalid_protocol_stops_with_located_error(tmp_path, capsys):
    studies, protos = _setup(tmp_path, [("A1", 30.0, 10.0, 50, 31.0, 10.0, 50, MILD)])
    (protos / "synthetic.yaml").write_text(PROTOCOL.replace("method: REML", "method: BOGUS"))
    code = main(["run", str(protos), "--studies", str(studies), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1
    assert "synthetic.yaml:" in err and "model.method" in err
    assert not (tmp_path / "o").exists()


def _digest(folder: Path) -> dict:
    """The outputs' JSON and CSV files (not the cache: bookkeeping, which a
    failed run may add to)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix in (".json", ".csv")
            and p.relative_to(folder).parts[0] != ".cache"}


def test_bundled_run_is_byte_identical(bundled, bundled_run, tmp_path):
    a, a_dir = bundled_run
    b = run_all([bundled / "protocols"], bundled / "studies", tmp_path / "b")
    assert [o.protocol_id for o in a] == [o.protocol_id for o in b] == [
        "prevention-eczema", "treatment-responder", "treatment-scorad"]
    da, db = _digest(a_dir), _digest(tmp_path / "b")
    assert da and da == db
    data = json.loads((a_dir / "treatment-scorad" / "results.json").read_text())
    ids = {c["id"] for c in data["claims"]}
    assert {"C1", "C2", "C3", "C5", "C8", "C9", "C10", "C11", "C4", "C6", "C7"} <= ids
    for c in data["claims"]:
        assert c["verdict"] in ("supported", "contradicted", "inconclusive",
                                "insufficient evidence", "out of scope")
        assert c["summary"]


def test_failed_run_leaves_previous_outputs(bundled, bundled_run, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    # no cached figures: every figure is drawn, so the crash happens
    shutil.rmtree(out / ".cache", ignore_errors=True)
    before = _digest(out)

    import metaanalysis.render.figures as figures

    def boom(job, figdir, *args):
        Path(figdir).mkdir(exist_ok=True)
        (Path(figdir) / "half.svg").write_text("<svg")
        raise RuntimeError("simulated crash while drawing")

    monkeypatch.setattr(figures, "draw_figure", boom)
    with pytest.raises(RuntimeError):
        run_all([bundled / "protocols"], bundled / "studies", out)
    assert _digest(out) == before
    # nothing half-written is left; the cache (bookkeeping) may remain
    assert not any(p.name.startswith(".") and p.name != ".cache" for p in out.iterdir())


def test_sensitivity_protocol_on_the_odds_ratio_scale(bundled, tmp_path):
    # trials that report only ORs enter on the OR scale; the main RR protocol
    # lists them as not analysed with that reason
    out = run_all([bundled / "protocols" / "sensitivity" / "prevention-eczema-or.yaml"],
                  bundled / "studies", tmp_path)
    data = json.loads((tmp_path / "prevention-eczema-or" / "results.json").read_text())
    keys = {c["key"] for c in data["comparisons"]}
    assert {"Dotterud2010", "Kukkonen2007"} <= keys
    assert "Boyle2011" not in keys
    assert {c["id"] for c in out[0].claims} == {"C12-OR", "C12-OR-mix-modifier"}


def test_only_one_claim_keeps_full_outputs(bundled, bundled_run, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(bundled_run[1], out)
    before = _digest(out)
    inputs = [str(bundled / "protocols"), "--studies", str(bundled / "studies")]
    code = main(["run", *inputs, "--only", "C2", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "C2: INSUFFICIENT EVIDENCE" in text and "Reasons:" in text
    data = json.loads((out / ".only" / "treatment-scorad-C2" / "results.json").read_text())
    assert [c["id"] for c in data["claims"]] == ["C2"]
    after = {k: v for k, v in _digest(out).items() if not k.startswith(".only/")}
    assert after == before
    assert main(["run", *inputs, "--only", "NOPE", "--out", str(out)]) == 1
