"""Write the bundle a device team ships: labels, preprocessing, model card, manifest."""

from __future__ import annotations

from pathlib import Path

from edgedistill import atomic
from edgedistill.bundle.card import render_model_card
from edgedistill.bundle.manifest import write_manifest
from edgedistill.records.summary import RunSummary


def write_bundle(bundle: Path, summary: RunSummary) -> None:
    """`bundle` already holds the artifacts; add the side files, then hash everything."""
    task = summary.task
    atomic.write_text(bundle / "labels.txt", "\n".join(task.labels) + "\n")
    atomic.write_json(bundle / "preprocessing.json", task.preprocessing)
    atomic.write_text(bundle / "model_card.md", render_model_card(summary.model_dump(mode="json")))
    artifacts = [
        {**a.model_dump(mode="json"), "path": Path(a.path).relative_to("bundle").as_posix()}
        for a in summary.artifacts
    ]
    write_manifest(
        bundle,
        device=summary.device,
        budget_ms=summary.budget_ms,
        precision=summary.student.precision,
        input={"name": task.input_name, "shape": task.input_shape, "dtype": "float32"},
        preprocessing=task.preprocessing,
        labels=task.labels,
        artifacts=artifacts,
        measured={
            "latency_ms": summary.latency_ms.model_dump(mode="json"),
            "accuracy": summary.student.accuracy,
            "teacher_accuracy": summary.teacher.accuracy,
            "retention": summary.retention,
        },
    )
