"""`edgedistill distill`: train a student from the task's teachers with chosen losses.

Also runs under `torchrun --nproc-per-node N -m edgedistill distill ...` (DistributedDataParallel;
only rank 0 writes and prints)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from edgedistill import ddp
from edgedistill.cli._common import (
    DataTaskOpt,
    JsonOpt,
    TeacherPreprocessOpt,
    VerboseOpt,
    emit_json,
    handle_errors,
    progress_bars,
    setup_logging,
)
from edgedistill.distill.interrupt import StopFlag
from edgedistill.distill.losses import loss_names
from edgedistill.distill.plan import DistillOptions, plan_distill
from edgedistill.distill.run import run_distill
from edgedistill.progress import no_progress

_LOSS_HELP = (
    "Comma-separated losses: "
    + ", ".join(
        [f"{n} (no teacher)" for n in loss_names("term", needs_teacher=False)]
        + loss_names("term", needs_teacher=True)
    )
    + f", and at most one of {', '.join(loss_names('procedure'))}. Default: the recipe's."
)


def _names(values: list[str] | None) -> list[str] | None:
    """Names given comma-separated, by repeating the flag, or both (None: not given)."""
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@handle_errors
def distill(
    student: Annotated[
        str | None,
        typer.Option(
            help="Student spec as printed by `edgedistill search`, e.g. mbv2:d=2,r=32,w=0.5."
        ),
    ] = None,
    task: DataTaskOpt = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Your data: imagefolder:DIR, npz:FILE, or FILE.py:FN / package.module:FN "
            "(returns torch Datasets); texts: text:FILE, jsonl:FILE or csv:FILE (a text "
            "column, an optional label column)."
        ),
    ] = None,
    teacher: Annotated[
        list[str] | None,
        typer.Option(
            help="`task` (the task's teacher), your own (FILE.py:FN, package.module:FN or "
            "FILE.onnx; replaces the task's), or a folder written by `distill --out`; repeat "
            "for several teachers (multi-teacher). Default: task + the recipe's "
            "distill.teachers."
        ),
    ] = None,
    teacher_weights: Annotated[
        str | None,
        typer.Option(help="Weights for your --teacher: .safetensors or a saved state dict."),
    ] = None,
    teacher_preprocess: TeacherPreprocessOpt = None,
    loss: Annotated[
        list[str] | None,
        typer.Option(help=_LOSS_HELP + " The flag may also be repeated."),
    ] = None,
    layers: Annotated[
        list[str] | None,
        typer.Option(
            help="Layer pairs for the layer terms (fitnet, at, hidden-mse, ...): "
            "STUDENT_LAYER=TEACHER_LAYER[,...]; the flag may be repeated."
        ),
    ] = None,
    labels_fraction: Annotated[
        float | None,
        typer.Option(help="Keep labels on this fraction of the train split (the rest: unlabeled)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Epochs per stage (default: the recipe's).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Data-loading worker processes for lazily decoded data.")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Run the teacher online instead of caching outputs.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Run folder (default: edgedistill-runs/distill-SPEC-TIME)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Distill STUDENT from the task's teacher(s); `--loss ce` trains it alone (the baseline)."""

    setup_logging(verbose)
    options = DistillOptions(
        task=task,
        data=data,
        student=student,
        teachers=teacher or None,
        teacher_weights=teacher_weights,
        teacher_preprocess=teacher_preprocess,
        losses=_names(loss),
        layers=_names(layers),
        labels_fraction=labels_fraction,
        epochs=epochs,
        seed=seed,
        workers=workers,
        cache=False if no_cache else None,
        out=out,
        resume=resume,
    )
    context = ddp.from_environment()
    try:
        plan = plan_distill(options)
        ddp.barrier(context)  # every rank has checked --out before rank 0 writes into it
        main = ddp.is_main(context)
        stop = StopFlag()
        bars = progress_bars() if main else nullcontext(no_progress)
        with stop.on_signals(), bars as progress:
            _, result = run_distill(plan, progress, stop, context)
    finally:
        ddp.shutdown(context)
    if not main:
        return
    document = result.model_dump(mode="json")
    if json_output:
        emit_json(document)
    else:
        _print_human(document)


def _print_human(result: dict) -> None:
    teacher = result["teacher_accuracy"]
    versus = (
        f", teacher {teacher:.4f}, retention {result['retention']:.3f}"
        if teacher is not None
        else ""
    )
    typer.echo(
        f"student   {result['student']}  ({result['params']:,} params, {result['macs']:,} MACs), "
        f"losses {result['method']}"
    )
    typer.echo(
        f"accuracy  {result['accuracy']:.4f} on the test split{versus}; "
        f"{result['epochs_run']} epochs (best {result['best_epoch']}), {result['seconds']:.1f} s"
    )
    outputs = result["teacher_outputs"]
    if outputs["mode"] != "none":
        typer.echo(f"teacher   outputs {outputs['mode']}: {outputs['reason']}")
    if len(result["stages"]) > 1:
        for stage in result["stages"]:
            typer.echo(
                f"stage     {stage['name']}: {stage['student']} from {stage['teacher']}: "
                f"accuracy {stage['accuracy']:.4f}"
            )
    typer.echo(f"result    {Path(result['out']) / 'result.json'}")
    typer.echo(f"weights   {Path(result['out']) / 'student.safetensors'}")
