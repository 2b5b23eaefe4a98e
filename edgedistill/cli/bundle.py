"""`edgedistill bundle`: check a bundle against its manifest before shipping or after receiving."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from edgedistill.bundle.verify import verify_bundle
from edgedistill.cli._common import JsonOpt, emit_json, handle_errors

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def bundle() -> None:
    """Work with the bundle/ a run writes: artifacts, manifest.json, model card."""


@app.command("verify")
@handle_errors
def verify(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="A bundle dir (holds manifest.json) or a run dir holding bundle/."
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Check every file against manifest.json: exit 0 intact, 1 corrupt, 2 no/bad manifest."""

    report = verify_bundle(directory)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report.ok, report.bundle_dir, report.checked, report.problems)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(ok: bool, bundle_dir: Path, checked: int, problems: list[str]) -> None:
    console = Console(highlight=False)
    where = escape(str(bundle_dir))
    if ok:
        console.print(f"[bold green]OK:[/] {checked} files verified in {where}")
        return
    console.print(f"[bold red]FAILED:[/] {len(problems)} problem(s) in {where}")
    for problem in problems:
        console.print(f"  - {escape(problem)}")
