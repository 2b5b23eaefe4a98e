"""`edgedistill profiles`: list the shipped device profiles, show one, validate a profile file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgedistill.cli._common import JsonOpt, emit_json, handle_errors
from edgedistill.errors import UserInputError
from edgedistill.fit.profile_check import check_profile, load_device
from edgedistill.profiles import (
    DeviceProfile,
    load_profile_file,
    shipped_profile_names,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def profiles() -> None:
    """Device profiles: compute figures, runtimes, deploy chain and lab access of each device."""


def _summary(profile: DeviceProfile) -> dict[str, Any]:
    return {
        "name": profile.name,
        "description": profile.description,
        "formats": list(profile.deploy.formats),
        "precision": profile.deploy.precision,
        "runtimes": list(profile.runtimes),
        "transport": profile.lab.transport,
    }


@app.command("list")
@handle_errors
def list_profiles(as_json: JsonOpt = False) -> None:
    """List every shipped profile: name, deploy chain, precision, runtimes, lab transport."""
    summaries = [_summary(load_device(name)) for name in shipped_profile_names()]
    if as_json:
        emit_json(summaries)
        return
    table = Table(title="Shipped device profiles", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("name / description", ratio=1, min_width=16)
    table.add_column("deploy", no_wrap=True)
    table.add_column("precision", no_wrap=True)
    table.add_column("runtimes")
    table.add_column("transport", no_wrap=True)
    for row in summaries:
        table.add_row(
            f"[bold]{escape(row['name'])}[/]\n[dim]{escape(row['description'])}[/]",
            " -> ".join(row["formats"]),
            row["precision"],
            ", ".join(row["runtimes"]),
            row["transport"],
        )
    Console(highlight=False).print(table)


@app.command("show")
@handle_errors
def show(
    name: Annotated[
        str,
        typer.Argument(metavar="NAME", help="A shipped profile name, or a path to a .yaml file."),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Print one profile, with every default filled in, as YAML (or JSON with --json)."""
    document = load_device(name, flag="NAME").model_dump(mode="json")
    if as_json:
        emit_json(document)
    else:
        typer.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)


@app.command("validate")
@handle_errors
def validate(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A device profile YAML file.")],
    as_json: JsonOpt = False,
) -> None:
    """Check a profile file against the schema and the registries (formats, runtimes,
    transport): exit 0 valid, 2 invalid (names file and field)."""
    try:
        profile = check_profile(load_profile_file(file), str(file))
    except UserInputError as exc:
        if as_json:
            emit_json({"file": str(file), "valid": False, "error": str(exc)})
        raise
    if as_json:
        emit_json({"file": str(file), "valid": True, "name": profile.name})
    else:
        typer.echo(f"{file}: valid profile {profile.name}")
