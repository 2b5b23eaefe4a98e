"""`edgedistill audit RUN --data SPEC`: the shipped student and its teacher on new data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from edgedistill.audit.drift import DEFAULT_MAX_PSI, DEFAULT_TOLERANCE, AuditReport, audit_run
from edgedistill.cli._common import (
    JsonOpt,
    VerboseOpt,
    emit_json,
    handle_errors,
    progress_bars,
    setup_logging,
)


@handle_errors
def audit(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="A fit run directory.")],
    data: Annotated[
        str,
        typer.Option(
            metavar="SPEC",
            help="New inputs, e.g. a sample of production data: npz:FILE, imagefolder:DIR, "
            "FILE.py:FN (labels optional), read with the run's preprocessing.",
        ),
    ],
    tolerance: Annotated[
        float,
        typer.Option(
            help="Fail when agreement with the teacher or coverage at the cascade's threshold "
            "falls more than this share below the validation split's.",
        ),
    ] = DEFAULT_TOLERANCE,
    max_psi: Annotated[
        float,
        typer.Option(
            help="Fail when the population stability index of the student's confidences "
            "passes this (plus what samples of these sizes show with no shift).",
        ),
    ] = DEFAULT_MAX_PSI,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run the bundled student (its shipped file) and the run's teacher on SPEC; exit 1 when
    they agree less, the student is sure of fewer inputs, or its confidences are distributed
    otherwise than on the validation split."""

    setup_logging(verbose)
    with progress_bars() as progress:
        report = audit_run(run, data, tolerance, progress, max_psi)
    if json_output:
        emit_json(report.to_dict())
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(1)


def _print(report: AuditReport) -> None:
    console = Console(highlight=False)
    head = "[bold green]OK[/]" if report.ok else "[bold red]DRIFT[/]"
    console.print(
        f"{head}: {report.samples} samples of {escape(report.data)} "
        f"({report.labeled} labeled), student {escape(report.artifact)} on {report.runtime}"
    )
    console.print(
        f"  agreement with the teacher {report.agreement:.3f} (validation "
        f"{report.agreement_val:.3f})"
    )
    console.print(
        f"  coverage at τ={report.threshold:.4f} {report.coverage:.3f} (validation "
        f"{report.coverage_val:.3f})"
    )
    console.print(
        f"  confidence PSI {report.psi:.3f} ({report.psi_band}; limit {report.psi_limit:.3f})"
    )
    if report.accuracy:
        figures = ", ".join(f"{name} {value:.4f}" for name, value in report.accuracy.items())
        console.print(f"  accuracy on the labeled samples: {figures}")
    for reason in report.reasons:
        console.print(f"  - {escape(reason)}")
