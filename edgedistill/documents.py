"""Reading the files users write (YAML profiles, recipes and lab files; JSON manifests) strictly:
UTF-8 text, each key once, finite numbers; whatever the parser trips on (bad syntax, a number too
long to convert, nesting too deep) becomes one UserInputError that names the file (and the
field, for a number that is not finite)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from edgedistill.errors import UserInputError


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing a mapping that gives one key twice (PyYAML keeps the
    last silently, so the value a user reads first is not the one used). Keys brought in by a
    `<<` merge may be overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice (lines {seen[key]} and {line})"
                )
            seen[key] = line
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """An int, or a refusal that says where the number is too long to convert."""
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"number too long ({_parser_trouble(exc)})", node.start_mark
            ) from None


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


def read_text(path: Path, where: str, what: str) -> str:
    """The file's text; unreadable or not UTF-8 is refused naming `where` (the file)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise UserInputError(f"{where}: cannot read {what} ({exc.strerror})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(
            f"{where}: {what} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None


def load_yaml(path: Path, where: str, what: str) -> Any:
    """The YAML document in `path`, every number finite, each key given once."""
    text = read_text(path, where, what)
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise UserInputError(f"{where}: not valid YAML ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise UserInputError(
            f"{where}: {what} cannot be read as YAML ({_parser_trouble(exc)})"
        ) from None
    check_finite(document, where)
    return document


def load_json(path: Path, where: str, what: str) -> Any:
    """The JSON document in `path`, every number finite (NaN and Infinity, which Python's json
    reads, are refused naming their field), each key given once."""
    text = read_text(path, where, what)
    try:
        document = json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{where}: not valid JSON ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise UserInputError(f"{where}: not valid JSON ({_parser_trouble(exc)})") from None
    check_finite(document, where)
    return document


def check_finite(document: Any, where: str) -> None:
    """Refuse a NaN or infinite number anywhere in `document`, naming its field. Containers
    shared through YAML aliases are visited once."""
    seen: set[int] = set()
    pending: list[tuple[str, Any]] = [("", document)]
    while pending:
        field, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            name = f"field {field}" if field else "(top level)"
            raise UserInputError(f"{where}: {name}: must be a finite number, got {value}")
        if isinstance(value, (dict, list)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            pending.extend((f"{field}.{key}" if field else str(key), item) for key, item in items)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"key {key!r} appears twice in one object")
        document[key] = value
    return document


def _parser_trouble(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).split(";")[0]  # "Exceeds the limit (4300 digits) for integer ..."
