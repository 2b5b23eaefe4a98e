"""Write the bundle a device team ships: labels, preprocessing, model card (README.md), manifest;
for a text model also its tokenizer's files (tokenizer/, named by preprocessing.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill import atomic
from edgedistill.bundle.card import render_model_card
from edgedistill.bundle.manifest import write_manifest
from edgedistill.bundle.usage import USAGE
from edgedistill.inputs import takes_tokens
from edgedistill.profiles import DeviceProfile
from edgedistill.records.summary import RunSummary
from edgedistill.tasks.text_task import tokenizer_files

CARD_NAME = "README.md"
TOKENIZER_FOLDER = "tokenizer"


def write_bundle(
    bundle: Path,
    summary: RunSummary,
    profile: DeviceProfile | None = None,
    validation_sample: dict[str, Any] | None = None,
) -> None:
    """`bundle` already holds the artifacts (and validation.npz); add the side files, then
    hash everything into manifest.json."""
    task = summary.task
    document = summary.model_dump(mode="json")
    preprocessing = _ship_tokenizer(bundle, task.preprocessing)
    atomic.write_text(bundle / "labels.txt", "\n".join(task.labels) + "\n")
    atomic.write_json(bundle / "preprocessing.json", preprocessing)
    atomic.write_text(bundle / CARD_NAME, render_model_card(document))
    artifacts = [_artifact_entry(a) for a in document["artifacts"]]
    student, teacher = document["student"], document["teacher"]
    write_manifest(
        bundle,
        device=summary.device,
        budget_ms=summary.budget_ms,
        precision=summary.student.precision,
        input={
            "name": task.input_name,
            "shape": task.input_shape,
            "dtype": "int64" if takes_tokens(task.input_shape[1:]) else "float32",
        },
        preprocessing=preprocessing,
        labels=task.labels,
        artifacts=artifacts,
        measured={
            "latency_ms": document["latency_ms"],
            "fits_budget": summary.fits_budget,
            "fits_budget_basis": summary.fits_budget_basis,
            "metric": student["metric"],
            "accuracy": summary.student.accuracy,
            "accuracy_fp32": student["accuracy_fp32"],
            "accuracy_ptq": student["accuracy_ptq"],
            "teacher_accuracy": summary.teacher.accuracy,
            "retention": summary.retention,
        },
        profile=profile.model_dump(mode="json") if profile is not None else None,
        task={
            key: document["task"][key]
            for key in ("name", "task_type", "split_sizes", "data_source")
        },  # fmt: skip
        student={
            key: student[key]
            for key in (
                "spec",
                "family",
                "arch",
                "params",
                "macs",
                "precision",
                "metric",
                "metrics",
            )
        },  # fmt: skip
        teacher={
            key: teacher[key]
            for key in (
                "form",
                "source",
                "params",
                "macs",
                "accuracy",
                "metric",
                "metrics",
                "feeding",
            )
        },  # fmt: skip
        evaluation=document.get("evaluation"),
        validation_sample=validation_sample,
    )


def _ship_tokenizer(bundle: Path, preprocessing: dict[str, Any]) -> dict[str, Any]:
    """A text model's tokenizer files copied into bundle/tokenizer/; the preprocessing then
    names that folder (relative to the bundle). Image preprocessing is returned as it is."""
    source = preprocessing.get("tokenizer")
    if not isinstance(source, str):
        return preprocessing
    for path in tokenizer_files(Path(source)):
        atomic.write_bytes(bundle / TOKENIZER_FOLDER / path.name, path.read_bytes())
    return {**preprocessing, "tokenizer": f"{TOKENIZER_FOLDER}/"}


def _artifact_entry(artifact: dict[str, Any]) -> dict[str, Any]:
    """The summary's artifact with its path inside the bundle and the runtime that runs it."""
    entry = {**artifact, "path": Path(artifact["path"]).relative_to("bundle").as_posix()}
    if artifact["format"] in USAGE:
        usage = USAGE.get(artifact["format"])
        entry["runtime"] = {"name": usage.runtime, "minimum": usage.minimum}
    return entry
