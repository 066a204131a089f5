"""report.html and report.md: what a reviewer opens first.

One bundled ``meta run`` (module-scoped) feeds every test. The HTML is checked
as text (every claim with its verdict, one inline <svg> per indexed figure,
nothing loaded from the network, study text escaped) and in headless Chromium
(Debian's ``chromium`` package): a screenshot kept as a test artifact in
tests/artifacts/, no console messages, and every figure laid out with a
visible size. Without Chromium the browser test skips, unless
META_REQUIRE_ALL=1 (as in .ci/run), where it fails.
"""

import copy
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from markupsafe import escape

from metaanalysis.analysis.pipeline import Analysis
from metaanalysis.analysis.protocol import MetaRegression
from metaanalysis.render import report
from metaanalysis.stats.bias import RegTest, TrimFill
from metaanalysis.stats.results import RegressionResult

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
NASTY = 'A<&>"B'


def esc(text) -> str:
    """Text as jinja2's autoescape writes it (markupsafe: ' becomes &#39;)."""
    return str(escape(text))

#: Flags from the issue; the rest keep a headless run quiet and offline.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


# ----------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def outputs(bundled_run):
    """protocol id -> (output folder, results.json content, figure index)."""
    done, _ = bundled_run  # shared with the other tests: read only
    result = {}
    for o in done:
        folder = Path(o.out_dir)
        data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        index = json.loads((folder / "figures" / "index.json").read_text(encoding="utf-8"))
        result[o.protocol_id] = (folder, data, index)
    assert result, "the bundled run produced no protocol"
    return result


def _replace(run, **changes):
    """A copy of ``run`` with some fields replaced (result objects are frozen)."""
    return dataclasses.replace(run, **changes)


def _html(folder):
    return (folder / "report.html").read_text(encoding="utf-8")


def _md(folder):
    return (folder / "report.md").read_text(encoding="utf-8")


def _figure_blocks(text):
    """figure id -> the HTML between <figure id="fig-..."> and </figure>."""
    return {m.group(1): m.group(2)
            for m in re.finditer(r'<figure id="fig-([^"]+)">(.*?)</figure>', text, re.S)}


# ----------------------------------------------------------------------------
# number formatting


def test_number_formats():
    assert report.fmt_p(0.0321) == "0.03"
    assert report.fmt_p(0.0042) == "0.004"
    assert report.fmt_p(0.0004) == "< 0.001"
    assert report.fmt_p(0.0496) == "0.050" and report.fmt_p(0.05) == "0.05"
    assert report.fmt_p(None) == "NA"
    assert report.fmt_i2(52.83) == "53%" and report.fmt_i2(None) == "NA"
    assert report.fmt_num(-0.001) == "0.00"
    assert report.fmt_tau2(0.0042) == "0.0042"
    rr = report.Scale("RR")
    assert rr.est_ci(math.log(0.6), math.log(0.4), math.log(0.9)) == "0.60 [0.40, 0.90]"
    md = report.Scale("MD")
    assert md.est_ci(-9.848, -14.937, -4.759) == "-9.85 [-14.94, -4.76]"


# ----------------------------------------------------------------------------
# report.html as text


def test_both_reports_are_written(outputs):
    for folder, _, _ in outputs.values():
        assert (folder / "report.html").stat().st_size > 0
        assert (folder / "report.md").stat().st_size > 0


def test_html_has_every_claim_with_its_verdict(outputs):
    for folder, data, _ in outputs.values():
        text = _html(folder)
        assert data["claims"]
        for c in data["claims"]:
            anchor = "claim-" + re.sub(r"[^A-Za-z0-9_-]+", "-", c["id"]).strip("-")
            m = re.search(rf'<article class="claim [^"]*" id="{re.escape(anchor)}">(.*?)</article>',
                          text, re.S)
            assert m, f"no section for claim {c['id']}"
            body = m.group(1)
            assert esc(c["id"]) in body
            assert f'">{esc(c["verdict"])}</span>' in body  # the badge
            if c.get("certainty"):
                assert esc(c["certainty"]) in body
            for d in c.get("downgrades") or []:
                assert esc(d["reason"]) in body
            if c.get("iceman"):
                assert esc(c["iceman"]["rating"]) in body
            # and a summary-of-findings row that links to it
            assert f'<a href="#{anchor}"><b>{esc(c["id"])}</b></a>' in text


def test_html_embeds_every_figure_as_inline_svg(outputs):
    for folder, _, index in outputs.values():
        text = _html(folder)
        blocks = _figure_blocks(text)
        assert index
        for f in index:
            assert f["id"] in blocks, f"figure {f['id']} is not in the report"
            assert blocks[f["id"]].count("<svg") == 1
        assert text.count("<svg") == len(index)
        assert "<?xml" not in text and "<!DOCTYPE svg" not in text
        ids = re.findall(r'\bid="([^"]+)"', text)
        assert len(ids) == len(set(ids)), "ids collide between figures"
        refs = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', text))
        assert refs <= set(ids), f"dangling references: {sorted(refs - set(ids))[:5]}"


def test_html_loads_nothing_from_outside(outputs):
    for folder, _, _ in outputs.values():
        text = _html(folder)
        attrs = re.findall(r'\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["\']?\s*([^"\'\s>]*)',
                           text, re.I)
        external = [a for a in attrs if re.match(r"(?:[a-z][a-z0-9+.-]*:|//)", a, re.I)
                    and not a.startswith("data:")]
        assert external == []
        assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", text, re.I)
        assert not re.search(r"<(?:script|link|iframe|object|embed)\b", text, re.I)
        assert "@import" not in text


def test_html_has_the_required_sections(outputs):
    for folder, data, _ in outputs.values():
        text = _html(folder)
        q = data["protocol"]["question"]
        for part in ("population", "intervention", "comparator", "outcome"):
            assert esc(q[part]) in text
        # the flow table counts every study file
        assert f'<td class="num">{len(data["studies"])}</td>' in text
        for s in data["studies"]:
            assert esc(s["id"]) in text
            same_question = s["purpose"] == data["protocol"]["eligibility"]["purpose"]
            if same_question and s["status"] != "analysed" and s.get("awaiting_data"):
                assert esc(s["awaiting_data"]) in text
        # every stratum, every regression (or why not), every sensitivity analysis
        for a in data["strata"]:
            assert f"By {esc(a['name'])}</h3>" in text
            if a["result"] and a["result"].get("Q_between") is not None:
                assert "Test for subgroup differences:" in text
        for r in data["meta_regression"]:
            if r["result"] is None:
                assert esc(re.sub(r"^not estimable:\s*", "", r["note"])) in text
        if not data["meta_regression"]:
            assert "The protocol specifies no meta-regression." in text
        for a in data["sensitivity"]:
            assert esc(a["name"]) in text
        small = data["small_study"]
        if not small.get("assessed"):
            assert esc(small["reason"]) in text
        # the appendix has every derivation step of every comparison
        for c in data["comparisons"]:
            for d in c["extraction"]["derivations"]:
                assert esc(d["formula"]) in text
            for flag in c["flags"]:
                assert f'<span class="flag">{esc(flag)}</span>' in text


def test_pooled_effects_are_rounded_on_the_natural_scale(outputs):
    for folder, data, _ in outputs.values():
        res = data["main"]["result"]
        if res is None:
            continue
        f = math.exp if data["protocol"]["model"]["measure"] in ("RR", "OR") else (lambda x: x)
        want = f"{f(res['estimate']):.2f} [{f(res['ci_lb']):.2f}, {f(res['ci_ub']):.2f}]"
        assert want in _html(folder)
        assert want in _md(folder)
        assert f"I² = {res['I2']:.0f}%" in _html(folder)


def test_study_text_is_escaped(outputs, bundled_results):
    pid, (folder, _, index) = next(iter(outputs.items()))
    run = bundled_results[pid]
    proto = run.protocol
    c0 = run.comparisons[0]
    old = c0.key
    c0 = dataclasses.replace(c0, key=NASTY, extraction=dataclasses.replace(
        c0.extraction, notes=('note with <b>bold</b> & "quotes"',)))
    s0 = {**run.studies[0], "purpose": proto.eligibility.purpose, "status": "not analysed",
          "reason": "<script>alert(1)</script>"}
    rekey = lambda a: dataclasses.replace(a, keys=tuple(NASTY if k == old else k for k in a.keys))  # noqa: E731
    run = _replace(run, comparisons=(c0,) + run.comparisons[1:], studies=(s0,) + run.studies[1:],
                   protocol=proto.model_copy(update={"title": "Title <i>with</i> markup & more"}),
                   claims=(dataclasses.replace(run.claims[0], wording='He said "<&>"'),)
                   + run.claims[1:],
                   main=rekey(run.main), strata=tuple(map(rekey, run.strata)),
                   sensitivity=tuple(map(rekey, run.sensitivity)))
    files = report.render_reports(run, index, folder)
    text = files["report.html"]
    assert NASTY not in text
    assert "A&lt;&amp;&gt;&#34;B" in text
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>bold</b>" not in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "Title &lt;i&gt;with&lt;/i&gt; markup &amp; more" in text
    assert "He said &#34;&lt;&amp;&gt;&#34;" in text
    md = files["report.md"]
    # CommonMark: a backslash before "<" keeps it from opening a tag
    assert "\\<script>alert(1)\\</script>" in md and not re.search(r"(?<!\\)<script>", md)
    assert "\\<b>bold\\</b>" in md


def test_reports_are_deterministic(outputs, bundled_results):
    for pid, (folder, _, index) in outputs.items():
        a = report.render_reports(bundled_results[pid], index, folder)
        b = report.render_reports(copy.deepcopy(bundled_results[pid]), list(index), folder)
        assert a == b
        assert a["report.html"] == _html(folder)
        assert a["report.md"] == _md(folder)


# ----------------------------------------------------------------------------
# report.md


def test_markdown_has_the_summary_table(outputs):
    for folder, data, index in outputs.values():
        md = _md(folder)
        assert "## 2. Summary of findings" in md
        assert "| Claim | k | Effect [95% CI] | 95% PI | I² | Certainty | Verdict |" in md
        table = md.split("## 2. Summary of findings", 1)[1].split("\n## ", 1)[0]
        for c in data["claims"]:
            row = next((line for line in table.splitlines() if line.startswith(f"| **{c['id']}** ")),
                       None)
            assert row is not None, f"no summary row for {c['id']}"
            assert row.rstrip().endswith(f"| **{c['verdict']}** |")
            assert row.count(" | ") >= 6
        # figures are relative image links to files that exist
        links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
        assert len(links) == len(index)
        for link in links:
            assert not re.match(r"[a-z]+:", link) and (folder / link).is_file()
            assert link.endswith(".png") or not any(p.endswith(".png") for f in index
                                                    for p in f["files"] if Path(p).stem == Path(link).stem)


# ----------------------------------------------------------------------------
# headless Chromium


def _chromium():
    exe = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if exe is None:
        if os.environ.get("META_REQUIRE_ALL") == "1":
            pytest.fail("chromium is not installed but META_REQUIRE_ALL=1 (install Debian's "
                        "'chromium' package; .ci/run does)")
        pytest.skip("chromium is not installed")
    return exe


def _run_chromium(exe, profile, *args):
    cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _console_lines(stderr):
    return [line for line in stderr.splitlines()
            if ":CONSOLE" in line or "Uncaught" in line]


#: Appended (to a copy only) to read the layout back through --dump-dom.
PROBE = """<script>
(function () {
  var out = [];
  document.querySelectorAll("figure").forEach(function (f) {
    var s = f.querySelector("svg"), r = s ? s.getBoundingClientRect() : null;
    out.push(f.id + "=" + (r ? Math.round(r.width) + "x" + Math.round(r.height) + "@" + Math.round(r.right) : "none"));
  });
  var res = performance.getEntriesByType("resource").map(function (e) { return e.name; });
  document.body.setAttribute("data-figures", out.join(" "));
  document.body.setAttribute("data-resources", String(res.length) + (res.length ? ":" + res.join(" ") : ""));
  document.body.setAttribute("data-page-width", String(document.documentElement.scrollWidth));
})();
</script>
"""


def test_report_renders_in_chromium(outputs, tmp_path):
    exe = _chromium()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for pid, (folder, _, index) in sorted(outputs.items()):
        page = folder / "report.html"
        # the screenshot: the treatment report is the one kept as report.png
        shot = ARTIFACTS / ("report.png" if pid == "treatment-scorad" else f"report-{pid}.png")
        shot.unlink(missing_ok=True)
        r = _run_chromium(exe, tmp_path / f"profile-shot-{pid}", f"--screenshot={shot}",
                          "--window-size=1280,4000", page.as_uri())
        assert shot.is_file(), f"no screenshot for {pid}: {r.stderr[-2000:]}"
        assert _console_lines(r.stderr) == [], f"{pid}: console messages while loading the report"
        shutil.copy(page, ARTIFACTS / f"report-{pid}.html")

        import matplotlib.image as mpimg

        img = mpimg.imread(shot)
        assert img.shape[:2] == (4000, 1280)
        rgb = np.asarray(img[..., :3], dtype=float)
        ink = (rgb < 0.9).any(axis=2)
        assert ink.mean() > 0.02, "the screenshot is (nearly) blank"
        assert rgb.std() > 0.05
        # the page is not one colour block either: a white page with text on it
        assert (rgb > 0.97).all(axis=2).mean() > 0.5

        # layout read back: every figure laid out with a visible size, inside the page
        probe = tmp_path / f"probe-{pid}" / "report.html"
        probe.parent.mkdir()
        probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                         encoding="utf-8")
        r = _run_chromium(exe, tmp_path / f"profile-dom-{pid}", "--window-size=1280,4000",
                          "--dump-dom", probe.as_uri())
        assert _console_lines(r.stderr) == [], f"{pid}: console messages: {_console_lines(r.stderr)}"
        body = re.search(r"<body([^>]*)>", r.stdout)
        assert body, f"no DOM dumped for {pid}: {r.stderr[-2000:]}"
        attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', body.group(1)))
        assert attrs.get("data-resources") == "0", f"resources were loaded: {attrs.get('data-resources')}"
        width = int(attrs["data-page-width"])
        assert width <= 1280, "the page scrolls sideways"
        sizes = dict(item.split("=") for item in attrs["data-figures"].split())
        assert set(sizes) == {"fig-" + re.sub(r"[^A-Za-z0-9_-]+", "-", f["id"]).strip("-")
                              for f in index}
        for fig_id, size in sizes.items():
            assert size != "none", f"{fig_id}: no <svg> in the rendered page"
            wh, right = size.split("@")
            w, h = map(int, wh.split("x"))
            assert w >= 300 and h >= 100, f"{fig_id} is rendered at {w}x{h} px"
            assert int(right) <= width, f"{fig_id} sticks out of the page"
        # every <svg> survived parsing with its size attributes
        svgs = re.findall(r"<svg\b[^>]*>", r.stdout)
        assert len(svgs) == len(index)
        for tag in svgs:
            w = re.search(r'\bwidth="([\d.]+)', tag)
            h = re.search(r'\bheight="([\d.]+)', tag)
            assert w and h and float(w.group(1)) > 0 and float(h.group(1)) > 0


def test_branches_the_bundled_run_does_not_reach(outputs, bundled_results):
    """Small-study tests assessed, a meta-regression on a ratio measure, pooled
    adverse events, a contradicted claim, a figure without SVG: all render."""
    by_measure = {d["protocol"]["model"]["measure"]: (pid, f, i)
                  for pid, (f, d, i) in outputs.items()}
    pid, folder, index = by_measure.get("RR") or next((p, f, i) for p, (f, _, i) in outputs.items())
    run = bundled_results[pid]
    nan = float("nan")
    egger = RegTest(model="lm", predictor="sei", stat=-2.5, pval=0.021, df=10.0, est=-1.2,
                    ci_lb=nan, ci_ub=nan, beta=np.array([-1.2, 0.3]), se=np.array([0.4, 0.1]),
                    tau2=nan, sigma=1.0)
    # trim and fill's refitted model: only its pooled estimate and CI (d = 1) are shown
    refit = dataclasses.make_dataclass("Refit", ["beta", "ci_lb", "ci_ub"])(
        np.array([[-0.1]]), np.array([[-0.3]]), np.array([[0.1]]))
    trimfill = TrimFill(estimator="L0", side="right", k0=3, se_k0=nan, p_k0=nan,
                        yi_fill=np.full(3, 0.1), vi_fill=np.full(3, 0.05), yi_all=np.zeros(15),
                        vi_all=np.zeros(15), fill=np.zeros(15, bool), fit=refit, iterations=1)
    reg = RegressionResult(
        k=8, method="REML", test="knha", coef_names=("intrcpt", "year"), beta=(0.5, -0.02),
        se=(0.4, 0.01), stat=(1.25, -2.0), pval=(0.25, 0.09), ci_lb=(-0.4, -0.045),
        ci_ub=(1.4, 0.005), df=6.0, tau2=0.01, I2=12.0, H2=1.1, R2=40.0, QE=7.0, QE_df=6,
        QE_p=0.32, QM=4.0, QM_df=(1, 6), QM_p=0.09, alpha=0.05)
    proto = run.protocol.model_copy(update={"meta_regression": (
        MetaRegression.model_construct(moderator="year", label="publication year"),)})
    run = _replace(
        run, protocol=proto,
        small_study={"assessed": True, "k": 12, "egger": egger, "trimfill": trimfill},
        adverse_events=Analysis("adverse events", "any adverse event, RR", (), run.main.result),
        regressions=(("year", reg, None, ("x", "y")),),
        claims=(dataclasses.replace(run.claims[0], verdict="contradicted"),) + run.claims[1:])
    # the first figure with a PNG (the main forest plot) loses its SVG
    j = next(i for i, f in enumerate(index) if any(p.endswith(".png") for p in f["files"]))
    png_only = [dict(index[j], files=[p for p in index[j]["files"] if p.endswith(".png")])]
    files = report.render_reports(run, index[:j] + png_only + index[j + 1:], folder)
    text, md = files["report.html"], files["report.md"]
    assert ("Egger regression (metafor regtest model=&#39;lm&#39;, predictor sei):</b> "
            "intercept -1.20") in text and "(p = 0.02)" in text
    assert "3 imputed; adjusted RR 0.90 [0.74, 1.11]" in text
    assert "On publication year" in text and "QM = 4.00, df = (1, 6) (p = 0.09)" in text
    assert "0.98 [0.96, 1.01]" in text  # exp of the slope and its CI
    assert "Pooled RR:</b>" in text
    assert '<span class="badge v-contradicted">contradicted</span>' in text
    assert 'src="data:image/png;base64,' in text and text.count("<svg") == len(index) - 1
    assert "- **Egger regression (metafor regtest model='lm', predictor sei):** intercept -1.20" in md and "## 9. Adverse events" in md


# ----------------------------------------------------------------------------
# GRADE Summary of Findings table


def test_reports_show_the_grade_summary_of_findings_table(outputs, bundled_results):
    from metaanalysis.render import sof

    for pid, (folder, _, _) in outputs.items():
        table = sof.summary_of_findings(bundled_results[pid])
        assert table["rows"], "every protocol with a main analysis has a Summary of Findings row"
        # sof.csv is written beside the reports, and is exactly the table
        assert (folder / "sof.csv").read_text(encoding="utf-8") == sof.sof_csv(table)
        md, html = _md(folder), _html(folder)
        section = md.split("## 2. Summary of findings", 1)[1].split("\n## ", 1)[0]
        grade = section.split("### Claims and verdicts", 1)[0]
        for r in table["rows"]:
            line = next(x for x in grade.splitlines() if x.startswith(f"| {r['outcome']} "))
            assert f"{r['certainty_symbols']} {r['certainty']}" in line
            assert r["participants"] in line
            assert esc(r["outcome"]) in html and esc(r["participants"]) in html
        for i, note in enumerate(table["footnotes"], 1):
            assert f"\n{i}. " in grade
            assert f"<li>{esc(note)}</li>" in html
        # near the top: before the studies and the main analysis
        assert html.index('id="grade-sof"') < html.index('id="studies"')


def test_interval_labels_follow_alpha(outputs, bundled_results):
    pid, (folder, _, _) = next(iter(outputs.items()))
    assert "95% PI" in _md(folder) and "[95% CI]" in _md(folder)
    run = bundled_results[pid]
    proto = run.protocol
    run = _replace(run, protocol=proto.model_copy(update={
        "model": proto.model.model_copy(update={"alpha": 0.10})}),
        # claim sentences are written by claims_text from the records, not here
        claims=tuple(dataclasses.replace(c, reasons=(), judgement=None) for c in run.claims))
    files = report.render_reports(run, [], folder)  # the figures were drawn at alpha = 0.05
    for name in ("report.md", "report.html"):
        text = files[name]
        assert "90% PI" in text and "[90% CI]" in text and "Wald 90% intervals" in text
        assert "95% PI" not in text and "[95% CI]" not in text
    assert "Risk with probiotic (90% CI)" in files["report.md"] or "Difference with probiotic (90% CI)" in files["report.md"]


#: Read back inside an <iframe> of a phone's width (headless Chromium will not
#: open a window narrower than 500 px; an iframe is its own viewport, so the
#: report's media queries see the phone width). Every element that reaches
#: past the viewport must sit inside a scrolling box (a wide table scrolls
#: inside itself); the page itself must never scroll sideways.
PHONE_PROBE = """<script>
(function () {
  var vw = document.documentElement.clientWidth, wide = [];
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    // a box past the viewport, or text running out of its box (a long URL)
    var spills = getComputedStyle(e).overflowX === "visible" && e.clientWidth > 0
                 && e.scrollWidth > e.clientWidth + 1;
    if (r.right <= vw + 1 && !spills) return;
    for (var p = e.parentElement; p; p = p.parentElement) {
      var o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") return;
    }
    if (e.tagName === "MAIN" || e.tagName === "SECTION") return;  // the containers of the culprit
    wide.push(e.tagName.toLowerCase() + (e.className ? "." + e.className : "") + ":" + Math.round(Math.max(r.right, e.scrollWidth))
              + " " + (e.textContent || "").trim().slice(0, 40));
  });
  var out = window.parent.document.body;
  out.setAttribute("data-viewport", String(vw));
  out.setAttribute("data-page-width", String(document.documentElement.scrollWidth));
  out.setAttribute("data-wide", wide.slice(0, 10).join(" "));
})();
</script>
"""

#: Widths in CSS px: a small and a large phone.
PHONE_WIDTHS = (360, 414)


def test_report_fits_a_phone_in_chromium(outputs, tmp_path):
    exe = _chromium()
    for pid, (folder, _, _) in sorted(outputs.items()):
        page = tmp_path / pid / "report.html"
        page.parent.mkdir()
        page.write_text(_html(folder).replace("</body>", PHONE_PROBE + "</body>"), encoding="utf-8")
        for w in PHONE_WIDTHS:
            frame = tmp_path / pid / f"phone-{w}.html"
            frame.write_text('<!DOCTYPE html><html><body style="margin:0"><iframe src="report.html" '
                             f'style="width:{w}px;height:2000px;border:0"></iframe></body></html>',
                             encoding="utf-8")
            r = _run_chromium(exe, tmp_path / f"profile-phone-{pid}-{w}",
                              "--allow-file-access-from-files", "--window-size=800,2000",
                              "--virtual-time-budget=5000", "--dump-dom", frame.as_uri())
            body = re.search(r"<body([^>]*)>", r.stdout)
            assert body, f"no DOM dumped for {pid}: {r.stderr[-2000:]}"
            attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', body.group(1)))
            assert attrs.get("data-viewport") == str(w), f"{pid}: the probe did not run ({attrs})"
            assert int(attrs["data-page-width"]) <= w, \
                f"{pid} at {w} px scrolls sideways: {attrs.get('data-wide')}"
            assert attrs.get("data-wide") == "", f"{pid} at {w} px: {attrs['data-wide']}"


def test_a_claim_in_another_language_reads_in_english_beside_the_original(outputs):
    seen = 0
    for folder, data, _ in outputs.values():
        entries = [e for e in list(data["protocol"].get("claims") or [])
                   + list(data["protocol"].get("out_of_scope") or []) if e.get("translation")]
        html, md = _html(folder), _md(folder)
        claims_md = (folder / "claims.md").read_text(encoding="utf-8")
        for e in entries:
            seen += 1
            for text in (html, md):
                assert esc(e["translation"]) in text or e["translation"] in text
                assert f"Original: “{esc(e['wording'])}”" in text or \
                    f"Original: “{e['wording']}”" in text
                assert "translation" in text.lower()
            assert f"Claim: \"{e['translation']}\" (the project's translation from " in claims_md
            assert f"Original: \"{e['wording']}\"" in claims_md
    assert seen >= 1, "no protocol carries a translated claim (C6 is Swedish)"


def test_subgroup_tests_give_q_df_and_p(outputs):
    """The report's own statements of a subgroup test (stratum sections, the
    claims table, the Summary of Findings comments) give Q and df with p.
    (A claim's reasoning sentence, written by claims.py, is quoted as is.)"""
    n = 0
    for folder, _data, _ in outputs.values():
        md = _md(folder)
        lines = (re.findall(r"\*\*Test for subgroup differences:\*\* [^\n]*", md)
                 + re.findall(r"\(Test for subgroup differences: [^)]*\)", md)
                 + re.findall(r"\(subgroup differences by [^)]*\)", md))
        for line in lines:
            if re.search(r"\bp [=<] ", line):
                n += 1
                assert re.search(r"Q = [\d.]+, df = \d+", line), line
    assert n >= 3


def test_a_paged_figure_is_one_figure_in_its_section(tmp_path):
    """A forest plot drawn in pages (render/layout.py) is shown in its own
    section with every page, not among the "other figures"."""
    (tmp_path / "figures").mkdir()
    index = []
    for i in (1, 2):
        (tmp_path / "figures" / f"forest_main_p{i}.svg").write_text(
            f'<svg xmlns="http://www.w3.org/2000/svg"><text>page {i}</text></svg>', encoding="utf-8")
        index.append({"id": f"forest_main_p{i}", "title": f"Main analysis (page {i} of 2)",
                      "caption": "", "files": [f"figures/forest_main_p{i}.svg"],
                      "page_of": "forest_main"})
    index.append({"id": "funnel", "title": "Funnel", "caption": "", "files": []})
    figs = report.Figures(index, tmp_path)
    view = figs.take("forest_main")
    assert view["title"] == "Main analysis"
    assert "page 1" in view["html"] and "page 2" in view["html"]
    assert view["files"] == ["figures/forest_main_p1.svg", "figures/forest_main_p2.svg"]
    assert figs.take("forest_main") is None  # taken once
    assert [f["id"] for f in figs.rest()] == ["funnel"]
