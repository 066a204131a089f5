"""The ``meta`` command line. The only module that imports typer.

Every command turns user errors into one line on stderr and exit code 1;
``main()`` guarantees that no traceback reaches the user.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from metaanalysis.errors import MetaError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  # main() turns every exception into one line; typer's rich
                  # traceback hook must never get to print one
                  pretty_exceptions_enable=False,
                  help="Meta-analysis of probiotic trials in atopic dermatitis, checked against metafor.")


def _print_version(value: bool) -> None:
    if value:
        from metaanalysis import __version__

        typer.echo(f"meta {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Meta-analysis of probiotic trials in atopic dermatitis, checked against metafor."""


def _fail(message: str, code: int = 1):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


@app.command()
def pool(
    file: Annotated[Path, typer.Argument(help="CSV with metafor column names (m1i sd1i n1i m2i sd2i n2i | ai n1i ci n2i | yi vi | yi sei).")],
    measure: Annotated[str, typer.Option(help="MD SMD RR OR RD GEN")] = "MD",
    method: Annotated[str, typer.Option(help="FE DL HE SJ PM EB ML REML MH PETO")] = "REML",
    test: Annotated[str, typer.Option(help="z | knha | adhoc")] = "z",
    by: Annotated[Optional[str], typer.Option(help="Column to fit subgroups by.")] = None,
    alpha: Annotated[float, typer.Option(help="1 - coverage of the intervals.")] = 0.05,
    pi_df: Annotated[str, typer.Option("--pi-df", help="metafor | k-1 | k-2 | z")] = "metafor",
    common_tau2: Annotated[bool, typer.Option("--common-tau2", help="Subgroups share one tau2 (metafor QM test).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print exactly .to_dict() as JSON.")] = False,
    max_bytes: Annotated[int, typer.Option("--max-bytes", min=1, help="Refuse larger files (default 50 MB).")] = 50 * 1024 * 1024,
    forest: Annotated[Optional[Path], typer.Option("--forest", help="Also draw the RevMan-layout forest plot to FILE.svg, .png or .pdf (subgroups from --by).")] = None,
    drop_incomplete: Annotated[bool, typer.Option("--drop-incomplete", help="Leave out rows with an empty cell in a needed column, with a warning listing them (default: refuse).")] = False,
) -> None:
    """Pool the studies in FILE.csv and print metafor-style results."""
    from metaanalysis.api import pool as do_pool
    from metaanalysis.studies.io import read_csv

    data = read_csv(file, max_bytes=max_bytes)
    if forest is not None and forest.suffix.lower() not in (".svg", ".png", ".pdf"):
        _fail(f"--forest {forest}: the file name must end in .svg, .png or .pdf")
    if drop_incomplete:
        data = _drop_incomplete(data, measure, by, file)
    res = do_pool(data, measure=measure, method=method, test=test, by=by, alpha=alpha,
                  pi_df=pi_df, subgroup_tau2="common" if common_tau2 else "separate",
                  file=str(file))
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=2, allow_nan=False))
    else:
        from metaanalysis.render.text import format_pool

        typer.echo(format_pool(res))
    if forest is not None:
        _draw_pool_forest(res, data, measure, forest)


def _drop_incomplete(data, measure, by, file):
    """``--drop-incomplete``: metafor's na.omit, with a warning that lists the rows."""
    from metaanalysis.api import _labels, drop_incomplete

    kept, dropped = drop_incomplete(data, measure, by=by, file=str(file))
    if dropped:
        labels = _labels(data)
        rows = "; ".join(f"row {i} (line {i + 1}, {labels[i - 1]})" for i in dropped)
        typer.echo(f"warning: {file}: {len(dropped)} incomplete row(s) left out: {rows}", err=True)
    return kept


def _draw_pool_forest(res, data, measure, path: Path):
    """The forest plot of ``meta pool --forest``: per-arm data columns from the table."""
    from metaanalysis.api import _labels
    from metaanalysis.render.forest import forest_plot, save_figure

    arm_keys = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i", "ai", "ci")
    study_data = {}
    for label, row in zip(_labels(data), data.to_dict("records")):
        d = {}
        for k in arm_keys:
            try:  # read_csv keeps cells as text; pool() has already checked them
                v = float(row[k])
            except (KeyError, TypeError, ValueError):
                continue
            if v == v:
                d[k] = v
        study_data[label] = d
    fig = forest_plot(res, study_data=study_data, arms=("Experimental", "Control"),
                      prediction=res.overall.method not in ("FE", "MH", "PETO"))
    (written,) = save_figure(fig, path.with_suffix(""), formats=(path.suffix.lower().lstrip("."),))
    typer.echo(f"forest plot: {written}", err=True)


@app.command()
def validate(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Study files or folders (default: studies/).")] = None,
) -> None:
    """Check study extraction files; report every problem as FILE:LINE: field: message."""
    from metaanalysis.studies.validate import validate_paths

    paths = paths or [Path("studies")]
    problems = validate_paths([str(p) for p in paths])
    for prob in problems:
        typer.echo(str(prob), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"ok: {_count_checked(paths)} files checked, no problems found")


def _count_checked(paths: list[Path]) -> int:
    """How many files ``validate`` read: the study files plus each registry."""
    from metaanalysis.studies.load import REGISTRY_NAME, find_registry, study_files

    explicit = [p for p in paths if p.name == REGISTRY_NAME and p.is_file()]
    files, _ = study_files([p for p in paths if p not in explicit])
    registries = {p.resolve() for p in explicit}
    for p in paths:
        if p not in explicit:
            reg = find_registry(p if p.is_dir() else p.parent)
            if reg is not None:
                registries.add(Path(reg).resolve())
    return len(files) + len(registries)


@app.command("new-study")
def new_study(
    study_id: Annotated[str, typer.Argument(help="The new study's id (also its file name).")],
    out: Annotated[Optional[Path], typer.Option(help="Where to write (default: studies/ID.yaml).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented extraction template to fill in."""
    from metaanalysis.studies.validate import new_study_template
    from metaanalysis.write import SAFE_NAME

    if not SAFE_NAME.fullmatch(study_id):  # it becomes a file name: "../x" must not climb out
        _fail(f"study id {study_id!r}: use letters, digits, '.', '_' and '-', "
              "starting with a letter or digit")
    target = out or Path("studies") / f"{study_id}.yaml"
    if target.exists() and not force:
        _fail(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(new_study_template(study_id), encoding="utf-8")
    typer.echo(f"wrote {target}")


@app.command()
def run(
    protocols: Annotated[Optional[list[Path]], typer.Argument(help="Protocol files (default: every protocols/*.yaml).")] = None,
    studies: Annotated[Path, typer.Option(help="Folder of study extraction files.")] = Path("studies"),
    out: Annotated[Path, typer.Option(help="Where outputs/<protocol>/ are written.")] = Path("outputs"),
    only: Annotated[Optional[str], typer.Option(help="Judge only this claim id (written to OUT/.only/PROTOCOL-CLAIM/; the full outputs are left alone).")] = None,
    all_formats: Annotated[bool, typer.Option("--all-formats", help="Every figure as SVG, 300 dpi PNG and PDF (default: SVG; the main forest plot also PNG unless it is in pages).")] = False,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write the main forest plot as PDF (TrueType fonts embedded, for manuscripts).")] = False,
) -> None:
    """Run every protocol on the studies: tables, figures, claim verdicts and a report."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from metaanalysis.render.claims_text import run_line
    from metaanalysis.runner import ValidationFailed, run_all

    console = Console(stderr=True)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("starting", total=None)
            outputs = run_all(protocols or [Path("protocols")], studies, out, only=only,
                              progress=lambda text: bar.update(task, description=text),
                              all_formats=all_formats, pdf=pdf)
    except ValidationFailed as exc:
        for prob in exc.problems:
            typer.echo(str(prob), err=True)
        _fail(f"{len(exc.problems)} problem(s) in the inputs; nothing was written")
    from metaanalysis.analysis.claims import ClaimVerdict

    for o in outputs:
        typer.echo(f"{o.protocol_id}: {o.k} comparisons -> {o.out_dir}/")
        for c in o.claims:
            typer.echo(run_line(ClaimVerdict.from_dict(c)))
    if only:
        from metaanalysis.render.claims_text import explain as explain_text

        for o in outputs:
            for c in o.claims:
                if c["id"] == only:
                    typer.echo("")
                    typer.echo(explain_text(ClaimVerdict.from_dict(c), o.protocol_id))
        return
    typer.echo("Details: meta explain CLAIM_ID, or outputs/<protocol>/report.html")


@app.command()
def explain(
    claim_id: Annotated[str, typer.Argument(help="A claim id, e.g. C2.")],
    out: Annotated[Path, typer.Option(help="Outputs folder of a previous `meta run`.")] = Path("outputs"),
) -> None:
    """The full reasoning behind one claim's verdict (from the last `meta run`)."""
    from metaanalysis.analysis.claims import ClaimVerdict
    from metaanalysis.render.claims_text import explain as explain_text

    found = []
    for pid, data in _current_results(out):
        for c in data.get("claims", []):
            if c.get("id") == claim_id:
                found.append((pid, c, data.get("protocol")))
    if not found:
        _fail(f"claim '{claim_id}' not found in {out}/*/results.json (run `meta run` first)")
    for pid, c, proto in found:
        # the protocol carries translations: a claim worded in Swedish reads in English
        typer.echo(explain_text(ClaimVerdict.from_dict(c), pid, _protocol_of(proto)))


def _protocol_of(data: dict | None):
    """The Protocol a results.json was written for (None when it no longer
    validates: an older results.json then reads without translations)."""
    from pydantic import ValidationError

    from metaanalysis.analysis.protocol import Protocol

    if not data:
        return None
    try:
        return Protocol.model_validate(data)
    except ValidationError:
        return None


def _current_results(out: Path):
    """(protocol id, results.json content) of the current full outputs in ``out``.

    Only ``<out>/<protocol id>/results.json`` counts: folders starting with
    "." (temporary folders, leftovers of killed runs, ``.only/``) and folders
    whose results belong to another protocol id (e.g. ``X.only-C2`` of older
    versions) are not outputs of the last full run.
    """
    if not out.is_dir():
        return
    for folder in sorted(out.iterdir()):
        res = folder / "results.json"
        if folder.name.startswith(".") or not folder.is_dir() or not res.is_file():
            continue
        try:
            data = json.loads(res.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MetaError(f"{res}: cannot be read ({exc}); run `meta run` again") from None
        if not isinstance(data, dict) or (data.get("protocol") or {}).get("id") != folder.name:
            continue
        yield folder.name, data


# ----------------------------------------------------------------------------
# meta revman: Cochrane reviews in (logic in revman.py, text in render/revman.py)

revman_app = typer.Typer(no_args_is_help=True,
                         help="Cochrane reviews (RevMan Web CSV exports): reproduce, re-analyse, import.")
app.add_typer(revman_app, name="revman")


def _revman_progress(label: str):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), console=console,
                    transient=True, disable=not console.is_terminal)


@revman_app.command("reproduce")
def revman_reproduce(
    review: Annotated[Path, typer.Argument(help="The review's RevMan 'Data and analyses' CSV export.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the reproduction as JSON here.")] = None,
) -> None:
    """Infer each analysis's measure and model and reproduce RevMan's printed numbers."""
    from rich.console import Console

    from metaanalysis.analysis import revman
    from metaanalysis.render.revman import reproduce_summary, reproduce_table

    ex = revman.read_export(review)
    n = len(revman.split_analyses(ex))
    with _revman_progress("reproducing") as bar:
        task = bar.add_task("", total=n)
        res = revman.reproduce(review, progress=lambda: bar.advance(task))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(res.to_dict(), indent=1, allow_nan=False), encoding="utf-8")
    console = Console(width=200)
    console.print(reproduce_table(res, f"{review.name}: {n} analyses"))
    for line in reproduce_summary(res):
        typer.echo(line)
    if json_out:
        typer.echo(f"wrote {json_out}")


@revman_app.command("reanalyse")
def revman_reanalyse(
    review: Annotated[Path, typer.Argument(help="The review's RevMan 'Data and analyses' CSV export.")],
    out: Annotated[Optional[Path], typer.Option(help="Folder for reanalysis.json and report.md.")] = None,
    all_rows: Annotated[bool, typer.Option("--all", help="Show every pooled analysis, not only the changed ones.")] = False,
) -> None:
    """Every pooled analysis under the review's settings and under Cochrane's 2025 defaults."""
    from rich.console import Console

    from metaanalysis.analysis import revman
    from metaanalysis.render.revman import reanalysis_markdown, reanalysis_record, reanalysis_table

    rows = revman.reanalyse(revman.reproduce(review))
    changed = [r for r in rows if r.changes]
    console = Console(width=220)
    console.print(reanalysis_table(rows, f"{review.name}: {len(changed)} of {len(rows)} pooled analyses "
                                   "change conclusion under Cochrane 2025 defaults", changed_only=not all_rows))
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "reanalysis.json").write_text(json.dumps({"analyses": [reanalysis_record(r) for r in rows]},
                                                        indent=1, allow_nan=False),
                                             encoding="utf-8")
        (out / "report.md").write_text(reanalysis_markdown(review.name, rows), encoding="utf-8")
        from metaanalysis.render.revman import reanalysis_forest

        for r in changed:
            stem = out / "forest" / ("analysis-" + r.analysis.replace(" / ", "-").replace("/", "-")
                                     .replace(" ", "_")[:80])
            reanalysis_forest(revman.forest_result(r), r, stem)
        typer.echo(f"wrote {out}/reanalysis.json, {out}/report.md and {len(changed)} forest plot(s) "
                   f"in {out}/forest/")


@revman_app.command("import")
def revman_import(
    review: Annotated[Path, typer.Argument(help="The review's RevMan 'Data and analyses' CSV export.")],
    analysis: Annotated[str, typer.Option(help="The analysis to import, e.g. 1.2.")],
    out: Annotated[Path, typer.Option(help="Folder for the study files.")],
    purpose: Annotated[str, typer.Option(help="treatment | prevention (the export does not say).")],
    comparator: Annotated[str, typer.Option(help="placebo | prebiotic | none | usual_care | active.")],
    outcome: Annotated[str, typer.Option(help="The schema's outcome kind, e.g. eczema_incidence.")] = "other",
) -> None:
    """Write one analysis's studies as study files (the data row as the quote)."""
    from metaanalysis.analysis import revman

    files = revman.import_analysis(review, analysis, out, purpose=purpose, comparator=comparator,
                                   outcome=outcome)
    typer.echo(f"wrote {len(files)} study file(s) to {out}/ (check them with `meta validate {out}`)")


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, never show a traceback.

    Exit codes: 0 success, 1 bad data or an I/O or internal error (one line
    ``error: ...`` on stderr), 2 a usage error (typer's usage message),
    130 interrupted.

    typer runs in standalone mode, so it prints usage errors itself (with the
    usage line) and ends with SystemExit; that works whether typer vendors its
    click layer (0.29+) or imports click, so nothing here names click.
    """
    try:
        app(args=argv, prog_name="meta")
    except SystemExit as exc:  # typer's own exits: --help, --version, usage errors, typer.Exit
        code = exc.code
        if code is None or isinstance(code, int):
            return code or 0
        typer.echo(f"error: {code}", err=True)
        return 1
    except MetaError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except OSError as exc:  # read-only folder, full disk, a file where a folder should be...
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - the promise is: never a traceback
        typer.echo(f"error: internal error ({type(exc).__name__}: {exc}); "
                   "please report it with the command you ran", err=True)
        return 1
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
