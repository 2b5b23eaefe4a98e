"""Student checkpoints: weights as safetensors beside a JSON file with the spec to rebuild them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import atomic

if TYPE_CHECKING:
    from edgedistill.distill.student import DistilledStudent


def save_student(
    folder: Path, distilled: DistilledStudent, task: str, input_shape, num_classes: int
) -> None:
    from safetensors.torch import save

    state = {k: v.contiguous() for k, v in distilled.model.state_dict().items()}
    atomic.write_bytes(folder / "student.safetensors", save(state))
    atomic.write_json(
        folder / "student.json",
        {
            "spec": distilled.candidate.spec,
            "task": task,
            "input_shape": list(input_shape),
            "num_classes": num_classes,
            "best_epoch": distilled.train.best_epoch,
            "history": distilled.train.history,
        },
    )
