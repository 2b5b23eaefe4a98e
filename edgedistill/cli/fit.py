"""`edgedistill fit`: the whole path from teacher to a measured, bundled student."""

from __future__ import annotations

import dataclasses
import shlex
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from edgedistill import ddp
from edgedistill.cli._common import (
    DataTaskOpt,
    JsonOpt,
    LabOpt,
    TargetOpt,
    TeacherPreprocessOpt,
    ThreadsOpt,
    VerboseOpt,
    emit_json,
    handle_errors,
    progress_bars,
    setup_logging,
    stderr,
)
from edgedistill.distill.interrupt import StopFlag, TrainingStopped
from edgedistill.errors import OutputWriteError, UserInputError
from edgedistill.fit.fleet import is_fleet, plan_fleet, run_fleet
from edgedistill.fit.pipeline import FitOptions, FitPlan, plan_fit, run_fit
from edgedistill.fit.run_dir import staging_for
from edgedistill.progress import no_progress
from edgedistill.records.summary import RunSummary
from edgedistill.tasks.cascade import DEFAULT_TARGET_DROP


def _on_off(value: str, flag: str) -> bool:
    if value not in ("on", "off"):
        raise UserInputError(f"{flag} {value}: choose on or off")
    return value == "on"


def _formats(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


@handle_errors
def fit(
    device: Annotated[
        str,
        typer.Option(
            help="Device profile name, or a path to your own .yaml; several, comma-separated "
            "(jetson-orin-nano,pixel-8), fit one student per device under --out."
        ),
    ],
    budget: Annotated[
        str,
        typer.Option(
            help="Latency budget at batch 1, e.g. 10ms, 500us, 0.01s; with several devices, "
            "one for all or one per device (10ms,15ms)."
        ),
    ],
    task: DataTaskOpt = None,
    teacher: Annotated[
        str | None,
        typer.Option(
            help="Your teacher: FILE.py:FN or package.module:FN (returns an nn.Module), "
            "FILE.onnx (run with onnxruntime; logits only), or hf:DIR (a Hugging Face text "
            "classifier on this disk, with its tokenizer; never downloaded)."
        ),
    ] = None,
    teacher_weights: Annotated[
        str | None,
        typer.Option(help="Weights for --teacher: .safetensors, or a torch.save'd state dict."),
    ] = None,
    teacher_preprocess: TeacherPreprocessOpt = None,
    data: Annotated[
        str | None,
        typer.Option(
            help="Your data: imagefolder:DIR, npz:FILE, or FILE.py:FN / package.module:FN "
            "(returns torch Datasets); texts: text:FILE, jsonl:FILE or csv:FILE (a text "
            "column, an optional label column)."
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(help="Processes that decode data too large to hold in memory.")
    ] = 0,
    precision: Annotated[
        str | None,
        typer.Option(help="fp32 | fp16 | int8 (default: the profile's deploy precision)."),
    ] = None,
    formats: Annotated[
        str | None,
        typer.Option(help="Comma-separated export formats (default: the profile's chain)."),
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Distillation epochs (default: the recipe's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the split-independent training.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Run directory to create (default: edgedistill-runs/fit-DEVICE-TIME)."),
    ] = None,
    threads: ThreadsOpt = 1,
    verify_on_device: Annotated[
        int,
        typer.Option(
            metavar="K",
            help="Before training, measure up to K candidates predicted within the budget plus "
            "the margin (most capable first) on the device and keep the first whose measured "
            "p90 fits; the margin's own choice is measured last if all K miss.",
        ),
    ] = 0,
    lab: LabOpt = None,
    target: TargetOpt = None,
    labels_fraction: Annotated[
        float,
        typer.Option(help="Keep labels on this fraction of the train split (the rest: unlabeled)."),
    ] = 1.0,
    qat: Annotated[
        str,
        typer.Option(
            "--qat",
            help="int8 runs: 'on' fine-tunes the quantized student with the teacher (QAT); "
            "'off' calibrates only (post-training quantization).",
        ),
    ] = "on",
    cascade_target: Annotated[
        float,
        typer.Option(
            metavar="POINTS",
            help="The student -> teacher cascade: choose the confidence threshold that keeps "
            "the most inputs on the device with accuracy at most POINTS accuracy points below "
            "the teacher's (validation split).",
        ),
    ] = DEFAULT_TARGET_DROP * 100,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the interrupted run of --out from its last finished stage and epoch.",
        ),
    ] = False,
    json_output: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Pick a student that fits BUDGET on DEVICE, distill it, export, measure and bundle it."""

    setup_logging(verbose)
    options = FitOptions(
        device=device,
        budget=budget,
        task=task,
        precision=precision,
        formats=_formats(formats),
        epochs=epochs,
        seed=seed,
        out=out,
        threads=threads,
        verify_on_device=verify_on_device,
        teacher=teacher,
        teacher_weights=teacher_weights,
        teacher_preprocess=teacher_preprocess,
        data=data,
        workers=workers,
        lab=lab,
        target=target,
        labels_fraction=labels_fraction,
        resume=resume,
        qat=_on_off(qat, "--qat"),
        cascade_target=_cascade_target(cascade_target),
    )
    if is_fleet(options.device):
        _fit_fleet(options, json_output)
        return
    context = ddp.from_environment()  # torchrun --nproc-per-node N -m edgedistill fit ...
    try:
        plan = plan_fit(options)
        ddp.barrier(context)  # every rank has checked --out before rank 0 stages the run
        summary = _run_staged(plan, options, context)
    finally:
        ddp.shutdown(context)
    if summary is None:  # ranks > 0 only train
        return
    document = summary.model_dump(mode="json")
    if json_output:
        emit_json(document)
    else:
        _print_human(document, plan.out)
    if not summary.fits_budget:
        stderr.print(
            f"[bold red]budget not met:[/] measured p90 {summary.latency_ms.p90} ms > "
            f"{summary.budget_ms} ms (outputs kept in {plan.out})"
        )
        raise typer.Exit(1)


def _run_staged(
    plan: FitPlan, options: FitOptions, context: ddp.DistContext | None
) -> RunSummary | None:
    """run_fit with Ctrl-C and signals routed to a clean stop; a run stopped, or one that ran
    out of room to write, stays staged and the message says how to resume it."""
    stop = StopFlag()
    bars = progress_bars() if ddp.is_main(context) else nullcontext(no_progress)
    try:
        with stop.on_signals(), bars as progress:
            return run_fit(plan, progress, stop, context)
    except TrainingStopped as exc:
        raise TrainingStopped(f"{exc}\nresume: {_resume_command(options, plan.out)}") from None
    except OutputWriteError as exc:
        raise UserInputError(
            f"{exc}\nthe run is kept in {staging_for(plan.out)}; make room (or clear the "
            f"place), then resume: {_resume_command(options, plan.out)}"
        ) from None


def _fit_fleet(options: FitOptions, json_output: bool) -> None:
    """Several devices: one run directory each under --out, and an index."""
    if ddp.from_environment() is not None:
        raise UserInputError("--device: several devices in one fit run in a single process")
    fleet = plan_fleet(options)
    stop = StopFlag()
    try:
        with stop.on_signals(), progress_bars() as progress:
            index = run_fleet(fleet, progress, stop)
    except TrainingStopped as exc:
        raise TrainingStopped(f"{exc}\nresume: {_resume_command(options, fleet.out)}") from None
    document = index.model_dump(mode="json")
    if json_output:
        emit_json(document)
    else:
        for run in document["devices"]:
            measured = (
                f"p90 {run['p90_ms']:.4f} ms" if run["p90_ms"] is not None else "not measured"
            )
            shared = (
                f", student shared with {run['shared_student_with']}"
                if run["shared_student_with"]
                else ""
            )
            score = f"{run['accuracy']:.4f}" if run["accuracy"] is not None else "n/a"
            typer.echo(
                f"{run['device']:<16} {run['student']} ({run['precision']}{shared}): "
                f"{run['metric']} {score}, {measured}, budget {run['budget_ms']} ms -> "
                f"{'fits' if run['fits_budget'] else 'DOES NOT FIT'}; {fleet.out / run['run']}"
            )
            for warning in run["warnings"]:
                typer.secho(f"  warning {warning}", fg=typer.colors.YELLOW)
        typer.echo(f"index     {fleet.out / 'summary.json'}")
    if not index.fits_budget:
        missed = [run.device for run in index.devices if not run.fits_budget]
        stderr.print(f"[bold red]budget not met[/] on {', '.join(missed)}")
        raise typer.Exit(1)


def _print_human(document: dict, out: Path) -> None:
    student, teacher, latency = document["student"], document["teacher"], document["latency_ms"]
    verdict = "fits" if document["fits_budget"] else "DOES NOT FIT"
    measured = (
        f"p50 {latency['p50']:.4f} / p90 {latency['p90']:.4f} ms "
        f"measured on {latency['measured_on']}"
        if latency.get("p90") is not None
        else "not measured"
    )
    typer.echo(
        f"student   {student['spec']}  ({student['params']:,} params, {student['macs']:,} MACs)"
    )
    deployed = (
        f"{student['accuracy']:.4f} deployed"
        if student["accuracy"] is not None
        else f"deployed not measured here ({student['accuracy_fp32']:.4f} PyTorch fp32)"
    )
    retention = f"{document['retention']:.3f}" if document["retention"] is not None else "n/a"
    typer.echo(f"accuracy  {deployed}, teacher {teacher['accuracy']:.4f}, retention {retention}")
    for artifact in document["artifacts"]:
        typer.echo(f"artifact  {_artifact_line(artifact)}")
    typer.echo(
        f"latency   {measured}; predicted {latency['predicted']:.4f} ms; "
        f"budget {document['budget_ms']} ms -> {verdict}"
    )
    if teacher["latency_ms"].get("p90"):
        typer.echo(
            f"teacher   p90 {teacher['latency_ms']['p90']:.4f} ms "
            f"({teacher['latency_ms']['p90'] / latency['p90']:.1f}x the student)"
        )
    warnings = document.get("warnings", [])
    for note in document["notes"] + document["pending"]:
        if note not in warnings:
            typer.echo(f"note      {note}")
    for warning in warnings:
        typer.secho(f"warning   {warning}", fg=typer.colors.YELLOW)
    cascade = (document.get("evaluation") or {}).get("cascade")
    if cascade and cascade["met"]:
        test = cascade["test"]
        typer.echo(
            f"cascade   inputs with student confidence >= {cascade['threshold']:.4f} stay on the "
            f"device ({test['coverage']:.0%} of test inputs), the rest go to the teacher: "
            f"accuracy {test['accuracy']:.4f} (teacher {test['teacher_accuracy']:.4f})"
        )
    typer.echo(f"summary   {out / 'summary.json'}")
    typer.echo(f"report    {out / 'report.html'}")
    typer.echo(f"bundle    {out / 'bundle'}")


def _artifact_line(artifact: dict) -> str:
    figures = [f"{artifact['format']} {artifact['precision']} {artifact['path']}"]
    if artifact.get("validation") == "outputs":
        if artifact.get("max_abs_diff") is not None:
            figures.append(f"max|diff| {artifact['max_abs_diff']:.2g}")
        if artifact.get("argmax_agreement") is not None:
            figures.append(f"agreement {artifact['argmax_agreement']:.3f}")
        if artifact.get("accuracy") is not None:
            figures.append(f"accuracy {artifact['accuracy']:.4f}")
    elif artifact.get("validation") == "structural":
        figures.append("checked structurally (its runtime does not run here)")
    return ", ".join(figures)


def _resume_command(options: FitOptions, out: Path) -> str:
    """The command that continues this run: the flags it was started with, --out, --resume."""
    argv = ["edgedistill", "fit"]
    for option in dataclasses.fields(FitOptions):
        value = getattr(options, option.name)
        if option.name in ("out", "resume") or value == option.default:
            continue
        if isinstance(value, list):
            value = ",".join(value)
        if isinstance(value, bool):  # on/off switches (--qat)
            value = "on" if value else "off"
        argv += ["--" + option.name.replace("_", "-"), str(value)]
    argv += ["--out", str(out), "--resume"]
    return " ".join(shlex.quote(part) for part in argv)


def _cascade_target(points: float) -> float:
    if not 0 <= points <= 100:
        raise UserInputError(
            f"--cascade-target: {points:g} is not an accuracy drop in points (0 to 100)"
        )
    return points
