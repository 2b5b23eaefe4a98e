"""The package's layout holds: imports of its own modules sit at the top of each file (the
layers themselves are checked by `lint-imports`, see pyproject.toml), and every package
registers what it ships when imported."""

from __future__ import annotations

import ast
from pathlib import Path

from benchmarks.layout_imports import own_imports_inside_functions

PACKAGE = Path(__file__).resolve().parent.parent / "edgedistill"


def test_no_module_imports_its_own_package_inside_a_function():
    found = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := own_imports_inside_functions(ast.parse(path.read_text())))
    }
    assert found == {}, f"move these imports to the top of the file: {found}"


def test_the_scanner_finds_an_import_inside_a_function():
    tree = ast.parse("def f():\n    from edgedistill.errors import UserInputError\n")
    assert own_imports_inside_functions(tree) == [2]


def test_every_subpackage_is_a_regular_package():
    missing = [
        str(folder.relative_to(PACKAGE.parent))
        for folder in PACKAGE.rglob("*")
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py"))
        if not (folder / "__init__.py").is_file()
    ]
    assert missing == []


def test_importing_each_registry_package_registers_its_entries():
    from edgedistill.distill.losses import LOSSES
    from edgedistill.export import EXPORTERS
    from edgedistill.students import FAMILIES
    from edgedistill.tasks.sources import DATA_SOURCES
    from edgedistill.teachers import TEACHER_FORMS

    assert {"kd", "ce", "fitnet", "at", "born-again"} <= set(LOSSES.names())
    assert {"onnx", "tflite", "coreml", "tensorrt"} <= set(EXPORTERS.names())
    assert "mbv2" in FAMILIES
    assert {"builtin", "imagefolder", "npz", "python"} <= set(DATA_SOURCES.names())
    assert {"builtin", "python", "onnx"} <= set(TEACHER_FORMS.names())
