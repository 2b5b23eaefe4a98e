"""Weights read and written one way: safetensors files, written atomically; a user's file may
also be a state dict read through torch.load(weights_only=True). A pickled checkpoint holding
Python objects is refused, never unpickled."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgedistill import atomic
from edgedistill.errors import UserInputError

if TYPE_CHECKING:
    import torch
    from torch import nn

WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")  # common checkpoint layouts
_LISTED = 8  # names shown per kind of mismatch


def save_safetensors(path: Path, model: nn.Module) -> None:
    """The module's state dict as a safetensors file at `path` (written atomically)."""
    from safetensors.torch import save

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic.write_bytes(path, save(state))


def load_safetensors(path: Path, what: str = "weights") -> dict[str, torch.Tensor]:
    """Tensors by name from a safetensors file (this package's, or one that came with a
    checkpoint or run folder someone handed over); a file that is not one, or whose header
    is malformed, is bad input naming it, `what` (flag or argument) first."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as exc:
        # the Rust parser's refusals, an unreadable file, a dtype torch has no type for
        raise UserInputError(f"{what}: {path}: not a readable safetensors file ({exc})") from None


def check_safetensors(path: Path, what: str) -> None:
    """Refuse, naming it, a safetensors file whose header is malformed, reading the header
    only (for weights another library loads afterwards)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except (SafetensorError, OSError, ValueError, TypeError, KeyError) as exc:
        raise UserInputError(f"{what}: {path}: not a readable safetensors file ({exc})") from None


def load_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """Tensors by name from `path`; `what` (flag or recipe field) starts every message."""
    import torch

    if not path.is_file():
        raise UserInputError(f"{what}: no such file {path}")
    if path.suffix == ".safetensors":
        return load_safetensors(path, what)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler's refusals come as several types
        raise UserInputError(
            f"{what}: {path} is not a plain state dict: it is a pickled checkpoint holding "
            "Python objects (or not a torch file at all), and unpickling it could run code, "
            "so it is refused. Save the weights with safetensors.torch.save_file(model."
            f"state_dict(), 'teacher.safetensors') or torch.save(model.state_dict(), ...) "
            f"[{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}]"
        ) from None
    return _tensors(loaded, path, what)


def _tensors(loaded, path: Path, what: str) -> dict[str, torch.Tensor]:
    import torch

    if isinstance(loaded, dict):
        for key in WRAPPER_KEYS:
            inner = loaded.get(key)
            if (
                isinstance(inner, dict)
                and inner
                and all(isinstance(v, torch.Tensor) for v in inner.values())
            ):
                return dict(inner)
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return dict(loaded)
    raise UserInputError(
        f"{what}: {path} holds a {type(loaded).__name__}, not a state dict (name -> tensor); "
        f"save model.state_dict()"
    )


def apply_state_dict(
    model: nn.Module, state: dict[str, torch.Tensor], path: Path, what: str, module: str = "module"
):
    """Load `state` into `model`; on any mismatch list missing, unexpected and misshapen keys.
    Lazy modules (shapes not known until the first call) take the file's shapes."""
    from torch.nn.parameter import is_lazy

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshapen = [
        f"{k} (file {tuple(state[k].shape)}, module {tuple(expected[k].shape)})"
        for k in expected
        if k in state
        and not is_lazy(expected[k])
        and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or misshapen:
        problems = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", misshapen),
        ):
            if keys:
                more = f", … ({len(keys)} in all)" if len(keys) > _LISTED else ""
                problems.append(f"{label}: {', '.join(keys[:_LISTED])}{more}")
        raise UserInputError(f"{what}: {path} does not match the {module}; " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
