"""Find the user's function named by `FILE.py:FN` or `package.module:FN` (their own code)."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgedistill.errors import UserInputError

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_FUNCTION = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def looks_like_callable(spec: str) -> bool:
    """True for `something.py:FN` or `dotted.module:FN`."""
    target, sep, function = spec.rpartition(":")
    if not sep or not _FUNCTION.match(function):
        return False
    return target.endswith(".py") or bool(_MODULE.match(target))


def load_callable(spec: str, what: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """The function `spec` names. `what` (a flag or recipe field) starts every error message.

    A relative FILE.py is looked up under `base_dir` (the recipe's folder) or the working
    directory; a module is imported with the working directory on the import path, as
    `python -m` would.
    """
    target, sep, function = spec.rpartition(":")
    if not sep or not _FUNCTION.match(function) or not target:
        raise UserInputError(
            f"{what}: cannot read {spec!r}; expected FILE.py:FUNCTION or package.module:FUNCTION"
        )
    if target.endswith(".py"):
        module = _import_file(Path(target), what, base_dir)
        origin = target
    else:
        module = _import_module(target, what)
        origin = f"module {target}"
    found = getattr(module, function, None)
    if found is None:
        public = sorted(
            name for name, value in vars(module).items() if callable(value) and name[0] != "_"
        )
        raise UserInputError(
            f"{what}: {origin} has no function {function!r} "
            f"(callables there: {', '.join(public) or 'none'})"
        )
    if not callable(found):
        raise UserInputError(f"{what}: {origin}:{function} is not a function")
    return found


def _import_file(path: Path, what: str, base_dir: Path | None):
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    if not path.is_file():
        raise UserInputError(f"{what}: no such file {path}")
    name = f"edgedistill_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserInputError(f"{what}: cannot load {path} as Python code")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file can import its neighbours, now or later
    try:
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise UserInputError(
            f"{what}: importing {path} failed: {type(exc).__name__}: {exc}"
        ) from None
    return module


def _import_module(name: str, what: str):
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise UserInputError(
            f"{what}: cannot import module {name!r} ({exc}); is it installed, or is the "
            "working directory the one that holds it?"
        ) from None
    except Exception as exc:
        raise UserInputError(
            f"{what}: importing module {name!r} failed: {type(exc).__name__}: {exc}"
        ) from None


def build_module(function: Callable[..., Any], what: str, name: str, **arguments: Any):
    """Call the user's FN(**arguments); it must return a torch.nn.Module. `what` (a flag or
    recipe field) and `name` (FILE.py:FN as given) start every message."""
    from torch import nn

    try:
        module = function(**arguments)
    except Exception as exc:
        raise UserInputError(f"{what}: {name}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(module, nn.Module):
        raise UserInputError(
            f"{what}: {name} returned a {type(module).__name__}; it must return a torch.nn.Module"
        )
    return module
