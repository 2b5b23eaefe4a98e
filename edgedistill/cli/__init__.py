"""The `edgedistill` command: composes one module per command group."""

from __future__ import annotations

import typer

from edgedistill import __version__
from edgedistill.cli import (
    audit,
    bench,
    bundle,
    calibrate,
    distill,
    export,
    fit,
    lab,
    profiles,
    search,
)
from edgedistill.cli._streams import outlive_readers

app = typer.Typer(
    name="edgedistill",
    help="Distill a teacher into a student that meets a latency budget on an edge device.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("fit")(fit.fit)
app.command("search")(search.search)
app.command("calibrate")(calibrate.calibrate)
app.command("bench")(bench.bench)
app.command("distill")(distill.distill)
app.command("export")(export.export)
app.command("audit")(audit.audit)
app.add_typer(profiles.app, name="profiles")
app.add_typer(bundle.app, name="bundle")
app.add_typer(lab.app, name="lab")


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """edgedistill: teacher -> student within a latency budget, exported, measured, bundled."""


def main() -> None:
    outlive_readers()
    app()
