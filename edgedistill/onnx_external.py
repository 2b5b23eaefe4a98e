"""The external-data check of a user's ONNX file: every tensor stored outside the file must lie
in the model's own folder, checked from the graph alone before any data file is opened.

An ONNX tensor may keep its bytes in another file (`external_data` `location`, relative to the
model's folder). A file from another hand could point that at /etc/shadow, ../../secrets, a
device, or a symlink leading out; onnxruntime and `onnx.load` would read it. So the graph is
parsed with `load_external_data=False` and every tensor is checked (initializers, sparse
initializers, Constant-like attributes, subgraphs of If/Loop/Scan, local functions) before
anything else opens the model.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgedistill.errors import UserInputError

_EXTERNAL = 1  # TensorProto.EXTERNAL
# Files with no external data, by (real path, size, mtime): validation opens a session per
# batch of one file, and each check parses the whole graph; a file changed since is re-read.
_PASSED: set[tuple[str, int, int]] = set()


def check_external_data(path: Path, what: str = "") -> None:
    """Refuse (UserInputError naming `what`, the file and the location) an ONNX file with a
    tensor whose external data is absolute, climbs with `..`, or resolves outside its folder;
    a file that does not parse as ONNX is refused too. Opens no file but `path` itself."""
    key = _identity(path)
    if key is not None and key in _PASSED:
        return
    model = _load_graph_only(path, what)
    folder = os.path.realpath(Path(path).parent)
    locations = list(external_locations(model))
    for tensor_name, location in locations:
        problem = _location_problem(folder, location)
        if problem:
            raise UserInputError(
                f"{_prefix(what)}{path}: tensor {tensor_name!r} keeps its data in "
                f"{location!r}, which {problem}; an ONNX file's external data must lie in its "
                "own folder"
            )
    if key is not None and not locations:  # data files can move: those are checked every time
        _PASSED.add(key)


def _identity(path: Path) -> tuple[str, int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None  # _load_graph_only names the problem
    return os.path.realpath(path), status.st_size, status.st_mtime_ns


def _prefix(what: str) -> str:
    return f"{what}: " if what else ""


def _load_graph_only(path: Path, what: str) -> Any:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=False)
    except OSError as exc:
        raise UserInputError(f"{_prefix(what)}{path}: cannot read ({exc.strerror})") from None
    except Exception as exc:  # protobuf's DecodeError and kin: not a model
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise UserInputError(
            f"{_prefix(what)}{path}: not a readable ONNX model ({first})"
        ) from None


def _location_problem(folder: str, location: str) -> str | None:
    """Why `location` may not be read, or None when it stays in `folder`."""
    if not location:
        return "is empty"
    if "\x00" in location:
        return "holds a NUL byte"
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location[:3]:
        return "is an absolute path"
    if ".." in Path(location.replace("\\", "/")).parts:
        return "climbs out with '..'"
    resolved = os.path.realpath(os.path.join(folder, location))
    if resolved == folder:
        return "is the model's folder itself, not a file in it"
    if os.path.commonpath([folder, resolved]) != folder:
        return f"resolves to {resolved}, outside {folder}"
    return None


def external_locations(model: Any) -> Iterator[tuple[str, str]]:
    """(tensor name, location) of every tensor of the model that keeps its data outside."""
    for tensor in _tensors(model):
        if tensor.data_location == _EXTERNAL:
            entries = {entry.key: entry.value for entry in tensor.external_data}
            yield tensor.name, entries.get("location", "")


def _tensors(model: Any) -> Iterator[Any]:
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_tensors(node)


def _graph_tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        yield from _node_tensors(node)


def _node_tensors(node: Any) -> Iterator[Any]:
    for attribute in node.attribute:
        if attribute.HasField("t"):
            yield attribute.t
        yield from attribute.tensors
        if attribute.HasField("sparse_tensor"):
            yield attribute.sparse_tensor.values
            yield attribute.sparse_tensor.indices
        for sparse in attribute.sparse_tensors:
            yield sparse.values
            yield sparse.indices
        if attribute.HasField("g"):
            yield from _graph_tensors(attribute.g)
        for subgraph in attribute.graphs:
            yield from _graph_tensors(subgraph)
