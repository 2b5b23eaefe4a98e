"""Broken configuration documents made from valid ones: hypothesis draws a base document and one
mutation (a required field dropped, a wrong type, an out-of-range, non-finite or huge value, an
unknown or duplicated key, a non-mapping root, an empty file, broken syntax, non-UTF-8 bytes)
and says what a user must be told: the exit code, and the field the message must name."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import strategies as st

Path_ = tuple[str | int, ...]
HUGE_DIGITS = "9" * 5000  # more digits than Python converts to an int by default
HUGE_TEXT = "x" * 200_000


@dataclass(frozen=True)
class Raw:
    """Text written into the document as is (a number too long for Python, a duplicated key)."""

    text: str


@dataclass
class Kind:
    """What the mutations of one kind of document may touch, by dotted path."""

    name: str
    syntax: str  # yaml | json
    bases: dict[str, Any]  # base name -> valid document (a tree)
    required: list[Path_]
    mappings: list[Path_]  # schema'd mappings: wrong type, unknown key, duplicate key
    numbers: list[Path_]  # wrong type, non-finite, huge
    strings: list[Path_]  # wrong type
    lists: list[Path_]  # wrong type
    out_of_range: dict[Path_, list[Any]]
    huge_strings: list[Path_]  # fields whose huge value no schema accepts
    semantic: list[tuple[str, Any]] = field(default_factory=list)  # (name, fn) -> exit 1 cases


@dataclass
class Case:
    """One broken document: its bytes, what was done, the exit code and field to expect."""

    label: str
    data: bytes
    exit_code: int = 2
    field: str | None = None  # a name the message must contain (a field, a key, a file)


def path_text(path: Path_) -> str:
    return ".".join(str(part) for part in path) or "(root)"


def leaf_name(path: Path_) -> str | None:
    """The last key of `path` that is a name (list indices are not), as the message gives it."""
    names = [part for part in path if isinstance(part, str)]
    return names[-1] if names else None


def has(tree: Any, path: Path_) -> bool:
    for part in path:
        if (
            isinstance(tree, dict)
            and part in tree
            or isinstance(tree, list)
            and isinstance(part, int)
            and part < len(tree)
        ):
            tree = tree[part]
        else:
            return False
    return True


def _parent(tree: Any, path: Path_) -> Any:
    for part in path[:-1]:
        tree = tree[part]
    return tree


def with_value(tree: Any, path: Path_, value: Any) -> Any:
    changed = copy.deepcopy(tree)
    _parent(changed, path)[path[-1]] = value
    return changed


def without(tree: Any, path: Path_) -> Any:
    changed = copy.deepcopy(tree)
    del _parent(changed, path)[path[-1]]
    return changed


def render(tree: Any, syntax: str) -> bytes:
    """The tree as YAML or JSON text, each Raw value written as its text."""
    raws: dict[str, str] = {}

    def swap(value: Any) -> Any:
        if isinstance(value, Raw):
            token = f"RAW{len(raws)}TOKEN"
            raws[token] = value.text
            return token
        if isinstance(value, dict):
            return {key: swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    swapped = swap(tree)
    if syntax == "json":
        text = json.dumps(swapped, indent=2)
        for token, raw in raws.items():
            text = text.replace(f'"{token}"', raw)
    else:
        text = yaml.safe_dump(swapped, sort_keys=False, width=1_000_000)
        for token, raw in raws.items():
            text = text.replace(token, raw)
    return text.encode("utf-8")


def duplicated(mapping: dict[str, Any], key: str, syntax: str) -> Raw:
    """`mapping` in flow style (JSON, which YAML reads too) with `key` given a second time."""
    pairs = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in mapping.items()]
    pairs.append(f"{json.dumps(key)}: {json.dumps(mapping[key])}")
    return Raw("{" + ", ".join(pairs) + "}")


WRONG_FOR = {
    "mapping": [[1, 2], "text", 7, None],
    "number": ["fast", [1], {"a": 1}, None],
    "string": [[1], {"a": 1}, 7, None],
    "list": [{"a": 1}, "text", 7, None],
}
NON_FINITE_YAML = [".nan", ".inf", "-.inf", "1.0e+999"]
NON_FINITE_JSON = ["NaN", "Infinity", "-Infinity", "1e999"]
UNKNOWN_KEYS = st.from_regex(r"\A[a-z][a-z0-9_]{0,11}\Z").map(lambda key: f"zz_{key}")
BAD_BYTES = [b"\xff", b"\xfe\xff", b"\xc3\x28", b"\x80", b"\xe9t\xe9", b"\xed\xa0\x80"]


@st.composite
def broken(draw: st.DrawFn, kind: Kind) -> Case:
    """A base document of `kind` with one mutation."""
    base_name = draw(st.sampled_from(sorted(kind.bases)))
    tree = kind.bases[base_name]
    mutations = [name for name, applies in _applicable(kind, tree).items() if applies]
    mutation = draw(st.sampled_from(mutations))
    case = MUTATIONS[mutation](draw, kind, tree)
    case.label = f"{base_name}: {mutation}: {case.label}"
    return case


def _present(tree: Any, paths: list[Path_]) -> list[Path_]:
    return [path for path in paths if has(tree, path)]


def _applicable(kind: Kind, tree: Any) -> dict[str, bool]:
    return {
        "drop required field": bool(_present(tree, kind.required)),
        "wrong type": bool(_present(tree, kind.mappings + kind.numbers + kind.strings)),
        "out of range": bool(_present(tree, list(kind.out_of_range))),
        "non-finite number": bool(_present(tree, kind.numbers)),
        "huge value": bool(_present(tree, kind.numbers + kind.huge_strings)),
        "unknown key": bool(_present(tree, kind.mappings)),
        "duplicate key": bool(_present(tree, kind.mappings)),
        "non-mapping root": True,
        "empty file": True,
        "invalid syntax": True,
        "non-UTF-8 bytes": True,
        "valid but wrong": bool(kind.semantic),
    }


def _drop(draw, kind: Kind, tree: Any) -> Case:
    path = draw(st.sampled_from(_present(tree, kind.required)))
    return Case(path_text(path), render(without(tree, path), kind.syntax), field=leaf_name(path))


def _wrong_type(draw, kind: Kind, tree: Any) -> Case:
    groups = {"mapping": kind.mappings, "number": kind.numbers, "string": kind.strings}
    groups["list"] = kind.lists
    choices = [(group, p) for group, paths in groups.items() for p in _present(tree, paths) if p]
    group, path = draw(st.sampled_from(choices))
    value = draw(st.sampled_from(WRONG_FOR[group]))
    data = render(with_value(tree, path, value), kind.syntax)
    return Case(f"{path_text(path)} = {value!r}", data, field=leaf_name(path))


def _out_of_range(draw, kind: Kind, tree: Any) -> Case:
    path = draw(st.sampled_from(_present(tree, list(kind.out_of_range))))
    value = draw(st.sampled_from(kind.out_of_range[path]))
    data = render(with_value(tree, path, value), kind.syntax)
    return Case(f"{path_text(path)} = {value!r}", data, field=leaf_name(path))


def _non_finite(draw, kind: Kind, tree: Any) -> Case:
    path = draw(st.sampled_from(_present(tree, kind.numbers)))
    spelled = NON_FINITE_JSON if kind.syntax == "json" else NON_FINITE_YAML
    text = draw(st.sampled_from(spelled))
    data = render(with_value(tree, path, Raw(text)), kind.syntax)
    return Case(f"{path_text(path)} = {text}", data, field=leaf_name(path))


def _huge(draw, kind: Kind, tree: Any) -> Case:
    numbers, strings = _present(tree, kind.numbers), _present(tree, kind.huge_strings)
    path = draw(st.sampled_from(numbers + strings))
    if path in numbers:
        sign = draw(st.sampled_from(["", "-"]))
        value: Any = Raw(sign + HUGE_DIGITS)
        label, named = f"{path_text(path)} = a {len(HUGE_DIGITS)}-digit number", None
    else:
        value, named = HUGE_TEXT, leaf_name(path)
        label = f"{path_text(path)} = a {len(HUGE_TEXT)}-character text"
    return Case(label, render(with_value(tree, path, value), kind.syntax), field=named)


def _unknown_key(draw, kind: Kind, tree: Any) -> Case:
    path = draw(st.sampled_from(_present(tree, kind.mappings)))
    key = draw(UNKNOWN_KEYS)
    value = draw(st.sampled_from([1, "on", [1], {"a": 1}, None]))
    changed = copy.deepcopy(tree)
    _at(changed, path)[key] = value
    return Case(f"{path_text(path)}.{key}", render(changed, kind.syntax), field=key)


def _at(tree: Any, path: Path_) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _duplicate_key(draw, kind: Kind, tree: Any) -> Case:
    path = draw(st.sampled_from(_present(tree, kind.mappings)))
    mapping = _at(tree, path)
    key = draw(st.sampled_from(sorted(mapping)))
    if not path:  # the root: the key again at the end of the file
        text = render(tree, kind.syntax).decode()
        if kind.syntax == "json":
            text = text.rstrip().rstrip("}") + f", {json.dumps(key)}: {json.dumps(mapping[key])}}}"
        else:
            text += render({key: mapping[key]}, "yaml").decode()
        return Case(f"{key} twice at the top level", text.encode(), field=key)
    data = render(with_value(tree, path, duplicated(mapping, key, kind.syntax)), kind.syntax)
    return Case(f"{path_text(path)}.{key} twice", data, field=key)


def _non_mapping_root(draw, kind: Kind, tree: Any) -> Case:
    roots: list[Any] = [[tree], "just some text", 42, None, [], True]
    root = draw(st.sampled_from(roots))
    text = render(root, kind.syntax) if root is not None else b"null\n"
    return Case(f"root {type(root).__name__}", text)


def _empty(draw, kind: Kind, tree: Any) -> Case:
    options = [b"", b"\n", b"   \n\t\n"]
    options += [b"# only a comment\n", b"---\n"] if kind.syntax == "yaml" else [b"\xef\xbb\xbf"]
    return Case("empty", draw(st.sampled_from(options)))


def _invalid_syntax(draw, kind: Kind, tree: Any) -> Case:
    text = render(tree, kind.syntax).decode()
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    if kind.syntax == "json":
        how = draw(st.sampled_from(["truncated", "trailing comma", "single quotes", "comment"]))
        if how == "truncated":
            text = text[: rng.randrange(1, text.rstrip().rindex("}"))]
        elif how == "trailing comma":
            text = text.rstrip().removesuffix("}") + ",}"
        elif how == "single quotes":
            text = text.replace('"', "'", 2)
        else:
            text = "// written by hand\n" + text
        return Case(how, text.encode())
    lines = text.splitlines(keepends=True)
    at = rng.randrange(len(lines) + 1)
    how = draw(st.sampled_from(["unclosed list", "tab indent", "unclosed quote", "two colons"]))
    bad = {
        "unclosed list": "broken: [1, 2\n",
        "tab indent": "\tbroken: 1\n",
        "unclosed quote": 'broken: "never closed\n',
        "two colons": "broken: a: b\n",
    }[how]
    if how == "unclosed list":
        at = len(lines)  # at the end, so no later line can close it
    return Case(f"{how} at line {at + 1}", "".join([*lines[:at], bad, *lines[at:]]).encode())


def _non_utf8(draw, kind: Kind, tree: Any) -> Case:
    data = render(tree, kind.syntax)
    if draw(st.booleans()):
        return Case("the whole file in UTF-16", data.decode().encode("utf-16"))
    bad = draw(st.sampled_from(BAD_BYTES))
    at = draw(st.integers(0, len(data)))
    return Case(f"{bad!r} at byte {at}", data[:at] + bad + data[at:])


def _valid_but_wrong(draw, kind: Kind, tree: Any) -> Case:
    name, change = draw(st.sampled_from(kind.semantic))
    changed, named = change(copy.deepcopy(tree), draw)
    return Case(name, render(changed, kind.syntax), exit_code=1, field=named)


MUTATIONS = {
    "drop required field": _drop,
    "wrong type": _wrong_type,
    "out of range": _out_of_range,
    "non-finite number": _non_finite,
    "huge value": _huge,
    "unknown key": _unknown_key,
    "duplicate key": _duplicate_key,
    "non-mapping root": _non_mapping_root,
    "empty file": _empty,
    "invalid syntax": _invalid_syntax,
    "non-UTF-8 bytes": _non_utf8,
    "valid but wrong": _valid_but_wrong,
}
