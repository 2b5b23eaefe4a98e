"""`edgedistill search`: every candidate with its cost and predicted latency on a device."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgedistill import budget as budget_text
from edgedistill.budget import parse_budget
from edgedistill.cli._common import (
    DeviceOpt,
    JsonOpt,
    PrecisionOpt,
    TaskOpt,
    ThreadsOpt,
    emit_json,
    handle_errors,
    progress_bars,
    setup_logging,
)
from edgedistill.errors import GoalNotMetError, UserInputError
from edgedistill.fit.calibrate import DEFAULT_SAMPLES, precision_note
from edgedistill.fit.probe import probe_precision
from edgedistill.fit.profile_check import load_device
from edgedistill.fit.search import latency_model, resolve_precision
from edgedistill.latency.model import feature_names
from edgedistill.students import enumerate_space
from edgedistill.students.pareto import plot_pareto
from edgedistill.students.select import pick, score
from edgedistill.tasks.task import load_recipe


@handle_errors
def search(
    device: DeviceOpt,
    budget: Annotated[str, typer.Option(help="Latency budget at batch 1, e.g. 10ms, 500us.")],
    task: TaskOpt = "digits",
    top: Annotated[int, typer.Option(help="Show the N most capable candidates (0 = all).")] = 0,
    threads: ThreadsOpt = 1,
    precision: PrecisionOpt = None,
    samples: Annotated[
        int,
        typer.Option(help="Candidates a host calibration measures when none is stored yet."),
    ] = DEFAULT_SAMPLES,
    plot: Annotated[
        Path | None,
        typer.Option(help="Save the Pareto view (predicted latency vs MACs, budget) as a PNG."),
    ] = None,
    json_output: JsonOpt = False,
) -> None:
    """Predict each student candidate's latency on DEVICE at PRECISION and mark those that fit
    BUDGET (host-cpu calibrates that precision on first use)."""

    setup_logging()
    budget_ms = parse_budget(budget)
    profile = load_device(device)
    recipe = load_recipe(task)
    if top < 0:
        raise UserInputError(f"--top: must be 0 or more, got {top}")
    precision = resolve_precision(precision, profile)
    needed = len(feature_names(probe_precision(precision))) + 1
    if samples < needed:
        raise UserInputError(
            f"--samples: the {precision} latency model needs at least {needed}, got {samples}"
        )
    input_shape = recipe.input.shape
    candidates = enumerate_space(input_shape, vocabulary=recipe.vocabulary)
    with progress_bars() as progress:
        model = latency_model(
            profile,
            precision,
            input_shape,
            len(recipe.labels),
            threads,
            samples,
            progress,
            recipe.vocabulary,
        )
        scored = score(candidates, model, input_shape, len(recipe.labels), budget_ms, progress)
    chosen = pick(scored)
    if plot is not None:
        title = (
            f"{profile.name} {precision}: {len(scored)} candidates, "
            f"budget {budget_text.format_ms(budget_ms)}"
        )
        plot_pareto(scored, budget_ms, model.margin(), chosen, plot, title)
    shown = scored[:top] if top else scored
    note = precision_note(profile, precision, model)
    if json_output:
        emit_json(
            {
                "device": profile.name,
                "budget_ms": budget_ms,
                "precision": precision,
                "latency_model_precision": model.precision,
                "notes": [note] if note else [],
                "calibrated": model.calibrated,
                "margin": model.margin(),
                "calibration_error": model.fit_error,
                "chosen": chosen.candidate.spec if chosen else None,
                "candidates": [s.to_dict() for s in shown],
            }
        )
    else:
        _print_table(shown, chosen, profile.name, budget_ms, model, precision)
        if note:
            typer.echo(f"note: {note}", err=True)
    if chosen is None:
        fastest = min(scored, key=lambda s: s.predicted_ms)
        raise GoalNotMetError(
            f"no candidate fits {budget} on {profile.name}: the fastest, {fastest.candidate.spec},"
            f" is predicted at {fastest.predicted_ms:.4f} ms (with a {model.margin():.0%} margin)"
        )


def _print_table(shown, chosen, device: str, budget_ms: float, model, precision: str) -> None:
    from rich.console import Console
    from rich.table import Table

    status = (
        f"calibrated, fit error {model.fit_error:.1%}"
        if model.calibrated
        else "uncalibrated (datasheet)"
    )
    table = Table(
        title=f"{device} {precision}: budget {budget_ms:g} ms, margin {model.margin():.0%} "
        f"({status})"
    )
    for column in ("spec", "params", "MACs", "predicted ms", "fits"):
        table.add_column(column, justify="left" if column == "spec" else "right")
    for item in shown:
        marker = "chosen" if chosen is not None and item is chosen else ("yes" if item.fits else "")
        table.add_row(
            item.candidate.spec,
            f"{item.params:,}",
            f"{item.macs:,}",
            f"{item.predicted_ms:.4f}",
            marker,
        )
    Console().print(table)
