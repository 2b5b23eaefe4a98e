"""The trainer's resumable state in one safetensors file, replaced atomically every epoch (and
when a signal stops training): model, best weights, optimizer, random generators, the epoch's
sample order and position, history. Non-tensor fields travel as JSON in the file's metadata, so
nothing is unpickled on resume."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgedistill import atomic
from edgedistill.errors import UserInputError

if TYPE_CHECKING:
    import torch
    from torch import nn

FORMAT = 1


@dataclass
class LoopState:
    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed in the current epoch (0 between epochs)
    order: torch.Tensor | None = None  # the current epoch's sample order, while mid-epoch
    loss_sum: float = 0.0
    seen: int = 0
    best_accuracy: float = -1.0
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    finished: bool = False
    seconds: float = 0.0  # training time before this process (resumed runs)


def save_train_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    loop: LoopState,
    run_digest: str,
) -> None:
    import torch
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    for name, value in model.state_dict().items():
        tensors[f"model/{name}"] = value.detach().cpu().contiguous()
    for name, value in (loop.best_state or {}).items():
        tensors[f"best/{name}"] = value.detach().cpu().contiguous()
    optimizer_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, slots in optimizer_state["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/generator"] = generator.get_state()
    if loop.order is not None:
        tensors["order"] = loop.order.contiguous()
    meta = {
        "format": FORMAT,
        "run_digest": run_digest,
        "epoch": loop.epoch,
        "step": loop.step,
        "loss_sum": loop.loss_sum,
        "seen": loop.seen,
        "best_accuracy": loop.best_accuracy,
        "best_epoch": loop.best_epoch,
        "history": loop.history,
        "finished": loop.finished,
        "seconds": loop.seconds,
        "optimizer_groups": optimizer_state["param_groups"],
        "optimizer_scalars": scalars,
    }
    atomic.write_bytes(path, save(tensors, metadata={"edgedistill": json.dumps(meta)}))


def load_train_state(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    run_digest: str,
) -> LoopState:
    """Restore model, optimizer and generators in place; the loop position is returned."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["edgedistill"])
        tensors = load_file(str(path))
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise UserInputError(f"--resume: cannot read the checkpoint {path} ({exc})") from None
    if meta.get("format") != FORMAT or meta.get("run_digest") != run_digest:
        raise UserInputError(
            f"--resume: the checkpoint {path} was written by a different run configuration "
            "(task, student, losses, teachers, seed or training settings differ)"
        )
    model.load_state_dict(_prefixed(tensors, "model/"))
    best = _prefixed(tensors, "best/")
    slots: dict[int, dict[str, Any]] = {}
    for name, value in _prefixed(tensors, "optim/").items():
        index, key = name.split("/", 1)
        slots.setdefault(int(index), {})[key] = value
    for index, values in meta["optimizer_scalars"].items():
        slots.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": slots, "param_groups": meta["optimizer_groups"]})
    torch.set_rng_state(tensors["rng/torch"])
    generator.set_state(tensors["rng/generator"])
    return LoopState(
        epoch=meta["epoch"],
        step=meta["step"],
        order=tensors.get("order"),
        loss_sum=meta["loss_sum"],
        seen=meta["seen"],
        best_accuracy=meta["best_accuracy"],
        best_epoch=meta["best_epoch"],
        best_state=best or None,
        history=meta["history"],
        finished=meta["finished"],
        seconds=meta["seconds"],
    )


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
