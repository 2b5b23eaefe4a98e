"""The data-source registry: each adapter turns a `scheme:ARGUMENT` into a SampleTable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgedistill.registry import Registry
from edgedistill.tasks.table import SampleTable


@dataclass(frozen=True)
class SourceContext:
    """What an adapter knows besides its argument: where relative paths start, how to name the
    setting in messages, and what the recipe says the samples should become."""

    base_dir: Path
    what: str  # "--data" or "RECIPE: field data.source"
    channel_order: str | None = None  # gray / rgb / bgr when the recipe says
    size: tuple[int, int] | None = None  # H, W when the recipe says (mixed sizes get resized)

    def path(self, argument: str) -> Path:
        path = Path(argument).expanduser()
        return path if path.is_absolute() else self.base_dir / path


DataAdapter = Callable[[str, SourceContext], SampleTable]
DATA_SOURCES: Registry[DataAdapter] = Registry("data source")
