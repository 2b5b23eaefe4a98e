"""`edgedistill export`: a checkpoint (or a user's module) to every format asked for, validated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgedistill.cli._common import (
    ExportDeviceOpt,
    ExportTaskOpt,
    JsonOpt,
    VerboseOpt,
    emit_json,
    handle_errors,
    progress_bars,
    setup_logging,
)
from edgedistill.errors import UserInputError
from edgedistill.export.formats import formats_table
from edgedistill.export.run import ExportRequest, plan_export, run_export


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


@handle_errors
def export(
    checkpoint: Annotated[
        str | None,
        typer.Argument(
            help="A checkpoint folder written by fit or distill (or the run directory holding "
            "checkpoint/), or your own module as FILE.py:FN with --weights and --input-shape."
        ),
    ] = None,
    formats: Annotated[
        str | None,
        typer.Option(help="Comma-separated formats (default: the --device profile's chain)."),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option(
            help="fp32 | fp16 | int8. int8 needs a quantized checkpoint (fit --precision int8), "
            "which exports at int8 only (default: int8 for one, else the --device profile's, "
            "else fp32)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Directory to create for the artifacts.")] = None,
    device: ExportDeviceOpt = None,
    task: ExportTaskOpt = None,
    weights: Annotated[
        Path | None,
        typer.Option(help="Weights for FILE.py:FN: .safetensors or a torch.save'd state dict."),
    ] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="C,H,W of a FILE.py:FN module's input, e.g. 3,224,224.")
    ] = None,
    min_deployment_target: Annotated[
        str | None,
        typer.Option(help="Core ML minimum deployment target, e.g. iOS17 (default: profile's)."),
    ] = None,
    list_formats: Annotated[
        bool, typer.Option("--list", help="Print the formats table and exit.")
    ] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Export CHECKPOINT to each format, check every artifact against the PyTorch model."""

    setup_logging(verbose)
    if list_formats:
        _print_table(formats_table(), json_output)
        return
    if checkpoint is None:
        raise UserInputError("CHECKPOINT: missing (or use --list to see the formats)")
    if out is None:
        raise UserInputError("--out: missing; name a new directory for the artifacts")

    request = ExportRequest(
        checkpoint=checkpoint,
        formats=_names(formats),
        precision=precision,
        out=out,
        device=device,
        task=task,
        weights=weights,
        input_shape=input_shape,
        min_deployment_target=min_deployment_target,
    )
    plan = plan_export(request)
    with progress_bars() as progress:
        document = run_export(plan, progress).model_dump(mode="json")
    if json_output:
        emit_json(document)
    else:
        _print_human(document, out)


def _print_table(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        emit_json(rows)
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Export formats", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("format", "file", "precisions", "built from", "validated", "needs", "here"):
        table.add_column(column, no_wrap=column != "validated", overflow="fold")
    for row in rows:
        table.add_row(
            row["format"],
            f"model.<precision>{row['suffix']}",
            ", ".join(row["precisions"]),
            row["built_from"],
            row["validated_on"],
            escape(row["requires"]),
            "yes" if row["installed_here"] else "no",
        )
    Console(width=160).print(table)


def _print_human(document: dict[str, Any], out: Path) -> None:
    typer.echo(f"source    {document['source']}")
    for artifact in document["artifacts"]:
        figures = [f"{artifact['format']} {artifact['precision']}  {out / artifact['path']}"]
        if artifact["validation"] == "outputs":
            figures.append(f"max|diff| {artifact['max_abs_diff']:.2g}")
            figures.append(f"agreement {artifact['argmax_agreement']:.3f}")
            if artifact["accuracy"] is not None:
                figures.append(f"accuracy {artifact['accuracy']:.4f}")
        else:
            figures.append(f"checked structurally ({artifact['validated_with']})")
        typer.echo("artifact  " + ", ".join(figures))
    if document["student_accuracy"] is not None:
        typer.echo(f"pytorch   accuracy {document['student_accuracy']:.4f} on the test split")
    for line in document["notes"] + document["pending"]:
        typer.echo(f"note      {line}")
    typer.echo(f"summary   {out / 'export.json'}")
