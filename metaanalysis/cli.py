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
                  help="Meta-analysis of probiotic trials in atopic dermatitis, checked against metafor.")


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
):
    """Pool the studies in FILE.csv and print metafor-style results."""
    from metaanalysis.api import pool as do_pool
    from metaanalysis.io import read_csv

    data = read_csv(file, max_bytes=max_bytes)
    res = do_pool(data, measure=measure, method=method, test=test, by=by, alpha=alpha,
                  pi_df=pi_df, subgroup_tau2="common" if common_tau2 else "separate",
                  file=str(file))
    if as_json:
        typer.echo(json.dumps(res.to_dict(), indent=2, allow_nan=False))
    else:
        from metaanalysis.render.text import format_pool

        typer.echo(format_pool(res))


@app.command()
def validate(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Study files or folders (default: studies/).")] = None,
):
    """Check study extraction files; report every problem as FILE:LINE: field: message."""
    from metaanalysis.validate import validate_paths

    problems = validate_paths([str(p) for p in (paths or [Path("studies")])])
    for prob in problems:
        typer.echo(str(prob), err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) found", err=True)
        raise typer.Exit(code=1)
    typer.echo("ok: no problems found")


@app.command("new-study")
def new_study(
    study_id: Annotated[str, typer.Argument(help="The new study's id (also its file name).")],
    out: Annotated[Optional[Path], typer.Option(help="Where to write (default: studies/ID.yaml).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
):
    """Write a commented extraction template to fill in."""
    from metaanalysis.validate import new_study_template

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
    only: Annotated[Optional[str], typer.Option(help="Judge only this claim id.")] = None,
    all_formats: Annotated[bool, typer.Option("--all-formats", help="Every figure as SVG, 300 dpi PNG and PDF (default: the main forest plot; others SVG).")] = False,
):
    """Run every protocol on the studies: tables, figures, claim verdicts and a report."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from metaanalysis.runner import ValidationFailed, run_all

    console = Console(stderr=True)
    try:
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            task = bar.add_task("starting", total=None)
            outputs = run_all(protocols or [Path("protocols")], studies, out, only=only,
                              progress=lambda text: bar.update(task, description=text),
                              all_formats=all_formats)
    except ValidationFailed as exc:
        for prob in exc.problems:
            typer.echo(str(prob), err=True)
        _fail(f"{len(exc.problems)} problem(s) in the inputs; nothing was written")
    for o in outputs:
        typer.echo(f"{o.protocol_id}: {o.k} comparisons -> {o.out_dir}/")
        for c in o.claims:
            cert = f" ({c['certainty']} certainty)" if c.get("certainty") else ""
            typer.echo(f"  {c['id']:<18} {c['verdict'].upper():<22}{cert}")
    if only:
        from metaanalysis.render.claims_text import explain as explain_text

        for o in outputs:
            for c in o.claims:
                if c["id"] == only:
                    typer.echo("")
                    typer.echo(explain_text(c, o.protocol_id))
        return
    typer.echo("Details: meta explain CLAIM_ID, or outputs/<protocol>/report.html")


@app.command()
def explain(
    claim_id: Annotated[str, typer.Argument(help="A claim id, e.g. C2.")],
    out: Annotated[Path, typer.Option(help="Outputs folder of a previous `meta run`.")] = Path("outputs"),
):
    """The full reasoning behind one claim's verdict (from the last `meta run`)."""
    from metaanalysis.render.claims_text import explain as explain_text

    found = []
    for res in sorted(out.glob("*/results.json")):
        data = json.loads(res.read_text(encoding="utf-8"))
        for c in data.get("claims", []):
            if c["id"] == claim_id:
                found.append((data["protocol"]["id"], c))
    if not found:
        _fail(f"claim '{claim_id}' not found in {out}/*/results.json (run `meta run` first)")
    for pid, c in found:
        typer.echo(explain_text(c, pid))


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the app, never show a traceback."""
    try:
        # with standalone_mode=False click returns the exit code instead of raising
        rv = app(args=argv, standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except MetaError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
    except SystemExit as exc:  # click's own exits (e.g. --help)
        return int(exc.code or 0)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the promise is: never a traceback
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 1
        typer.echo(f"error: unexpected {type(exc).__name__}: {exc}", err=True)
        return 1
    return rv if isinstance(rv, int) else 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
