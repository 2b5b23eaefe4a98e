"""Candidate costs kept on disk: pricing the image search space means building and tracing a
few hundred modules (about 15-30 s on 2 cores), the same for every run of one input shape, so
each (input shape, classes, precision) table is computed once and read back afterwards.

A table is keyed by the source of the code that makes the numbers (the families, their layers,
the cost tracers), so a changed architecture or cost rule never reads a stale table. Tables are
plain JSON in the cache folder, written whole to a temporary name and renamed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from edgedistill import atomic
from edgedistill.latency import costs, transformer_cost
from edgedistill.latency.costs import LayerCost, ModelCost
from edgedistill.paths import cache_dir
from edgedistill.students import FAMILIES, Candidate, layers, mobilenet, transformer

log = logging.getLogger(__name__)

TABLE_VERSION = 1
_SOURCES = (costs, transformer_cost, layers, mobilenet, transformer)
_TABLES: dict[str, dict[str, ModelCost]] = {}


def costs_for(
    specs: list[str], input_shape: tuple[int, ...], num_classes: int, precision: str = "fp32"
) -> dict[str, ModelCost]:
    """The cost of every spec: from the stored table, the missing ones computed (by their
    family) and stored."""
    key = _key(tuple(input_shape), num_classes, precision)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = _read(_path(key))
    missing = [spec for spec in dict.fromkeys(specs) if spec not in table]
    for spec in missing:
        candidate = Candidate.parse(spec)
        family = FAMILIES.get(candidate.family)
        table[spec] = family.cost(candidate, tuple(input_shape), num_classes, precision)
    if missing:
        _write(_path(key), table)
    return {spec: table[spec] for spec in specs}


def _key(input_shape: tuple[int, ...], num_classes: int, precision: str) -> str:
    digest = hashlib.sha256(
        json.dumps([TABLE_VERSION, input_shape, num_classes, precision]).encode()
    )
    digest.update(_source_digest())
    return digest.hexdigest()[:24]


@functools.cache
def _source_digest() -> bytes:
    """The code that makes the numbers, read once per process (a key is made per lookup)."""
    digest = hashlib.sha256()
    for module in _SOURCES:
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.digest()


def _path(key: str) -> Path:
    return cache_dir() / "costs" / f"{key}.json"


def _read(path: Path) -> dict[str, ModelCost]:
    """The stored table; an absent or unreadable one is empty (it is only a cache)."""
    try:
        stored = json.loads(path.read_text())
        return {
            spec: ModelCost(
                layers=tuple(LayerCost(**layer) for layer in entry["layers"]),
                params=entry["params"],
                macs=entry["macs"],
                precision=entry["precision"],
            )
            for spec, entry in stored.items()
        }
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.debug("cost table %s unreadable (%s); computing it again", path, exc)
        return {}


def _write(path: Path, table: dict[str, ModelCost]) -> None:
    try:
        atomic.write_json(path, {spec: asdict(cost) for spec, cost in table.items()})
    except OSError as exc:  # a read-only cache folder: the costs are computed every run
        log.debug("cost table %s not written (%s)", path, exc)
