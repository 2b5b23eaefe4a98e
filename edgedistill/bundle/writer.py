"""Write the bundle a device team ships: labels, preprocessing, model card, manifest."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import atomic
from edgedistill.bundle.card import render_model_card
from edgedistill.bundle.manifest import write_manifest

if TYPE_CHECKING:
    from edgedistill.records.summary import RunSummary


def write_bundle(bundle: Path, summary: RunSummary) -> None:
    """`bundle` already holds the artifacts; add the side files, then hash everything."""
    document = summary.model_dump(mode="json")
    task = document["task"]
    atomic.write_text(bundle / "labels.txt", "\n".join(task["labels"]) + "\n")
    atomic.write_json(bundle / "preprocessing.json", task["preprocessing"])
    atomic.write_text(bundle / "model_card.md", render_model_card(document))
    artifacts = []
    for artifact in document["artifacts"]:
        entry = dict(artifact)
        entry["path"] = Path(entry["path"]).relative_to("bundle").as_posix()
        artifacts.append(entry)
    write_manifest(
        bundle,
        device=summary.device,
        budget_ms=summary.budget_ms,
        precision=summary.student.precision,
        input={"name": task["input_name"], "shape": task["input_shape"], "dtype": "float32"},
        preprocessing=task["preprocessing"],
        labels=task["labels"],
        artifacts=artifacts,
        measured={
            "latency_ms": document["latency_ms"],
            "accuracy": summary.student.accuracy,
            "teacher_accuracy": summary.teacher.accuracy,
            "retention": summary.retention,
        },
    )
