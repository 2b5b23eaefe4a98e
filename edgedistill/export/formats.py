"""The formats table, generated from the EXPORTERS registry: what each format is and needs."""

from __future__ import annotations

import shutil
from typing import Any

from edgedistill.export._extras import has_module
from edgedistill.export._registry import EXPORTERS


def formats_table() -> list[dict[str, Any]]:
    """One row per registered exporter: name, file suffix, precisions, what it is built from,
    where it is validated, what it needs, and whether that is installed on this host."""

    rows = []
    for name in EXPORTERS:
        exporter = EXPORTERS.get(name)
        needs = [f"pip install 'edgedistill[{exporter.extra}]'"] if exporter.extra else []
        needs += [f"{tool} on PATH" for tool in exporter.tools]
        installed = all(has_module(m) for m in exporter.modules) and all(
            shutil.which(tool) for tool in exporter.tools
        )
        rows.append(
            {
                "format": name,
                "suffix": exporter.suffix,
                "precisions": list(exporter.precisions),
                "built_from": exporter.consumes or "the PyTorch student",
                "validated_on": exporter.validated_on,
                "requires": "; ".join(needs) or "always installed",
                "installed_here": installed,
            }
        )
    return rows
