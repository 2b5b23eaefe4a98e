"""The run's frozen teachers (eval mode, no gradients) and the outputs the losses read from them:
logits of every teacher and the named layers of the first, computed per batch ("online")."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.teachers.forms import frozen
from edgedistill.teachers.taps import FeatureTaps

if TYPE_CHECKING:
    import torch
    from torch import nn


class TeacherRunner:
    """Run every teacher on a batch: ([logits of each teacher], {layer: output of teacher 0})."""

    def __init__(self, teachers: list[nn.Module], layers: list[str], device: torch.device) -> None:
        self.teachers = [frozen(teacher.to(device)) for teacher in teachers]
        self.layers = list(layers)
        self.device = device
        self._taps = FeatureTaps(self.teachers[0], self.layers) if self.layers else None

    def __call__(self, x: torch.Tensor) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        import torch

        with torch.no_grad():
            x = x.to(self.device)
            logits = [teacher.eval()(x) for teacher in self.teachers]
            features: dict[str, torch.Tensor] = {}
            if self._taps is not None:
                features = {name: self._taps.outputs[name] for name in self.layers}
                self._taps.outputs.clear()
        return logits, features

    def close(self) -> None:
        if self._taps is not None:
            self._taps.remove()


class OnlineOutputs:
    """Teacher outputs computed on the very batch the student sees (random augmentation)."""

    mode = "online"

    def __init__(self, runner: TeacherRunner, reason: str) -> None:
        self.runner = runner
        self.reason = reason

    def get(self, index: torch.Tensor, x: torch.Tensor):
        return self.runner(x)
