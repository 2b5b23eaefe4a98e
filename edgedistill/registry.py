"""One generic name -> object registry for losses, student families, exporters and transports."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from edgedistill.errors import UserInputError

T = TypeVar("T")


def unknown_name(kind: str, name: str, known: Iterable[str]) -> str:
    """ "unknown KIND 'NAME'; did you mean ...? (known: ...)" for a name none of `known` is."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}{hint} (known: {', '.join(known) or 'none'})"


class Registry(Generic[T]):
    """Maps names to objects; refuses duplicates and suggests close names for unknown ones."""

    def __init__(self, kind: str, instances: bool = False) -> None:
        """`instances=True`: `@register` on a class stores one instance of it (stateless
        strategy objects: losses, exporters, forms); otherwise the decorated object itself."""
        self.kind = kind
        self._instances = instances
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        """The one way to register: `@REGISTRY.register("name")` above a class or function."""

        def decorator(obj: Any) -> Any:
            self.add(name, obj() if self._instances else obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UserInputError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        return unknown_name(self.kind, name, self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
