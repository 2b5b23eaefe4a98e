"""Forward hooks that capture the outputs of modules chosen by name, and the layer listing used
to refuse a layer name that does not exist (with every available name and its output shape)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgedistill.errors import UserInputError

if TYPE_CHECKING:
    import torch
    from torch import nn

LISTED_LAYERS = 60  # a refusal lists at most this many names (the closest ones first)


class FeatureTaps:
    """Capture the output of each named module on every forward pass while `active`.

    A module that runs several times in one forward pass keeps its last output."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        modules = dict(model.named_modules())
        self.outputs: dict[str, torch.Tensor] = {}
        self.active = True
        self._handles = [modules[name].register_forward_hook(self._hook(name)) for name in names]

    def _hook(self, name: str):
        def capture(module, inputs, output) -> None:
            if self.active:
                self.outputs[name] = output

        return capture

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def layer_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, ...] | None]:
    """Every named module's output shape for `example` (batch dimension dropped; None when the
    output is not a single tensor). Runs one forward pass in eval mode, without gradients."""
    import torch

    shapes: dict[str, tuple[int, ...] | None] = {}
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue

        def record(module, inputs, output, name=name) -> None:
            shapes[name] = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None

        handles.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return shapes


def describe(shapes: dict[str, tuple[int, ...] | None], near: str = "") -> str:
    """`name [C, H, W]` for each layer, the names closest to `near` first."""
    import difflib

    names = [n for n, s in shapes.items() if s is not None]
    if not names:
        return "none (this model exposes no layers, e.g. a teacher run by onnxruntime)"
    close = difflib.get_close_matches(near, names, n=5, cutoff=0.4) if near else []
    ordered = close + [n for n in names if n not in close]
    listed = ", ".join(f"{n} {list(shapes[n] or ())}" for n in ordered[:LISTED_LAYERS])
    more = len(ordered) - LISTED_LAYERS
    return listed + (f", ... ({more} more)" if more > 0 else "")


def require_layer(
    shapes: dict[str, tuple[int, ...] | None], name: str, role: str, where: str
) -> tuple[int, ...]:
    """The output shape of layer `name`, or a refusal listing the available layers."""
    if name not in shapes:
        raise UserInputError(
            f"{where}: the {role} has no layer {name!r}; its layers and output shapes are: "
            f"{describe(shapes, name)}"
        )
    shape = shapes[name]
    if shape is None:
        raise UserInputError(
            f"{where}: the {role} layer {name!r} does not return a single tensor; pick one of: "
            f"{describe(shapes, name)}"
        )
    return shape
