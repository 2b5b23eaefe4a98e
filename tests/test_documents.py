"""The strict reader of configuration files (edgedistill/documents.py): each document the loaders
once crashed on, or silently misread, is refused with exit 2 naming the file (and the field)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import invoke

REPO = Path(__file__).resolve().parents[1]
HOST = (REPO / "profiles" / "host-cpu.yaml").read_text("utf-8")


def _refused(result, *names: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for name in names:
        assert name in result.stderr


@pytest.mark.parametrize(
    ("broken", "named"),
    [
        (HOST.encode() + b"\xff", "not UTF-8"),  # was a UnicodeDecodeError traceback
        (HOST.replace("cpu_cores: 2", "cpu_cores: " + "9" * 5000).encode(), "too long"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),  # was a RecursionError traceback
        ((HOST + "name: other\n").encode(), "'name' appears twice"),  # was last-wins
        (HOST.replace("fp32: 1.0e+11", "fp32: .nan").encode(), "compute.peak_ops_per_s.fp32"),
        (HOST.replace("ram_gb: 8", "ram_gb: .inf").encode(), "compute.ram_gb"),
        (HOST.replace("name: host-cpu", "name: " + "a" * 100_000).encode(), "field name"),
    ],
    ids=["non-utf8", "huge-int", "deep", "duplicate", "nan", "inf", "huge-name"],
)
def test_profile_the_loader_once_crashed_on_or_misread_is_refused(tmp_path, broken, named):
    path = tmp_path / "profile.yaml"
    path.write_bytes(broken)
    _refused(invoke("profiles", "validate", str(path)), str(path), named)


def test_recipe_with_a_list_for_task_type_and_text_data_names_the_field(tmp_path):
    path = tmp_path / "task.yaml"
    path.write_text("name: t\ntask_type: [a]\ndata: {source: 'text:texts.txt'}\n", "utf-8")
    argv = ["search", "--device", "jetson-orin-nano", "--budget", "1ms", "--task", str(path)]
    result = invoke(*argv)
    _refused(result, str(path), "task_type")  # was TypeError: unhashable type: 'list'


def test_manifest_with_nan_or_a_duplicate_key_is_refused(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for text, named in [
        ('{"budget_ms": NaN}', "field budget_ms"),
        ('{"device": "a", "device": "b"}', "'device' appears twice"),
        ('{"budget_ms": 1e999}', "budget_ms"),
    ]:
        (bundle / "manifest.json").write_text(text, "utf-8")
        _refused(invoke("bundle", "verify", str(bundle)), "manifest.json", named)


def test_lab_file_is_refused_before_fit_reads_the_task(tmp_path):
    lab = tmp_path / "devices.yaml"
    lab.write_text("devices:\n  - {name: board, transport: ssh}\n", "utf-8")
    missing = tmp_path / "no-such-task.yaml"  # read after the lab file: never reached
    result = invoke(
        "fit", "--device", "host-cpu", "--budget", "1ms", "--task", str(missing),
        "--lab", str(lab), "--target", "board", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    _refused(result, str(lab), "field host")
    assert not (tmp_path / "run").exists()
