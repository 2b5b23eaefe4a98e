"""Student checkpoints: weights as safetensors beside a JSON file with the spec to rebuild them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill import atomic

if TYPE_CHECKING:
    from torch import nn

    from edgedistill.distill.student import DistilledStudent


def save_weights(folder: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    """folder/student.safetensors and folder/student.json, each written atomically."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic.write_bytes(folder / "student.safetensors", save(state))
    atomic.write_json(folder / "student.json", meta)


def load_weights(folder: Path, model: nn.Module) -> nn.Module:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(folder / "student.safetensors"))
    return model


def save_student(
    folder: Path, distilled: DistilledStudent, task: str, input_shape, num_classes: int
) -> None:
    save_weights(
        folder,
        distilled.model,
        {
            "spec": distilled.candidate.spec,
            "task": task,
            "input_shape": list(input_shape),
            "num_classes": num_classes,
            "best_epoch": distilled.train.best_epoch,
            "history": distilled.train.history,
        },
    )
